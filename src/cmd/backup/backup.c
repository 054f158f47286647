/* backup.c: VM backups, oVirt's Backup API in its hybrid mode (4.5).
 *
 * A backup takes a snapshot of the VM (running or down), and clients read
 * each disk from the snapshot's frozen volume through an image transfer
 * naming the backup (transfer.c asks backup_transfer_source() here). No
 * scratch space is needed while the VM runs: it writes its new overlays.
 * Finalize removes (merges) the snapshot again.
 *
 * Each backup makes the VM's next checkpoint (checkpoint.c): the snapshot's
 * new overlays of the incremental disks start an empty persistent bitmap
 * named after it before the VM switches to them. An incremental backup from
 * checkpoint C exports, per disk, a scratch qcow2 overlay on the frozen
 * volume (STATE/backups/ID/, host-local) holding one bitmap: the union of
 * bitmap C over the chain's layers, so qemu-nbd serves it as the transfer's
 * dirty_context. A disk whose bitmap is missing, was not saved or whose
 * checkpoint is invalid falls back to full, with an event saying why.
 *
 * Phases: initializing (the rows) -> starting (the snapshot) -> ready ->
 * finalizing (snapshot removal) -> succeeded; failed from any of them, and
 * at finalize when what clients read was broken meanwhile (backup_broken:
 * libvirt's job ended without the engine, a transfer's NBD server died).
 * A bitmap found lost (at a backup, or at start for a down VM) invalidates
 * its checkpoint and every later one (checkpoint_invalidate_lost).
 *
 * Crash safety: the backup row, its snapshot id (chosen before the snapshot
 * is taken) and a pending checkpoint are committed first. At start
 * backup_recover() runs after snapshot and transfer recovery (which finish
 * or undo the snapshot operation and stop every qemu-nbd): each backup not
 * ended is failed, its scratch directory deleted, its snapshot removed in
 * the background and its pending checkpoint dropped, so the chain stays
 * what it was before the backup. */
#include "cmd/backup_bitmaps.h"
#include "cmd/backup_scratch.h"
#include "cmd/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* the backup of VM vm_id that has not ended, in *out (NULL when none; caller frees) */
static int running_backup(struct store *st, const char *vm_id, struct backup **out)
{
  AUTOLIST(backup) l = backup_list_running_of_vm(st, vm_id);
  if (!l) return -1;
  *out = steal_pointer(&l[0]);
  return 0;
}

int backup_check_vm(struct store *st, const char *vm_id, const char *what, const char *name)
{
  AUTOPTR(backup) b = NULL;
  if (running_backup(st, vm_id, &b) < 0) return -1;
  if (!b) return 0;
  return error(ERR_CONFLICT, "cannot %s '%s': backup '%s' of the VM is %s; finalize it and wait "
               "until it has ended", what, name, b->id, backup_phase_to_str(b->phase));
}

char *backup_transfer_note(struct store *st, const struct image_transfer *t)
{
  AUTOPTR(backup) b = NULL;
  if (!t->chosen_source || !t->vm_id || running_backup(st, t->vm_id, &b) < 0 || !b) {
    error_clear();
    return xstrdup("");
  }
  AUTOPTR(vm) vm = vm_get(st, t->vm_id);
  error_clear();
  return xasprintf(" (backup %s of VM %s)", b->id, vm ? vm->name : t->vm_id);
}

/* the phase (and failure message) of backup id, in one transaction; an
 * event names VM, backup and reason */
static int backup_set_phase(struct engine *eng, const struct user *u, const char *id, int phase,
                            const char *message)
{
  struct store *st = eng->st;
  if (store_begin(st) < 0) return -1;
  AUTOPTR(backup) b = backup_get(st, id);
  if (!b) { store_rollback(st); return -1; }
  b->phase = phase;
  b->modification_ms = now_ms();
  if (message) { free(b->message); b->message = xstrdup(message); }
  if (backup_update(st, b) < 0) { store_rollback(st); return -1; }
  if (store_commit(st) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(st, b->vm_id);
  error_clear();
  const char *name = vm ? vm->name : b->vm_id;
  if (phase == BACKUP_FAILED)
    engine_event(eng, SEVERITY_ERROR, EV_BACKUP_FAILED, u, b->vm_id, "backup %s of VM %s failed: %s",
                 id, name, message ? message : "unknown error");
  else
    engine_event(eng, SEVERITY_NORMAL, phase == BACKUP_READY ? EV_BACKUP_READY
                 : phase == BACKUP_SUCCEEDED ? EV_BACKUP_SUCCEEDED : EV_BACKUP_STARTED, u, b->vm_id,
                 "backup %s of VM %s is %s%s%s", id, name, backup_phase_to_str(phase),
                 message ? ": " : "", message ? message : "");
  return 0;
}

/* ---- start ---- */

struct backup_start {
  const struct backup_spec *spec;
  struct vm *vm;
  struct checkpoint *from;
  char id[UUID_STRLEN + 1];
  char cp_id[UUID_STRLEN + 1];
  char snap_id[UUID_STRLEN + 1];
  struct user *user;
};

static int backup_start_validate(struct cmd_ctx *c)
{
  struct backup_start *a = c->data;
  const struct backup_spec *s = a->spec;
  struct store *st = c->eng->st;
  if (!(a->vm = vm_get(st, s->vm_id))) return -1;
  if (a->vm->status != VM_UP && a->vm->status != VM_DOWN && a->vm->status != VM_PAUSED)
    return error(ERR_CONFLICT, "cannot back up VM '%s': it is %s; wait until it is up or down",
                 a->vm->name, vm_status_to_str(a->vm->status));
  if (s->id) {
    if (!uuid_is_valid(s->id))
      return error(ERR_INVALID, "invalid backup id '%s': give a UUID", s->id);
    AUTOPTR(backup) dup = backup_get(st, s->id);
    if (dup) return error(ERR_CONFLICT, "backup '%s' exists already", s->id);
    error_clear();
  }
  if (backup_check_vm(st, a->vm->id, "back up VM", a->vm->name) < 0) return -1;
  if (!s->disk_ids || !s->disk_ids[0])
    return error(ERR_INVALID, "cannot back up VM '%s': name its disks in <disks><disk id=\"...\"/></disks>",
                 a->vm->name);
  for (size_t i = 0; s->disk_ids[i]; i++) {
    AUTOPTR(attachment) at = attachment_get(st, a->vm->id, s->disk_ids[i]);
    if (!at) return error(ERR_NOT_FOUND, "cannot back up disk '%s': it is not attached to VM '%s'",
                          s->disk_ids[i], a->vm->name);
    if (at->snapshot_id)
      return error(ERR_INVALID, "cannot back up disk '%s' with VM '%s': it is a snapshot of another "
                   "VM's disk, attached for backup", s->disk_ids[i], a->vm->name);
    AUTOPTR(disk) d = disk_get(st, s->disk_ids[i]);
    if (!d) return -1;
    if (d->shareable)
      return error(ERR_INVALID, "cannot back up disk '%s' with VM '%s': it is shareable, and a "
                   "snapshot cannot freeze it", d->alias, a->vm->name);
    if (d->status != DISK_OK)
      return error(ERR_CONFLICT, "cannot back up disk '%s': it is %s", d->alias,
                   disk_status_to_str(d->status));
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->disk_ids[i], s->disk_ids[j]) == 0)
        return error(ERR_INVALID, "disk '%s' is listed twice in the backup", d->alias);
  }
  if (s->from_checkpoint_id) {
    a->from = checkpoint_get(st, s->from_checkpoint_id);
    if (!a->from || strcmp(a->from->vm_id, a->vm->id) != 0 || a->from->state == CHECKPOINT_PENDING)
      return error(ERR_NOT_FOUND, "cannot back up VM '%s' from checkpoint '%s': the VM has no such "
                   "checkpoint", a->vm->name, s->from_checkpoint_id);
  }
  return 0;
}

