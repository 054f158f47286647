/* scratch.c: where a backup's scratch files and libvirt's NBD socket live,
 * and their removal (see backup_scratch.h) */
#include "cmd/backup_scratch.h"
#include "cmd/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/uuid.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

char *backup_dir(struct engine *eng, const char *backup_id)
{
  return xasprintf("%s/backups/%s", eng->state_dir, backup_id);
}

bool backup_on_remote(struct engine *eng, const struct backup *b)
{
  return b->use_active && b->host_id && strcmp(b->host_id, eng->host_id) != 0;
}

char *remote_scratch_dir(const char *host_id)
{
  return xasprintf("%s/%s/scratch", REMOTE_ROOT, host_id);
}

/* a scratch file NAME belongs to a backup that has not ended */
static bool remote_scratch_owned(struct engine *eng, const char *name)
{
  if (strlen(name) <= UUID_STRLEN || name[UUID_STRLEN] != '-') return false;
  AUTOFREE char *id = xasprintf("%.*s", UUID_STRLEN, name);
  AUTOPTR(backup) b = backup_get(eng->st, id);
  error_clear();
  return b && b->phase != BACKUP_SUCCEEDED && b->phase != BACKUP_FAILED;
}

void remote_scratch_remove(struct engine *eng, const char *host_id, const char *backup_id)
{
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, host_id, &ops);
  AUTOFREE char *dir = remote_scratch_dir(host_id);
  AUTOSTRVEC struct strvec names = VEC_INIT;
  if (!h || ops->local_volume_list(h, dir, &names) < 0) {
    if (backup_id)
      log_warn("cannot remove the scratch files of backup '%s' on host '%s' now: %s; they go at the "
               "next engine start", backup_id, host_id, error_message());
    error_clear();
    return;
  }
  for (size_t k = 0; k < names.len; k++) {
    const char *name = names.ptr[k];
    if (backup_id ? strncmp(name, backup_id, strlen(backup_id)) != 0 || name[strlen(backup_id)] != '-'
                  : remote_scratch_owned(eng, name))
      continue;
    AUTOFREE char *path = xasprintf("%s/%s", dir, name);
    if (ops->local_volume_delete(h, path) < 0) {
      log_warn("cannot remove backup scratch file '%s' on host '%s': %s", path, host_id, error_message());
      error_clear();
      continue;
    }
    if (!backup_id) {
      AUTOPTR(host) row = host_get(eng->st, host_id);
      error_clear();
      engine_event(eng, SEVERITY_WARNING, EV_ORPHAN_REMOVED, NULL, NULL,
                   "removed file '%s' on host %s (a scratch file of a backup that has ended)", path,
                   row ? row->name : host_id);
    }
  }
}

void backup_scratch_remove(struct engine *eng, const char *backup_id)
{
  AUTOPTR(backup) b = backup_get(eng->st, backup_id);
  error_clear();
  if (b && backup_on_remote(eng, b)) remote_scratch_remove(eng, b->host_id, backup_id);
  if (b) {
    AUTOFREE char *tdir = xasprintf("%s/transient/%s", eng->state_dir, b->vm_id);
    AUTOFREE char *prefix = xasprintf("backup-%s-", backup_id);
    DIR *td = opendir(tdir);
    struct dirent *e;
    while (td && (e = readdir(td))) {
      if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
      AUTOFREE char *path = xasprintf("%s/%s", tdir, e->d_name);
      if (unlink(path) < 0 && errno != ENOENT)
        log_warn("cannot remove backup scratch file '%s': %s", path, strerror(errno));
    }
    if (td) closedir(td);
  }
  AUTOFREE char *dir = backup_dir(eng, backup_id);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    AUTOFREE char *path = xasprintf("%s/%s", dir, e->d_name);
    if (unlink(path) < 0) log_warn("cannot remove backup scratch file '%s': %s", path, strerror(errno));
  }
  closedir(d);
  if (rmdir(dir) < 0 && errno != ENOENT)
    log_warn("cannot remove backup scratch directory '%s': %s", dir, strerror(errno));
}

char *backup_socket(struct engine *eng, const char *backup_id)
{
  return xasprintf("%s/backups/%s/nbd.sock", eng->state_dir, backup_id);
}

char *backup_scratch_path(struct engine *eng, const char *vm_id, const char *backup_id, const char *disk_id)
{
  return xasprintf("%s/transient/%s/backup-%s-%s.qcow2", eng->state_dir, vm_id, backup_id, disk_id);
}
