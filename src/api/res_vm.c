/* res_vm.c: VMs: list (with search), get, add, update, remove,
 * start/stop/shutdown, migrate (live, with or without <host>). Its routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "api/search.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *vm_field(const void *obj, const char *field)
{
  const struct vm *vm = obj;
  if (strcmp(field, "name") == 0) return vm->name;
  if (strcmp(field, "id") == 0) return vm->id;
  if (strcmp(field, "status") == 0) return vm_status_to_str(vm->status);
  if (strcmp(field, "description") == 0) return vm->description;
  return NULL;
}

int list_vms(struct api_call *c)
{
  static const char *const fields[] = {"name", "id", "status", "description", NULL};
  int max;
  bool cs;
  if (query_max(c, &max) < 0 || query_bool(c, "case_sensitive", true, &cs) < 0) return -1;
  const char *q = api_query(c->req, "search");
  AUTOPTR(search) s = NULL;
  if (q && *q && !(s = search_parse(q, fields, cs))) return -1;
  AUTOLIST(vm) vms = vm_list_all(c->st);
  if (!vms) return -1;
  struct node *n = node_new("vms");
  n->is_list = true;
  int count = 0;
  for (size_t i = 0; vms[i] && (max <= 0 || count < max); i++) {
    if (s && !search_match(s, vm_field, vms[i])) continue;
    if (!api_visible(c, OBJ_VM, vms[i]->id)) continue;
    node_append(n, render_vm(&c->r, vms[i]));
    count++;
  }
  return reply(c, 200, n);
}

int get_vm(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOPTR(node) n = render_vm(&c->r, vm);
  /* oVirt's ?follow=reported_devices: the guest's addresses inline */
  const char *follow = api_query(c->req, "follow");
  if (follow && strstr(follow, "reported_devices") && add_vm_reported_devices(c, n) < 0) return -1;
  return reply(c, 200, steal_pointer(&n));
}

/* reads the VM fields a client may set; numbers stay -1 when not given */
static int vm_from_node(struct api_call *c, const struct node *b, struct vm *v,
                        struct cluster **cl, struct template **t)
{
  *v = (struct vm){.memory = -1, .sockets = -1, .cores = -1, .threads = -1};
  v->name = (char *)node_text(b, "name");
  v->description = (char *)node_text(b, "description");
  v->os_type = (char *)node_text(b, "os/type");
  v->kernel = (char *)node_text(b, "os/kernel");
  v->initrd = (char *)node_text(b, "os/initrd");
  v->cmdline = (char *)node_text(b, "os/cmdline");
  static const char *const nums[] = {"memory", "cpu/topology/sockets", "cpu/topology/cores",
                                      "cpu/topology/threads"};
  int64_t *dst[] = {&v->memory, &v->sockets, &v->cores, &v->threads};
  for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
    int r = node_get_int64(b, nums[i], dst[i]);
    if (r < 0) return -1;
    /* -1 means "not given" to the command: a given value must be positive */
    if (r == 1 && *dst[i] < 1)
      return error(ERR_INVALID, "invalid value '%lld' for '%s': expected a positive number",
                   (long long)*dst[i], nums[i]);
  }
  const struct node *cref = node_child(b, "cluster");
  if (cref) {
    if (!(*cl = resolve_cluster(c, cref, "cluster"))) return -1;
    v->cluster_id = (*cl)->id;
  }
  const struct node *tref = node_child(b, "template");
  if (tref && t) {
    if (!(*t = resolve_template(c, tref, "template"))) return -1;
    v->template_id = (*t)->id;
  }
  return 0;
}

int add_vm(struct api_call *c)
{
  const struct node *b = body_required(c, "vm");
  if (!b) return -1;
  const char *name;
  if (need_text(b, "name", "vm", &name) < 0) return -1;
  if (!node_child(b, "cluster"))
    return error(ERR_INVALID, "missing required field 'vm.cluster': add <cluster><name>Default</name></cluster>");
  AUTOPTR(cluster) cl = NULL;
  AUTOPTR(template) t = NULL;
  struct vm v;
  AUTOFREE char *boot = NULL;
  if (vm_from_node(c, b, &v, &cl, &t) < 0 || boot_devices_from_node(b, &boot) < 0) return -1;
  v.boot_devices = boot;
  AUTOFREE char *pin = NULL;
  if (vm_placement_from_node(c, b, &pin) < 0) return -1;
  v.placement_host_id = pin;
  if (!v.template_id) v.template_id = (char *)"00000000-0000-0000-0000-000000000000";
  bool clone = false;  /* oVirt: ?clone=true; <clone> in the body too */
  if (query_bool(c, "clone", false, &clone) < 0 || node_get_bool(b, "clone", &clone) < 0) return -1;
  AUTOFREE char *id = NULL;
  if (cmd_vm_add_from_template(c->eng, c->req->user, &v, clone, &id) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(c->st, id);
  if (!vm) return -1;
  return reply_created(c, render_vm(&c->r, vm));
}

int update_vm(struct api_call *c)
{
  const struct node *b = body_required(c, "vm");
  if (!b) return -1;
  AUTOPTR(cluster) cl = NULL;
  struct vm v;
  AUTOFREE char *boot = NULL;
  if (vm_from_node(c, b, &v, &cl, NULL) < 0 || boot_devices_from_node(b, &boot) < 0) return -1;
  v.boot_devices = boot;
  AUTOFREE char *pin = NULL;
  if (vm_placement_from_node(c, b, &pin) < 0) return -1;
  v.placement_host_id = pin;
  v.id = (char *)c->p[0];
  if (cmd_vm_update(c->eng, c->req->user, &v) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  return reply(c, 200, render_vm(&c->r, vm));
}

int remove_vm(struct api_call *c)
{
  bool detach_only;
  if (query_bool(c, "detach_only", false, &detach_only) < 0) return -1;
  if (cmd_vm_remove(c->eng, c->req->user, c->p[0], detach_only) < 0) return -1;
  return reply(c, 200, NULL);
}

int vm_start(struct api_call *c)
{
  if (cmd_vm_start(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

int vm_stop(struct api_call *c)
{
  if (cmd_vm_stop(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

int vm_shutdown(struct api_call *c)
{
  if (cmd_vm_shutdown(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

/* <action><host id=".."/></action>, or no host: the up host of the VM's
 * cluster with the most free memory */
int vm_migrate(struct api_call *c)
{
  const struct node *href = c->req->body ? node_child(c->req->body, "host") : NULL;
  AUTOPTR(host) h = href ? resolve_host(c, href, "action.host") : NULL;
  if (href && !h) return -1;
  if (cmd_vm_migrate(c->eng, c->req->user, c->p[0], h ? h->id : NULL) < 0) return -1;
  return reply_action(c);
}