/* the intent, in one transaction: the backup (initializing, its snapshot id
 * chosen), its disks, and the pending checkpoint it will make */
static int backup_start_execute(struct cmd_ctx *c)
{
  struct backup_start *a = c->data;
  const struct backup_spec *s = a->spec;
  struct store *st = c->eng->st;
  if (s->id) snprintf(a->id, sizeof a->id, "%s", s->id);
  else if (uuid_generate_str(a->id) < 0) return -1;
  if (uuid_generate_str(a->cp_id) < 0 || uuid_generate_str(a->snap_id) < 0) return -1;
  AUTOLIST(checkpoint) leaf = checkpoint_list_leaf_of_vm(st, a->vm->id);
  if (!leaf) return -1;
  int64_t now = now_ms();
  struct backup b = {
    .id = a->id, .vm_id = a->vm->id, .description = (char *)s->description,
    .phase = BACKUP_INITIALIZING, .from_checkpoint_id = (char *)s->from_checkpoint_id,
    .to_checkpoint_id = a->cp_id, .snapshot_id = a->snap_id, .host_id = c->eng->host_id,
    .require_consistency = s->require_consistency, .creation_ms = now, .modification_ms = now,
    .user_id = c->user->id,
    /* a VM that is down has no active layer in use: it is backed up from a snapshot */
    .use_active = s->use_active && a->vm->status != VM_DOWN,
  };
  if (b.use_active) b.snapshot_id = NULL;
  /* libvirt's backup job runs where the VM runs */
  if (b.use_active && a->vm->host_id) b.host_id = a->vm->host_id;
  struct checkpoint cp = {.id = a->cp_id, .vm_id = a->vm->id, .parent_id = leaf[0] ? leaf[0]->id : NULL,
                          .state = CHECKPOINT_PENDING, .creation_ms = now, .backup_id = a->id};
  if (store_begin(st) < 0) return -1;
  if (backup_insert(st, &b) < 0 || checkpoint_insert(st, &cp) < 0) goto rollback;
  for (size_t i = 0; s->disk_ids[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, s->disk_ids[i]);
    if (!d) goto rollback;
    AUTOFREE char *bdid = xasprintf("%s/%s", a->id, d->id);
    struct backup_disk bd = {.id = bdid, .backup_id = a->id, .disk_id = d->id,
                             .mode = s->from_checkpoint_id ? BACKUP_MODE_INCREMENTAL : BACKUP_MODE_FULL};
    if (backup_disk_insert(st, &bd) < 0) goto rollback;
    if (d->backup == DISK_BACKUP_INCREMENTAL && d->format == DISK_FORMAT_COW) {
      AUTOFREE char *cdid = xasprintf("%s/%s", a->cp_id, d->id);
      struct checkpoint_disk cd = {.id = cdid, .checkpoint_id = a->cp_id, .disk_id = d->id};
      if (checkpoint_disk_insert(st, &cd) < 0) goto rollback;
    }
  }
  if (store_commit(st) < 0) return -1;
  return 0;
rollback:
  store_rollback(st);
  return -1;
}

static char *backup_start_describe(struct cmd_ctx *c, bool ok)
{
  struct backup_start *a = c->data;
  const char *name = a->vm ? a->vm->name : a->spec->vm_id;
  const char *kind = a->spec->from_checkpoint_id ? "incremental" : "full";
  return ok ? xasprintf("%s backup %s of VM %s was initiated by %s", kind, a->id, name, c->user->name)
            : xasprintf("starting a %s backup of VM %s", kind, name);
}

