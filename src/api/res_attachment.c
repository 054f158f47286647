/* res_attachment.c: disk attachments (v4 /vms/{}/diskattachments) and oVirt
 * 3's /vms/{}/disks. Its routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int list_attachments(struct api_call *c)
{
  AUTOLIST(attachment) l = attachment_list_by_vm(c->st, c->p[0]);
  if (!l) return -1;
  /* a VM with attachments exists: only an empty list needs the second query */
  if (!l[0] && vm_count_by_id(c->st, c->p[0]) == 0)
    return error(ERR_NOT_FOUND, "VM '%s' does not exist", c->p[0]);
  struct node *n = node_new("disk_attachments");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, render_attachment(&c->r, l[i]));
  return reply(c, 200, n);
}

int get_attachment(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOPTR(attachment) a = attachment_get(c->st, c->p[0], c->p[1]);
  if (!a) return -1;
  return reply(c, 200, render_attachment(&c->r, a));
}

static int attachment_from_node(const struct node *b, struct attachment *a)
{
  *a = (struct attachment){.iface = IFACE_VIRTIO, .active = true};
  const char *iface = node_text(b, "interface");
  if (iface && (a->iface = disk_iface_from_str(iface)) < 0)
    return error(ERR_INVALID, "invalid interface '%s': use virtio, virtio_scsi or sata", iface);
  if (node_get_bool(b, "bootable", &a->bootable) < 0 || node_get_bool(b, "active", &a->active) < 0 ||
      node_get_bool(b, "read_only", &a->read_only) < 0)
    return -1;
  return 0;
}

/* shared by v4 diskattachments and v3 disks: `b` is the <disk_attachment>
 * (v4) or NULL, `dnode` the <disk> element */
static int do_attach(struct api_call *c, const struct node *b, const struct node *dnode, char **out)
{
  struct attachment a;
  if (attachment_from_node(b ? b : dnode, &a) < 0) return -1;
  a.vm_id = (char *)c->p[0];
  if (!dnode)
    return error(ERR_INVALID, "missing required field 'disk_attachment.disk': give <disk id=\"...\"/> "
                 "or a new disk with alias, provisioned_size and storage_domains");
  const char *disk_id = node_attr(dnode, "id");
  const struct node *snap = node_child(dnode, "snapshot");
  if (snap) {
    a.snapshot_id = (char *)node_attr(snap, "id");
    if (!a.snapshot_id)
      return error(ERR_INVALID, "missing snapshot id: give <snapshot id=\"...\"/> inside <disk>");
  }
  AUTOPTR(vm) vm = vm_get(c->st, a.vm_id);
  if (!vm) return -1;
  if (disk_id) {
    a.disk_id = (char *)disk_id;
    AUTOPTR(disk) d = disk_get(c->st, disk_id);
    if (!d) return -1;
    return cmd_attach(c->eng, c->req->user, &a, NULL, out);
  }
  struct disk nd;
  AUTOPTR(storage_domain) sd = NULL;
  if (disk_from_node(c, dnode, &nd, &sd) < 0) return -1;
  return cmd_attach(c->eng, c->req->user, &a, &nd, out);
}

int add_attachment(struct api_call *c)
{
  const struct node *b = body_required(c, "disk_attachment");
  if (!b) return -1;
  AUTOFREE char *disk_id = NULL;
  if (do_attach(c, b, node_child(b, "disk"), &disk_id) < 0) return -1;
  AUTOPTR(attachment) a = attachment_get(c->st, c->p[0], disk_id);
  if (!a) return -1;
  return reply_created(c, render_attachment(&c->r, a));
}

