/* disk.c: disk, storage domain, host and external event commands */
#include "cmd/internal.h"
#include "cmd/perm.h"
#include "cmd/cdrom.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct disk_args {
  const struct disk *in;
  const char *disk_id;
  char id[UUID_STRLEN + 1], vol_id[UUID_STRLEN + 1];
  struct disk *disk;
  struct storage_domain *sd;
  char *created_path;              /* add: file to delete on failure */
};

static void disk_args_clear(struct disk_args *a)
{
  disk_free(a->disk);
  storage_domain_free(a->sd);
  free(a->created_path);
}

int disk_rows_delete(struct store *st, const char *disk_id, struct strvec *files)
{
  AUTOLIST(volume) vols = volume_list_by_disk(st, disk_id);
  if (!vols) return -1;
  for (size_t i = 0; vols[i]; i++) {
    vec_push(files, xstrdup(vols[i]->path));
    if (volume_delete(st, vols[i]->id) < 0) return -1;
  }
  return disk_delete(st, disk_id);
}

int disks_remove(struct engine *eng, const struct user *u, const char *const *disk_ids,
                 int (*owner_delete)(struct store *st, const char *id), const char *owner_id)
{
  struct store *st = eng->st;
  AUTOSTRVEC struct strvec files = VEC_INIT;
  if (store_begin(st) < 0) return -1;
  for (size_t i = 0; disk_ids[i]; i++) {
    AUTOLIST(attachment) atts = attachment_list_by_disk(st, disk_ids[i]);
    if (!atts) goto rollback;
    for (size_t j = 0; atts[j]; j++)
      if (attachment_delete(st, atts[j]->vm_id, atts[j]->disk_id) < 0) goto rollback;
    if (disk_rows_delete(st, disk_ids[i], &files) < 0) goto rollback;
  }
  if (owner_delete && owner_delete(st, owner_id) < 0) goto rollback;
  if (store_commit(st) < 0) return -1;
  volume_files_remove(eng, u, &files);
  return 0;
rollback:
  store_rollback(st);
  return -1;
}

void volume_files_remove(struct engine *eng, const struct user *u, const struct strvec *files)
{
  for (size_t i = 0; i < files->len; i++) {
    if (volume_remove(files->ptr[i]) < 0) {
      engine_event(eng, SEVERITY_WARNING, EV_COMMAND_FAILED, u, NULL,
                   "cannot delete volume file '%s': %s; it will be removed at the next start",
                   files->ptr[i], error_message());
      continue;
    }
    /* the image directory goes when it is empty */
    AUTOFREE char *dir = xstrdup(files->ptr[i]);
    char *slash = strrchr(dir, '/');
    if (slash) { *slash = 0; rmdir(dir); }
  }
}

/* ---- add ---- */

static int disk_add_validate(struct cmd_ctx *c)
{
  struct disk_args *a = c->data;
  const struct disk *in = a->in;
  if (in->provisioned_size <= 0 || in->provisioned_size > ((int64_t)64 << 40))
    return error(ERR_INVALID, "invalid provisioned_size %lld: give bytes between 1 and 64 TiB",
                 (long long)in->provisioned_size);
  if (!in->alias || !in->alias[0] || strlen(in->alias) > 255)
    return error(ERR_INVALID, "invalid disk alias: use 1 to 255 characters");
  if (in->backup == DISK_BACKUP_INCREMENTAL && in->format != DISK_FORMAT_COW)
    return error(ERR_INVALID, "cannot create disk '%s' with backup=incremental: only format 'cow' "
                 "(qcow2) disks keep the bitmaps incremental backups need", in->alias);
  if (in->content_type == DISK_CONTENT_ISO && (in->format != DISK_FORMAT_RAW || in->shareable ||
                                                in->backup == DISK_BACKUP_INCREMENTAL))
    return error(ERR_INVALID, "cannot create ISO disk '%s': an ISO is format 'raw', not shareable, "
                 "without incremental backup", in->alias);
  a->sd = storage_domain_get(c->eng->st, in->storage_domain_id);
  if (!a->sd) return -1;
  if (in->format == DISK_FORMAT_RAW && in->sparse == false) {
    struct stat sb;
    if (stat(a->sd->path, &sb) < 0)
      return error(ERR_CONFLICT, "storage domain '%s' is not reachable at '%s': %s", a->sd->name,
                   a->sd->path, strerror(errno));
  }
  return 0;
}

