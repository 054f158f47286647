/* tcpclients.c: the clients of an NBD server on another host.
 *
 * A transfer of a backup of a VM on another host reads libvirt's NBD server
 * there over TCP (image_transfer.nbd_server, "nbd://ADDR:PORT"). The
 * reaper keeps a transfer open while a client is connected; for a unix
 * socket it counts them in /proc/net/unix, here it counts this machine's
 * established TCP connections to ADDR:PORT in /proc/net/tcp and tcp6: the
 * engine's own data path and a client on the engine's host (nbd_url). A
 * client elsewhere is not seen: it keeps the transfer open by its activity
 * on the data URL, or with a longer inactivity_timeout. */
#include "cmd/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TCP_ESTABLISHED_STATE 1

int nbd_server_split(const char *server, char **addr, int *port)
{
  *addr = NULL;
  *port = 0;
  const char *p = strstr(server, "://");
  if (!p) return error(ERR_INTERNAL, "invalid NBD server '%s'", server);
  p += 3;
  const char *colon = strrchr(p, ':');
  const char *end = colon;
  if (!colon || colon == p) return error(ERR_INTERNAL, "NBD server '%s' names no port", server);
  char *tail = NULL;
  long n = strtol(colon + 1, &tail, 10);
  if (*tail || n <= 0 || n > 65535) return error(ERR_INTERNAL, "invalid port in NBD server '%s'", server);
  if (*p == '[' && end[-1] == ']') { p++; end--; } /* [IPv6] */
  *addr = xasprintf("%.*s", (int)(end - p), p);
  *port = (int)n;
  return 0;
}

/* the connections in /proc/net/FILE (tcp or tcp6) whose remote end is one
 * of addrs at port, in state established */
static int count_in(const char *file, const struct addrinfo *addrs, int port, int family)
{
  AUTOFREE char *path = xasprintf("/proc/net/%s", file);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  char line[512];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char rem[64];
    unsigned rport = 0, st = 0;
    if (sscanf(line, " %*s %*s %63[0-9A-Fa-f]:%x %x", rem, &rport, &st) != 3) continue;
    if ((int)rport != port || st != TCP_ESTABLISHED_STATE) continue;
    /* the kernel prints each 32-bit word of the address as read in host order */
    uint32_t words[4] = {0};
    size_t nw = strlen(rem) / 8;
    if (nw != (family == AF_INET ? 1u : 4u)) continue;
    for (size_t i = 0; i < nw; i++) {
      char w[9];
      memcpy(w, rem + 8 * i, 8);
      w[8] = 0;
      words[i] = (uint32_t)strtoul(w, NULL, 16);
    }
    for (const struct addrinfo *a = addrs; a; a = a->ai_next) {
      if (a->ai_family != family) continue;
      const void *bytes = family == AF_INET ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                                            : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
      if (memcmp(bytes, words, nw * 4) == 0) { n++; break; }
    }
  }
  fclose(f);
  return n;
}

int nbd_tcp_clients(const char *server)
{
  AUTOFREE char *addr = NULL;
  int port = 0;
  if (nbd_server_split(server, &addr, &port) < 0) { error_clear(); return 0; }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(addr, NULL, &hints, &res) != 0) return 0;
  int n = count_in("tcp", res, port, AF_INET) + count_in("tcp6", res, port, AF_INET6);
  freeaddrinfo(res);
  return n;
}
