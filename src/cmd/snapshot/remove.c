/* remove.c: removing a VM snapshot, by merging each of its volumes with
 * the child above it: with a block commit in QEMU while the VM runs (and
 * live_merge_settle when libvirt lost track of one), with qemu-img commit
 * while it is down. The intent is committed first (the snapshot locked with
 * operation "remove", "remove-live" once a live merge may pivot), each
 * merged volume in one transaction; snapshot_recover() (snapshot.c) resumes
 * or abandons what a crash interrupted. */
#include "cmd/internal.h"
#include "cmd/mergewatch.h"
#include "cmd/snapshot.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include <string.h>
#include <unistd.h>

#define MERGE_TIMEOUT_MS (30 * 60 * 1000)

void snap_remove_free(struct snap_remove *a)
{
  free(a->vm_id);
  free(a->snap_id);
  vm_free(a->vm);
  snapshot_free(a->snap);
  user_free(a->user);
  free(a);
}

static int snap_remove_validate(struct cmd_ctx *c)
{
  struct snap_remove *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->vm = vm_get(st, a->vm_id))) return -1;
  if (snapshot_of_vm(st, a->vm, a->snap_id, &a->snap) < 0) return -1;
  if (a->snap->type != SNAPSHOT_REGULAR)
    return error(ERR_CONFLICT, "cannot remove snapshot '%s' of VM '%s': the active snapshot is the "
                 "running state and cannot be removed", a->snap_id, a->vm->name);
  if (no_snapshot_in_progress(st, a->vm) < 0) return -1;
  if (no_snapshot_attached_elsewhere(st, a->vm, "remove snapshots of") < 0) return -1;
  if (transfer_check_vm(st, a->vm->id, false, "remove snapshots of VM", a->vm->name) < 0) return -1;
  if (!a->for_backup && backup_check_vm(st, a->vm->id, "remove snapshots of VM", a->vm->name) < 0)
    return -1;
  if (a->vm->status != VM_UP && a->vm->status != VM_DOWN && a->vm->status != VM_PAUSED)
    return error(ERR_CONFLICT, "cannot remove snapshot '%s': VM '%s' is %s; wait until it is up or down",
                 a->snap->description, a->vm->name, vm_status_to_str(a->vm->status));
  return 0;
}

static int snap_remove_execute(struct cmd_ctx *c)
{
  struct snap_remove *a = c->data;
  a->snap->status = SNAPSHOT_LOCKED;
  free(a->snap->operation);
  a->snap->operation = xstrdup("remove");
  if (snapshot_update(c->eng->st, a->snap) < 0) return -1;
  c->keep_locks = true;
  return 0;
}

static char *snap_remove_describe(struct cmd_ctx *c, bool ok)
{
  struct snap_remove *a = c->data;
  const char *d = a->snap ? a->snap->description : a->snap_id;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("snapshot '%s' deletion for VM %s was initiated by %s", d, name, c->user->name)
            : xasprintf("removing snapshot '%s' of VM %s", d, name);
}

static const struct cmd_def snap_remove_def = {
  "RemoveSnapshot", EV_SNAPSHOT_REMOVED, snap_remove_validate, snap_remove_execute, NULL,
  snap_remove_describe,
};

/* A live merge failed. When libvirtd went away mid-job (a restart), the
 * engine could neither follow nor cancel it, and QEMU went on without it:
 * the job may have finished (the child left the chain, a grandchild now
 * backs onto v), may still run, or may be pivoted. Trusting "the chain is
 * unchanged" then lets the store and the files drift apart, until a later
 * merge or restore deletes a file another still backs onto (the soak's
 * libvirtd restart found this). So: wait for the host (bounded), read the
 * live chain, and either take libvirt's part as done, or run the merge once
 * more when the host had gone (block_commit first cancels a job left
 * running, which leaves the chain as it was). 0 when the merge is done; -1
 * with the first error (or the retry's) otherwise. */
static int live_merge_settle(const struct hyper_ops *ops, struct hyper *h, const struct vm *vm,
                             const struct volume *v, const struct volume *child)
{
  struct err_saved first;
  error_save(&first);
  /* a host that answers at once did not go away: the merge failed on its
   * own (a timeout, QEMU's error), and only a finished chain is taken */
  bool answers = ops->ping(h) == 0, lost = !answers;
  for (int i = 0; i < 30 && !answers; i++) {
    sleep(1);
    answers = ops->ping(h) == 0;
  }
  AUTOSTRVEC struct strvec chain = VEC_INIT;
  if (!answers || hyper_disk_chain(ops, h, vm->id, v->disk_id, &chain) < 0)
    return error_restore(&first);
  bool child_in = false, base_in = false;
  for (size_t i = 0; i < chain.len; i++) {
    child_in |= strcmp(chain.ptr[i], child->path) == 0;
    base_in |= strcmp(chain.ptr[i], v->path) == 0;
  }
  if (!base_in) return error_restore(&first);
  if (!child_in) {
    log_warn("the merge of '%s' into '%s' finished in QEMU after the engine lost track of it",
             child->path, v->path);
    free(first.msg);
    error_clear();
    return 0;
  }
  if (!lost) return error_restore(&first);
  free(first.msg);
  error_clear();
  log_warn("retrying the merge of '%s' into '%s' once", child->path, v->path);
  return ops->block_commit(h, vm->id, v->disk_id, child->path, v->path, MERGE_TIMEOUT_MS);
}

