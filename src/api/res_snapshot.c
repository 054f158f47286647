/* res_snapshot.c: VM snapshots and disk snapshots (the volumes of a disk). Its
 * routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int list_snapshots(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOLIST(snapshot) l = snapshot_list_by_vm(c->st, vm->id);
  if (!l) return -1;
  struct node *n = node_new("snapshots");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, render_snapshot(&c->r, l[i]));
  return reply(c, 200, n);
}

/* the snapshot c->p[1] of VM c->p[0]; NULL + a 404 saying which id is expected */
static struct snapshot *vm_snapshot_get(struct api_call *c)
{
  AUTOPTR(snapshot) s = snapshot_get(c->st, c->p[1]);
  if (s && strcmp(s->vm_id, c->p[0]) == 0) return steal_pointer(&s);
  if (s || error_code() == ERR_NOT_FOUND) {
    AUTOFREE char *list = xasprintf("GET %s/vms/%s/snapshots", c->req->root, c->p[0]);
    store_id_not_found(c->st, c->p[1], "VM snapshot", list, perm_is_system_admin(c->pv));
  }
  return NULL;
}

int get_snapshot(struct api_call *c)
{
  AUTOPTR(snapshot) s = vm_snapshot_get(c);
  if (!s) return -1;
  return reply(c, 200, render_snapshot(&c->r, s));
}

int add_snapshot(struct api_call *c)
{
  const struct node *b = body_required(c, "snapshot");
  if (!b) return -1;
  bool mem = false;
  if (node_get_bool(b, "persist_memorystate", &mem) < 0) return -1;
  AUTOSTRVEC struct strvec ids = VEC_INIT;
  const struct node *das = node_child(b, "disk_attachments");
  for (size_t i = 0; das && i < das->nkids; i++) {
    const struct node *da = das->kids[i];
    const char *id = node_attr(node_child(da, "disk"), "id");
    if (!id) id = node_attr(da, "id");
    if (!id) return error(ERR_INVALID, "missing disk id in 'snapshot.disk_attachments': give "
                          "<disk_attachment><disk id=\"...\"/></disk_attachment>");
    vec_push(&ids, xstrdup(id));
  }
  if (das) vec_push(&ids, NULL);
  AUTOFREE char *id = NULL;
  if (cmd_snapshot_create(c->eng, c->req->user, c->p[0], node_text(b, "description"), mem,
                          das ? (const char *const *)ids.ptr : NULL, &id) < 0)
    return -1;
  AUTOPTR(snapshot) s = snapshot_get(c->st, id);
  if (!s) return -1;
  struct node *n = render_snapshot(&c->r, s);
  const char *href = node_attr(n, "href");
  if (href) c->resp->location = xstrdup(href);
  return reply(c, 202, n);
}

int remove_snapshot(struct api_call *c)
{
  if (cmd_snapshot_remove(c->eng, c->req->user, c->p[0], c->p[1]) < 0) return -1;
  return reply(c, 200, NULL);
}

int restore_snapshot(struct api_call *c)
{
  if (cmd_snapshot_restore(c->eng, c->req->user, c->p[0], c->p[1]) < 0) return -1;
  return reply_action(c);
}

/* the disks as they were in a snapshot: the volumes the snapshot owns (for
 * the active snapshot, the VM's active volumes) */
int list_snapshot_disks(struct api_call *c)
{
  AUTOPTR(snapshot) s = vm_snapshot_get(c);
  if (!s) return -1;
  AUTOLIST(volume) vols = volume_list_unlocked_of_snapshot(c->st, s->id);
  if (!vols) return -1;
  struct node *n = node_new("disks");
  n->is_list = true;
  for (size_t i = 0; vols[i]; i++) {
    AUTOPTR(disk) d = disk_get(c->st, vols[i]->disk_id);
    if (!d) { error_clear(); continue; }
    node_append(n, render_snapshot_disk(&c->r, vols[i], d));
  }
  return reply(c, 200, n);
}

/* renders the disk snapshots of L (a store query's list, NULL on error) the user sees */
static int list_disk_snapshots_where(struct api_call *c, struct volume **list)
{
  AUTOLIST(volume) vols = list;
  if (!vols) return -1;
  struct node *n = node_new("disk_snapshots");
  n->is_list = true;
  for (size_t i = 0; vols[i]; i++) {
    if (!api_visible(c, OBJ_DISK, vols[i]->disk_id)) continue;
    AUTOPTR(disk) d = disk_get(c->st, vols[i]->disk_id);
    if (!d) { error_clear(); continue; }
    node_append(n, render_disk_snapshot(&c->r, vols[i], d));
  }
  return reply(c, 200, n);
}

int list_disk_disksnapshots(struct api_call *c)
{
  AUTOPTR(disk) d = disk_get(c->st, c->p[0]);
  if (!d) return -1;
  bool include_active;
  if (query_bool(c, "include_active", false, &include_active) < 0) return -1;
  return list_disk_snapshots_where(c, volume_list_snapshots_of_disk(c->st, d->id, include_active));
}

int list_sd_disksnapshots(struct api_call *c)
{
  AUTOPTR(storage_domain) sd = storage_domain_get(c->st, c->p[0]);
  if (!sd) return -1;
  bool include_active;
  if (query_bool(c, "include_active", false, &include_active) < 0) return -1;
  return list_disk_snapshots_where(c, volume_list_snapshots_on_storage_domain(c->st, sd->id, include_active));
}

int get_disk_snapshot(struct api_call *c)
{
  AUTOPTR(volume) v = volume_get(c->st, c->p[1]);
  /* under /disks/{d}: a volume of that disk only; anywhere: of a disk the user sees (else the
   * same answer as for an id that does not exist) */
  bool hidden = v && ((c->req->path && strncmp(c->req->path, "/disks/", 7) == 0 && strcmp(v->disk_id, c->p[0]) != 0) ||
                      !api_visible(c, OBJ_DISK, v->disk_id));
  if ((!v && error_code() == ERR_NOT_FOUND) || hidden) {
    AUTOFREE char *list = xasprintf("GET %s/%s/%s/disksnapshots", c->req->root,
                                    strncmp(c->req->path, "/disks/", 7) == 0 ? "disks" : "storagedomains", c->p[0]);
    return store_id_not_found(c->st, c->p[1], "disk snapshot", list, perm_is_system_admin(c->pv));
  }
  if (!v) return -1;
  AUTOPTR(disk) d = disk_get(c->st, v->disk_id);
  if (!d) return -1;
  return reply(c, 200, render_disk_snapshot(&c->r, v, d));
}
