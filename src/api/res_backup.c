/* res_backup.c: /vms/{vm}/backups and /vms/{vm}/checkpoints, oVirt's
 * Backup API (types Backup, Checkpoint; services VmBackupsService,
 * VmCheckpointsService of ovirt-engine-api-model). The commands are in
 * cmd/backup/backup.c and cmd/backup/checkpoint.c; handlers here check shapes and render. */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <string.h>

int disk_backup_from_node(const struct node *disk, int *out)
{
  *out = -1;
  const char *v = node_text(disk, "backup");
  if (!v) return 0;
  if ((*out = disk_backup_from_str(v)) < 0)
    return error(ERR_INVALID, "invalid value '%s' for 'disk.backup': use 'incremental' or 'none'", v);
  return 0;
}

/* the backup, or ERR_NOT_FOUND when it is not VM vm_id's */
static struct backup *backup_of_vm(struct api_call *c, const char *vm_id, const char *id)
{
  AUTOPTR(vm) vm = vm_get(c->st, vm_id);
  if (!vm) return NULL;
  struct backup *b = backup_get(c->st, id);
  if (b && strcmp(b->vm_id, vm_id) == 0) return b;
  backup_free(b);
  error(ERR_NOT_FOUND, "backup '%s' of VM '%s' does not exist", id, vm->name);
  return NULL;
}

static struct checkpoint *checkpoint_of_vm(struct api_call *c, const char *vm_id, const char *id)
{
  AUTOPTR(vm) vm = vm_get(c->st, vm_id);
  if (!vm) return NULL;
  struct checkpoint *cp = checkpoint_get(c->st, id);
  if (cp && strcmp(cp->vm_id, vm_id) == 0 && cp->state != CHECKPOINT_PENDING) return cp;
  checkpoint_free(cp);
  error(ERR_NOT_FOUND, "checkpoint '%s' of VM '%s' does not exist", id, vm->name);
  return NULL;
}

static struct node *render_backup(struct api_call *c, const struct backup *b)
{
  AUTOFREE char *coll = xasprintf("vms/%s/backups", b->vm_id);
  struct node *n = render_entity(&c->r, "backup", coll, b->id);
  if (b->description) node_add_text(n, "description", b->description);
  node_add_text(n, "phase", backup_phase_to_str(b->phase));
  render_date(n, "creation_date", b->creation_ms);
  render_date(n, "modification_date", b->modification_ms);
  if (b->from_checkpoint_id) node_add_text(n, "from_checkpoint_id", b->from_checkpoint_id);
  if (b->to_checkpoint_id) node_add_text(n, "to_checkpoint_id", b->to_checkpoint_id);
  render_ref(&c->r, n, "vm", "vms", b->vm_id);
  render_ref(&c->r, n, "host", "hosts", b->host_id);
  if (b->snapshot_id && b->phase != BACKUP_SUCCEEDED && b->phase != BACKUP_FAILED) {
    AUTOFREE char *scoll = xasprintf("vms/%s/snapshots", b->vm_id);
    render_ref(&c->r, n, "snapshot", scoll, b->snapshot_id);
  }
  AUTOFREE char *href = render_href(&c->r, "/vms/%s/backups/%s/disks", b->vm_id, b->id);
  node_add_link(n, "disks", href);
  AUTOLIST(backup_disk) bds = backup_disk_list_by_backup(c->st, b->id);
  if (bds) {
    struct node *disks = node_add_list(n, "disks");
    for (size_t i = 0; bds[i]; i++) render_ref(&c->r, disks, "disk", "disks", bds[i]->disk_id);
  }
  error_clear();
  return n;
}

int list_backups(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOLIST(backup) l = backup_list_by_vm(c->st, vm->id);
  if (!l) return -1;
  struct node *n = node_new("backups");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, render_backup(c, l[i]));
  return reply(c, 200, n);
}

int get_backup(struct api_call *c)
{
  AUTOPTR(backup) b = backup_of_vm(c, c->p[0], c->p[1]);
  if (!b) return -1;
  return reply(c, 200, render_backup(c, b));
}

/* <backup [id]><disks><disk id/>...</disks>[<from_checkpoint_id>][<description>]</backup>
 * ?require_consistency=&use_active= */