static const struct cmd_def backup_start_def = {
  "StartVmBackup", EV_BACKUP_STARTED, backup_start_validate, backup_start_execute, NULL,
  backup_start_describe,
};

/* the first port of the range no other running backup's NBD server on
 * host host_id holds (libvirt tries the next ones when it is taken) */
static int nbd_port_hint(struct engine *eng, const char *host_id)
{
  AUTOLIST(backup) l = backup_list_running(eng->st);
  if (!l) { error_clear(); return eng->nbd_port_min; }
  for (int p = eng->nbd_port_min; p <= eng->nbd_port_max; p++) {
    bool used = false;
    for (size_t i = 0; l[i] && !used; i++) {
      AUTOFREE char *addr = NULL;
      int port = 0;
      if (!l[i]->nbd_server || !l[i]->host_id || strcmp(l[i]->host_id, host_id) != 0) continue;
      if (nbd_server_split(l[i]->nbd_server, &addr, &port) < 0) error_clear();
      used = port == p;
    }
    if (!used) return p;
  }
  return eng->nbd_port_min;
}

/* records modes, volumes and fallback events of a backup's disks, and
 * where libvirt's NBD server listens when it is on TCP (nbd_server) */
static int backup_disks_record(struct engine *eng, struct backup_start *a, const struct vm *vm,
                               struct backup_disk **bds, struct checkpoint_disk **cds, char **why,
                               const char *nbd_server)
{
  struct store *st = eng->st;
  if (store_begin(st) < 0) return -1;
  if (nbd_server) {
    AUTOPTR(backup) b = backup_get(st, a->id);
    if (!b) goto rollback;
    free(b->nbd_server);
    b->nbd_server = xstrdup(nbd_server);
    if (backup_update(st, b) < 0) goto rollback;
  }
  for (size_t i = 0; bds[i]; i++)
    if (backup_disk_update(st, bds[i]) < 0) goto rollback;
  for (size_t i = 0; cds[i]; i++) {
    AUTOPTR(volume) top = disk_active_volume(st, cds[i]->disk_id);
    if (!top) goto rollback;
    free(cds[i]->volume_id);
    cds[i]->volume_id = xstrdup(top->id);
    if (checkpoint_disk_update(st, cds[i]) < 0) goto rollback;
  }
  if (store_commit(st) < 0) return -1;
  for (size_t i = 0; bds[i]; i++) {
    if (!why[i]) continue;
    AUTOPTR(disk) d = disk_get(st, bds[i]->disk_id);
    error_clear();
    engine_event(eng, SEVERITY_WARNING, EV_BACKUP_FALLBACK, a->user, vm->id,
                 "backup %s of VM %s: disk %s is backed up in full instead of incrementally: %s",
                 a->id, vm->name, d ? d->alias : bds[i]->disk_id, why[i]);
  }
  return 0;
rollback:
  store_rollback(st);
  return -1;
}

/* starting -> ready for use_active: libvirt's pull backup of the running
 * VM's active layers; a bitmap libvirt cannot use makes every incremental
 * disk fall back to full (libvirt names no disk) */
static int backup_take_active(struct engine *eng, struct backup_start *a, const struct backup *b,
                              struct backup_disk **bds, struct checkpoint_disk **cds)
{
  struct store *st = eng->st;
  AUTOPTR(vm) vm = vm_get(st, b->vm_id);
  if (!vm) return -1;
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, b->host_id, &ops);
  if (!h) return -1;
  AUTOPTR(checkpoint) from = b->from_checkpoint_id ? checkpoint_get(st, b->from_checkpoint_id) : NULL;
  error_clear();
  size_t n = 0;
  while (bds[n]) n++;
  AUTOFREE char **why = xcalloc(n + 1, sizeof *why);
  AUTOFREE struct hyper_backup_disk *hd = xcalloc(n ? n : 1, sizeof *hd);
  AUTOSTRVEC struct strvec scratch = VEC_INIT;
  struct hyper_nbd_server server = {0};
  AUTOFREE char *sock = NULL, *rdir = NULL;
  bool remote = backup_on_remote(eng, b);
  if (remote) {
    /* the VM's host: scratch files in its local storage, the NBD server on its address */
    rdir = remote_scratch_dir(b->host_id);
    if (ops->local_dir_make(h, rdir) < 0)
      return error_prefix("cannot make the backup's scratch directory on the VM's host: ");
    server = (struct hyper_nbd_server){.port_min = eng->nbd_port_min, .port_max = eng->nbd_port_max,
                                       .port_first = nbd_port_hint(eng, b->host_id)};
  } else {
    AUTOFREE char *dir = backup_dir(eng, a->id);
    AUTOFREE char *tdir = xasprintf("%s/transient/%s", eng->state_dir, vm->id);
    AUTOFREE char *top = xasprintf("%s/backups", eng->state_dir);
    if ((mkdir(top, 0700) < 0 && errno != EEXIST) || (mkdir(dir, 0700) < 0 && errno != EEXIST) ||
        (mkdir(tdir, 0700) < 0 && errno != EEXIST))
      return error(ERR_INTERNAL, "cannot create the backup's directories: %s", strerror(errno));
    sock = backup_socket(eng, a->id);
    if (strlen(sock) >= 108)
      return error(ERR_INTERNAL, "the NBD socket path '%s' is too long for a unix socket: use a "
                   "shorter --state-dir", sock);
    server.socket_path = sock;
  }
  bool any_inc = false;
  for (size_t i = 0; i < n; i++) {
    AUTOPTR(volume) v = disk_active_volume(st, bds[i]->disk_id);
    if (!v) { for (size_t j = 0; j < n; j++) free(why[j]); return -1; }
    free(bds[i]->volume_id);
    bds[i]->volume_id = xstrdup(v->id);
    bool gone = false; /* libvirt checks the bitmaps of a live chain: stays false */
    bds[i]->mode = disk_mode(st, b, from, bds[i]->disk_id, v->id, false, &why[i], &gone);
    free(bds[i]->reason);
    bds[i]->reason = xstrdup(why[i]);
    vec_push(&scratch, remote ? xasprintf("%s/%s-%s.qcow2", rdir, a->id, bds[i]->disk_id)
                              : backup_scratch_path(eng, vm->id, a->id, bds[i]->disk_id));
    bool cp = false;
    for (size_t j = 0; cds[j]; j++) cp |= strcmp(cds[j]->disk_id, bds[i]->disk_id) == 0;
    hd[i] = (struct hyper_backup_disk){bds[i]->disk_id, scratch.ptr[i],
                                       bds[i]->mode == BACKUP_MODE_INCREMENTAL, cp};
    any_inc |= hd[i].incremental;
  }
  AUTOFREE char *url = NULL;
  int rc = ops->backup_begin(h, vm->id, hd, n, &server, any_inc ? b->from_checkpoint_id : NULL, a->cp_id,
                             b->require_consistency, &url);
  AUTOFREE char *lost = NULL;
  if (rc < 0 && any_inc && !strstr(error_message(), "consistently")) {
    /* a missing or unusable bitmap: the disks fall back to full */
    AUTOFREE char *msg = xstrdup(error_message());
    lost = xasprintf("libvirt cannot use it in the running VM: %s", msg);
    error_clear();
    for (size_t i = 0; i < n; i++) {
      if (!hd[i].incremental) continue;
      hd[i].incremental = false;
      bds[i]->mode = BACKUP_MODE_FULL;
      free(why[i]);
      why[i] = xasprintf("libvirt cannot use bitmap '%s' of the running VM: %s", b->from_checkpoint_id, msg);
      free(bds[i]->reason);
      bds[i]->reason = xstrdup(why[i]);
    }
    rc = ops->backup_begin(h, vm->id, hd, n, &server, NULL, a->cp_id, b->require_consistency, &url);
  }
  if (rc == 0) rc = backup_disks_record(eng, a, vm, bds, cds, why, url);
  for (size_t i = 0; i < n; i++) free(why[i]);
  if (rc == 0 && lost && from) checkpoint_invalidate_lost(eng, from, lost);
  if (rc < 0) {
    struct err_saved s;
    error_save(&s);
    ops->backup_end(h, vm->id);
    error_clear();
    return error_restore(&s);
  }
  return 0;
}

