/* transient.c: the temporary overlays of disk-snapshot attachments.
 *
 * A disk snapshot attached to another VM (the backup appliance) is never
 * given to it directly: at every plug the host makes a fresh qcow2 overlay
 * in STATE/transient/VM_ID/ (host-local, never on a storage domain) whose
 * backing file is the snapshot's volume, and the VM gets the overlay, read
 * and write. The snapshot's volume is never written. The overlay goes at
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

/* the volume that holds disk_id as it was in snapshot snap_id */
struct volume *snapshot_volume_of(struct store *st, const char *disk_id, const char *snap_id)
{
  const char *params[] = {disk_id, snap_id};
  AUTOLIST(volume) l = volume_list(st, "disk_id = ? AND snapshot_id = ? AND status <> 'locked'",
                                   params, 2, NULL, 1);
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
  for (int attempt = 0; attempt < 3; attempt++) {
    if (volume_remove(path) == 0) return;
    usleep(100000);
  }
  engine_event(eng, SEVERITY_ERROR, EV_COMMAND_FAILED, NULL, vm_id,
               "cannot delete transient overlay '%s' after 3 attempts: %s; it will be removed "
               "at the next engine start", path, error_message());
}

static bool overlay_owned(struct engine *eng, const char *path)
{
  const char *params[] = {path};
  int64_t owned = attachment_count(eng->st,
      "overlay_path = ? AND plugged = 1 AND vm_id IN (SELECT id FROM vms WHERE status <> 'down')",
      params, 1);
  error_clear();
  return owned != 0;
}

/* at start: an overlay is kept only when a plugged attachment of a running
 * VM names it; everything else under STATE/transient goes */
void transient_sweep(struct engine *eng)
{
  AUTOFREE char *root = xasprintf("%s/transient", eng->state_dir);
  engine_sweep_dir(eng, root, overlay_owned, "(a transient overlay no plugged disk snapshot owns)");
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