/* merges one volume of the snapshot: its child goes into it, and it takes
 * the child's place (snapshot, active flag). Files and libvirt first, then
 * one transaction, then the child's file. */
static int merge_volume(struct engine *eng, const struct vm *vm, const struct volume *v)
{
  struct store *st = eng->st;
  AUTOLIST(volume) kids = volume_list_by_parent(st, v->id);
  if (!kids) return -1;
  if (!kids[0])
    return error(ERR_INTERNAL, "volume '%s' of snapshot '%s' has no child to merge", v->id, v->snapshot_id);
  struct volume *child = kids[0];
  AUTOLIST(volume) grand = volume_list_by_parent(st, child->id);
  if (!grand) return -1;
  AUTOPTR(attachment) at = attachment_get(st, vm->id, v->disk_id);
  error_clear();
  bool live = vm->status != VM_DOWN && at && at->plugged;
  if (live) {
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
    if (!h) return -1;
    /* a removal resumed after a crash may find libvirt's part done already:
     * the child left the chain and the base is still in it */
    AUTOSTRVEC struct strvec chain = VEC_INIT;
    if (hyper_disk_chain(ops, h, vm->id, v->disk_id, &chain) < 0) return -1;
    bool child_in = false, base_in = false;
    for (size_t i = 0; i < chain.len; i++) {
      child_in |= strcmp(chain.ptr[i], child->path) == 0;
      base_in |= strcmp(chain.ptr[i], v->path) == 0;
    }
    if (!base_in)
      return error(ERR_INTERNAL, "volume '%s' is not in the chain VM '%s' runs for disk '%s'",
                   v->path, vm->name, v->disk_id);
    if (child_in &&
        ops->block_commit(h, vm->id, v->disk_id, child->path, v->path, MERGE_TIMEOUT_MS) < 0 &&
        live_merge_settle(ops, h, vm, v, child) < 0)
      return -1;
  } else {
    if (volume_commit(child->path, child->format, v->path) < 0) return -1;
    /* qemu-img commit leaves bitmaps behind: the merged volume takes the child's */
    checkpoint_bitmaps_merge(eng, vm->id, child->path, v->path);
    for (size_t i = 0; grand[i]; i++)
      if (volume_rebase_unsafe(grand[i]->path, v->path, v->format) < 0) return -1;
  }
  if (store_begin(st) < 0) return -1;
  AUTOPTR(volume) merged = volume_get(st, v->id);
  if (!merged) goto rollback;
  free(merged->snapshot_id);
  merged->snapshot_id = xstrdup(child->snapshot_id);
  merged->active = child->active;
  merged->status = DISK_OK;
  if (volume_update(st, merged) < 0) goto rollback;
  for (size_t i = 0; grand[i]; i++) {
    free(grand[i]->parent_id);
    grand[i]->parent_id = xstrdup(v->id);
    if (volume_update(st, grand[i]) < 0) goto rollback;
  }
  if (volume_delete(st, child->id) < 0) goto rollback;
  if (store_commit(st) < 0) return -1;
  if (volume_remove(child->path) < 0)
    engine_event(eng, SEVERITY_WARNING, EV_SNAPSHOT_REMOVE_FAILED, NULL, vm->id,
                 "cannot delete merged volume file '%s': %s; it will be removed at the next start",
                 child->path, error_message());
  return 0;
rollback:
  store_rollback(st);
  return -1;
}

/* the job that follows the removal of snapshot SNAP_DESC of VM VM_NAME: the
 * one an engine that died mid-merge left started (a resumed removal carries
 * it on, an abandoned one ends it), else a new one when CREATE; NULL if none */
char *snap_removal_job(struct engine *eng, const struct user *u, const char *vm_id, const char *vm_name,
                       const char *snap_desc, bool create)
{
  AUTOFREE char *desc = xasprintf("Removing Snapshot '%s' of VM %s", snap_desc, vm_name);
  AUTOLIST(job) l = job_list_started_of_vm(eng->st, vm_id, desc);
  if (l && l[0]) return xstrdup(l[0]->id);
  error_clear();
  return create ? engine_job_start(eng, u, vm_id, desc) : NULL;
}

