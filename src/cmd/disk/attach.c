/* attach.c: disk attachments: attach (with hot-plug), update (plug/unplug),
 * detach (with hot-unplug). A hot-unplug is finished only when libvirt
 * reports the device removed; until then the attachment stays plugged. */
#include "cmd/cdrom.h"
#include "cmd/internal.h"
#include "cmd/perm.h"
#include "util/err.h"
#include "util/log.h"
#include <string.h>

struct attach_args {
  const struct attachment *in;
  const struct disk *new_disk;
  const char *vm_id, *disk_id;
  const struct attach_update *upd;
  bool detach_only;
  char *created_disk_id;   /* inline creation: removed again on failure */
  struct vm *vm;
  struct disk *disk;
  struct attachment *att;
};

static void attach_args_clear(struct attach_args *a)
{
  free(a->created_disk_id);
  vm_free(a->vm);
  disk_free(a->disk);
  attachment_free(a->att);
}

static int vm_attachable(const struct vm *vm, const char *what)
{
  if (vm->status == VM_UP || vm->status == VM_DOWN || vm->status == VM_PAUSED) return 0;
  return error(ERR_CONFLICT, "cannot %s VM '%s': it is %s; wait until it is up or down",
               what, vm->name, vm_status_to_str(vm->status));
}

static int bootable_free(struct store *st, const struct vm *vm, const char *except_disk)
{
  AUTOLIST(attachment) boot = attachment_list_other_bootable(st, vm->id, except_disk ? except_disk : "");
  if (!boot) return -1;
  if (boot[0])
    return error(ERR_CONFLICT, "cannot make another disk bootable on VM '%s': disk '%s' is already "
                 "bootable, and a VM has at most one bootable disk", vm->name, boot[0]->disk_id);
  return 0;
}

/* hot-plugs attachment a (of disk d) into running vm. A disk snapshot gets
 * a fresh transient overlay, whose path is stored in a->overlay_path. */
static int plug(struct engine *eng, const struct vm *vm, struct attachment *a, const struct disk *d)
{
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
  if (!h) return -1;
  AUTOFREE char *overlay = NULL;
  AUTOPTR(volume) vol = NULL;
  struct hyper_disk hd = {.disk_id = d->id, .iface = a->iface, .read_only = a->read_only,
                          .bootable = a->bootable, .shareable = d->shareable};
  if (a->snapshot_id) {
    if (transient_overlay_create(eng, a, d->provisioned_size, &overlay) < 0) return -1;
    hd.path = overlay;
    hd.format = DISK_FORMAT_COW;
    hd.shareable = false;
  } else {
    if (!(vol = disk_active_volume(eng->st, d->id))) return -1;
    hd.path = vol->path;
    hd.format = vol->format;
  }
  if (ops->disk_attach(h, vm->id, &hd) < 0) {
    error_prefix("cannot hot-plug disk '%s' into VM '%s': ", d->alias, vm->name);
    if (overlay) {
      struct err_saved s;
      error_save(&s);
      transient_overlay_remove(eng, vm->id, overlay);
      error_restore(&s);
    }
    return -1;
  }
  free(a->overlay_path);
  a->overlay_path = steal_pointer(&overlay);
  return 0;
}

/* hot-unplugs; returns only once libvirt reported the device removed, then
 * the transient overlay (if any) goes */
static int unplug(struct engine *eng, const struct vm *vm, struct attachment *a, const struct disk *d)
{
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
  if (!h) return -1;
  if (ops->disk_detach(h, vm->id, d->id) < 0) {
    if (error_code() != ERR_NOT_FOUND)
      return error_prefix("cannot hot-unplug disk '%s' from VM '%s': ", d->alias, vm->name);
    error_clear(); /* already gone from the domain: nothing to wait for */
  }
  if (a->overlay_path) {
    transient_overlay_remove(eng, vm->id, a->overlay_path);
    free(a->overlay_path);
    a->overlay_path = NULL;
  }
  return 0;
}

/* the active volume of a VM's own disk belongs to the VM's active snapshot
 * (as in oVirt); a floating disk's to none. Shareable disks stay floating:
 * snapshots leave them out. vm_id NULL: the disk was detached. */
static int volume_owner_set(struct store *st, const struct disk *d, const char *vm_id)
{
  if (d->shareable) return 0;
  AUTOPTR(volume) top = disk_active_volume(st, d->id);
  if (!top) return -1;
  AUTOPTR(snapshot) active = vm_id ? vm_active_snapshot(st, vm_id) : NULL;
  if (vm_id && !active) return -1;
  free(top->snapshot_id);
  top->snapshot_id = active ? xstrdup(active->id) : NULL;
  return volume_update(st, top);
}

