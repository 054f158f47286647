/* snapshot.c: VM snapshots as qcow2 volume chains.
 *
 * Model (as oVirt's): every disk is a chain of volumes. The top one is
 * writable and belongs to the VM's "active" snapshot. Taking snapshot S
 * freezes each disk's top volume (it now belongs to S) and puts a new qcow2
 * overlay above it. Removing S merges the child of S's volume into it (the
 * child's data is newer), gives the merged volume the child's place, and
 * deletes the child's file: every other state reads the same bytes.
 *
 * Crash safety: every operation first commits its intent (the snapshot row
 * locked with `operation`, new volume rows locked), then touches files and
 * libvirt, then commits the result. snapshot_recover() at start finishes or
 * undoes whatever a crash left locked, from what libvirt says runs.
 *
 * Removal (the merges) lives in remove.c; snapshot.h is what the two share. */
#include "cmd/internal.h"
#include "cmd/snapshot.h"
#include "repr/ovf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


struct snapshot *vm_active_snapshot(struct store *st, const char *vm_id)
{
  AUTOLIST(snapshot) l = snapshot_list_active_of_vm(st, vm_id);
  if (!l) return NULL;
  if (!l[0]) return error(ERR_INTERNAL, "VM '%s' has no active snapshot", vm_id), NULL;
  struct snapshot *s = l[0];
  l[0] = NULL;
  return s;
}

/* a snapshot operation already running on the VM answers 409 */
int no_snapshot_in_progress(struct store *st, const struct vm *vm)
{
  AUTOLIST(snapshot) busy = snapshot_list_locked_of_vm(st, vm->id);
  if (!busy) return -1;
  if (busy[0])
    return error(ERR_CONFLICT, "cannot change snapshots of VM '%s': snapshot '%s' is being %s; "
                 "wait until it has finished", vm->name,
                 busy[0]->description ? busy[0]->description : busy[0]->id,
                 busy[0]->operation && strncmp(busy[0]->operation, "remove", 6) == 0 ? "removed" : "created");
  return 0;
}

/* no snapshot of this VM's disks may be attached to another VM (Backup API) */
int no_snapshot_attached_elsewhere(struct store *st, const struct vm *vm, const char *what)
{
  AUTOLIST(attachment) used = attachment_list_snapshots_of_own_disks_elsewhere(st, vm->id);
  if (!used) return -1;
  if (!used[0]) return 0;
  struct buf b = BUF_INIT;
  for (size_t i = 0; used[i]; i++) {
    AUTOPTR(vm) agent = vm_get(st, used[i]->vm_id);
    AUTOPTR(disk) d = disk_get(st, used[i]->disk_id);
    error_clear();
    buf_printf(&b, "%sdisk '%s' snapshot '%s' attached to VM '%s'", i ? ", " : "",
               d ? d->alias : used[i]->disk_id, used[i]->snapshot_id,
               agent ? agent->name : used[i]->vm_id);
  }
  error(ERR_CONFLICT, "cannot %s VM '%s': the following VM's disks snapshots are attached to other "
        "VMs: %s; please detach them from those VMs and try again", what, vm->name, buf_str(&b));
  buf_free(&b);
  return -1;
}

/* ---- create ---- */

struct snap_create {
  const char *vm_id, *description;
  bool persist_memorystate;
  const char *const *disk_ids;
  struct vm *vm;
  char id[UUID_STRLEN + 1];       /* preset by a backup, else made by execute */
  struct user *user;             /* copy, for the background job's events */
  /* a backup's snapshot: its new overlays of bitmap_disks start the bitmap of
   * the backup's checkpoint; require_quiesce fails it when the guest cannot
   * freeze its file systems */
  char *bitmap;
  struct strvec bitmap_disks;
  bool require_quiesce;
};

/* the VM's own disks a snapshot covers: attachments without snapshot_id,
 * not shareable, optionally limited to disk_ids */
