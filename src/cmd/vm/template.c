/* template.c: templates made from a down VM's own disks, and the disks a VM
 * made from a template gets.
 *
 * A template's disks are ordinary disks whose attachments name the template
 * id in vm_id (the attachments table serves VMs and templates alike); each
 * has one flat qcow2 volume. A thin VM's disk starts with a qcow2 overlay
 * whose backing file is the template's volume (the link lives in the qcow2
 * header, not in volumes.parent_id: parent_id stays within one disk's
 * chain); a cloned VM gets full copies. A template with VMs made from it
 * cannot be removed.
 *
 * Crash safety: files first, then every row in one transaction; a crash in
 * between leaves files no row names, removed by engine_sweep_orphans(). */
#include "cmd/internal.h"
#include "cmd/perm.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <string.h>
#include <unistd.h>

#define BLANK_ID "00000000-0000-0000-0000-000000000000"

/* one new disk: a copy of (or overlay on) a source disk */
struct new_disk {
  struct disk d;              /* strings owned */
  struct attachment at;       /* iface/bootable/read_only/active/position */
  char id[UUID_STRLEN + 1], vol_id[UUID_STRLEN + 1];
  char *path;
};

DEFINE_VEC(new_disks, struct new_disk);

/* frees v, removing the files first when asked; the current error survives */
static void new_disks_clear(struct new_disks *v, bool remove_files)
{
  struct err_saved saved;
  error_save(&saved);
  for (size_t i = 0; i < v->len; i++) {
    struct new_disk *n = &v->ptr[i];
    if (remove_files && n->path) {
      volume_remove(n->path);
      AUTOFREE char *dir = xstrdup(n->path);
      char *slash = strrchr(dir, '/');
      if (slash) { *slash = 0; rmdir(dir); }
    }
    free(n->path);
    free(n->d.alias);
    free(n->d.description);
    free(n->d.storage_domain_id);
  }
  free(v->ptr);
  *v = (struct new_disks)VEC_INIT;
  error_restore(&saved);
}

/* creates the file of a new disk from src: a flat copy, or a thin overlay */
static int new_disk_from(struct store *st, const struct attachment *src_at, bool thin, struct new_disks *out)
{
  AUTOPTR(disk) d = disk_get(st, src_at->disk_id);
  AUTOPTR(volume) v = d ? disk_active_volume(st, d->id) : NULL;
  AUTOPTR(storage_domain) sd = v ? storage_domain_get(st, d->storage_domain_id) : NULL;
  if (!sd) return -1;
  struct new_disk n = {0};
  if (uuid_generate_str(n.id) < 0 || uuid_generate_str(n.vol_id) < 0) return -1;
  n.path = volume_path_for(sd, n.id, n.vol_id);
  int rc = thin ? volume_create(n.path, DISK_FORMAT_COW, d->provisioned_size, v->path, v->format)
                : volume_convert(v->path, v->format, n.path, DISK_FORMAT_COW);
  if (rc < 0) {
    free(n.path);
    return error_prefix("cannot copy disk '%s': ", d->alias);
  }
  n.d = (struct disk){.alias = xstrdup(d->alias), .description = xstrdup(d->description),
                      .provisioned_size = d->provisioned_size, .format = DISK_FORMAT_COW,
                      .sparse = true, .storage_domain_id = xstrdup(sd->id), .status = DISK_OK};
  n.at = (struct attachment){.iface = src_at->iface, .bootable = src_at->bootable,
                             .read_only = src_at->read_only, .active = src_at->active,
                             .position = (int64_t)out->len};
  vec_push(out, n);
  return 0;
}

/* the rows of the new disks, owned by owner_id (a VM or a template) */
static int new_disks_insert(struct store *st, const struct new_disks *v, const char *owner_id,
                            const char *snapshot_id)
{
  for (size_t i = 0; i < v->len; i++) {
    const struct new_disk *n = &v->ptr[i];
    struct disk d = n->d;
    d.id = (char *)n->id;
    struct volume vol = {.id = (char *)n->vol_id, .disk_id = (char *)n->id, .snapshot_id = (char *)snapshot_id,
                         .format = DISK_FORMAT_COW, .status = DISK_OK, .path = n->path, .active = true};
    struct attachment at = n->at;
    at.vm_id = (char *)owner_id;
    at.disk_id = (char *)n->id;
    if (disk_insert(st, &d) < 0 || volume_insert(st, &vol) < 0 || attachment_insert(st, &at) < 0)
      return -1;
  }
  return 0;
}