/* ---- attach ---- */

/* the Backup API rules, in oVirt's order: the snapshot exists, belongs to
 * the disk's VM, is regular and ok; its volume is not locked or illegal; the
 * target VM is not in a snapshot operation */
static int snapshot_attach_check(struct cmd_ctx *c, struct attach_args *a)
{
  struct store *st = c->eng->st;
  const char *sid = a->in->snapshot_id;
  AUTOPTR(snapshot) s = snapshot_get(st, sid);
  if (!s) {
    if (error_code() == ERR_NOT_FOUND) store_id_not_found(st, sid, "VM snapshot", "GET /vms/VM/snapshots",
                                                         perm_user_is_admin(c->eng, c->user));
    return error_prefix("cannot attach disk '%s' to VM '%s': ", a->disk->alias, a->vm->name);
  }
  AUTOPTR(vm) src = vm_get(st, s->vm_id);
  if (!src) return -1;
  AUTOPTR(attachment) own = attachment_get(st, s->vm_id, a->disk->id);
  if (!own || own->snapshot_id) {
    error_clear();
    return error(ERR_INVALID, "cannot attach disk '%s' to VM '%s': snapshot '%s' belongs to VM '%s', "
                 "which does not own this disk", a->disk->alias, a->vm->name, sid, src->name);
  }
  if (s->type != SNAPSHOT_REGULAR)
    return error(ERR_CONFLICT, "cannot attach disk '%s' to VM '%s': snapshot '%s' of VM '%s' is the "
                 "active (running) state, not a regular snapshot; take a snapshot first",
                 a->disk->alias, a->vm->name, sid, src->name);
  if (s->status != SNAPSHOT_OK)
    return error(ERR_CONFLICT, "cannot attach disk '%s' to VM '%s': snapshot '%s' of VM '%s' is %s; "
                 "wait until it is ok", a->disk->alias, a->vm->name, s->description, src->name,
                 snapshot_status_to_str(s->status));
  if (a->disk->status == DISK_ILLEGAL)
    return error(ERR_CONFLICT, "cannot attach disk '%s' to VM '%s': the disk is illegal",
                 a->disk->alias, a->vm->name);
  AUTOPTR(volume) vol = snapshot_volume_of(st, a->disk->id, sid);
  if (!vol) return error_prefix("cannot attach disk '%s' to VM '%s': ", a->disk->alias, a->vm->name);
  if (vol->status != DISK_OK)
    return error(ERR_CONFLICT, "cannot attach disk '%s' to VM '%s': the volume of snapshot '%s' is %s",
                 a->disk->alias, a->vm->name, s->description, disk_status_to_str(vol->status));
  if (strcmp(s->vm_id, a->vm->id) == 0)
    return error(ERR_CONFLICT, "cannot attach disk '%s' to VM '%s': snapshot '%s' belongs to the same "
                 "VM; attach it to another VM (the backup appliance)", a->disk->alias, a->vm->name,
                 s->description);
  AUTOLIST(snapshot) busy = snapshot_list_not_ok_of_vm(st, a->vm->id);
  if (!busy) return -1;
  if (busy[0])
    return error(ERR_CONFLICT, "cannot attach disk '%s' to VM '%s': the VM is in a snapshot operation "
                 "(snapshot '%s' is %s)", a->disk->alias, a->vm->name, busy[0]->description,
                 snapshot_status_to_str(busy[0]->status));
  return 0;
}

