/* checkpoint.c: VM checkpoints and the persistent qcow2 bitmaps behind them.
 *
 * Model (as vdsm's): checkpoint C of a VM is a persistent dirty bitmap named
 * C in every layer of each incremental disk's chain, from the layer that
 * was active when C was made up to the top. The blocks changed since C are
 * the union of bitmap C over those layers. A backup makes its checkpoint by
 * adding the empty bitmap to its snapshot's new overlays before the VM
 * switches to them (snapshot.c), so nothing written after the snapshot is
 * missed.
 *
 * Keeping them right through chain changes:
 *   - live snapshot: libvirt 9.0 adds the recording bitmaps of the old top
 *     to the new overlay itself (tried: QEMU 7.2 stores the old top's
 *     bitmaps when it becomes read-only);
 *   - live merge (block commit, active or not): libvirt merges the top's
 *     bitmaps into the base (tried);
 *   - offline snapshot and restore: checkpoint_bitmaps_propagate();
 *   - offline merge (`qemu-img commit` keeps no bitmaps):
 *     checkpoint_bitmaps_merge();
 *   - restore to a snapshot older than a checkpoint: that checkpoint no
 *     longer describes the disks; it is invalidated with an event.
 * Wherever a bitmap cannot be kept, the VM's checkpoints are invalidated
 * explicitly with an event; a backup from an invalid checkpoint, or one
 * whose bitmap is missing or was not saved (a crash), falls back to a full
 * backup of that disk (backup.c), never to a failed or incomplete one. */
#include "cmd/internal.h"
#include "util/err.h"
#include "util/log.h"
#include <stdio.h>
#include <string.h>

/* true when NAME is a checkpoint of the VM that still counts (created or pending) */
static bool is_live_checkpoint(struct store *st, const char *vm_id, const char *name)
{
  int64_t n = checkpoint_count_usable(st, name, vm_id);
  error_clear();
  return n > 0;
}

/* marks the VM's checkpoints made at or after since_ms invalid, the pending
 * one of a running backup too unless keep_pending, with one event saying
 * msg */
static void invalidate_list(struct engine *eng, const char *vm_id, int64_t since_ms, bool keep_pending,
                            const char *msg)
{
  struct store *st = eng->st;
  AUTOLIST(checkpoint) l = checkpoint_list_valid_since(st, vm_id, since_ms);
  if (!l) { log_err("%s", error_message()); error_clear(); return; }
  struct buf ids = BUF_INIT;
  size_t n = 0;
  for (size_t i = 0; l[i]; i++) {
    if (keep_pending && l[i]->state == CHECKPOINT_PENDING) continue;
    l[i]->state = CHECKPOINT_INVALID;
    free(l[i]->message);
    l[i]->message = xstrdup(msg);
    if (checkpoint_update(st, l[i]) < 0) log_err("%s", error_message());
    buf_printf(&ids, "%s%s", n++ ? ", " : "", l[i]->id);
  }
  if (n == 0) { buf_free(&ids); return; }
  AUTOPTR(vm) vm = vm_get(st, vm_id);
  error_clear();
  engine_event(eng, SEVERITY_WARNING, EV_CHECKPOINT_INVALID, NULL, vm_id,
               "checkpoints %s of VM %s are invalid: %s; the next backup of its disks is full",
               buf_str(&ids), vm ? vm->name : vm_id, msg);
  buf_free(&ids);
}

void checkpoint_invalidate_since(struct engine *eng, const char *vm_id, int64_t since_ms,
                                 const char *why, const char *what)
{
  AUTOFREE char *msg = xasprintf("%s '%s'", why, what);
  invalidate_list(eng, vm_id, since_ms, false, msg);
}

void checkpoint_invalidate_lost(struct engine *eng, const struct checkpoint *cp, const char *why)
{
  AUTOFREE char *msg = xasprintf("the bitmap of checkpoint %s cannot be used (%s), so the chain "
                                 "from it is broken", cp->id, why);
  invalidate_list(eng, cp->vm_id, cp->creation_ms, true, msg);
}


/* the recorded error made a bitmap step fail: invalidate the VM's chain, saying
 * WHY and quoting the error, which is consumed */
static void invalidate_for_error(struct engine *eng, const char *vm_id, const char *why)
{
  AUTOFREE char *msg = xstrdup(error_message());
  error_clear();
  checkpoint_invalidate_since(eng, vm_id, 0, why, msg);
}

void checkpoint_bitmaps_propagate(struct engine *eng, const char *vm_id, const struct volume *base,
                                  const char *overlay_path)
{
  if (base->format != DISK_FORMAT_COW) return;
  struct volume_bitmap *b = NULL;
  size_t n = 0;
  if (volume_bitmaps(base->path, &b, &n) < 0) goto failed;
  for (size_t i = 0; i < n; i++) {
    if (!is_live_checkpoint(eng->st, vm_id, b[i].name)) continue;
    if (volume_bitmap_add(overlay_path, b[i].name) < 0) goto failed;
  }
  volume_bitmaps_free(b, n);
  return;
failed:
  volume_bitmaps_free(b, n);
  invalidate_for_error(eng, vm_id, "their bitmaps could not be carried to a new overlay");
}

/* true when bitmap NAME is in list b (n long) and was saved cleanly */
static bool bitmap_usable(const struct volume_bitmap *b, size_t n, const char *name, bool *present)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(b[i].name, name) == 0) {
      *present = true;
      return !b[i].in_use && !b[i].inconsistent;
    }
  *present = false;
  return false;
}

