/* hyper_lvbackup.c: libvirt's pull backups and their checkpoints */

#include "hyper/hyper_lv.h"
#include "hyper/domxml.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include <stdio.h>
#include <string.h>

DEFINE_AUTOPTR(virDomainCheckpoint, struct _virDomainCheckpoint, virDomainCheckpointFree)

/* drops libvirt's metadata of checkpoint cp, named name (the bitmaps stay) */
static void checkpoint_drop(virDomainCheckpointPtr cp, const char *name)
{
  if (virDomainCheckpointDelete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) < 0)
    log_warn("cannot drop libvirt's metadata of checkpoint '%s': %s", name ? name : "?", virGetLastErrorMessage());
  virResetLastError();
}

/* drops libvirt's metadata of checkpoint name, when libvirt has it */
static void checkpoint_forget(virDomainPtr d, const char *name)
{
  AUTOPTR(virDomainCheckpoint) cp = virDomainCheckpointLookupByName(d, name, 0);
  if (cp) checkpoint_drop(cp, name);
  virResetLastError();
}

/* starts the pull backup of domain d of host h: with its server on a unix
 * socket, or on TCP at h's address at the first port of the range, from
 * port_first on, that is free (QEMU refuses one in use when it binds), with
 * TLS when h is reached over qemu+tls; *nbd_url then names it. Records the
 * error. */
static int backup_begin_server(struct hyper *h, virDomainPtr d, const char *vm_id,
                               const struct hyper_backup_disk *disks, size_t n,
                               const struct hyper_live_disk *live, size_t nlive,
                               const struct hyper_nbd_server *server, const char *from_checkpoint,
                               const char *cxml, char **nbd_url)
{
  bool tcp = !server->socket_path;
  AUTOFREE char *addr = tcp ? hyper_lv_uri_host(h->uri) : NULL;
  if (tcp && !addr)
    return error(ERR_INTERNAL, "cannot back up VM '%s' over TCP: host URI '%s' names no address", vm_id, h->uri);
  struct domxml_backup_server where = {.socket_path = server->socket_path, .address = addr,
                                       .tls = tcp && strncmp(h->uri, "qemu+tls:", 9) == 0};
  int span = tcp ? server->port_max - server->port_min + 1 : 1;
  int first = server->port_first >= server->port_min && server->port_first <= server->port_max
                  ? server->port_first : server->port_min;
  for (int i = 0; i < span; i++) {
    if (tcp) where.port = server->port_min + (first - server->port_min + i) % span;
    AUTOFREE char *bxml = domxml_backup(disks, n, live, nlive, &where, from_checkpoint);
    if (!bxml) return error_prefix("cannot back up VM '%s': ", vm_id);
    if (virDomainBackupBegin(d, bxml, cxml, 0) == 0) {
      if (tcp)
        *nbd_url = xasprintf("%s://%s%s%s:%d", where.tls ? "nbds" : "nbd", strchr(addr, ':') ? "[" : "", addr,
                             strchr(addr, ':') ? "]" : "", where.port);
      return 0;
    }
    if (!tcp || !strstr(virGetLastErrorMessage(), "Address already in use"))
      return virt_error("cannot start the backup of VM '%s'", vm_id);
    log_debug("NBD port %d on %s is in use; trying the next", where.port, addr);
    virResetLastError();
  }
  return error(ERR_CONFLICT, "cannot start the backup of VM '%s': no free TCP port in %d-%d on %s for "
               "its NBD server (--backup-nbd-ports)", vm_id, server->port_min, server->port_max, addr);
}

/* libvirt's checkpoint metadata is kept from one backup to the next: the
 * new checkpoint of a backup stays known to libvirt, so that the next
 * incremental backup from it needs no REDEFINE. libvirt validates every
 * checkpoint XML it is given against its schema, which includes the whole
 * domain schema: 20-40 ms of libvirtd's CPU on these machines, about a third
 * of a backup's start. libvirt 9 takes snapshots, block commits and
 * migrations of a domain with checkpoints (metadata only: the bitmaps are
 * in the volumes either way). Transient domains lose the metadata at every
 * start; then, or when libvirt's copy does not give the bitmap on each
 * incremental disk, the checkpoint is redefined, as vdsm does. Whatever
 * else libvirt knows of the domain's checkpoints is dropped (metadata only:
 * the engine holds the truth). Returns whether libvirt knows checkpoint keep
 * as the backup of disks needs it. */