/* starting -> ready: the snapshot, then each disk's frozen volume and mode */
static int backup_take(struct engine *eng, struct backup_start *a)
{
  struct store *st = eng->st;
  AUTOPTR(backup) b = backup_get(st, a->id);
  if (!b) return -1;
  AUTOLIST(backup_disk) bds = backup_disk_list_by_backup(st, a->id);
  AUTOLIST(checkpoint_disk) cds = checkpoint_disk_list_by_checkpoint(st, a->cp_id);
  if (!bds || !cds) return -1;
  AUTOSTRVEC struct strvec disks = VEC_INIT, bitmap_disks = VEC_INIT;
  for (size_t i = 0; bds[i]; i++) vec_push(&disks, xstrdup(bds[i]->disk_id));
  vec_push(&disks, NULL);
  for (size_t i = 0; cds[i]; i++) vec_push(&bitmap_disks, xstrdup(cds[i]->disk_id));
  vec_push(&bitmap_disks, NULL);
  if (b->use_active) return backup_take_active(eng, a, b, bds, cds);
  AUTOFREE char *desc = xasprintf("Auto-generated for Backup VM (backup %s)", a->id);
  if (snapshot_create_for_backup(eng, a->user, b->vm_id, a->snap_id, desc,
                                 (const char *const *)disks.ptr, a->cp_id,
                                 (const char *const *)bitmap_disks.ptr, b->require_consistency) < 0)
    return error_prefix("cannot take the backup's snapshot: ");
  AUTOPTR(checkpoint) from = b->from_checkpoint_id ? checkpoint_get(st, b->from_checkpoint_id) : NULL;
  error_clear();
  AUTOPTR(vm) vm = vm_get(st, b->vm_id);
  if (!vm) return -1;
  /* decide outside the transaction (qemu-img runs), record in one */
  size_t n = 0;
  while (bds[n]) n++;
  AUTOFREE char **why = xcalloc(n + 1, sizeof *why);
  AUTOFREE char *lost = NULL; /* the first disk's reason when its bitmap is lost */
  for (size_t i = 0; i < n; i++) {
    AUTOPTR(volume) v = snapshot_volume_of(st, bds[i]->disk_id, a->snap_id);
    if (!v) { for (size_t j = 0; j < i; j++) free(why[j]); return -1; }
    free(bds[i]->volume_id);
    bds[i]->volume_id = xstrdup(v->id);
    bool gone = false;
    bds[i]->mode = disk_mode(st, b, from, bds[i]->disk_id, v->id, true, &why[i], &gone);
    if (gone && !lost) lost = xstrdup(why[i]);
    free(bds[i]->reason);
    bds[i]->reason = xstrdup(why[i]);
  }
  int rc = backup_disks_record(eng, a, vm, bds, cds, why, NULL);
  for (size_t i = 0; i < n; i++) free(why[i]);
  /* the chain from it is broken: said once, after the fall back events */
  if (rc == 0 && lost && from) checkpoint_invalidate_lost(eng, from, lost);
  return rc;
}