static struct attachment **snapshot_disks(struct store *st, const char *vm_id,
                                          const char *const *disk_ids)
{
  AUTOLIST(attachment) all = attachment_list_own_of_vm(st, vm_id);
  if (!all) return NULL;
  size_t n = 0, keep = 0;
  while (all[n]) n++;
  /* decide first and move after: a list with a hole would be freed only up to it */
  AUTOFREE bool *wanted = xcalloc(n + 1, sizeof *wanted);
  for (size_t i = 0; i < n; i++) {
    AUTOPTR(disk) d = disk_get(st, all[i]->disk_id);
    if (!d) return NULL;
    wanted[i] = !d->shareable;
    if (disk_ids) {
      wanted[i] = false;
      for (size_t j = 0; disk_ids[j]; j++) wanted[i] |= strcmp(disk_ids[j], d->id) == 0;
    }
  }
  struct attachment **out = xcalloc(n + 1, sizeof *out);
  for (size_t i = 0; i < n; i++) {
    if (wanted[i]) out[keep++] = all[i];
    else attachment_free(all[i]);
    all[i] = NULL;
  }
  return out;
}

static int snap_create_validate(struct cmd_ctx *c)
{
  struct snap_create *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->vm = vm_get(st, a->vm_id))) return -1;
  if (a->persist_memorystate)
    return error(ERR_INVALID, "cannot snapshot VM '%s' with its memory: memory snapshots are not "
                 "supported; set persist_memorystate to false", a->vm->name);
  if (a->vm->status != VM_UP && a->vm->status != VM_DOWN && a->vm->status != VM_PAUSED)
    return error(ERR_CONFLICT, "cannot snapshot VM '%s': it is %s; wait until it is up or down",
                 a->vm->name, vm_status_to_str(a->vm->status));
  if (no_snapshot_in_progress(st, a->vm) < 0) return -1;
  for (size_t i = 0; a->disk_ids && a->disk_ids[i]; i++) {
    AUTOPTR(attachment) at = attachment_get(st, a->vm_id, a->disk_ids[i]);
    if (!at) return error(ERR_NOT_FOUND, "cannot snapshot disk '%s': it is not attached to VM '%s'",
                          a->disk_ids[i], a->vm->name);
    if (at->snapshot_id)
      return error(ERR_INVALID, "cannot snapshot disk '%s' of VM '%s': it is a snapshot of another "
                   "VM's disk, attached for backup", a->disk_ids[i], a->vm->name);
  }
  AUTOLIST(attachment) atts = snapshot_disks(st, a->vm_id, a->disk_ids);
  if (!atts) return -1;
  for (size_t i = 0; atts[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, atts[i]->disk_id);
    AUTOPTR(volume) v = d ? disk_active_volume(st, d->id) : NULL;
    if (!v) return -1;
    if (d->status != DISK_OK || v->status != DISK_OK)
      return error(ERR_CONFLICT, "cannot snapshot VM '%s': disk '%s' is %s", a->vm->name, d->alias,
                   disk_status_to_str(d->status != DISK_OK ? d->status : v->status));
  }
  return 0;
}

/* records the intent: the snapshot (locked, operation create) and one locked
 * overlay row per disk, in one transaction */
static int snap_create_execute(struct cmd_ctx *c)
{
  struct snap_create *a = c->data;
  struct store *st = c->eng->st;
  if (!a->id[0] && uuid_generate_str(a->id) < 0) return -1;
  AUTOPTR(snapshot) active = vm_active_snapshot(st, a->vm_id);
  if (!active) return -1;
  AUTOFREE char *ovf = vm_ovf(c->eng, a->vm);
  AUTOLIST(attachment) atts = snapshot_disks(st, a->vm_id, a->disk_ids);
  if (!atts) return -1;
  struct snapshot s = {
    .id = a->id, .vm_id = a->vm->id, .description = (char *)(a->description ? a->description : ""),
    .type = SNAPSHOT_REGULAR, .status = SNAPSHOT_LOCKED, .date_ms = now_ms(), .ovf = ovf,
    .operation = (char *)"create",
  };
  if (store_begin(st) < 0) return -1;
  if (snapshot_insert(st, &s) < 0) goto rollback;
  for (size_t i = 0; atts[i]; i++) {
    AUTOPTR(volume) top = disk_active_volume(st, atts[i]->disk_id);
    AUTOPTR(disk) d = disk_get(st, atts[i]->disk_id);
    AUTOPTR(storage_domain) sd = d ? storage_domain_get(st, d->storage_domain_id) : NULL;
    if (!top || !sd) goto rollback;
    char nid[UUID_STRLEN + 1];
    if (uuid_generate_str(nid) < 0) goto rollback;
    AUTOFREE char *path = volume_path_for(sd, d->id, nid);
    /* the overlay row names the snapshot it is for until it takes over */
    struct volume nv = {.id = nid, .disk_id = d->id, .parent_id = top->id, .snapshot_id = a->id,
                        .format = DISK_FORMAT_COW, .status = DISK_LOCKED, .path = path, .active = false};
    if (volume_insert(st, &nv) < 0) goto rollback;
  }
  if (store_commit(st) < 0) return -1;
  c->keep_locks = true;
  return 0;
rollback:
  store_rollback(st);
  return -1;
}

