/* hyper_lvmigrate.c: live migration of a domain between two hosts'
 * connections, over a data address the destination can reach */

#include "hyper/hyper_lv.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* the host part of a libvirt URI ("qemu+tcp://root@10.0.0.2:16509/system"
 * gives "10.0.0.2", "[fd00::2]" gives "fd00::2"); NULL for a local URI
 * ("qemu:///system"). Caller frees. */
char *hyper_lv_uri_host(const char *uri)
{
  const char *p = strstr(uri, "://");
  if (!p) return NULL;
  p += 3;
  size_t auth = strcspn(p, "/?");
  const char *at = memchr(p, '@', auth);
  if (at) {
    auth -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  size_t len;
  if (*p == '[') {
    const char *close = memchr(p, ']', auth);
    if (!close) return NULL;
    p++;
    len = (size_t)(close - p);
  } else {
    const char *colon = memchr(p, ':', auth);
    len = colon ? (size_t)(colon - p) : auth;
  }
  return len ? xasprintf("%.*s", (int)len, p) : NULL;
}

/* this machine's address on the route toward HOST (what a peer there
 * reaches us by): a UDP socket connected there says which local address the
 * kernel picked; nothing is sent. NULL when HOST does not resolve. */
static char *local_address_toward(const char *host)
{
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai = NULL;
  if (getaddrinfo(host, "9", &hints, &ai) != 0) return NULL;
  char *out = NULL;
  int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char addr[INET6_ADDRSTRLEN];
  if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
      getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
      getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof addr, NULL, 0, NI_NUMERICHOST) == 0)
    out = ss.ss_family == AF_INET6 ? xasprintf("[%s]", addr) : xstrdup(addr);
  if (fd >= 0) close(fd);
  freeaddrinfo(ai);
  return out;
}

/* tcp://ADDR the destination's QEMU listens on for the migration stream */
static char *migrate_data_uri(const struct hyper *src, const struct hyper *dst)
{
  AUTOFREE char *dst_host = hyper_lv_uri_host(dst->uri);
  if (dst_host) return strchr(dst_host, ':') ? xasprintf("tcp://[%s]", dst_host) : xasprintf("tcp://%s", dst_host);
  AUTOFREE char *src_host = hyper_lv_uri_host(src->uri);
  AUTOFREE char *local = src_host ? local_address_toward(src_host) : NULL;
  return local ? xasprintf("tcp://%s", local) : NULL;
}

/* managed by this process, not peer to peer: the engine holds both
 * connections, so neither libvirtd needs to reach the other's API (the
 * engine's own host may listen only on its unix socket) */
int hyper_lv_domain_migrate(struct hyper *h, struct hyper *dst, const char *vm_id)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOPTR(virConnect) dc = hyper_lv_get_conn(dst);
  if (!dc) return -1;
  AUTOPTR(virDomain) d = hyper_lv_lookup(c, vm_id);
  if (!d) return -1;
  AUTOFREE char *data_uri = migrate_data_uri(h, dst);
  virTypedParameterPtr params = NULL;
  int nparams = 0, maxparams = 0;
  if (data_uri && virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_URI, data_uri) < 0)
    return virt_error("cannot migrate VM '%s'", vm_id);
  /* UNSAFE: a storage domain is shared by the hosts of its data center by
   * contract (a path each host sees). libvirt recognises NFS, GFS2, Ceph and
   * the like itself, but not every cluster file system, nor one file system
   * seen from two hosts on one machine (scripts/test-host.sh); disks use
   * cache='none' (domxml.c), which is what its check is about */
  virDomainPtr moved = virDomainMigrate3(d, dc, params, (unsigned)nparams, VIR_MIGRATE_LIVE | VIR_MIGRATE_UNSAFE);
  virTypedParamsFree(params, nparams);
  if (!moved)
    return virt_error("cannot migrate VM '%s' from host '%s' to '%s'", vm_id, h->uri, dst->uri);
  virDomainFree(moved);
  return 0;
}