/* drops the pending checkpoint of a backup that ended without success */
static void checkpoint_drop_pending(struct store *st, const char *cp_id)
{
  if (!cp_id) return;
  AUTOLIST(checkpoint_disk) cds = checkpoint_disk_list_by_checkpoint(st, cp_id);
  AUTOPTR(checkpoint) cp = checkpoint_get(st, cp_id);
  if (!cp || !cds || cp->state != CHECKPOINT_PENDING) { error_clear(); return; }
  if (store_begin(st) < 0) goto failed;
  for (size_t i = 0; cds[i]; i++)
    if (checkpoint_disk_delete(st, cds[i]->id) < 0) { store_rollback(st); goto failed; }
  if (checkpoint_delete(st, cp_id) < 0) { store_rollback(st); goto failed; }
  if (store_commit(st) < 0) goto failed;
  return;
failed:
  log_err("cannot drop checkpoint '%s': %s", cp_id, error_message());
  error_clear();
}

/* ends what the backup reads from: libvirt's backup job (use_active), or
 * the backup's snapshot, removed if it exists; a failure is an event (the
 * snapshot stays listed, unlocked, and can be removed by hand) */
static void backup_release(struct engine *eng, const struct user *u, const struct backup *b)
{
  if (b->use_active) {
    AUTOPTR(vm) vm = vm_get(eng->st, b->vm_id);
    const struct hyper_ops *ops;
    struct hyper *h = vm && vm->status != VM_DOWN ? engine_hyper(eng, vm->host_id, &ops) : NULL;
    if (h && ops->backup_end(h, vm->id) < 0)
      engine_event(eng, SEVERITY_ERROR, EV_BACKUP_FAILED, u, b->vm_id,
                   "backup %s of VM %s: its libvirt backup job could not be ended: %s", b->id,
                   vm->name, error_message());
    error_clear();
    return;
  }
  if (!b->snapshot_id) return;
  AUTOPTR(snapshot) s = snapshot_get(eng->st, b->snapshot_id);
  if (!s) { error_clear(); return; }
  if (snapshot_remove_for_backup(eng, u, b->vm_id, b->snapshot_id) < 0) {
    engine_event(eng, SEVERITY_ERROR, EV_BACKUP_FAILED, u, b->vm_id,
                 "backup %s of VM %s: its snapshot '%s' could not be removed: %s; remove it by hand",
                 b->id, b->vm_id, s->description, error_message());
    error_clear();
  }
}

static void backup_start_job(struct engine *eng, void *arg)
{
  struct backup_start *a = arg;
  struct store *st = eng->st;
  if (backup_set_phase(eng, a->user, a->id, BACKUP_STARTING, NULL) < 0 || backup_take(eng, a) < 0) {
    AUTOFREE char *msg = xstrdup(error_message());
    error_clear();
    AUTOPTR(backup) b = backup_get(st, a->id);
    error_clear();
    if (b) backup_release(eng, a->user, b);
    checkpoint_drop_pending(st, a->cp_id);
    backup_scratch_remove(eng, a->id);
    backup_set_phase(eng, a->user, a->id, BACKUP_FAILED, msg);
  } else {
    backup_set_phase(eng, a->user, a->id, BACKUP_READY, NULL);
  }
  error_clear();
  user_free(a->user);
  vm_free(a->vm);
  checkpoint_free(a->from);
  free(a);
}

int cmd_backup_start(struct engine *eng, const struct user *u, const struct backup_spec *spec,
                     char **out_id)
{
  struct backup_start *a = xcalloc(1, sizeof *a);
  a->spec = spec;
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = spec->vm_id, .locks = {spec->vm_id}, .data = a};
  if (cmd_run(&backup_start_def, &c) < 0) {
    vm_free(a->vm);
    checkpoint_free(a->from);
    free(a);
    return -1;
  }
  if (out_id) *out_id = xstrdup(a->id);
  a->spec = NULL;
  a->user = user_dup(u);
  engine_background(eng, backup_start_job, a);
  return 0;
}

/* ---- transfers ---- */

/* the NBD source of a transfer of disk_id in backup backup_id (phase
 * ready): the frozen volume, or for an incremental disk whose bitmap
 * *out_bitmap (caller frees) spans several layers a scratch overlay on it
 * (*out_scratch) whose one bitmap holds the changed blocks.
 * For a use_active backup: libvirt's NBD server *out_socket, export
 * *out_export (the volume is the disk's active one); else both NULL. */