static int disk_add_execute(struct cmd_ctx *c)
{
  struct disk_args *a = c->data;
  struct store *st = c->eng->st;
  if (uuid_generate_str(a->id) < 0 || uuid_generate_str(a->vol_id) < 0) return -1;
  a->created_path = volume_path_for(a->sd, a->id, a->vol_id);
  /* preallocated raw is what sparse=false asks for; qcow2 is always thin here */
  if (volume_create(a->created_path, a->in->format, a->in->provisioned_size, NULL, 0) < 0)
    return error_prefix("cannot create disk '%s': ", a->in->alias);
  if (a->in->format == DISK_FORMAT_RAW && !a->in->sparse &&
      volume_preallocate(a->created_path, a->in->provisioned_size) < 0)
    return error_prefix("cannot create disk '%s': ", a->in->alias);
  struct disk d = *a->in;
  d.id = a->id;
  d.status = DISK_OK;
  d.storage_domain_id = a->sd->id;
  struct volume v = {.id = a->vol_id, .disk_id = a->id, .format = a->in->format,
                     .status = DISK_OK, .path = a->created_path, .active = true};
  if (store_begin(st) < 0) return -1;
  if (disk_insert(st, &d) < 0 || volume_insert(st, &v) < 0) {
    store_rollback(st);
    return -1;
  }
  return store_commit(st);
}

static void disk_add_compensate(struct cmd_ctx *c)
{
  struct disk_args *a = c->data;
  if (a->created_path) volume_remove(a->created_path);
}

static char *disk_add_describe(struct cmd_ctx *c, bool ok)
{
  struct disk_args *a = c->data;
  return ok ? xasprintf("disk %s was added by %s", a->in->alias, c->user->name)
            : xasprintf("adding disk %s", a->in->alias ? a->in->alias : "");
}

static const struct cmd_def disk_add_def = {
  "AddDisk", EV_DISK_ADDED, disk_add_validate, disk_add_execute, disk_add_compensate, disk_add_describe,
};

int cmd_disk_add(struct engine *eng, const struct user *u, const struct disk *in, char **out_id)
{
  struct disk_args a = {.in = in};
  struct cmd_ctx c = {.eng = eng, .user = u, .data = &a,
                      .needs = {{PERMIT_CREATE_DISK, OBJ_STORAGE_DOMAIN, in->storage_domain_id}}};
  int rc = cmd_run(&disk_add_def, &c);
  if (rc == 0 && out_id) *out_id = xstrdup(a.id);
  disk_args_clear(&a);
  return rc;
}

/* ---- remove ---- */

static int disk_remove_validate(struct cmd_ctx *c)
{
  struct disk_args *a = c->data;
  struct store *st = c->eng->st;
  a->disk = disk_get(st, a->disk_id);
  if (!a->disk) return -1;
  AUTOLIST(attachment) atts = attachment_list_by_disk(st, a->disk_id);
  if (!atts) return -1;
  for (size_t i = 0; atts[i]; i++) {
    AUTOPTR(vm) vm = vm_get(st, atts[i]->vm_id);
    if (!vm) return -1;
    if (atts[i]->plugged)
      return error(ERR_CONFLICT, "cannot remove disk '%s': it is plugged into running VM '%s'; "
                   "unplug or detach it first", a->disk->alias, vm->name);
    if (atts[i]->snapshot_id)
      return error(ERR_CONFLICT, "cannot remove disk '%s': its snapshot '%s' is attached to VM "
                   "'%s'; detach it first", a->disk->alias, atts[i]->snapshot_id, vm->name);
  }
  if (transfer_check_disk(st, a->disk_id, "remove disk", a->disk->alias) < 0) return -1;
  if (a->disk->content_type == DISK_CONTENT_ISO && cdrom_check_unused(st, a->disk_id, a->disk->alias, "remove") < 0)
    return -1;
  if (a->disk->status == DISK_LOCKED)
    return error(ERR_CONFLICT, "cannot remove disk '%s': it is locked by another operation",
                 a->disk->alias);
  return 0;
}