int update_attachment(struct api_call *c)
{
  const struct node *b = body_required(c, "disk_attachment");
  if (!b) return -1;
  struct attach_update u = {0};
  int r;
  if ((r = node_get_bool(b, "active", &u.active)) < 0) return -1;
  u.set_active = r;
  if ((r = node_get_bool(b, "bootable", &u.bootable)) < 0) return -1;
  u.set_bootable = r;
  if ((r = node_get_bool(b, "read_only", &u.read_only)) < 0) return -1;
  u.set_read_only = r;
  const char *iface = node_text(b, "interface");
  if (iface) {
    if ((u.iface = disk_iface_from_str(iface)) < 0)
      return error(ERR_INVALID, "invalid interface '%s': use virtio, virtio_scsi or sata", iface);
    u.set_iface = true;
  }
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  /* oVirt resizes and renames a disk through its attachment too */
  const struct node *dn = node_child(b, "disk");
  int64_t size = 0;
  if (dn) {
    int rs = node_get_int64(dn, "provisioned_size", &size);
    if (rs < 0) return -1;
    if (rs == 1 && size <= 0)
      return error(ERR_INVALID, "invalid provisioned_size %lld: give a positive number of bytes", (long long)size);
    AUTOPTR(attachment) at = attachment_get(c->st, c->p[0], c->p[1]);
    if (!at) return -1;
    if (at->snapshot_id && (size > 0 || node_text(dn, "alias")))
      return error(ERR_CONFLICT, "cannot change disk '%s' through VM '%s': it is attached as snapshot '%s' "
                   "of another VM, which never changes", c->p[1], vm->name, at->snapshot_id);
    if ((size > 0 || node_text(dn, "alias")) &&
        cmd_disk_update(c->eng, c->req->user, c->p[1], node_text(dn, "alias"), NULL, size, -1) < 0)
      return -1;
  }
  if ((u.set_active || u.set_bootable || u.set_iface || u.set_read_only) &&
      cmd_attach_update(c->eng, c->req->user, c->p[0], c->p[1], &u) < 0)
    return -1;
  AUTOPTR(attachment) a = attachment_get(c->st, c->p[0], c->p[1]);
  if (!a) return -1;
  return reply(c, 200, render_attachment(&c->r, a));
}

int remove_attachment(struct api_call *c)
{
  bool detach_only;
  if (query_bool(c, "detach_only", true, &detach_only) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  if (cmd_detach(c->eng, c->req->user, c->p[0], c->p[1], detach_only) < 0) return -1;
  return reply(c, 200, NULL);
}

/* ---- v3: /vms/{id}/disks ---- */

int v3_list_vm_disks(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOLIST(attachment) l = attachment_list_by_vm(c->st, c->p[0]);
  if (!l) return -1;
  struct node *n = node_new("disks");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) {
    AUTOPTR(disk) d = disk_get(c->st, l[i]->disk_id);
    if (!d) return node_free(n), -1;
    node_append(n, render_vm_disk_v3(&c->r, l[i], d));
  }
  return reply(c, 200, n);
}

int v3_get_vm_disk(struct api_call *c)
{
  AUTOPTR(attachment) a = attachment_get(c->st, c->p[0], c->p[1]);
  if (!a) return -1;
  AUTOPTR(disk) d = disk_get(c->st, a->disk_id);
  if (!d) return -1;
  return reply(c, 200, render_vm_disk_v3(&c->r, a, d));
}

int v3_add_vm_disk(struct api_call *c)
{
  const struct node *b = body_required(c, "disk");
  if (!b) return -1;
  AUTOFREE char *disk_id = NULL;
  if (do_attach(c, NULL, b, &disk_id) < 0) return -1;
  AUTOPTR(attachment) a = attachment_get(c->st, c->p[0], disk_id);
  AUTOPTR(disk) d = a ? disk_get(c->st, disk_id) : NULL;
  if (!d) return -1;
  return reply_created(c, render_vm_disk_v3(&c->r, a, d));
}

/* oVirt 3: DELETE with <action><detach>true</detach></action> only detaches;
 * without it the disk is removed from the whole setup, from every VM */
int v3_remove_vm_disk(struct api_call *c)
{
  bool detach = false;
  const struct node *b = c->req->body;
  if (b && node_get_bool(b, "detach", &detach) < 0) return -1;
  if (cmd_vm_disk_remove_v3(c->eng, c->req->user, c->p[0], c->p[1], detach) < 0) return -1;
  return reply(c, 200, NULL);
}