static char *snap_create_describe(struct cmd_ctx *c, bool ok)
{
  struct snap_create *a = c->data;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("snapshot '%s' creation for VM %s was initiated by %s",
                        a->description ? a->description : "", name, c->user->name)
            : xasprintf("creating snapshot '%s' of VM %s", a->description ? a->description : "", name);
}

static const struct cmd_def snap_create_def = {
  "CreateSnapshot", EV_SNAPSHOT_CREATED, snap_create_validate, snap_create_execute, NULL,
  snap_create_describe,
};

/* the locked overlays of a snapshot being created, with their bases */
static struct volume **pending_overlays(struct store *st, const char *snap_id)
{
  return volume_list_locked_inactive_of_snapshot(st, snap_id);
}

/* the overlays take over: each base is frozen into the snapshot, each
 * overlay becomes the disk's active volume; one transaction */
static int snap_create_commit(struct store *st, const char *snap_id, const char *vm_id)
{
  AUTOPTR(snapshot) active = vm_active_snapshot(st, vm_id);
  if (!active) return -1;
  if (store_begin(st) < 0) return -1;
  AUTOLIST(volume) ovs = pending_overlays(st, snap_id);
  AUTOPTR(snapshot) s = ovs ? snapshot_get(st, snap_id) : NULL;
  if (!s) goto rollback;
  for (size_t i = 0; ovs[i]; i++) {
    AUTOPTR(volume) base = volume_get(st, ovs[i]->parent_id);
    if (!base) goto rollback;
    base->active = false;
    free(base->snapshot_id);
    base->snapshot_id = xstrdup(snap_id);
    ovs[i]->active = true;
    ovs[i]->status = DISK_OK;
    free(ovs[i]->snapshot_id);
    ovs[i]->snapshot_id = xstrdup(active->id);
    if (volume_update(st, base) < 0 || volume_update(st, ovs[i]) < 0) goto rollback;
  }
  s->status = SNAPSHOT_OK;
  free(s->operation);
  s->operation = NULL;
  if (snapshot_update(st, s) < 0) goto rollback;
  return store_commit(st);
rollback:
  store_rollback(st);
  return -1;
}

/* undoes a create that did not switch: overlay files and rows, the snapshot */
static void snap_create_undo(struct engine *eng, const char *snap_id)
{
  struct store *st = eng->st;
  AUTOLIST(volume) ovs = pending_overlays(st, snap_id);
  if (!ovs) { log_err("%s", error_message()); return; }
  for (size_t i = 0; ovs[i]; i++) volume_remove(ovs[i]->path);
  if (store_begin(st) < 0) { log_err("%s", error_message()); return; }
  for (size_t i = 0; ovs[i]; i++)
    if (volume_delete(st, ovs[i]->id) < 0) goto rollback;
  if (snapshot_delete(st, snap_id) < 0) goto rollback;
  if (store_commit(st) < 0) log_err("%s", error_message());
  return;
rollback:
  log_err("cannot undo snapshot '%s': %s", snap_id, error_message());
  store_rollback(st);
}

static bool listed(const struct strvec *ids, const char *id)
{
  for (size_t i = 0; i < ids->len; i++)
    if (strcmp(ids->ptr[i], id) == 0) return true;
  return false;
}

/* the job of a snapshot creation; 0, or -1 with the error recorded (and
 * reported as an event). Frees a. */