static int disk_remove_execute(struct cmd_ctx *c)
{
  struct disk_args *a = c->data;
  const char *ids[] = {a->disk_id, NULL};
  return disks_remove(c->eng, c->user, ids, NULL, NULL);
}

static char *disk_remove_describe(struct cmd_ctx *c, bool ok)
{
  struct disk_args *a = c->data;
  const char *name = a->disk ? a->disk->alias : a->disk_id;
  return ok ? xasprintf("disk %s was removed by %s", name, c->user->name)
            : xasprintf("removing disk %s", name);
}

static const struct cmd_def disk_remove_def = {
  "RemoveDisk", EV_DISK_REMOVED, disk_remove_validate, disk_remove_execute, NULL, disk_remove_describe,
};

int cmd_disk_remove(struct engine *eng, const struct user *u, const char *disk_id)
{
  struct disk_args a = {.disk_id = disk_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {disk_id}, .data = &a};
  int rc = cmd_run(&disk_remove_def, &c);
  disk_args_clear(&a);
  return rc;
}

/* ---- storage domains ---- */

struct sd_args {
  const char *name, *path, *sd_id;
  char id[UUID_STRLEN + 1];
  struct storage_domain *sd;
  char *real_path;     /* add: path after realpath(), under an --allow-path root */
};

static int sd_add_validate(struct cmd_ctx *c)
{
  struct sd_args *a = c->data;
  if (!(a->real_path = host_path_resolve(c->eng, a->path, "storage path"))) return -1;
  a->path = a->real_path;
  struct stat sb;
  if (stat(a->path, &sb) < 0 || !S_ISDIR(sb.st_mode))
    return error(ERR_INVALID, "invalid storage path '%s': not an existing directory; create it first",
                 a->path);
  if (access(a->path, W_OK) < 0)
    return error(ERR_INVALID, "invalid storage path '%s': not writable", a->path);
  int64_t n = storage_domain_count_by_name(c->eng->st, a->name);
  if (n < 0) return -1;
  if (n) return error(ERR_CONFLICT, "a storage domain named '%s' already exists", a->name);
  return 0;
}

static int sd_add_execute(struct cmd_ctx *c)
{
  struct sd_args *a = c->data;
  if (uuid_generate_str(a->id) < 0) return -1;
  AUTOFREE char *images = xasprintf("%s/%s/images", a->path, a->id);
  AUTOFREE char *top = xasprintf("%s/%s", a->path, a->id);
  if ((mkdir(top, 0755) < 0 && errno != EEXIST) || (mkdir(images, 0755) < 0 && errno != EEXIST))
    return error(ERR_INTERNAL, "cannot create '%s': %s", images, strerror(errno));
  AUTOLIST(datacenter) dcs = datacenter_list_all(c->eng->st);
  if (!dcs) return -1;
  struct storage_domain sd = {.id = a->id, .name = (char *)a->name, .path = (char *)a->path,
                              .datacenter_id = dcs[0] ? dcs[0]->id : NULL, .type = (char *)"data"};
  return storage_domain_insert(c->eng->st, &sd);
}

static char *sd_add_describe(struct cmd_ctx *c, bool ok)
{
  struct sd_args *a = c->data;
  return ok ? xasprintf("storage domain %s was added by %s", a->name, c->user->name)
            : xasprintf("adding storage domain %s", a->name);
}

static const struct cmd_def sd_add_def = {
  "AddStorageDomain", EV_SD_ADDED, sd_add_validate, sd_add_execute, NULL, sd_add_describe,
};