static bool checkpoints_prune(virDomainPtr d, const char *keep, const struct hyper_backup_disk *disks, size_t n,
                              const struct hyper_live_disk *live, size_t nlive)
{
  virDomainCheckpointPtr *cps = NULL;
  int k = virDomainListAllCheckpoints(d, &cps, 0);
  if (k < 0) {
    virResetLastError();
    return false;
  }
  bool kept = false;
  for (int i = 0; i < k; i++) {
    const char *name = virDomainCheckpointGetName(cps[i]);
    bool usable = false;
    if (keep && name && strcmp(name, keep) == 0) {
      char *xml = virDomainCheckpointGetXMLDesc(cps[i], VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN);
      usable = xml && domxml_checkpoint_serves(xml, disks, n, live, nlive, keep);
      free(xml);
    }
    if (usable) kept = true;
    else checkpoint_drop(cps[i], name);
    virDomainCheckpointFree(cps[i]);
  }
  free(cps);
  virResetLastError();
  return kept;
}

static int backup_begin_live(struct hyper *h, virDomainPtr d, const char *vm_id,
                             const struct hyper_backup_disk *disks, size_t n,
                             const struct hyper_live_disk *live, size_t nlive,
                             const struct hyper_nbd_server *server, const char *from_checkpoint,
                             const char *new_checkpoint, bool quiesce, char **nbd_url)
{
  AUTOFREE char *cxml = domxml_checkpoint(disks, n, live, nlive, new_checkpoint, false, 0);
  if (!cxml) return error_prefix("cannot back up VM '%s': ", vm_id);
  if (!checkpoints_prune(d, from_checkpoint, disks, n, live, nlive) && from_checkpoint) {
    /* libvirt wants a creation time; the engine keeps the real one */
    AUTOFREE char *rxml = domxml_checkpoint(disks, n, live, nlive, from_checkpoint, true, (long long)time(NULL) - 1);
    if (!rxml) return error_prefix("cannot back up VM '%s': ", vm_id);
    AUTOPTR(virDomainCheckpoint) cp = virDomainCheckpointCreateXML(d, rxml, VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE);
    if (!cp) return virt_error("cannot tell libvirt of checkpoint '%s' of VM '%s'", from_checkpoint, vm_id);
  }
  bool frozen = false;
  if (quiesce) {
    if (virDomainFSFreeze(d, NULL, 0, 0) < 0) {
      if (from_checkpoint) checkpoint_forget(d, from_checkpoint);
      return virt_error("cannot back up VM '%s' consistently (the guest agent must freeze its file "
                        "systems)", vm_id);
    }
    frozen = true;
  }
  int rc = backup_begin_server(h, d, vm_id, disks, n, live, nlive, server, from_checkpoint, cxml, nbd_url);
  struct err_saved failed = {0};
  if (rc < 0) error_save(&failed);
  if (frozen && virDomainFSThaw(d, NULL, 0, 0) < 0)
    log_warn("cannot thaw the file systems of VM '%s': %s", vm_id, virGetLastErrorMessage());
  /* libvirt now knows the new checkpoint (kept for the next backup) */
  if (from_checkpoint) checkpoint_forget(d, from_checkpoint);
  virResetLastError();
  if (rc < 0) return error_restore(&failed);
  return 0;
}

int hyper_lv_backup_begin(struct hyper *h, const char *vm_id, const struct hyper_backup_disk *disks, size_t n,
                           const struct hyper_nbd_server *server, const char *from_checkpoint,
                           const char *new_checkpoint, bool quiesce, char **nbd_url)
{
  *nbd_url = NULL;
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  struct hyper_live_disk *live = NULL;
  size_t nlive = 0;
  if (hyper_lv_live_disks(d, vm_id, &live, &nlive) < 0) return -1;
  int rc = backup_begin_live(h, d, vm_id, disks, n, live, nlive, server, from_checkpoint, new_checkpoint,
                             quiesce, nbd_url);
  hyper_live_disks_free(live, nlive);
  return rc;
}

