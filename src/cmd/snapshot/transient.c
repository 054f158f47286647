/* transient.c: the temporary overlays of disk-snapshot attachments.
 *
 * A disk snapshot attached to another VM (the backup appliance) is never
 * given to it directly: at every plug the host makes a fresh qcow2 overlay
 * on its own local storage (never on a storage domain) whose backing file
 * is the snapshot's volume, and the VM gets the overlay, read and write. On
 * the engine's own host that is STATE/transient/VM_ID/; on another host it
 * is REMOTE_ROOT/HOST_ID/transient/VM_ID-DISK_ID-RANDOM.qcow2, made and
 * deleted by that host's libvirt (hyper_ops local_volume_*), so the host id
 * in the path says where to delete it even after the VM left. The snapshot's volume is never written. The overlay goes at
 * unplug, detach and VM stop; a failed deletion is retried and reported as an
 * event; at start, overlays nobody owns are removed and reported. */
#include "cmd/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/uuid.h"
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *remote_transient_dir(const char *host_id)
{
  return xasprintf("%s/%s/transient", REMOTE_ROOT, host_id);
}

/* the host whose local storage holds overlay PATH: NULL for the engine's
 * own host (STATE/transient), else its id (caller frees) */
static char *overlay_host(const char *path)
{
  size_t n = strlen(REMOTE_ROOT "/");
  if (strncmp(path, REMOTE_ROOT "/", n) != 0 || strlen(path) < n + UUID_STRLEN) return NULL;
  return xasprintf("%.*s", UUID_STRLEN, path + n);
}

/* the volume that holds disk_id as it was in snapshot snap_id */
struct volume *snapshot_volume_of(struct store *st, const char *disk_id, const char *snap_id)
{
  AUTOLIST(volume) l = volume_list_unlocked_of_disk_snapshot(st, disk_id, snap_id);
  if (!l) return NULL;
  if (!l[0]) {
    error(ERR_NOT_FOUND, "snapshot '%s' has no volume of disk '%s': the disk was not part of it",
          snap_id, disk_id);
    return NULL;
  }
  struct volume *v = l[0];
  l[0] = NULL;
  return v;
}

int transient_overlay_create(struct engine *eng, const struct attachment *at, int64_t size,
                             char **out_path)
{
  AUTOPTR(volume) base = snapshot_volume_of(eng->st, at->disk_id, at->snapshot_id);
  if (!base) return -1;
  /* the VM's host was recorded before its disks are made (start, hot-plug) */
  AUTOPTR(vm) vm = vm_get(eng->st, at->vm_id);
  if (!vm) return -1;
  if (vm->host_id && strcmp(vm->host_id, eng->host_id) != 0) {
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
    if (!h) return -1;
    AUTOFREE char *rdir = remote_transient_dir(vm->host_id);
    AUTOFREE char *rnd = random_hex(6);
    if (!rnd) return -1;
    AUTOFREE char *name = xasprintf("%s-%s-%s.qcow2", at->vm_id, at->disk_id, rnd);
    if (ops->local_volume_create(h, rdir, name, size, base->path, base->format, out_path) < 0)
      return error_prefix("cannot create the transient overlay of snapshot '%s' of disk '%s': ",
                          at->snapshot_id, at->disk_id);
    return 0;
  }
  AUTOFREE char *dir = xasprintf("%s/transient/%s", eng->state_dir, at->vm_id);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return error(ERR_INTERNAL, "cannot create '%s': %s", dir, strerror(errno));
  AUTOFREE char *rnd = random_hex(6);
  if (!rnd) return -1;
  AUTOFREE char *path = xasprintf("%s/%s-%s.qcow2", dir, at->disk_id, rnd);
  if (volume_create(path, DISK_FORMAT_COW, size, base->path, base->format) < 0)
    return error_prefix("cannot create the transient overlay of snapshot '%s' of disk '%s': ",
                        at->snapshot_id, at->disk_id);
  *out_path = steal_pointer(&path);
  return 0;
}

void transient_overlay_remove(struct engine *eng, const char *vm_id, const char *path)
{
  AUTOFREE char *host_id = overlay_host(path);
  for (int attempt = 0; attempt < 3; attempt++) {
    if (!host_id && volume_remove(path) == 0) return;
    const struct hyper_ops *ops;
    struct hyper *h = host_id ? engine_hyper(eng, host_id, &ops) : NULL;
    if (h && ops->local_volume_delete(h, path) == 0) return;
    usleep(100000);
  }
  engine_event(eng, SEVERITY_ERROR, EV_COMMAND_FAILED, NULL, vm_id,
               "cannot delete transient overlay '%s' after 3 attempts: %s; it will be removed "
               "at the next engine start", path, error_message());
}

static bool overlay_owned(struct engine *eng, const char *path)
{
  int64_t owned = attachment_count_live_overlay(eng->st, path);
  error_clear();
  return owned != 0;
}

/* at start: an overlay is kept only when a plugged attachment of a running
 * VM names it; everything else under STATE/transient goes */
void transient_sweep(struct engine *eng)
{
  AUTOFREE char *root = xasprintf("%s/transient", eng->state_dir);
  engine_sweep_dir(eng, root, overlay_owned, "(a transient overlay no plugged disk snapshot owns)");
  /* the other hosts' local directories, through their libvirt; a host that
   * does not answer keeps its files until the next start */
  AUTOLIST(host) hosts = host_list_all(eng->st);
  for (size_t i = 0; hosts && hosts[i]; i++) {
    if (strcmp(hosts[i]->id, eng->host_id) == 0) continue;
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(eng, hosts[i]->id, &ops);
    AUTOSTRVEC struct strvec names = VEC_INIT;
    AUTOFREE char *dir = remote_transient_dir(hosts[i]->id);
    if (!h || ops->local_volume_list(h, dir, &names) < 0) { error_clear(); continue; }
    for (size_t k = 0; k < names.len; k++) {
      AUTOFREE char *path = xasprintf("%s/%s", dir, names.ptr[k]);
      if (overlay_owned(eng, path)) continue;
      if (ops->local_volume_delete(h, path) == 0)
        engine_event(eng, SEVERITY_WARNING, EV_ORPHAN_REMOVED, NULL, NULL,
                     "removed file '%s' on host %s (a transient overlay no plugged disk snapshot owns)", path,
                     hosts[i]->name);
    }
  }
  error_clear();
}

/* removes ROOT/X/Y files nobody owns, each reported as an event, then the
 * ROOT/X directories that became empty */
void engine_sweep_dir(struct engine *eng, const char *root,
                      bool (*owned)(struct engine *eng, const char *path), const char *why)
{
  DIR *d = opendir(root);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    AUTOFREE char *dir = xasprintf("%s/%s", root, de->d_name);
    DIR *dd = opendir(dir);
    if (!dd) continue;
    struct dirent *fe;
    while ((fe = readdir(dd))) {
      if (fe->d_name[0] == '.') continue;
      AUTOFREE char *path = xasprintf("%s/%s", dir, fe->d_name);
      if (owned(eng, path)) continue;
      if (volume_remove(path) == 0)
        engine_event(eng, SEVERITY_WARNING, EV_ORPHAN_REMOVED, NULL, NULL, "removed file '%s' %s",
                     path, why);
    }
    closedir(dd);
    rmdir(dir); /* only when empty */
  }
  closedir(d);
  error_clear();
}