int cmd_sd_add(struct engine *eng, const struct user *u, const char *name, const char *path, char **out_id)
{
  struct sd_args a = {.name = name, .path = path};
  AUTOFREE char *lock = xasprintf("sd-name:%s", name);
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {lock}, .data = &a};
  int rc = cmd_run(&sd_add_def, &c);
  free(a.real_path);
  if (rc == 0 && out_id) *out_id = xstrdup(a.id);
  return rc;
}

static int sd_remove_validate(struct cmd_ctx *c)
{
  struct sd_args *a = c->data;
  a->sd = storage_domain_get(c->eng->st, a->sd_id);
  if (!a->sd) return -1;
  int64_t n = disk_count_by_storage_domain(c->eng->st, a->sd_id);
  if (n < 0) return -1;
  if (n) return error(ERR_CONFLICT, "cannot remove storage domain '%s': it holds %lld disk(s); "
                      "remove or move them first", a->sd->name, (long long)n);
  return 0;
}

static int sd_remove_execute(struct cmd_ctx *c)
{
  struct sd_args *a = c->data;
  return storage_domain_delete(c->eng->st, a->sd_id);
}

static char *sd_remove_describe(struct cmd_ctx *c, bool ok)
{
  struct sd_args *a = c->data;
  const char *name = a->sd ? a->sd->name : a->sd_id;
  return ok ? xasprintf("storage domain %s was removed by %s", name, c->user->name)
            : xasprintf("removing storage domain %s", name);
}

static const struct cmd_def sd_remove_def = {
  "RemoveStorageDomain", 0, sd_remove_validate, sd_remove_execute, NULL, sd_remove_describe,
};

int cmd_sd_remove(struct engine *eng, const struct user *u, const char *sd_id)
{
  struct sd_args a = {.sd_id = sd_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {sd_id}, .data = &a};
  int rc = cmd_run(&sd_remove_def, &c);
  storage_domain_free(a.sd);
  return rc;
}

/* ---- hosts ---- */

struct host_args { const char *host_id; struct host *host; int target; };

static int host_deactivate_validate(struct cmd_ctx *c)
{
  struct host_args *a = c->data;
  a->host = host_get(c->eng->st, a->host_id);
  if (!a->host) return -1;
  if (a->target == HOST_UP) return 0;
  if (host_check_no_pinned(c->eng, a->host) < 0) return -1;
  int64_t running = vm_count_not_down_on_host(c->eng->st, a->host_id);
  if (running < 0) return -1;
  if (running)
    return error(ERR_CONFLICT, "cannot switch host '%s' to maintenance: %lld VM(s) run on it and "
                 "there is no other host to migrate them to; stop them first", a->host->name,
                 (long long)running);
  return 0;
}

static int host_status_execute(struct cmd_ctx *c)
{
  struct host_args *a = c->data;
  a->host->status = a->target;
  return host_update(c->eng->st, a->host);
}

static char *host_describe(struct cmd_ctx *c, bool ok)
{
  struct host_args *a = c->data;
  const char *name = a->host ? a->host->name : a->host_id;
  if (a->target == HOST_UP)
    return ok ? xasprintf("host %s was activated by %s", name, c->user->name)
              : xasprintf("activating host %s", name);
  return ok ? xasprintf("host %s was switched to maintenance by %s", name, c->user->name)
            : xasprintf("switching host %s to maintenance", name);
}

static const struct cmd_def host_deactivate_def = {
  "MaintenanceHost", EV_HOST_MAINTENANCE, host_deactivate_validate, host_status_execute, NULL, host_describe,
};
static const struct cmd_def host_activate_def = {
  "ActivateHost", EV_HOST_ACTIVATED, host_deactivate_validate, host_status_execute, NULL, host_describe,
};

static int host_set(const struct cmd_def *def, struct engine *eng, const struct user *u,
                    const char *host_id, int target)
{
  struct host_args a = {.host_id = host_id, .target = target};
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {host_id}, .data = &a};
  int rc = cmd_run(def, &c);
  host_free(a.host);
  return rc;
}