/* ---- add ---- */

struct template_args {
  const char *name, *description, *vm_id, *template_id;
  char id[UUID_STRLEN + 1];
  struct vm *vm;
  struct template *tpl;
  char *left_out;
  struct new_disks disks;
};

static int template_add_validate(struct cmd_ctx *c)
{
  struct template_args *a = c->data;
  struct store *st = c->eng->st;
  size_t n = strlen(a->name);
  if (n == 0 || n > 64)
    return error(ERR_INVALID, "invalid template name '%s': use 1 to 64 characters", a->name);
  if (!(a->vm = vm_get(st, a->vm_id))) return -1;
  int64_t used = template_count_by_name(st, a->name);
  if (used < 0) return -1;
  if (used)
    return error(ERR_CONFLICT, "cannot create template '%s': a template with that name already exists",
                 a->name);
  if (a->vm->status != VM_DOWN)
    return error(ERR_CONFLICT, "cannot create template '%s' from VM '%s': the VM is %s; stop it first",
                 a->name, a->vm->name, vm_status_to_str(a->vm->status));
  AUTOLIST(snapshot) busy = snapshot_list_locked_of_vm(st, a->vm_id);
  if (!busy) return -1;
  if (busy[0])
    return error(ERR_CONFLICT, "cannot create template '%s': snapshot '%s' of VM '%s' is being changed",
                 a->name, busy[0]->description, a->vm->name);
  AUTOLIST(attachment) own = attachment_list_own_of_vm(st, a->vm_id);
  if (!own) return -1;
  for (size_t i = 0; own[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, own[i]->disk_id);
    AUTOPTR(volume) v = d ? disk_active_volume(st, d->id) : NULL;
    if (!v) return -1;
    if (d->status != DISK_OK || v->status != DISK_OK)
      return error(ERR_CONFLICT, "cannot create template '%s': disk '%s' of VM '%s' is %s", a->name,
                   d->alias, a->vm->name, disk_status_to_str(d->status != DISK_OK ? d->status : v->status));
  }
  a->left_out = snapshot_attachments_text(st, a->vm_id);
  return 0;
}

static int template_add_execute(struct cmd_ctx *c)
{
  struct template_args *a = c->data;
  struct store *st = c->eng->st;
  if (uuid_generate_str(a->id) < 0) return -1;
  /* the VM's own disks: not disk-snapshot attachments, not shared disks */
  AUTOLIST(attachment) own = attachment_list_own_of_vm(st, a->vm_id);
  if (!own) return -1;
  for (size_t i = 0; own[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, own[i]->disk_id);
    if (!d) return -1;
    if (d->shareable) continue;
    if (new_disk_from(st, own[i], false, &a->disks) < 0) return -1;
  }
  struct template t = {.id = a->id, .name = (char *)a->name,
                       .description = (char *)(a->description ? a->description : ""),
                       .cluster_id = a->vm->cluster_id};
  if (store_begin(st) < 0) return -1;
  if (template_insert(st, &t) < 0 || new_disks_insert(st, &a->disks, a->id, NULL) < 0) {
    store_rollback(st);
    return -1;
  }
  return store_commit(st);
}

static void template_add_compensate(struct cmd_ctx *c)
{
  struct template_args *a = c->data;
  new_disks_clear(&a->disks, true);
}

static char *template_add_describe(struct cmd_ctx *c, bool ok)
{
  struct template_args *a = c->data;
  const char *vm = a->vm ? a->vm->name : a->vm_id;
  if (!ok) return xasprintf("creating template %s from VM %s", a->name, vm);
  return xasprintf("template %s was created from VM %s by %s with %zu disk(s)%s%s%s", a->name, vm,
                   c->user->name, a->disks.len,
                   a->left_out ? "; disk-snapshot attachment(s) left out, being other VMs' disks "
                                 "attached for backup: " : "",
                   a->left_out ? a->left_out : "", "");
}

static const struct cmd_def template_add_def = {
  "AddVmTemplate", EV_TEMPLATE_ADDED, template_add_validate, template_add_execute,
  template_add_compensate, template_add_describe,
};