static int snap_create_run(struct engine *eng, struct snap_create *a)
{
  struct store *st = eng->st;
  const char *locks[] = {a->vm_id, NULL};
  bool switched = false, quiesced = false, running = false, ok = false;
  int64_t started = mono_ms();
  int rc = 0;
  struct err_saved failure = {0};
  AUTOLIST(volume) ovs = pending_overlays(st, a->id);
  AUTOPTR(vm) vm = vm_get(st, a->vm_id);
  if (!ovs || !vm) goto failed;
  size_t n = 0;
  while (ovs[n]) n++;
  running = vm->status != VM_DOWN;
  for (size_t i = 0; i < n; i++) {
    AUTOPTR(volume) base = volume_get(st, ovs[i]->parent_id);
    AUTOPTR(disk) d = base ? disk_get(st, base->disk_id) : NULL;
    if (!d) goto failed;
    if (volume_create(ovs[i]->path, DISK_FORMAT_COW, d->provisioned_size, base->path, base->format) < 0)
      goto failed;
    /* a running QEMU carries its bitmaps over to the overlay itself */
    if (!running) checkpoint_bitmaps_propagate(eng, a->vm_id, base, ovs[i]->path);
    if (a->bitmap && listed(&a->bitmap_disks, d->id) && volume_bitmap_add(ovs[i]->path, a->bitmap) < 0)
      goto failed;
  }
  if (running && n > 0) {
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
    if (!h) goto failed;
    struct hyper_snap_disk *sd = xcalloc(n, sizeof *sd);
    for (size_t i = 0; i < n; i++)
      sd[i] = (struct hyper_snap_disk){ovs[i]->disk_id, ovs[i]->path, DISK_FORMAT_COW};
    int hrc = ops->domain_snapshot(h, vm->id, sd, n, true, a->require_quiesce ? NULL : &quiesced);
    free(sd);
    if (hrc < 0) goto failed;
    if (a->require_quiesce) quiesced = true;
    switched = true;
  }
  for (int attempt = 0; snap_create_commit(st, a->id, a->vm_id) < 0; attempt++) {
    if (!switched || attempt == 5) goto failed;
    usleep(200000); /* the VM writes the overlays now: keep trying, recovery finishes it otherwise */
  }
  engine_event(eng, SEVERITY_NORMAL, EV_SNAPSHOT_CREATED, a->user, a->vm_id,
               "snapshot '%s' creation for VM %s has been completed%s", a->description, vm->name,
               !running ? "" : quiesced ? " (file systems frozen by the guest agent)"
                                        : " (crash-consistent: no guest agent froze the file systems)");
  ok = true;
  goto done;
failed:
  {
    rc = -1;
    error_save(&failure);
    if (!switched) snap_create_undo(eng, a->id);
    engine_event(eng, SEVERITY_ERROR, EV_SNAPSHOT_FAILED, a->user, a->vm_id,
                 "failed to create snapshot '%s' for VM %s: %s%s", a->description,
                 vm ? vm->name : a->vm_id, failure.msg ? failure.msg : "unknown error",
                 switched ? "; the VM runs on the new overlays and the engine will finish the "
                            "snapshot at its next start" : "; the VM is as before");
  }
done:
  engine_observe_operation("snapshot", "create", ok, started);
  engine_unlock(eng, locks);
  user_free(a->user);
  free((char *)a->description);
  free((char *)a->vm_id);
  vm_free(a->vm);
  free(a->bitmap);
  strvec_free(&a->bitmap_disks);
  free(a);
  if (rc < 0) return error_restore(&failure);
  return 0;
}

static void snap_create_job(struct engine *eng, void *arg)
{
  snap_create_run(eng, arg);
}

struct user *user_copy(const struct user *u)
{
  struct user *c = xcalloc(1, sizeof *c);
  c->id = xstrdup(u->id);
  c->name = xstrdup(u->name);
  return c;
}

/* runs the create command's checks and first step through the dispatcher;
 * on refusal frees A (the caller's disk_ids stay the caller's) */