int cmd_host_deactivate(struct engine *eng, const struct user *u, const char *host_id)
{
  if (host_evacuate(eng, u, host_id) < 0) return -1;
  return host_set(&host_deactivate_def, eng, u, host_id, HOST_MAINTENANCE);
}

int cmd_host_activate(struct engine *eng, const struct user *u, const char *host_id)
{
  return host_set(&host_activate_def, eng, u, host_id, HOST_UP);
}

/* ---- external events ---- */

static int event_add_validate(struct cmd_ctx *c)
{
  struct event *ev = c->data;
  if (!ev->description || !ev->description[0])
    return error(ERR_INVALID, "missing 'description': an event needs a description");
  if (!ev->origin || !ev->origin[0])
    return error(ERR_INVALID, "missing 'origin': name the application that reports the event");
  if (ev->vm_id) {
    AUTOPTR(vm) vm = vm_get(c->eng->st, ev->vm_id);
    if (!vm) return -1;
  }
  return 0;
}

static int event_add_execute(struct cmd_ctx *c)
{
  struct event *ev = c->data;
  ev->time_ms = now_ms();
  ev->code = EV_EXTERNAL;
  ev->user_id = c->user->id;
  ev->user_name = c->user->name;
  return event_insert(c->eng->st, ev);
}

static const struct cmd_def event_add_def = {
  "AddExternalEvent", 0, event_add_validate, event_add_execute, NULL, NULL,
};

int cmd_event_add(struct engine *eng, const struct user *u, struct event *ev)
{
  struct cmd_ctx c = {.eng = eng, .user = u, .data = ev};
  c.needs[0] = ev->vm_id ? (struct cmd_need){PERMIT_INJECT_EXTERNAL_EVENTS, OBJ_VM, ev->vm_id}
                         : (struct cmd_need){PERMIT_INJECT_EXTERNAL_EVENTS, OBJ_SYSTEM, PERM_SYSTEM_ID};
  return cmd_run(&event_add_def, &c);
}

/* ---- update (rename, extend) and move ---- */

struct disk_update_args {
  const char *disk_id, *alias, *description, *sd_id;
  int64_t new_size;
  int backup;                   /* enum disk_backup, or -1: unchanged */
  struct disk *disk;
};

/* a disk whose snapshot is attached to another VM (Backup API) keeps its
 * size and place: the transient overlays there name its volumes */
static int no_snapshot_attached(struct store *st, const struct disk *d, const char *what)
{
  AUTOLIST(attachment) l = attachment_list_snapshots_of_disk(st, d->id);
  if (!l) return -1;
  if (!l[0]) return 0;
  AUTOPTR(vm) vm = vm_get(st, l[0]->vm_id);
  error_clear();
  return error(ERR_CONFLICT, "cannot %s disk '%s': its snapshot '%s' is attached to VM '%s'; "
               "detach it first", what, d->alias, l[0]->snapshot_id, vm ? vm->name : l[0]->vm_id);
}

/* a disk of a VM whose backup is running keeps its size and place */
static int disk_backup_check(struct store *st, const struct disk *d, const char *what)
{
  AUTOLIST(attachment) owners = attachment_list_own_of_disk(st, d->id);
  if (!owners) return -1;
  AUTOFREE char *verb = xasprintf("%s disk", what);
  for (size_t i = 0; owners[i]; i++)
    if (backup_check_vm(st, owners[i]->vm_id, verb, d->alias) < 0) return -1;
  return 0;
}