/* QEMU refuses to merge into or from a bitmap that a crash left in-use
 * (inconsistent), and such a bitmap must not stop the others. When either
 * side of checkpoint C is unusable, the base must not end up with a usable
 * C that lacks the top's changes: a usable base copy is removed, an
 * unusable one is left, so a backup from C sees it and falls back to full
 * (backup.c: bitmap_layers) with an event saying why. */
void checkpoint_bitmaps_merge(struct engine *eng, const char *vm_id, const char *top_path,
                              const char *base_path)
{
  struct volume_bitmap *b = NULL, *under = NULL;
  size_t n = 0, nu = 0;
  if (volume_bitmaps(top_path, &b, &n) < 0 || volume_bitmaps(base_path, &under, &nu) < 0) goto failed;
  for (size_t i = 0; i < n; i++) {
    if (!is_live_checkpoint(eng->st, vm_id, b[i].name)) continue;
    bool in_base = false;
    bool base_ok = bitmap_usable(under, nu, b[i].name, &in_base);
    if (b[i].in_use || b[i].inconsistent || (in_base && !base_ok)) {
      if (base_ok && volume_bitmap_remove(base_path, b[i].name) < 0) goto failed;
      log_warn("bitmap '%s' of '%s' or '%s' was not saved cleanly: not merged; a backup from that "
               "checkpoint is full", b[i].name, top_path, base_path);
      continue;
    }
    if (volume_bitmap_add(base_path, b[i].name) < 0 ||
        volume_bitmap_merge(base_path, b[i].name, top_path, b[i].name) < 0)
      goto failed;
  }
  volume_bitmaps_free(b, n);
  volume_bitmaps_free(under, nu);
  return;
failed:
  volume_bitmaps_free(b, n);
  volume_bitmaps_free(under, nu);
  invalidate_for_error(eng, vm_id, "their bitmaps could not be merged with a snapshot");
}

/* ---- DELETE /vms/{vm}/checkpoints/{c} ---- */

struct checkpoint_remove {
  const char *vm_id, *id;
  struct vm *vm;
  struct checkpoint *cp;
};

static int checkpoint_remove_validate(struct cmd_ctx *c)
{
  struct checkpoint_remove *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->vm = vm_get(st, a->vm_id))) return -1;
  if (!(a->cp = checkpoint_get(st, a->id)) || strcmp(a->cp->vm_id, a->vm_id) != 0 ||
      a->cp->state == CHECKPOINT_PENDING)
    return error(ERR_NOT_FOUND, "checkpoint '%s' of VM '%s' does not exist", a->id, a->vm->name);
  if (backup_check_vm(st, a->vm_id, "remove checkpoints of VM", a->vm->name) < 0) return -1;
  if (a->cp->parent_id)
    return error(ERR_CONFLICT, "cannot remove checkpoint '%s' of VM '%s': only the root of the "
                 "checkpoint chain (the oldest) can be removed; remove '%s' first", a->id, a->vm->name,
                 a->cp->parent_id);
  return 0;
}

/* the row goes; the bitmaps go from every volume of the VM's disks that no
 * VM has open (a running VM keeps them until a merge or the next offline
 * change drops bitmaps of unknown checkpoints) */
static int checkpoint_remove_execute(struct cmd_ctx *c)
{
  struct checkpoint_remove *a = c->data;
  struct store *st = c->eng->st;
  AUTOLIST(checkpoint_disk) disks = checkpoint_disk_list_by_checkpoint(st, a->id);
  AUTOLIST(checkpoint) kids = checkpoint_list_by_parent(st, a->id);
  if (!disks || !kids) return -1;
  if (store_begin(st) < 0) return -1;
  for (size_t i = 0; kids[i]; i++) {
    free(kids[i]->parent_id);
    kids[i]->parent_id = NULL;
    if (checkpoint_update(st, kids[i]) < 0) goto rollback;
  }
  for (size_t i = 0; disks[i]; i++)
    if (checkpoint_disk_delete(st, disks[i]->id) < 0) goto rollback;
  if (checkpoint_delete(st, a->id) < 0) goto rollback;
  if (store_commit(st) < 0) return -1;
  if (a->vm->status == VM_DOWN) {
    for (size_t i = 0; disks[i]; i++) {
      AUTOLIST(volume) vols = volume_list_cow_of_disk(st, disks[i]->disk_id);
      for (size_t j = 0; vols && vols[j]; j++)
        if (volume_bitmap_remove(vols[j]->path, a->id) < 0) {
          log_warn("%s", error_message());
          error_clear();
        }
    }
  }
  error_clear();
  return 0;
rollback:
  store_rollback(st);
  return -1;
}

static char *checkpoint_remove_describe(struct cmd_ctx *c, bool ok)
{
  struct checkpoint_remove *a = c->data;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("checkpoint '%s' of VM %s was removed by %s", a->id, name, c->user->name)
            : xasprintf("removing checkpoint '%s' of VM %s", a->id, name);
}

static const struct cmd_def checkpoint_remove_def = {
  "DeleteVmCheckpoint", EV_CHECKPOINT_REMOVED, checkpoint_remove_validate, checkpoint_remove_execute,
  NULL, checkpoint_remove_describe,
};

int cmd_checkpoint_remove(struct engine *eng, const struct user *u, const char *vm_id,
                          const char *checkpoint_id)
{
  struct checkpoint_remove a = {.vm_id = vm_id, .id = checkpoint_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id}, .data = &a};
  int rc = cmd_run(&checkpoint_remove_def, &c);
  vm_free(a.vm);
  checkpoint_free(a.cp);
  return rc;
}