static int backup_transfer_source(struct engine *eng, const char *backup_id, const char *disk_id,
                                  struct volume **out_vol, char **out_bitmap, char **out_socket,
                                  char **out_server, char **out_export, bool *out_scratch)
{
  struct store *st = eng->st;
  *out_scratch = false;
  *out_vol = NULL;
  *out_bitmap = NULL;
  *out_socket = NULL;
  *out_server = NULL;
  *out_export = NULL;
  AUTOPTR(backup) b = backup_get(st, backup_id);
  if (!b) return -1;
  if (b->phase != BACKUP_READY)
    return error(ERR_CONFLICT, "cannot transfer a disk of backup '%s': it is %s, not ready",
                 backup_id, backup_phase_to_str(b->phase));
  if (!disk_id) return error(ERR_INVALID, "a transfer of backup '%s' needs <disk id=\"...\"/>", backup_id);
  AUTOFREE char *bdid = xasprintf("%s/%s", backup_id, disk_id);
  AUTOPTR(backup_disk) bd = backup_disk_get(st, bdid);
  if (!bd) return error(ERR_NOT_FOUND, "disk '%s' is not part of backup '%s'", disk_id, backup_id);
  AUTOPTR(volume) v = bd->volume_id ? volume_get(st, bd->volume_id) : NULL;
  if (!v) return -1;
  if (b->use_active) {
    if (b->nbd_server) *out_server = xstrdup(b->nbd_server); /* on the VM's host */
    else *out_socket = backup_socket(eng, backup_id);
    *out_export = xstrdup(disk_id);
    if (bd->mode == BACKUP_MODE_INCREMENTAL) *out_bitmap = xstrdup(b->from_checkpoint_id);
  }
  if (bd->mode != BACKUP_MODE_INCREMENTAL || b->use_active) {
    *out_vol = steal_pointer(&v);
    return 0;
  }
  /* a scratch overlay on the frozen volume whose one bitmap is the union
   * of the checkpoint's bitmap over the chain */
  AUTOFREE char *dir = backup_dir(eng, backup_id);
  AUTOFREE char *path = xasprintf("%s/%s.qcow2", dir, disk_id);
  const char *cp = b->from_checkpoint_id;
  if (access(path, F_OK) != 0) {
    AUTOFREE char *cdid = xasprintf("%s/%s", cp, disk_id);
    AUTOPTR(checkpoint_disk) cd = checkpoint_disk_get(st, cdid);
    error_clear();
    AUTOFREE char *why = NULL;
    AUTOLIST(volume) layers = bitmap_layers(st, v->id, cp, cd ? cd->volume_id : NULL, &why, NULL, NULL);
    if (!layers)
      return error(ERR_CONFLICT, "cannot read the changes of disk '%s' since checkpoint '%s': %s",
                   disk_id, cp, why);
    /* the usual chain: the checkpoint began in the frozen volume, the one
     * layer with its bitmap; qemu-nbd serves that bitmap as it is (no
     * scratch overlay: four qemu-img runs less, ~0.1 s of the transfer's start) */
    if (!layers[1] && strcmp(layers[0]->id, v->id) == 0) {
      *out_vol = steal_pointer(&v);
      *out_bitmap = xstrdup(cp);
      return 0;
    }
    AUTOFREE char *tmp = xasprintf("%s.part", path);
    int rc = volume_create(tmp, DISK_FORMAT_COW, 0, v->path, v->format);
    if (rc == 0) rc = volume_bitmap_add(tmp, cp);
    for (size_t i = 0; rc == 0 && layers[i]; i++) rc = volume_bitmap_merge(tmp, cp, layers[i]->path, cp);
    if (rc == 0 && rename(tmp, path) < 0)
      rc = error(ERR_INTERNAL, "cannot rename '%s': %s", tmp, strerror(errno));
    if (rc < 0) {
      struct err_saved s;
      error_save(&s);
      unlink(tmp);
      return error_restore(&s);
    }
  }
  struct volume *scratch = xcalloc(1, sizeof *scratch);
  scratch->id = xstrdup(v->id);
  scratch->disk_id = xstrdup(disk_id);
  scratch->snapshot_id = xstrdup(v->snapshot_id);
  scratch->path = steal_pointer(&path);
  scratch->format = DISK_FORMAT_COW;
  *out_vol = scratch;
  *out_bitmap = xstrdup(cp);
  *out_scratch = true;
  return 0;
}

/* the backup's lock keeps finalize out while the transfer is set up */
int cmd_backup_transfer(struct engine *eng, const struct user *u, const char *backup_id,
                        const struct transfer_spec *spec, char **out_id)
{
  if (spec->volume_id)
    return error(ERR_INVALID, "a transfer of backup '%s' names its disk, not a disk snapshot", backup_id);
  const char *locks[] = {backup_id, NULL};
  if (locks_acquire(eng, locks, "TransferImage", u) < 0) return -1;
  AUTOPTR(volume) vol = NULL;
  AUTOFREE char *bitmap = NULL, *sock = NULL, *server = NULL, *export = NULL, *context = NULL;
  bool scratch = false;
  int rc = backup_transfer_source(eng, backup_id, spec->disk_id, &vol, &bitmap, &sock, &server, &export,
                                  &scratch);
  if (rc == 0) {
    struct transfer_source src = {0};
    if (sock || server) {
      src.socket_path = sock;
      src.nbd_server = server;
      src.export_name = export;
      if (bitmap) src.dirty_context = context = xasprintf("qemu:dirty-bitmap:%s", bitmap);
    } else if (scratch) {
      src.path = vol->path; /* the scratch overlay, no volume of the store */
      src.format = DISK_FORMAT_COW;
      src.bitmap = bitmap;
    } else {
      src.volume_id = vol->id;
      src.bitmap = bitmap;
    }
    struct transfer_spec s = *spec;
    s.source = &src;
    rc = cmd_transfer_create(eng, u, &s, out_id);
  }
  locks_release(eng, locks);
  return rc;
}

/* ---- finalize ---- */

struct backup_end {
  const char *vm_id, *id;
  struct backup *b;
  struct vm *vm;
  struct user *user;
};

static int backup_finalize_validate(struct cmd_ctx *c)
{
  struct backup_end *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->vm = vm_get(st, a->vm_id))) return -1;
  if (!(a->b = backup_get(st, a->id)) || strcmp(a->b->vm_id, a->vm_id) != 0)
    return error(ERR_NOT_FOUND, "backup '%s' of VM '%s' does not exist", a->id, a->vm->name);
  if (a->b->phase != BACKUP_READY)
    return error(ERR_CONFLICT, "cannot finalize backup '%s' of VM '%s': it is %s%s", a->id,
                 a->vm->name, backup_phase_to_str(a->b->phase),
                 a->b->phase < BACKUP_READY ? "; wait until it is ready" : "");
  return 0;
}

static int backup_finalize_execute(struct cmd_ctx *c)
{
  struct backup_end *a = c->data;
  a->b->phase = BACKUP_FINALIZING;
  a->b->modification_ms = now_ms();
  if (backup_update(c->eng->st, a->b) < 0) return -1;
  c->keep_locks = true;
  return 0;
}