static int disk_update_validate(struct cmd_ctx *c)
{
  struct disk_update_args *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->disk = disk_get(st, a->disk_id))) return -1;
  if (a->alias && (!a->alias[0] || strlen(a->alias) > 255))
    return error(ERR_INVALID, "invalid disk alias: use 1 to 255 characters");
  if (a->backup == DISK_BACKUP_INCREMENTAL && a->disk->format != DISK_FORMAT_COW)
    return error(ERR_INVALID, "cannot set backup=incremental on disk '%s': it is format '%s'; only "
                 "format 'cow' (qcow2) disks keep the bitmaps incremental backups need",
                 a->disk->alias, disk_format_to_str(a->disk->format));
  if (a->new_size <= 0 || a->new_size == a->disk->provisioned_size) return 0;
  if (no_snapshot_attached(st, a->disk, "resize") < 0) return -1;
  if (disk_backup_check(st, a->disk, "resize") < 0) return -1;
  if (a->new_size < a->disk->provisioned_size)
    return error(ERR_INVALID, "cannot shrink disk '%s' from %lld to %lld bytes: disks only grow",
                 a->disk->alias, (long long)a->disk->provisioned_size, (long long)a->new_size);
  AUTOLIST(attachment) plugged = attachment_list_plugged_of_disk(st, a->disk_id);
  if (!plugged) return -1;
  if (plugged[0])
    return error(ERR_CONFLICT, "cannot resize disk '%s' while it is plugged into a running VM: "
                 "unplug it or stop the VM first", a->disk->alias);
  return 0;
}

static int disk_update_execute(struct cmd_ctx *c)
{
  struct disk_update_args *a = c->data;
  struct store *st = c->eng->st;
  if (a->alias) { free(a->disk->alias); a->disk->alias = xstrdup(a->alias); }
  if (a->description) { free(a->disk->description); a->disk->description = xstrdup(a->description); }
  if (a->backup >= 0) a->disk->backup = a->backup;
  if (a->new_size > a->disk->provisioned_size) {
    AUTOPTR(volume) top = disk_active_volume(st, a->disk_id);
    if (!top || volume_resize(top->path, top->format, a->new_size) < 0) return -1;
    a->disk->provisioned_size = a->new_size;
  }
  return disk_update(st, a->disk);
}

static char *disk_update_describe(struct cmd_ctx *c, bool ok)
{
  struct disk_update_args *a = c->data;
  const char *name = a->disk ? a->disk->alias : a->disk_id;
  return ok ? xasprintf("disk %s was updated by %s", name, c->user->name)
            : xasprintf("updating disk %s", name);
}

static const struct cmd_def disk_update_def = {
  "UpdateDisk", 0, disk_update_validate, disk_update_execute, NULL, disk_update_describe,
};

int cmd_disk_update(struct engine *eng, const struct user *u, const char *disk_id, const char *alias,
                    const char *description, int64_t new_size, int backup)
{
  struct disk_update_args a = {.disk_id = disk_id, .alias = alias, .description = description,
                               .new_size = new_size, .backup = backup};
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {disk_id}, .data = &a};
  int rc = cmd_run(&disk_update_def, &c);
  disk_free(a.disk);
  return rc;
}

static int disk_move_validate(struct cmd_ctx *c)
{
  struct disk_update_args *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->disk = disk_get(st, a->disk_id))) return -1;
  AUTOPTR(storage_domain) sd = storage_domain_get(st, a->sd_id);
  if (!sd) return -1;
  if (no_snapshot_attached(st, a->disk, "move") < 0) return -1;
  if (disk_backup_check(st, a->disk, "move") < 0) return -1;
  if (strcmp(sd->id, a->disk->storage_domain_id) == 0)
    return error(ERR_INVALID, "disk '%s' is already on storage domain '%s'", a->disk->alias, sd->name);
  return error(ERR_UNSUPPORTED, "cannot move disk '%s' to storage domain '%s': moving disks between "
               "storage domains is not implemented yet", a->disk->alias, sd->name);
}

static int disk_move_execute(struct cmd_ctx *c) { (void)c; return 0; }

static const struct cmd_def disk_move_def = {
  "MoveDisk", 0, disk_move_validate, disk_move_execute, NULL, NULL,
};

int cmd_disk_move(struct engine *eng, const struct user *u, const char *disk_id, const char *sd_id)
{
  struct disk_update_args a = {.disk_id = disk_id, .sd_id = sd_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {disk_id}, .data = &a};
  int rc = cmd_run(&disk_move_def, &c);
  disk_free(a.disk);
  return rc;
}