static int attach_validate(struct cmd_ctx *c)
{
  struct attach_args *a = c->data;
  struct store *st = c->eng->st;
  a->vm = vm_get(st, a->vm_id);
  if (!a->vm) return -1;
  if (vm_attachable(a->vm, "attach a disk to") < 0) return -1;
  if (a->new_disk) return a->in->bootable ? bootable_free(st, a->vm, NULL) : 0;
  a->disk = disk_get(st, a->disk_id);
  if (!a->disk) return -1;
  AUTOPTR(attachment) dup = attachment_get(st, a->vm_id, a->disk_id);
  if (dup)
    return error(ERR_CONFLICT, "cannot attach disk '%s': the disk is already attached to VM '%s'",
                 a->disk->alias, a->vm->name);
  error_clear();
  if (a->disk->content_type == DISK_CONTENT_ISO)
    return error(ERR_INVALID, "cannot attach disk '%s': it is an ISO; put it into the VM's CD-ROM "
                 "(PUT /vms/%s/cdroms/" CDROM_ID ")", a->disk->alias, a->vm->id);
  if (a->disk->status != DISK_OK)
    return error(ERR_CONFLICT, "cannot attach disk '%s': its status is %s", a->disk->alias,
                 disk_status_to_str(a->disk->status));
  if (!a->disk->shareable && !a->in->snapshot_id) {
    AUTOLIST(attachment) other = attachment_list_own_of_disk(st, a->disk_id);
    if (!other) return -1;
    if (other[0]) {
      AUTOPTR(vm) ovm = vm_get(st, other[0]->vm_id);
      return error(ERR_CONFLICT, "cannot attach disk '%s' to VM '%s': the disk is not shareable "
                   "and is already attached to VM '%s'; detach it there first, or attach one of "
                   "its snapshots instead", a->disk->alias, a->vm->name,
                   ovm ? ovm->name : other[0]->vm_id);
    }
  }
  if (a->in->snapshot_id && snapshot_attach_check(c, a) < 0) return -1;
  if (a->in->bootable && bootable_free(st, a->vm, NULL) < 0) return -1;
  if (a->vm->status != VM_DOWN && a->in->active &&
      (a->in->iface == IFACE_SATA || a->in->iface == IFACE_IDE))
    return error(ERR_CONFLICT, "cannot hot-plug disk '%s' into running VM '%s' with interface "
                 "'%s': use virtio or virtio_scsi, or attach it while the VM is down",
                 a->disk->alias, a->vm->name, disk_iface_to_str(a->in->iface));
  return 0;
}

static int attach_execute(struct cmd_ctx *c)
{
  struct attach_args *a = c->data;
  struct store *st = c->eng->st;
  if (a->new_disk) {
    if (a->vm->status != VM_DOWN && a->in->active &&
        (a->in->iface == IFACE_SATA || a->in->iface == IFACE_IDE))
      return error(ERR_CONFLICT, "cannot hot-plug a new disk into running VM '%s' with interface "
                   "'%s': use virtio or virtio_scsi", a->vm->name, disk_iface_to_str(a->in->iface));
    if (cmd_disk_add(c->eng, c->user, a->new_disk, &a->created_disk_id) < 0) return -1;
    a->disk = disk_get(st, a->created_disk_id);
    if (!a->disk) return -1;
  }
  int64_t pos = attachment_count_by_vm(st, a->vm_id);
  if (pos < 0) return -1;
  struct attachment at = *a->in;
  at.vm_id = a->vm->id;
  at.disk_id = a->disk->id;
  at.plugged = false;
  at.position = pos;
  at.logical_name = NULL;
  at.overlay_path = NULL;
  bool hot = a->vm->status != VM_DOWN && at.active;
  if (hot) {
    if (plug(c->eng, a->vm, &at, a->disk) < 0) return -1;
    at.plugged = true;
  }
  int rc = store_begin(st);
  if (rc == 0) {
    rc = attachment_insert(st, &at);
    if (rc == 0 && !at.snapshot_id) rc = volume_owner_set(st, a->disk, a->vm->id);
    if (rc == 0) rc = store_commit(st);
    else store_rollback(st);
  }
  if (rc < 0 && hot) {
    struct err_saved s;
    error_save(&s);
    unplug(c->eng, a->vm, &at, a->disk);
    error_restore(&s);
  }
  free(at.overlay_path);
  return rc;
}

static void attach_compensate(struct cmd_ctx *c)
{
  struct attach_args *a = c->data;
  if (a->created_disk_id) cmd_disk_remove(c->eng, c->user, a->created_disk_id);
}

static char *attach_describe(struct cmd_ctx *c, bool ok)
{
  struct attach_args *a = c->data;
  const char *dname = a->disk ? a->disk->alias : (a->disk_id ? a->disk_id : "(new)");
  const char *vname = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("disk %s was attached to VM %s by %s%s", dname, vname, c->user->name,
                        a->att || (a->vm && a->vm->status != VM_DOWN && a->in->active) ? " and plugged" : "")
            : xasprintf("attaching disk %s to VM %s", dname, vname);
}

static const struct cmd_def attach_def = {
  "AttachDiskToVm", EV_DISK_ATTACHED, attach_validate, attach_execute, attach_compensate, attach_describe,
};