static char *backup_finalize_describe(struct cmd_ctx *c, bool ok)
{
  struct backup_end *a = c->data;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("backup %s of VM %s is finalizing (by %s)", a->id, name, c->user->name)
            : xasprintf("finalizing backup %s of VM %s", a->id, name);
}

static const struct cmd_def backup_finalize_def = {
  "FinalizeVmBackup", EV_BACKUP_FINALIZED, backup_finalize_validate, backup_finalize_execute, NULL,
  backup_finalize_describe,
};

static void backup_end_free(struct backup_end *a)
{
  backup_free(a->b);
  vm_free(a->vm);
  user_free(a->user);
  free((char *)a->vm_id);
  free((char *)a->id);
  free(a);
}

/* Why backup b cannot end succeeded (caller frees), or NULL. What clients
 * read must be the complete point in time, but the data path can end
 * without the engine: libvirt's job of a use_active backup aborted from
 * outside (`virsh domjobabort`), failed or gone with its VM; a hybrid
 * backup's qemu-nbd killed. Either fails the transfer then open, so a disk
 * whose last transfer of this backup failed fails the backup, unless a
 * later transfer of it succeeded. Asked before the engine ends libvirt's job. */
static char *backup_broken(struct engine *eng, const struct backup *b, const struct vm *vm)
{
  AUTOFREE char *why = NULL;
  if (b->use_active) {
    const struct hyper_ops *ops;
    struct hyper *h = vm->status != VM_DOWN ? engine_hyper(eng, vm->host_id, &ops) : NULL;
    if (vm->status == VM_DOWN)
      why = xstrdup("the VM stopped, and libvirt's backup job with it");
    else if (h && ops->backup_job_alive && ops->backup_job_alive(h, vm->id, &why) < 0)
      log_warn("backup %s of VM %s: cannot tell whether libvirt's backup job still runs: %s", b->id,
               vm->name, error_message());
    error_clear();
    if (why) return steal_pointer(&why);
  }
  AUTOLIST(image_transfer) l = image_transfer_list_chosen_of_backup(eng->st, b->id, b->creation_ms);
  if (!l) { log_err("%s", error_message()); error_clear(); return NULL; }
  for (size_t i = 0; l[i]; i++) {
    bool later = false; /* newest first: a later transfer of the disk decides */
    for (size_t j = 0; j < i && !later; j++) later = strcmp(l[j]->disk_id, l[i]->disk_id) == 0;
    if (later || l[i]->phase != TRANSFER_FINISHED_FAILURE) continue;
    AUTOPTR(disk) d = disk_get(eng->st, l[i]->disk_id);
    error_clear();
    return xasprintf("the image transfer %s of disk %s failed, and no later one read it: %s", l[i]->id,
                     d ? d->alias : l[i]->disk_id, l[i]->message ? l[i]->message : "unknown error");
  }
  return NULL;
}

/* finalizing -> succeeded: open transfers end, scratch files go, the
 * snapshot is merged, and the checkpoint is made; or finalizing -> failed
 * when what the clients read was broken (backup_broken): the new
 * checkpoint is dropped, so the next incremental backup starts from the
 * previous one, whose bitmaps libvirt never reset */
static void backup_finalize_job(struct engine *eng, void *arg)
{
  struct backup_end *a = arg;
  struct store *st = eng->st;
  const char *locks[] = {a->id, NULL};
  AUTOLIST(image_transfer) open = image_transfer_list_open_chosen_of_backup(st, a->id);
  for (size_t i = 0; open && open[i]; i++)
    if (cmd_transfer_finalize(eng, a->user, open[i]->id) < 0) error_clear();
  error_clear();
  /* after the open transfers' ends (one may fail there), before libvirt's job ends */
  AUTOFREE char *broken = backup_broken(eng, a->b, a->vm);
  if (broken) {
    /* dropped first, so an offline merge of the snapshot does not carry its bitmap */
    checkpoint_drop_pending(st, a->b->to_checkpoint_id);
    backup_release(eng, a->user, a->b);
    backup_scratch_remove(eng, a->id);
    backup_set_phase(eng, a->user, a->id, BACKUP_FAILED, broken);
    error_clear();
    engine_unlock(eng, locks);
    backup_end_free(a);
    return;
  }
  /* libvirt's job first: it deletes the scratch files it made */
  backup_release(eng, a->user, a->b);
  backup_scratch_remove(eng, a->id);
  AUTOPTR(checkpoint) cp = checkpoint_get(st, a->b->to_checkpoint_id);
  int rc = -1;
  if (cp && store_begin(st) == 0) {
    /* a bitmap step that failed meanwhile (the merge) invalidated it, with an event */
    if (cp->state == CHECKPOINT_PENDING) cp->state = CHECKPOINT_CREATED;
    AUTOPTR(backup) cur = backup_get(st, a->id);
    if (cur) {
      cur->phase = BACKUP_SUCCEEDED;
      cur->modification_ms = now_ms();
    }
    if (cur && checkpoint_update(st, cp) == 0 && backup_update(st, cur) == 0) rc = store_commit(st);
    else store_rollback(st);
  }
  if (rc < 0) {
    AUTOFREE char *msg = xstrdup(error_message());
    checkpoint_drop_pending(st, a->b->to_checkpoint_id);
    backup_set_phase(eng, a->user, a->id, BACKUP_FAILED, msg);
  } else {
    engine_event(eng, SEVERITY_NORMAL, EV_BACKUP_SUCCEEDED, a->user, a->vm_id,
                 "backup %s of VM %s is succeeded; it made checkpoint %s%s", a->id, a->vm->name,
                 a->b->to_checkpoint_id, cp->state == CHECKPOINT_INVALID
                 ? ", invalid at once (its bitmaps could not be kept; see the event before)" : "");
  }
  error_clear();
  engine_unlock(eng, locks);
  backup_end_free(a);
}