static int snap_create_dispatch(struct engine *eng, const struct user *u, struct snap_create *a)
{
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = a->vm_id, .locks = {a->vm_id}, .data = a};
  if (cmd_run(&snap_create_def, &c) == 0) return 0;
  vm_free(a->vm);
  free((char *)a->vm_id);
  free((char *)a->description);
  free(a);
  return -1;
}

int cmd_snapshot_create(struct engine *eng, const struct user *u, const char *vm_id,
                        const char *description, bool persist_memorystate,
                        const char *const *disk_ids, char **out_id)
{
  struct snap_create *a = xcalloc(1, sizeof *a);
  a->vm_id = xstrdup(vm_id);
  a->description = xstrdup(description ? description : "");
  a->persist_memorystate = persist_memorystate;
  a->disk_ids = disk_ids;
  if (snap_create_dispatch(eng, u, a) < 0) return -1;
  if (out_id) *out_id = xstrdup(a->id);
  a->disk_ids = NULL;
  a->user = user_copy(u);
  engine_background(eng, snap_create_job, a);
  return 0;
}

int snapshot_create_for_backup(struct engine *eng, const struct user *u, const char *vm_id,
                               const char *snap_id, const char *description,
                               const char *const *disk_ids, const char *bitmap,
                               const char *const *bitmap_disks, bool require_quiesce)
{
  struct snap_create *a = xcalloc(1, sizeof *a);
  a->vm_id = xstrdup(vm_id);
  a->description = xstrdup(description);
  a->disk_ids = disk_ids;
  snprintf(a->id, sizeof a->id, "%s", snap_id);
  if (snap_create_dispatch(eng, u, a) < 0) return -1;
  a->disk_ids = NULL;
  a->user = user_copy(u);
  a->bitmap = xstrdup(bitmap);
  for (size_t i = 0; bitmap_disks && bitmap_disks[i]; i++) vec_push(&a->bitmap_disks, xstrdup(bitmap_disks[i]));
  a->require_quiesce = require_quiesce;
  return snap_create_run(eng, a);
}

/* ---- what restore shares with remove.c ---- */

int snapshot_of_vm(struct store *st, const struct vm *vm, const char *snap_id, struct snapshot **out)
{
  struct snapshot *s = snapshot_get(st, snap_id);
  if (!s) return -1;
  if (strcmp(s->vm_id, vm->id) != 0) {
    snapshot_free(s);
    return error(ERR_NOT_FOUND, "snapshot '%s' does not belong to VM '%s'", snap_id, vm->name);
  }
  *out = s;
  return 0;
}

/* the volumes a snapshot owns */
struct volume **snapshot_volumes(struct store *st, const char *snap_id)
{
  return volume_list_by_snapshot(st, snap_id);
}

/* ---- restore ---- */

static int snap_restore_validate(struct cmd_ctx *c)
{
  struct snap_remove *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->vm = vm_get(st, a->vm_id))) return -1;
  if (snapshot_of_vm(st, a->vm, a->snap_id, &a->snap) < 0) return -1;
  if (a->snap->type != SNAPSHOT_REGULAR || a->snap->status != SNAPSHOT_OK)
    return error(ERR_CONFLICT, "cannot restore snapshot '%s' of VM '%s': it is %s", a->snap->description,
                 a->vm->name, a->snap->type != SNAPSHOT_REGULAR ? "the active snapshot"
                                                                 : snapshot_status_to_str(a->snap->status));
  if (a->vm->status != VM_DOWN)
    return error(ERR_CONFLICT, "cannot restore snapshot '%s': VM '%s' is %s; stop it first",
                 a->snap->description, a->vm->name, vm_status_to_str(a->vm->status));
  if (no_snapshot_in_progress(st, a->vm) < 0) return -1;
  if (no_snapshot_attached_elsewhere(st, a->vm, "restore snapshots of") < 0) return -1;
  if (transfer_check_vm(st, a->vm->id, false, "restore snapshots of VM", a->vm->name) < 0) return -1;
  if (backup_check_vm(st, a->vm->id, "restore snapshots of VM", a->vm->name) < 0) return -1;
  AUTOLIST(volume) vols = snapshot_volumes(st, a->snap_id);
  if (!vols) return -1;
  for (size_t i = 0; vols[i]; i++)
    if (vols[i]->status != DISK_OK)
      return error(ERR_CONFLICT, "cannot restore snapshot '%s': its volume of disk '%s' is %s "
                   "after an interrupted removal", a->snap->description, vols[i]->disk_id,
                   disk_status_to_str(vols[i]->status));
  return 0;
}