void snap_remove_job(struct engine *eng, void *arg)
{
  struct snap_remove *a = arg;
  struct store *st = eng->st;
  const char *locks[] = {a->vm_id, NULL};
  bool ok = false;
  int64_t started = mono_ms();
  /* oVirt's words for the job clients follow; its progress moves per merged volume */
  AUTOFREE char *job_id = snap_removal_job(eng, a->user, a->vm_id, a->vm ? a->vm->name : a->vm_id,
                                      a->snap ? a->snap->description : a->snap_id, true);
  size_t nvols = 0;
  AUTOLIST(volume) vols = snapshot_volumes(st, a->snap_id);
  if (!vols) goto failed;
  while (vols[nvols]) nvols++;
  {
    /* a live merge may pivot the VM onto the base: should the engine die
     * and the VM stop before it is back, only this mark tells recovery not
     * to merge a child that may be stale */
    AUTOPTR(vm) vm = vm_get(st, a->vm_id);
    AUTOPTR(snapshot) cur = vm ? snapshot_get(st, a->snap_id) : NULL;
    if (!cur) goto failed;
    if (vm->status != VM_DOWN) {
      free(cur->operation);
      cur->operation = xstrdup("remove-live");
      if (snapshot_update(st, cur) < 0) goto failed;
    }
  }
  for (size_t i = 0; vols[i]; i++) {
    AUTOPTR(vm) vm = vm_get(st, a->vm_id); /* fresh: the VM may have stopped meanwhile */
    if (!vm) goto failed;
    /* each volume's share of the job, moved along with a live merge's block job */
    int64_t from = (int64_t)(100 * i / (nvols + 1)), span = (int64_t)(100 / (nvols + 1));
    struct merge_watch *watch = vm->status != VM_DOWN && vm->host_id
                                    ? merge_watch_start(eng, job_id, vm->host_id, vm->id, vols[i]->disk_id, from, span)
                                    : NULL;
    int merged = merge_volume(eng, vm, vols[i]);
    merge_watch_stop(watch);
    if (merged < 0) {
      /* the chain still reads right, but this volume may hold part of its
       * child's data: it no longer is the snapshot's exact state */
      struct err_saved s;
      error_save(&s);
      vols[i]->status = DISK_ILLEGAL;
      if (volume_update(st, vols[i]) < 0) log_err("%s", error_message());
      error_restore(&s);
      goto failed;
    }
    engine_job_progress(eng, job_id, (int64_t)(100 * (i + 1) / (nvols + 1)));
  }
  if (snapshot_delete(st, a->snap_id) < 0) goto failed;
  engine_event(eng, SEVERITY_NORMAL, EV_SNAPSHOT_REMOVED, a->user, a->vm_id,
               "snapshot '%s' deletion for VM %s has been completed", a->snap->description,
               a->vm ? a->vm->name : a->vm_id);
  ok = true;
  goto done;
failed:
  {
    struct err_saved s;
    error_save(&s);
    AUTOPTR(snapshot) cur = snapshot_get(st, a->snap_id);
    if (cur) {
      cur->status = SNAPSHOT_OK;
      free(cur->operation);
      cur->operation = NULL;
      if (snapshot_update(st, cur) < 0) log_err("%s", error_message());
    }
    engine_event(eng, SEVERITY_ERROR, EV_SNAPSHOT_REMOVE_FAILED, a->user, a->vm_id,
                 "failed to remove snapshot '%s' of VM %s: %s; the disks stay usable and the "
                 "removal can be retried", a->snap ? a->snap->description : a->snap_id,
                 a->vm ? a->vm->name : a->vm_id, s.msg ? s.msg : "unknown error");
    free(s.msg);
  }
done:
  engine_job_finish(eng, job_id, ok);
  engine_observe_operation("snapshot", "remove", ok, started);
  engine_unlock(eng, locks);
  snap_remove_free(a);
}

int cmd_snapshot_remove(struct engine *eng, const struct user *u, const char *vm_id,
                        const char *snap_id)
{
  struct snap_remove *a = xcalloc(1, sizeof *a);
  a->vm_id = xstrdup(vm_id);
  a->snap_id = xstrdup(snap_id);
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {a->vm_id}, .data = a};
  if (cmd_run(&snap_remove_def, &c) < 0) {
    snap_remove_free(a);
    return -1;
  }
  a->user = user_copy(u);
  engine_background(eng, snap_remove_job, a);
  return 0;
}

int snapshot_remove_for_backup(struct engine *eng, const struct user *u, const char *vm_id,
                               const char *snap_id)
{
  struct snap_remove *a = xcalloc(1, sizeof *a);
  a->vm_id = xstrdup(vm_id);
  a->snap_id = xstrdup(snap_id);
  a->for_backup = true;
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {a->vm_id}, .data = a};
  if (cmd_run(&snap_remove_def, &c) < 0) {
    snap_remove_free(a);
    return -1;
  }
  a->user = user_copy(u);
  snap_remove_job(eng, a);
  AUTOPTR(snapshot) left = snapshot_get(eng->st, snap_id);
  if (!left) {
    error_clear();
    return 0;
  }
  return error(ERR_INTERNAL, "snapshot '%s' could not be removed: see the last event of the VM",
               left->description);
}