int cmd_attach(struct engine *eng, const struct user *u, const struct attachment *in,
               const struct disk *new_disk, char **out_disk_id)
{
  struct attach_args a = {.in = in, .new_disk = new_disk, .vm_id = in->vm_id, .disk_id = in->disk_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = in->vm_id,
                      .locks = {in->vm_id, in->disk_id}, .data = &a};
  /* both sides: the VM that gets the disk, and the disk (a disk snapshot of
   * another VM is a backup: BACKUP_DISK on the source disk) */
  c.needs[0] = (struct cmd_need){PERMIT_ATTACH_DISK, OBJ_VM, in->vm_id};
  if (in->disk_id)
    c.needs[1] = (struct cmd_need){in->snapshot_id ? PERMIT_BACKUP_DISK : PERMIT_ATTACH_DISK, OBJ_DISK, in->disk_id};
  else if (new_disk)
    c.needs[1] = (struct cmd_need){PERMIT_CREATE_DISK, OBJ_STORAGE_DOMAIN, new_disk->storage_domain_id};
  int rc = cmd_run(&attach_def, &c);
  if (rc == 0 && out_disk_id) *out_disk_id = xstrdup(a.disk->id);
  attach_args_clear(&a);
  return rc;
}

/* ---- update ---- */

static int attach_load(struct cmd_ctx *c)
{
  struct attach_args *a = c->data;
  struct store *st = c->eng->st;
  a->vm = vm_get(st, a->vm_id);
  if (!a->vm) return -1;
  a->disk = disk_get(st, a->disk_id);
  if (!a->disk) return -1;
  a->att = attachment_get(st, a->vm_id, a->disk_id);
  if (!a->att) return -1;
  return 0;
}

static int attach_update_validate(struct cmd_ctx *c)
{
  struct attach_args *a = c->data;
  const struct attach_update *u = a->upd;
  if (attach_load(c) < 0) return -1;
  bool running = a->vm->status != VM_DOWN;
  if (running && vm_attachable(a->vm, "change a disk of") < 0) return -1;
  bool plugged_after = running && (u->set_active ? u->active : a->att->active);
  if (a->att->plugged && plugged_after &&
      ((u->set_iface && u->iface != a->att->iface) || (u->set_read_only && u->read_only != a->att->read_only)))
    return error(ERR_CONFLICT, "cannot change interface or read_only of disk '%s' while it is "
                 "plugged into running VM '%s': unplug it first (active=false)",
                 a->disk->alias, a->vm->name);
  int iface = u->set_iface ? u->iface : a->att->iface;
  if (running && u->set_active && u->active && !a->att->plugged &&
      (iface == IFACE_SATA || iface == IFACE_IDE))
    return error(ERR_CONFLICT, "cannot hot-plug disk '%s' into running VM '%s' with interface '%s'",
                 a->disk->alias, a->vm->name, disk_iface_to_str(iface));
  if (u->set_bootable && u->bootable && !a->att->bootable &&
      bootable_free(c->eng->st, a->vm, a->disk_id) < 0)
    return -1;
  return 0;
}

static int attach_update_execute(struct cmd_ctx *c)
{
  struct attach_args *a = c->data;
  const struct attach_update *u = a->upd;
  struct attachment *at = a->att;
  bool was_plugged = at->plugged;
  if (u->set_active) at->active = u->active;
  if (u->set_bootable) at->bootable = u->bootable;
  if (u->set_iface) at->iface = u->iface;
  if (u->set_read_only) at->read_only = u->read_only;
  bool running = a->vm->status != VM_DOWN;
  if (running && at->active && !was_plugged) {
    if (plug(c->eng, a->vm, at, a->disk) < 0) return -1;
    at->plugged = true;
  } else if (was_plugged && !at->active) {
    if (unplug(c->eng, a->vm, at, a->disk) < 0) return -1;
    at->plugged = false;
  }
  if (attachment_update(c->eng->st, at) < 0) {
    struct err_saved s;
    error_save(&s);
    if (at->plugged && !was_plugged) unplug(c->eng, a->vm, at, a->disk);
    error_restore(&s);
    return -1;
  }
  return 0;
}

static char *attach_update_describe(struct cmd_ctx *c, bool ok)
{
  struct attach_args *a = c->data;
  const char *dname = a->disk ? a->disk->alias : a->disk_id;
  const char *vname = a->vm ? a->vm->name : a->vm_id;
  if (a->upd->set_active)
    return ok ? xasprintf("disk %s was %s VM %s by %s", dname,
                          a->upd->active ? "activated on" : "deactivated on", vname, c->user->name)
              : xasprintf("%s disk %s on VM %s", a->upd->active ? "activating" : "deactivating",
                          dname, vname);
  return ok ? xasprintf("disk attachment %s of VM %s was updated by %s", dname, vname, c->user->name)
            : xasprintf("updating disk attachment %s of VM %s", dname, vname);
}