/* for each disk: drop every volume above the snapshot's, put a fresh overlay
 * on it; snapshots newer than the restored one go (as oVirt's commit) */
static int snap_restore_execute(struct cmd_ctx *c)
{
  struct snap_remove *a = c->data;
  struct store *st = c->eng->st;
  AUTOPTR(snapshot) active = vm_active_snapshot(st, a->vm_id);
  AUTOLIST(volume) vols = snapshot_volumes(st, a->snap_id);
  if (!active || !vols) return -1;
  AUTOSTRVEC struct strvec doomed = VEC_INIT, created = VEC_INIT;
  AUTOLIST(snapshot) newer = NULL;
  /* the new overlays first, outside the transaction: qemu-img must not run
   * under the store lock. A crash before the commit leaves files no volume
   * names, which the orphan sweep removes at the next start. */
  AUTOSTRVEC struct strvec new_ids = VEC_INIT;
  for (size_t i = 0; vols[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, vols[i]->disk_id);
    AUTOPTR(storage_domain) sd = d ? storage_domain_get(st, d->storage_domain_id) : NULL;
    char nid[UUID_STRLEN + 1];
    if (!sd || uuid_generate_str(nid) < 0) goto undo_files;
    AUTOFREE char *path = volume_path_for(sd, d->id, nid);
    if (volume_create(path, DISK_FORMAT_COW, d->provisioned_size, vols[i]->path, vols[i]->format) < 0)
      goto undo_files;
    vec_push(&created, xstrdup(path));
    vec_push(&new_ids, xstrdup(nid));
    checkpoint_bitmaps_propagate(c->eng, a->vm_id, vols[i], path);
  }
  if (store_begin(st) < 0) goto undo_files;
  for (size_t i = 0; vols[i]; i++) {
    struct volume *v = vols[i];
    /* everything above v in its disk's chain */
    AUTOLIST(volume) chain = volume_list_by_disk(st, v->disk_id);
    if (!chain) goto rollback;
    const char *cur = v->id;
    for (bool found = true; found;) {
      found = false;
      for (size_t j = 0; chain[j]; j++) {
        if (!chain[j]->parent_id || strcmp(chain[j]->parent_id, cur) != 0) continue;
        vec_push(&doomed, xstrdup(chain[j]->path));
        if (volume_delete(st, chain[j]->id) < 0) goto rollback;
        cur = chain[j]->id;
        found = true;
        break;
      }
    }
    struct volume nv = {.id = new_ids.ptr[i], .disk_id = v->disk_id, .parent_id = v->id,
                        .snapshot_id = active->id, .format = DISK_FORMAT_COW, .status = DISK_OK,
                        .path = created.ptr[i], .active = true};
    if (volume_insert(st, &nv) < 0) goto rollback;
  }
  /* the VM's configuration comes back with its disks (as oVirt's restore):
   * memory, CPU topology, OS type and description from the snapshot's OVF */
  if (a->snap->ovf) {
    AUTOPTR(ovf_vm) conf = ovf_parse(a->snap->ovf, strlen(a->snap->ovf));
    AUTOPTR(vm) cur = conf ? vm_get(st, a->vm_id) : NULL;
    if (!cur) goto rollback;
    if (conf->memory > 0) cur->memory = conf->memory;
    if (conf->sockets > 0) cur->sockets = conf->sockets;
    if (conf->cores > 0) cur->cores = conf->cores;
    if (conf->threads > 0) cur->threads = conf->threads;
    if (conf->os_type) { free(cur->os_type); cur->os_type = xstrdup(conf->os_type); }
    free(cur->description);
    cur->description = xstrdup(conf->description ? conf->description : "");
    if (vm_update(st, cur) < 0) goto rollback;
  }
  /* snapshots newer than the restored one lost their volumes above */
  newer = snapshot_list_regular_since(st, a->vm_id, a->snap->date_ms, a->snap_id);
  if (!newer) goto rollback;
  for (size_t i = 0; newer[i]; i++)
    if (snapshot_delete(st, newer[i]->id) < 0) goto rollback;
  if (store_commit(st) < 0) goto undo_files;
  for (size_t i = 0; i < doomed.len; i++) volume_remove(doomed.ptr[i]);
  /* the disks went back to before every checkpoint taken since */
  checkpoint_invalidate_since(c->eng, a->vm_id, a->snap->date_ms, "the VM was restored to snapshot",
                              a->snap->description);
  return 0;
rollback:
  store_rollback(st);
undo_files:
  for (size_t i = 0; i < created.len; i++) volume_remove(created.ptr[i]);
  return -1;
}