int add_backup(struct api_call *c)
{
  const struct node *b = body_required(c, "backup");
  if (!b) return -1;
  struct backup_spec spec = {.vm_id = c->p[0], .id = node_attr(b, "id"),
                             .from_checkpoint_id = node_text(b, "from_checkpoint_id"),
                             .description = node_text(b, "description")};
  if (!spec.id) spec.id = node_text(b, "id");
  if (query_bool(c, "require_consistency", false, &spec.require_consistency) < 0 ||
      query_bool(c, "use_active", false, &spec.use_active) < 0)
    return -1;
  const struct node *disks = node_child(b, "disks");
  if (!disks || disks->nkids == 0)
    return error(ERR_INVALID, "missing required field 'backup.disks': give "
                 "<disks><disk id=\"...\"/></disks>");
  AUTOSTRVEC struct strvec ids = VEC_INIT;
  for (size_t i = 0; i < disks->nkids; i++) {
    const char *id = node_attr(disks->kids[i], "id");
    if (!id) id = node_text(disks->kids[i], "id");
    if (!id) return error(ERR_INVALID, "missing disk id in 'backup.disks': give <disk id=\"...\"/>");
    vec_push(&ids, xstrdup(id));
  }
  vec_push(&ids, NULL);
  spec.disk_ids = (const char *const *)ids.ptr;
  AUTOFREE char *id = NULL;
  if (cmd_backup_start(c->eng, c->req->user, &spec, &id) < 0) return -1;
  AUTOPTR(backup) nb = backup_get(c->st, id);
  if (!nb) return -1;
  struct node *n = render_backup(c, nb);
  const char *href = node_attr(n, "href");
  if (href) c->resp->location = xstrdup(href);
  return reply(c, 202, n);
}

/* each disk of the backup with its backup_mode (full or incremental) */
int list_backup_disks(struct api_call *c)
{
  AUTOPTR(backup) b = backup_of_vm(c, c->p[0], c->p[1]);
  if (!b) return -1;
  AUTOLIST(backup_disk) bds = backup_disk_list_by_backup(c->st, b->id);
  if (!bds) return -1;
  struct node *n = node_new("disks");
  n->is_list = true;
  for (size_t i = 0; bds[i]; i++) {
    AUTOPTR(disk) d = disk_get(c->st, bds[i]->disk_id);
    if (!d) { error_clear(); continue; }
    struct node *dn = render_disk(&c->r, d);
    node_add_text(dn, "backup_mode", backup_mode_to_str(bds[i]->mode));
    if (bds[i]->reason) node_add_text(dn, "backup_mode_reason", bds[i]->reason);
    node_append(n, dn);
  }
  return reply(c, 200, n);
}

int backup_finalize(struct api_call *c)
{
  if (cmd_backup_finalize(c->eng, c->req->user, c->p[0], c->p[1]) < 0) return -1;
  return reply_action(c);
}

static struct node *render_checkpoint(struct api_call *c, const struct checkpoint *cp)
{
  AUTOFREE char *coll = xasprintf("vms/%s/checkpoints", cp->vm_id);
  struct node *n = render_entity(&c->r, "checkpoint", coll, cp->id);
  node_add_text(n, "name", cp->id);
  if (cp->parent_id) node_add_text(n, "parent_id", cp->parent_id);
  render_date(n, "creation_date", cp->creation_ms);
  node_add_text(n, "state", checkpoint_state_to_str(cp->state));
  if (cp->message) node_add_text(n, "description", cp->message);
  render_ref(&c->r, n, "vm", "vms", cp->vm_id);
  AUTOFREE char *href = render_href(&c->r, "/vms/%s/checkpoints/%s/disks", cp->vm_id, cp->id);
  node_add_link(n, "disks", href);
  return n;
}

int list_checkpoints(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOLIST(checkpoint) l = checkpoint_list_listed_of_vm(c->st, vm->id);
  if (!l) return -1;
  struct node *n = node_new("checkpoints");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, render_checkpoint(c, l[i]));
  return reply(c, 200, n);
}

int get_checkpoint(struct api_call *c)
{
  AUTOPTR(checkpoint) cp = checkpoint_of_vm(c, c->p[0], c->p[1]);
  if (!cp) return -1;
  return reply(c, 200, render_checkpoint(c, cp));
}

int remove_checkpoint(struct api_call *c)
{
  if (cmd_checkpoint_remove(c->eng, c->req->user, c->p[0], c->p[1]) < 0) return -1;
  return reply(c, 200, NULL);
}

int list_checkpoint_disks(struct api_call *c)
{
  AUTOPTR(checkpoint) cp = checkpoint_of_vm(c, c->p[0], c->p[1]);
  if (!cp) return -1;
  AUTOLIST(checkpoint_disk) cds = checkpoint_disk_list_by_checkpoint(c->st, cp->id);
  if (!cds) return -1;
  struct node *n = node_new("disks");
  n->is_list = true;
  for (size_t i = 0; cds[i]; i++) {
    AUTOPTR(disk) d = disk_get(c->st, cds[i]->disk_id);
    if (!d) { error_clear(); continue; }
    node_append(n, render_disk(&c->r, d));
  }
  return reply(c, 200, n);
}