int hyper_lv_backup_end(struct hyper *h, const char *vm_id)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOPTR(virDomain) d = virDomainLookupByUUIDString(c, vm_id);
  if (!d) { virResetLastError(); return 0; }
  virDomainJobInfo info;
  if (virDomainGetJobInfo(d, &info) < 0 || info.type == VIR_DOMAIN_JOB_NONE) {
    virResetLastError();
    return 0;
  }
  if (virDomainAbortJob(d) < 0 && !hyper_lv_last_error_is(VIR_ERR_OPERATION_INVALID))
    return virt_error("cannot end the backup job of VM '%s'", vm_id);
  virResetLastError();
  /* libvirt tears the job down (NBD server, scratch nodes, files) after
   * answering: a snapshot or merge right after could find it still there.
   * That takes 40-80 ms here, on the path of every backup's finalize:
   * asked again every 2 ms for 200 ms (with a delay doubling from 2 ms, the
   * looks fell at 2, 6, 14, 30, 62 and 112 ms, and an end at 63 ms was seen
   * 49 ms late), then after twice as long each time up to 50 ms, for 10 s
   * in all */
  struct backoff wait;
  backoff_start(&wait, 2000, 50000, 200);
  for (;;) {
    if (virDomainGetJobInfo(d, &info) < 0 || info.type == VIR_DOMAIN_JOB_NONE) break;
    if (mono_ms() - wait.start_ms >= 10000) break;
    backoff_sleep(&wait);
  }
  virResetLastError();
  return 0;
}

/* A pull backup's job can end without the engine: `virsh domjobabort`, a
 * failed QEMU job, the domain stopping. libvirt then has no backup job for
 * the domain, and keeps the completed job's statistics (type cancelled or
 * failed, and its error message), read here without clearing them. */
int hyper_lv_backup_job_alive(struct hyper *h, const char *vm_id, char **why)
{
  *why = NULL;
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOPTR(virDomain) d = virDomainLookupByUUIDString(c, vm_id);
  if (!d && !hyper_lv_last_error_is(VIR_ERR_NO_DOMAIN))
    return virt_error("cannot look up VM '%s'", vm_id);
  if (!d || virDomainIsActive(d) == 0) {
    virResetLastError();
    *why = xstrdup("the VM stopped, and libvirt's backup job with it");
    return 0;
  }
  char *xml = virDomainBackupGetXMLDesc(d, 0);
  if (xml) {
    free(xml);
    return 1;
  }
  if (!hyper_lv_last_error_is(VIR_ERR_NO_DOMAIN_BACKUP))
    return virt_error("cannot read the backup job of VM '%s'", vm_id);
  virResetLastError();
  int type = VIR_DOMAIN_JOB_NONE, nparams = 0, op = 0;
  virTypedParameterPtr params = NULL;
  const char *msg = NULL;
  if (virDomainGetJobStats(d, &type, &params, &nparams,
                           VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) == 0 &&
      virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &op) == 1 &&
      op == VIR_DOMAIN_JOB_OPERATION_BACKUP) {
    if (virTypedParamsGetString(params, nparams, VIR_DOMAIN_JOB_ERRMSG, &msg) != 1) msg = NULL;
    *why = xasprintf("libvirt's backup job %s before finalize, without the engine%s%s",
                     type == VIR_DOMAIN_JOB_CANCELLED ? "was cancelled"
                     : type == VIR_DOMAIN_JOB_FAILED ? "failed" : "ended",
                     msg ? ": " : "", msg ? msg : "");
  }
  virTypedParamsFree(params, nparams);
  virResetLastError();
  if (!*why) *why = xstrdup("libvirt's backup job is no longer running");
  return 0;
}