static char *snap_restore_describe(struct cmd_ctx *c, bool ok)
{
  struct snap_remove *a = c->data;
  const char *d = a->snap ? a->snap->description : a->snap_id;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("VM %s was restored from snapshot '%s' by %s", name, d, c->user->name)
            : xasprintf("restoring VM %s from snapshot '%s'", name, d);
}

static const struct cmd_def snap_restore_def = {
  "RestoreAllSnapshots", EV_SNAPSHOT_RESTORED, snap_restore_validate, snap_restore_execute, NULL,
  snap_restore_describe,
};

int cmd_snapshot_restore(struct engine *eng, const struct user *u, const char *vm_id,
                         const char *snap_id)
{
  struct snap_remove *a = xcalloc(1, sizeof *a);
  a->vm_id = xstrdup(vm_id);
  a->snap_id = xstrdup(snap_id);
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {a->vm_id}, .data = a};
  int rc = cmd_run(&snap_restore_def, &c);
  snap_remove_free(a);
  return rc;
}

/* ---- recovery ---- */

static bool path_in(const struct hyper_live_disk *d, size_t n, const char *path)
{
  for (size_t i = 0; i < n; i++)
    if (d[i].source && strcmp(d[i].source, path) == 0) return true;
  return false;
}

void snapshot_recover(struct engine *eng)
{
  struct store *st = eng->st;
  AUTOLIST(snapshot) locked = snapshot_list_locked(st);
  if (!locked) { log_err("%s", error_message()); return; }
  for (size_t i = 0; locked[i]; i++) {
    struct snapshot *s = locked[i];
    AUTOPTR(vm) vm = vm_get(st, s->vm_id);
    if (!vm) { error_clear(); continue; }
    struct hyper_live_disk *live = NULL;
    size_t nlive = 0;
    if (vm->status != VM_DOWN) {
      const struct hyper_ops *ops;
      struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
      if (!h || ops->domain_disks(h, vm->id, &live, &nlive) < 0) {
        log_warn("cannot recover snapshot '%s' of VM '%s' now: %s", s->id, vm->name, error_message());
        continue;
      }
    }
    if (s->operation && strcmp(s->operation, "create") == 0) {
      AUTOLIST(volume) ovs = pending_overlays(st, s->id);
      bool switched = false, partly = false;
      /* libvirt finishes a snapshot call even when its client died: one
       * still in flight may switch the VM a moment from now. Look again
       * for a few seconds before believing it did not happen, and never
       * delete an overlay the VM runs on. */
      for (int look = 0; vm->status != VM_DOWN && ovs && ovs[0]; look++) {
        switched = true;
        partly = false;
        for (size_t j = 0; ovs[j]; j++) {
          bool in = path_in(live, nlive, ovs[j]->path);
          switched &= in;
          partly |= in;
        }
        if (switched || look == 6) break;
        sleep(1);
        const struct hyper_ops *ops;
        struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
        hyper_live_disks_free(live, nlive);
        live = NULL;
        nlive = 0;
        if (!h || ops->domain_disks(h, vm->id, &live, &nlive) < 0) { error_clear(); break; }
      }
      if (partly && !switched) {
        engine_event(eng, SEVERITY_ALERT, EV_SNAPSHOT_FAILED, NULL, vm->id,
                     "snapshot '%s' of VM %s was interrupted with only some disks on their new "
                     "overlays; it stays locked and nothing is deleted: check the VM's disks",
                     s->description, vm->name);
      } else if (switched && snap_create_commit(st, s->id, vm->id) == 0) {
        engine_event(eng, SEVERITY_WARNING, EV_SNAPSHOT_CREATED, NULL, vm->id,
                     "snapshot '%s' of VM %s was interrupted by an engine restart after the VM "
                     "switched to its overlays; it has been completed", s->description, vm->name);
      } else {
        snap_create_undo(eng, s->id);
        engine_event(eng, SEVERITY_WARNING, EV_SNAPSHOT_FAILED, NULL, vm->id,
                     "snapshot '%s' of VM %s was interrupted by an engine restart before the VM "
                     "switched to it; it has been rolled back", s->description, vm->name);
      }
    } else if (vm->status == VM_DOWN && s->operation && strcmp(s->operation, "remove-live") == 0) {
      /* a live merge was cut off and the VM stopped before the engine came
       * back: whether it had pivoted onto the base is unknown, so neither
       * volume can be trusted to be the newest. Nothing is guessed: the
       * disks are marked illegal (the VM will not start) until an
       * administrator checks them. */
      AUTOLIST(volume) vols = snapshot_volumes(st, s->id);
      for (size_t j = 0; vols && vols[j]; j++) {
        AUTOPTR(disk) d = disk_get(st, vols[j]->disk_id);
        vols[j]->status = DISK_ILLEGAL;
        if (volume_update(st, vols[j]) < 0) log_err("%s", error_message());
        if (d) {
          d->status = DISK_ILLEGAL;
          if (disk_update(st, d) < 0) log_err("%s", error_message());
        }
      }
      s->status = SNAPSHOT_OK;
      free(s->operation);
      s->operation = NULL;
      if (snapshot_update(st, s) < 0) log_err("%s", error_message());
      AUTOFREE char *job_id = snap_removal_job(eng, NULL, vm->id, vm->name, s->description, false);
      engine_job_finish(eng, job_id, false);
      engine_event(eng, SEVERITY_ALERT, EV_SNAPSHOT_REMOVE_FAILED, NULL, vm->id,
                   "the live removal of snapshot '%s' of VM %s was cut off by an engine crash and "
                   "the VM stopped before the engine restarted; its disks are marked illegal and the "
                   "VM will not start until an administrator has checked which volume holds the "
                   "newest data", s->description, vm->name);
    } else {
      /* an interrupted removal: merges are idempotent, so run it again */
      struct snap_remove *a = xcalloc(1, sizeof *a);
      a->vm_id = xstrdup(vm->id);
      a->snap_id = xstrdup(s->id);
      a->vm = vm_get(st, vm->id);
      a->snap = snapshot_get(st, s->id);
      const char *locks[] = {a->vm_id, NULL};
      if (locks_acquire(eng, locks, "RemoveSnapshot", NULL) < 0) {
        AUTOFREE char *job_id = snap_removal_job(eng, NULL, vm->id, vm->name, s->description, false);
        engine_job_finish(eng, job_id, false);
        snap_remove_free(a);
      } else {
        engine_event(eng, SEVERITY_WARNING, EV_SNAPSHOT_REMOVED, NULL, vm->id,
                     "removal of snapshot '%s' of VM %s was interrupted by an engine restart; "
                     "resuming it", s->description, vm->name);
        engine_background(eng, snap_remove_job, a);
      }
    }
    hyper_live_disks_free(live, nlive);
  }
  error_clear();
}

/* ---- orphans ---- */

static bool volume_named(struct engine *eng, const char *path)
{
  int64_t n = volume_count_by_path(eng->st, path);
  error_clear();
  return n != 0; /* a store error keeps the file */
}

/* volume files under each storage domain that no volume row names are left
 * from a crash between creating a file and recording it: remove them */
void engine_sweep_orphans(struct engine *eng)
{
  AUTOLIST(storage_domain) sds = storage_domain_list_all(eng->st);
  if (!sds) { log_err("%s", error_message()); return; }
  for (size_t i = 0; sds[i]; i++) {
    AUTOFREE char *images = xasprintf("%s/%s/images", sds[i]->path, sds[i]->id);
    engine_sweep_dir(eng, images, volume_named,
                     "that no disk references (left by an interrupted operation)");
  }
}