static const struct cmd_def attach_update_def = {
  "UpdateDiskAttachment", EV_DISK_PLUGGED, attach_update_validate, attach_update_execute, NULL,
  attach_update_describe,
};

int cmd_attach_update(struct engine *eng, const struct user *u, const char *vm_id,
                      const char *disk_id, const struct attach_update *upd)
{
  struct attach_args a = {.vm_id = vm_id, .disk_id = disk_id, .upd = upd};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id, disk_id}, .data = &a};
  int rc = cmd_run(&attach_update_def, &c);
  attach_args_clear(&a);
  return rc;
}

/* ---- detach ---- */

static int detach_validate(struct cmd_ctx *c)
{
  struct attach_args *a = c->data;
  if (attach_load(c) < 0) return -1;
  if (a->att->plugged && vm_attachable(a->vm, "detach a disk from") < 0) return -1;
  if (!a->detach_only) {
    AUTOLIST(attachment) other = attachment_list_by_disk_other_vm(c->eng->st, a->disk_id, a->vm_id);
    if (!other) return -1;
    if (other[0])
      return error(ERR_CONFLICT, "cannot remove disk '%s': it is also attached to VM '%s'; use "
                   "detach_only=true or detach it there first", a->disk->alias, other[0]->vm_id);
  }
  return 0;
}

static int detach_execute(struct cmd_ctx *c)
{
  struct attach_args *a = c->data;
  if (a->att->plugged) {
    if (unplug(c->eng, a->vm, a->att, a->disk) < 0) return -1;
    a->att->plugged = false;
    if (attachment_update(c->eng->st, a->att) < 0) return -1;
  }
  struct store *st = c->eng->st;
  if (store_begin(st) < 0) return -1;
  if (attachment_delete(st, a->vm_id, a->disk_id) < 0 ||
      (!a->att->snapshot_id && volume_owner_set(st, a->disk, NULL) < 0)) {
    store_rollback(st);
    return -1;
  }
  if (store_commit(st) < 0) return -1;
  if (!a->detach_only) {
    /* the disk lock is ours already; remove it in this command's name */
    locks_release(c->eng, (const char *const[]){a->disk_id, NULL});
    int rc = cmd_disk_remove(c->eng, c->user, a->disk_id);
    locks_acquire(c->eng, (const char *const[]){a->disk_id, NULL}, "DetachDiskFromVm", c->user);
    return rc;
  }
  return 0;
}

static char *detach_describe(struct cmd_ctx *c, bool ok)
{
  struct attach_args *a = c->data;
  const char *dname = a->disk ? a->disk->alias : a->disk_id;
  const char *vname = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("disk %s was detached from VM %s by %s", dname, vname, c->user->name)
            : xasprintf("detaching disk %s from VM %s", dname, vname);
}

static const struct cmd_def detach_def = {
  "DetachDiskFromVm", EV_DISK_DETACHED, detach_validate, detach_execute, NULL, detach_describe,
};

int cmd_detach(struct engine *eng, const struct user *u, const char *vm_id, const char *disk_id,
               bool detach_only)
{
  struct attach_args a = {.vm_id = vm_id, .disk_id = disk_id, .detach_only = detach_only};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id, disk_id}, .data = &a};
  int rc = cmd_run(&detach_def, &c);
  attach_args_clear(&a);
  return rc;
}

/* ---- oVirt 3: DELETE /vms/{vm}/disks/{disk} ---- */

int cmd_vm_disk_remove_v3(struct engine *eng, const struct user *u, const char *vm_id, const char *disk_id,
                          bool detach_only)
{
  AUTOPTR(vm) vm = vm_get(eng->st, vm_id);
  if (!vm) return -1;
  AUTOPTR(attachment) a = attachment_get(eng->st, vm_id, disk_id);
  if (!a) return -1;
  if (detach_only || a->snapshot_id) return cmd_detach(eng, u, vm_id, disk_id, true);
  AUTOLIST(attachment) all = attachment_list_own_of_disk(eng->st, disk_id);
  if (!all) return -1;
  for (size_t i = 0; all[i]; i++)
    if (cmd_detach(eng, u, all[i]->vm_id, disk_id, true) < 0) return -1;
  return cmd_disk_remove(eng, u, disk_id);
}