int cmd_backup_finalize(struct engine *eng, const struct user *u, const char *vm_id,
                        const char *backup_id)
{
  struct backup_end *a = xcalloc(1, sizeof *a);
  a->vm_id = xstrdup(vm_id);
  a->id = xstrdup(backup_id);
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {a->id}, .data = a};
  if (cmd_run(&backup_finalize_def, &c) < 0) {
    backup_end_free(a);
    return -1;
  }
  a->user = user_dup(u);
  engine_background(eng, backup_finalize_job, a);
  return 0;
}

/* ---- recovery ---- */

/* who acts in recovery: the engine itself */
static const struct user engine_user = {.name = (char *)"engine"};

static void backup_recover_job(struct engine *eng, void *arg)
{
  struct backup *b = arg;
  backup_release(eng, &engine_user, b);
  error_clear();
  backup_free(b);
}

/* why a bitmap of checkpoint cp is lost from its disks' chains now (caller
 * frees), or NULL; disks no longer incremental are not asked; each volume
 * is read once through cache */
static char *checkpoint_bitmaps_lost(struct store *st, const struct checkpoint *cp, struct bitmap_cache *cache)
{
  AUTOLIST(checkpoint_disk) cds = checkpoint_disk_list_by_checkpoint(st, cp->id);
  for (size_t i = 0; cds && cds[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, cds[i]->disk_id);
    AUTOPTR(volume) top = d && d->backup == DISK_BACKUP_INCREMENTAL && d->format == DISK_FORMAT_COW
                              ? disk_active_volume(st, d->id) : NULL;
    error_clear();
    if (!top) continue;
    AUTOFREE char *why = NULL;
    bool lost = false;
    AUTOLIST(volume) layers = bitmap_layers(st, top->id, cp->id, cds[i]->volume_id, &why, &lost, cache);
    if (!layers && lost) return xasprintf("disk %s: %s", d->alias, why);
  }
  error_clear();
  return NULL;
}

/* At start, the checkpoints of each VM that is down are checked against its
 * volumes (a running VM's bitmaps are QEMU's, in use until it stops): a
 * bitmap removed by hand, left unsaved by a crash or dropped by a tool while
 * the engine was away invalidates the chain from its checkpoint now, with
 * an event, rather than at the next backup. A VM whose chain a recovery
 * still changes (a backup of it just failed, a snapshot not ok) is left to
 * its next backup. */
static void checkpoints_check_down(struct engine *eng, struct backup *const *recovered)
{
  struct store *st = eng->st;
  AUTOLIST(vm) vms = vm_list_by_status(st, VM_DOWN);
  if (!vms) { log_err("%s", error_message()); error_clear(); return; }
  for (size_t i = 0; vms[i]; i++) {
    bool busy = false;
    for (size_t j = 0; recovered[j] && !busy; j++) busy = strcmp(recovered[j]->vm_id, vms[i]->id) == 0;
    AUTOLIST(snapshot) moving = busy ? NULL : snapshot_list_not_ok_of_vm(st, vms[i]->id);
    AUTOLIST(checkpoint) cps = moving && !moving[0] ? checkpoint_list_listed_of_vm(st, vms[i]->id) : NULL;
    struct bitmap_cache cache = {0};
    for (size_t k = 0; cps && cps[k]; k++) {
      if (cps[k]->state != CHECKPOINT_CREATED) continue;
      AUTOFREE char *why = checkpoint_bitmaps_lost(st, cps[k], &cache);
      if (!why) continue;
      checkpoint_invalidate_lost(eng, cps[k], why); /* and every later one */
      break;
    }
    bitmap_cache_clear(&cache);
    error_clear();
  }
}

void backup_recover(struct engine *eng)
{
  struct store *st = eng->st;
  AUTOLIST(backup) l = backup_list_running(st);
  if (!l) { log_err("%s", error_message()); error_clear(); return; }
  for (size_t i = 0; l[i]; i++) {
    struct backup *b = l[i];
    AUTOFREE char *msg = xasprintf("the engine stopped while the backup was %s",
                                   backup_phase_to_str(b->phase));
    if (b->use_active) backup_release(eng, &engine_user, b); /* libvirt's job outlived the engine */
    backup_scratch_remove(eng, b->id);
    checkpoint_drop_pending(st, b->to_checkpoint_id);
    if (backup_set_phase(eng, NULL, b->id, BACKUP_FAILED, msg) < 0) {
      log_err("cannot fail backup '%s': %s", b->id, error_message());
      error_clear();
      continue;
    }
    /* the snapshot (finished or undone by snapshot_recover) is merged in
     * the background; a removal snapshot_recover resumed is left to it */
    AUTOPTR(snapshot) s = b->snapshot_id ? snapshot_get(st, b->snapshot_id) : NULL;
    error_clear();
    struct backup *job = s && s->status == SNAPSHOT_OK ? backup_get(st, b->id) : NULL;
    if (job) engine_background(eng, backup_recover_job, job);
  }
  error_clear();
  checkpoints_check_down(eng, l);
  /* what ended backups left in other hosts' local storage (the engine's own
   * host: transient_sweep clears STATE/transient); a host that did not
   * answer transient_sweep just before is not waited for again */
  AUTOLIST(host) hosts = host_list_all(st);
  for (size_t i = 0; hosts && hosts[i]; i++)
    if (strcmp(hosts[i]->id, eng->host_id) != 0 && hosts[i]->status != HOST_NON_RESPONSIVE)
      remote_scratch_remove(eng, hosts[i]->id, NULL);
  error_clear();
}