int cmd_template_add(struct engine *eng, const struct user *u, const char *name, const char *description,
                     const char *vm_id, char **out_id)
{
  struct template_args a = {.name = name, .description = description, .vm_id = vm_id};
  AUTOFREE char *lock = xasprintf("template-name:%s", name);
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id, lock}, .data = &a,
                      .needs = {{PERMIT_CREATE_TEMPLATE, OBJ_VM, vm_id}}};
  int rc = cmd_run(&template_add_def, &c);
  if (rc == 0 && out_id) *out_id = xstrdup(a.id);
  new_disks_clear(&a.disks, false);
  vm_free(a.vm);
  free(a.left_out);
  return rc;
}

/* ---- remove ---- */

static int template_remove_validate(struct cmd_ctx *c)
{
  struct template_args *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->tpl = template_get(st, a->template_id))) return -1;
  if (strcmp(a->tpl->id, BLANK_ID) == 0)
    return error(ERR_CONFLICT, "cannot remove template 'Blank': it is the base of every VM");
  AUTOLIST(vm) users = vm_list_by_template(st, a->template_id);
  if (!users) return -1;
  if (users[0]) {
    struct buf b = BUF_INIT;
    for (size_t i = 0; users[i] && i < 10; i++) buf_printf(&b, "%s'%s'", i ? ", " : "", users[i]->name);
    error(ERR_CONFLICT, "cannot remove template '%s': VM(s) %s were made from it and depend on it; "
          "remove them first", a->tpl->name, buf_str(&b));
    buf_free(&b);
    return -1;
  }
  return 0;
}

/* the template's disks go with it: nothing else attaches them (a VM made
 * from it has disks of its own, and validate refused while any exists) */
static int template_remove_execute(struct cmd_ctx *c)
{
  struct template_args *a = c->data;
  AUTOLIST(attachment) atts = attachment_list_by_vm(c->eng->st, a->template_id);
  if (!atts) return -1;
  AUTOSTRVEC struct strvec disk_ids = VEC_INIT;
  for (size_t i = 0; atts[i]; i++) vec_push(&disk_ids, xstrdup(atts[i]->disk_id));
  vec_push(&disk_ids, NULL);
  return disks_remove(c->eng, c->user, (const char *const *)disk_ids.ptr, template_delete, a->template_id);
}

static char *template_remove_describe(struct cmd_ctx *c, bool ok)
{
  struct template_args *a = c->data;
  const char *name = a->tpl ? a->tpl->name : a->template_id;
  return ok ? xasprintf("template %s was removed by %s", name, c->user->name)
            : xasprintf("removing template %s", name);
}

static const struct cmd_def template_remove_def = {
  "RemoveVmTemplate", EV_TEMPLATE_REMOVED, template_remove_validate, template_remove_execute, NULL,
  template_remove_describe,
};

int cmd_template_remove(struct engine *eng, const struct user *u, const char *template_id)
{
  struct template_args a = {.template_id = template_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {template_id}, .data = &a};
  int rc = cmd_run(&template_remove_def, &c);
  template_free(a.tpl);
  return rc;
}

/* ---- a VM's disks from its template ---- */

struct template_disks {
  char *template_id;
  struct new_disks disks;
};

int template_disks_prepare(struct engine *eng, const char *template_id, bool clone,
                           struct template_disks **out)
{
  *out = NULL;
  if (!template_id || strcmp(template_id, BLANK_ID) == 0) return 0;
  struct store *st = eng->st;
  AUTOLIST(attachment) atts = attachment_list_by_vm(st, template_id);
  if (!atts) return -1;
  if (!atts[0]) return 0;
  struct template_disks *td = xcalloc(1, sizeof *td);
  td->template_id = xstrdup(template_id);
  for (size_t i = 0; atts[i]; i++) {
    if (new_disk_from(st, atts[i], !clone, &td->disks) < 0) {
      struct err_saved s;
      error_save(&s);
      template_disks_free(td, true);
      return error_restore(&s);
    }
  }
  *out = td;
  return 0;
}

int template_disks_insert(struct store *st, const struct template_disks *td, const char *vm_id,
                          const char *active_snapshot_id)
{
  if (!td) return 0;
  /* inside the caller's transaction: a template removed meanwhile took its files along */
  AUTOPTR(template) t = template_get(st, td->template_id);
  if (!t) return error_prefix("cannot create the VM's disks from its template: ");
  return new_disks_insert(st, &td->disks, vm_id, active_snapshot_id);
}

void template_disks_free(struct template_disks *td, bool remove_files)
{
  if (!td) return;
  new_disks_clear(&td->disks, remove_files);
  free(td->template_id);
  free(td);
}
