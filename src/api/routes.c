/* routes.c: the one REST route table and its handlers.
 *
 * api_handle() matches the path against ROUTES: a pattern segment "{}" takes
 * any id. No pattern -> 404; a pattern with another method -> 405, both from
 * here only. Handlers turn the request node into command arguments (shape
 * and type errors are 400s raised here), run the command through the
 * dispatcher (cmd/), and render the result (render.c). GETs read the store. */
#include "api/api.h"
#include "api/call.h"
#include "api/render.h"
#include "api/resources.h"
#include "api/search.h"
#include "cmd/commands.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/resources.h"

struct route {
  const char *method;
  const char *pattern;
  api_handler fn;
  struct route_rule rule;      /* the permission it needs (call.h) */
};

const char *api_query(const struct api_request *req, const char *name)
{
  for (const struct api_param *q = req->query; q && q->name; q++)
    if (strcmp(q->name, name) == 0) return q->value;
  return NULL;
}

int query_bool(struct api_call *c, const char *name, bool dflt, bool *out)
{
  const char *v = api_query(c->req, name);
  if (!v || !*v) { *out = dflt; return 0; }
  if (strcmp(v, "true") == 0) { *out = true; return 0; }
  if (strcmp(v, "false") == 0) { *out = false; return 0; }
  return error(ERR_INVALID, "invalid value '%s' for parameter '%s': expected true or false", v, name);
}

static int query_max(struct api_call *c, int *out)
{
  const char *v = api_query(c->req, "max");
  *out = 0;
  if (!v || !*v) return 0;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < -1) return error(ERR_INVALID, "invalid value '%s' for parameter 'max': expected a whole number", v);
  *out = n < 0 ? 0 : (int)n;
  return 0;
}

/* ---- responses ---- */

int reply(struct api_call *c, int status, struct node *n)
{
  c->resp->status = status;
  c->resp->body = n;
  return 0;
}

int reply_created(struct api_call *c, struct node *n)
{
  const char *href = node_attr(n, "href");
  if (href) c->resp->location = xstrdup(href);
  return reply(c, 201, n);
}

/* <action><status>complete</status></action>, what the SDK waits for */
int reply_action(struct api_call *c)
{
  struct node *n = node_new("action");
  node_add_text(n, "status", "complete");
  return reply(c, 200, n);
}

const struct node *body_required(struct api_call *c, const char *elem)
{
  const struct node *b = c->req->body;
  if (!b)
    return error(ERR_INVALID, "missing request body: send a <%s> element", elem), NULL;
  /* JSON bodies have no root name; XML must name the right element */
  if (strcmp(b->name, elem) != 0 && strcmp(b->name, "request") != 0)
    return error(ERR_INVALID, "wrong request body: expected a <%s> element, got <%s>", elem, b->name), NULL;
  return b;
}

static int need_text(const struct node *n, const char *path, const char *elem, const char **out)
{
  *out = node_text(n, path);
  if (!*out)
    return error(ERR_INVALID, "missing required field '%s.%s': add <%s> to the <%s> element",
                 elem, path, path, elem);
  return 0;
}

/* resolves a reference given by id attribute or by <name> child */
#define DEFINE_RESOLVE(T, kind, obj)                                                           \
  static struct T *resolve_##T(struct api_call *c, const struct node *ref, const char *what)   \
  {                                                                                            \
    const char *id = node_attr(ref, "id");                                                     \
    if (id && perm_require(c->pv, PERMIT_VIEW, obj, id, "refer to") < 0) return NULL;          \
    if (id) return T##_get(c->st, id);                                                         \
    const char *name = node_text(ref, "name");                                                 \
    if (!name)                                                                                 \
      return error(ERR_INVALID, "missing %s: give <%s id=\"...\"/> or <%s><name>...</name></%s>", \
                   what, what, what, what), NULL;                                              \
    const char *params[] = {name};                                                             \
    AUTOLIST(T) l = T##_list(c->st, "name = ?", params, 1, NULL, 1);                           \
    if (!l) return NULL;                                                                       \
    if (!l[0] || !api_visible(c, obj, l[0]->id))                                              \
      return error(ERR_NOT_FOUND, kind " named '%s' does not exist", name), NULL;              \
    struct T *found = l[0];                                                                    \
    l[0] = NULL;                                                                               \
    return found;                                                                              \
  }
DEFINE_RESOLVE(cluster, "cluster", OBJ_CLUSTER)
DEFINE_RESOLVE(template, "template", OBJ_TEMPLATE)
DEFINE_RESOLVE(storage_domain, "storage domain", OBJ_STORAGE_DOMAIN)
DEFINE_RESOLVE(host, "host", OBJ_HOST)
DEFINE_RESOLVE(vm, "VM", OBJ_VM)

/* ---- root and read-only collections ---- */

static int api_root(struct api_call *c)
{
  struct node *n = node_new("api");
  render_links(n, "", c->r.root); /* every collection with a GET route */
  AUTOFREE char *search_href = render_href(&c->r, "/vms?search={query}");
  node_add_link(n, "vms/search", search_href);
  struct node *pi = node_add(n, "product_info");
  node_add_text(pi, "instance_id", "snapback");
  node_add_text(pi, "name", "snapback");
  node_add_text(pi, "vendor", "snapback");
  struct node *v = node_add(pi, "version");
  node_add_text(v, "build", "0");
  node_add_text(v, "full_version", "4.5.0-snapback-0.1.0");
  node_add_text(v, "major", "4");
  node_add_text(v, "minor", "5");
  node_add_text(v, "revision", "0");
  struct node *so = node_add(n, "special_objects");
  AUTOFREE char *blank = render_href(&c->r, "/templates/00000000-0000-0000-0000-000000000000");
  node_add_ref(so, "blank_template", "00000000-0000-0000-0000-000000000000", blank);
  struct node *sum = node_add(n, "summary");
  struct node *vms = node_add(sum, "vms");
  if (perm_is_system_admin(c->pv)) {
    node_add_int(vms, "active", vm_count(c->st, "status <> 'down'", NULL, 0));
    node_add_int(vms, "total", vm_count(c->st, NULL, NULL, 0));
  } else {
    /* only the VMs this user sees */
    AUTOLIST(vm) all = vm_list(c->st, NULL, NULL, 0, NULL, 0);
    int64_t active = 0, total = 0;
    for (size_t i = 0; all && all[i]; i++)
      if (api_visible(c, OBJ_VM, all[i]->id)) {
        total++;
        if (all[i]->status != VM_DOWN) active++;
      }
    node_add_int(vms, "active", active);
    node_add_int(vms, "total", total);
  }
  char now[32];
  time_format_iso(now_ms(), now);
  node_add_text(n, "time", now);
  struct node *user = node_add(n, "authenticated_user");
  AUTOFREE char *uhref = render_href(&c->r, "/users/%s", c->req->user->id);
  node_set_attr(user, "href", uhref);
  node_set_attr(user, "id", c->req->user->id);
  return reply(c, 200, n);
}

/* list/get handlers for the simple collections */
/* a job, a transfer: its creator's, and visible to system administrators */
static bool owned(struct api_call *c, const char *user_id)
{
  return (user_id && strcmp(user_id, c->req->user->id) == 0) || perm_is_system_admin(c->pv);
}

static bool job_visible(struct api_call *c, const struct job *j) { return owned(c, j->user_id); }
#define DEFINE_VISIBLE(T, OBJ) \
  static bool T##_visible(struct api_call *c, const struct T *x) { return api_visible(c, OBJ, x->id); }
DEFINE_VISIBLE(datacenter, OBJ_DATACENTER)
DEFINE_VISIBLE(cluster, OBJ_CLUSTER)
DEFINE_VISIBLE(template, OBJ_TEMPLATE)
DEFINE_VISIBLE(host, OBJ_HOST)
DEFINE_VISIBLE(storage_domain, OBJ_STORAGE_DOMAIN)
DEFINE_VISIBLE(disk, OBJ_DISK)

/* list/get handlers for the simple collections: a list shows what the user
 * sees (T_visible), a get of anything else is a 404. The route table checked
 * the get already; the check here keeps the handler honest on its own. */
#define DEFINE_LIST_GET(T, kind, coll_elem, order)                                    \
  static int list_##T(struct api_call *c)                                             \
  {                                                                                   \
    int max;                                                                          \
    if (query_max(c, &max) < 0) return -1;                                            \
    AUTOLIST(T) l = T##_list(c->st, NULL, NULL, 0, order, 0);                         \
    if (!l) return -1;                                                                \
    struct node *n = node_new(coll_elem);                                             \
    n->is_list = true;                                                                \
    int count = 0;                                                                    \
    for (size_t i = 0; l[i] && (max <= 0 || count < max); i++) {                      \
      if (!T##_visible(c, l[i])) continue;                                            \
      node_append(n, render_##T(&c->r, l[i]));                                        \
      count++;                                                                        \
    }                                                                                 \
    return reply(c, 200, n);                                                          \
  }                                                                                   \
  static int get_##T(struct api_call *c)                                              \
  {                                                                                   \
    AUTOPTR(T) x = T##_get(c->st, c->p[0]);                                           \
    if (!x) return -1;                                                                \
    if (!T##_visible(c, x)) return error(ERR_NOT_FOUND, kind " '%s' does not exist", c->p[0]); \
    return reply(c, 200, render_##T(&c->r, x));                                       \
  }
DEFINE_LIST_GET(datacenter, "data center", "data_centers", "name")
DEFINE_LIST_GET(cluster, "cluster", "clusters", "name")
DEFINE_LIST_GET(template, "template", "templates", "name")
DEFINE_LIST_GET(host, "host", "hosts", "name")
DEFINE_LIST_GET(storage_domain, "storage domain", "storage_domains", "name")
DEFINE_LIST_GET(disk, "disk", "disks", "alias")
DEFINE_LIST_GET(job, "job", "jobs", "start_ms DESC")

/* ---- hosts ---- */

static int host_deactivate(struct api_call *c)
{
  if (cmd_host_deactivate(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

static int host_activate(struct api_call *c)
{
  if (cmd_host_activate(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

/* ---- storage domains ---- */

static int add_storage_domain(struct api_call *c)
{
  const struct node *b = body_required(c, "storage_domain");
  if (!b) return -1;
  const char *name, *path;
  if (need_text(b, "name", "storage_domain", &name) < 0 ||
      need_text(b, "storage/path", "storage_domain", &path) < 0)
    return -1;
  const char *type = node_text(b, "type");
  if (type && strcmp(type, "data") != 0)
    return error(ERR_INVALID, "unsupported storage domain type '%s': only 'data' is supported", type);
  const char *stype = node_text(b, "storage/type");
  if (stype && strcmp(stype, "localfs") != 0 && strcmp(stype, "posixfs") != 0 && strcmp(stype, "nfs") != 0)
    return error(ERR_INVALID, "unsupported storage type '%s': use 'localfs' with a directory path", stype);
  AUTOFREE char *id = NULL;
  if (cmd_sd_add(c->eng, c->req->user, name, path, &id) < 0) return -1;
  AUTOPTR(storage_domain) sd = storage_domain_get(c->st, id);
  if (!sd) return -1;
  return reply_created(c, render_storage_domain(&c->r, sd));
}

static int remove_storage_domain(struct api_call *c)
{
  if (cmd_sd_remove(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply(c, 200, NULL);
}

/* ---- VMs ---- */

static const char *vm_field(const void *obj, const char *field)
{
  const struct vm *vm = obj;
  if (strcmp(field, "name") == 0) return vm->name;
  if (strcmp(field, "id") == 0) return vm->id;
  if (strcmp(field, "status") == 0) return vm_status_to_str(vm->status);
  if (strcmp(field, "description") == 0) return vm->description;
  return NULL;
}

static int list_vms(struct api_call *c)
{
  static const char *const fields[] = {"name", "id", "status", "description", NULL};
  int max;
  bool cs;
  if (query_max(c, &max) < 0 || query_bool(c, "case_sensitive", true, &cs) < 0) return -1;
  const char *q = api_query(c->req, "search");
  AUTOPTR(search) s = NULL;
  if (q && *q && !(s = search_parse(q, fields, cs))) return -1;
  AUTOLIST(vm) vms = vm_list(c->st, NULL, NULL, 0, "name", 0);
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

static int get_vm(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  return reply(c, 200, render_vm(&c->r, vm));
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

static int add_vm(struct api_call *c)
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
  if (vm_from_node(c, b, &v, &cl, &t) < 0) return -1;
  if (!v.template_id) v.template_id = (char *)"00000000-0000-0000-0000-000000000000";
  bool clone = false;  /* oVirt: ?clone=true; <clone> in the body too */
  if (query_bool(c, "clone", false, &clone) < 0 || node_get_bool(b, "clone", &clone) < 0) return -1;
  AUTOFREE char *id = NULL;
  if (cmd_vm_add_from_template(c->eng, c->req->user, &v, clone, &id) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(c->st, id);
  if (!vm) return -1;
  return reply_created(c, render_vm(&c->r, vm));
}

static int update_vm(struct api_call *c)
{
  const struct node *b = body_required(c, "vm");
  if (!b) return -1;
  AUTOPTR(cluster) cl = NULL;
  struct vm v;
  if (vm_from_node(c, b, &v, &cl, NULL) < 0) return -1;
  v.id = (char *)c->p[0];
  if (cmd_vm_update(c->eng, c->req->user, &v) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  return reply(c, 200, render_vm(&c->r, vm));
}

static int remove_vm(struct api_call *c)
{
  bool detach_only;
  if (query_bool(c, "detach_only", false, &detach_only) < 0) return -1;
  if (cmd_vm_remove(c->eng, c->req->user, c->p[0], detach_only) < 0) return -1;
  return reply(c, 200, NULL);
}

static int vm_start(struct api_call *c)
{
  if (cmd_vm_start(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

static int vm_stop(struct api_call *c)
{
  if (cmd_vm_stop(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

static int vm_shutdown(struct api_call *c)
{
  if (cmd_vm_shutdown(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

static int vm_migrate(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  /* the snapshot rule comes before any other, as in oVirt */
  const char *params[] = {vm->id};
  AUTOLIST(attachment) pinned = attachment_list(c->st, "vm_id = ? AND plugged = 1 AND snapshot_id IS NOT NULL",
                                                params, 1, NULL, 1);
  if (!pinned) return -1;
  if (pinned[0])
    return error(ERR_CONFLICT, "cannot migrate VM '%s': snapshot '%s' of disk '%s' is plugged into "
                 "it; detach it first", vm->name, pinned[0]->snapshot_id, pinned[0]->disk_id);
  if (backup_check_vm(c->st, vm->id, "migrate VM", vm->name) < 0) return -1;
  if (vm->status == VM_DOWN)
    return error(ERR_CONFLICT, "cannot migrate VM '%s': it is not running", vm->name);
  return error(ERR_CONFLICT, "cannot migrate VM '%s': there is no other host in cluster to migrate to",
               vm->name);
}

static int list_snapshots(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  const char *params[] = {vm->id};
  AUTOLIST(snapshot) l = snapshot_list(c->st, "vm_id = ?", params, 1, "date_ms", 0);
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

static int get_snapshot(struct api_call *c)
{
  AUTOPTR(snapshot) s = vm_snapshot_get(c);
  if (!s) return -1;
  return reply(c, 200, render_snapshot(&c->r, s));
}

static int add_snapshot(struct api_call *c)
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

static int remove_snapshot(struct api_call *c)
{
  if (cmd_snapshot_remove(c->eng, c->req->user, c->p[0], c->p[1]) < 0) return -1;
  return reply(c, 200, NULL);
}

static int restore_snapshot(struct api_call *c)
{
  if (cmd_snapshot_restore(c->eng, c->req->user, c->p[0], c->p[1]) < 0) return -1;
  return reply_action(c);
}

/* the disks as they were in a snapshot: the volumes the snapshot owns (for
 * the active snapshot, the VM's active volumes) */
static int list_snapshot_disks(struct api_call *c)
{
  AUTOPTR(snapshot) s = vm_snapshot_get(c);
  if (!s) return -1;
  const char *params[] = {s->id};
  AUTOLIST(volume) vols = volume_list(c->st, "snapshot_id = ? AND status <> 'locked'", params, 1, NULL, 0);
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

static int list_disk_snapshots_where(struct api_call *c, const char *where, const char *const *params, int np)
{
  AUTOLIST(volume) vols = volume_list(c->st, where, params, np, NULL, 0);
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

static int list_disk_disksnapshots(struct api_call *c)
{
  AUTOPTR(disk) d = disk_get(c->st, c->p[0]);
  if (!d) return -1;
  bool include_active;
  if (query_bool(c, "include_active", false, &include_active) < 0) return -1;
  const char *params[] = {d->id};
  return list_disk_snapshots_where(c, include_active ? "disk_id = ? AND status <> 'locked'"
                                                     : "disk_id = ? AND active = 0 AND status <> 'locked'",
                                   params, 1);
}

static int list_sd_disksnapshots(struct api_call *c)
{
  AUTOPTR(storage_domain) sd = storage_domain_get(c->st, c->p[0]);
  if (!sd) return -1;
  bool include_active;
  if (query_bool(c, "include_active", false, &include_active) < 0) return -1;
  const char *params[] = {sd->id};
  return list_disk_snapshots_where(
      c, include_active ? "status <> 'locked' AND disk_id IN (SELECT id FROM disks WHERE storage_domain_id = ?)"
                        : "active = 0 AND status <> 'locked' AND disk_id IN (SELECT id FROM disks WHERE storage_domain_id = ?)",
      params, 1);
}

static int get_disk_snapshot(struct api_call *c)
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

/* ---- disks ---- */

/* fills d from a <disk> node; required fields checked here */
static int disk_from_node(struct api_call *c, const struct node *b, struct disk *d,
                          struct storage_domain **sd)
{
  *d = (struct disk){.format = DISK_FORMAT_COW, .sparse = true};
  d->alias = (char *)node_text(b, "alias");
  if (!d->alias) d->alias = (char *)node_text(b, "name");
  if (!d->alias)
    return error(ERR_INVALID, "missing required field 'disk.alias': name the disk with <alias>");
  d->description = (char *)node_text(b, "description");
  int r = node_get_int64(b, "provisioned_size", &d->provisioned_size);
  if (r < 0) return -1;
  if (r == 0 && node_get_int64(b, "size", &d->provisioned_size) <= 0)
    return error(ERR_INVALID, "missing required field 'disk.provisioned_size': give the size in bytes");
  const char *fmt = node_text(b, "format");
  if (fmt && (d->format = disk_format_from_str(fmt)) < 0)
    return error(ERR_INVALID, "invalid disk format '%s': use 'cow' or 'raw'", fmt);
  if (node_get_bool(b, "sparse", &d->sparse) < 0 || node_get_bool(b, "shareable", &d->shareable) < 0)
    return -1;
  if (d->shareable && d->format == DISK_FORMAT_COW)
    return error(ERR_INVALID, "a shareable disk must use format 'raw'");
  if (disk_backup_from_node(b, &d->backup) < 0) return -1;
  if (d->backup < 0) d->backup = DISK_BACKUP_NONE;
  const struct node *sds = node_child(b, "storage_domains");
  const struct node *sdref = sds ? node_child(sds, "storage_domain") : node_child(b, "storage_domain");
  if (!sdref)
    return error(ERR_INVALID, "missing required field 'disk.storage_domains': add "
                 "<storage_domains><storage_domain><name>data</name></storage_domain></storage_domains>");
  if (!(*sd = resolve_storage_domain(c, sdref, "storage_domain"))) return -1;
  d->storage_domain_id = (*sd)->id;
  return 0;
}

static int add_disk(struct api_call *c)
{
  const struct node *b = body_required(c, "disk");
  if (!b) return -1;
  struct disk d;
  AUTOPTR(storage_domain) sd = NULL;
  if (disk_from_node(c, b, &d, &sd) < 0) return -1;
  AUTOFREE char *id = NULL;
  if (cmd_disk_add(c->eng, c->req->user, &d, &id) < 0) return -1;
  AUTOPTR(disk) disk = disk_get(c->st, id);
  if (!disk) return -1;
  return reply_created(c, render_disk(&c->r, disk));
}

static int update_disk(struct api_call *c)
{
  const struct node *b = body_required(c, "disk");
  if (!b) return -1;
  int64_t size = 0;
  int r = node_get_int64(b, "provisioned_size", &size);
  if (r < 0) return -1;
  if (r == 1 && size <= 0)
    return error(ERR_INVALID, "invalid provisioned_size %lld: give a positive number of bytes", (long long)size);
  int backup;
  if (disk_backup_from_node(b, &backup) < 0) return -1;
  if (cmd_disk_update(c->eng, c->req->user, c->p[0], node_text(b, "alias"), node_text(b, "description"),
                      size, backup) < 0)
    return -1;
  AUTOPTR(disk) d = disk_get(c->st, c->p[0]);
  if (!d) return -1;
  return reply(c, 200, render_disk(&c->r, d));
}

static int move_disk(struct api_call *c)
{
  const struct node *b = body_required(c, "action");
  if (!b) return -1;
  const struct node *sdref = node_child(b, "storage_domain");
  if (!sdref) return error(ERR_INVALID, "missing required field 'action.storage_domain': name the target domain");
  AUTOPTR(storage_domain) sd = resolve_storage_domain(c, sdref, "storage_domain");
  if (!sd) return -1;
  if (cmd_disk_move(c->eng, c->req->user, c->p[0], sd->id) < 0) return -1;
  return reply_action(c);
}

static int remove_disk(struct api_call *c)
{
  if (cmd_disk_remove(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply(c, 200, NULL);
}

/* ---- disk attachments ---- */

static int list_attachments(struct api_call *c)
{
  const char *params[] = {c->p[0]};
  AUTOLIST(attachment) l = attachment_list(c->st, "vm_id = ?", params, 1, "position", 0);
  if (!l) return -1;
  /* a VM with attachments exists: only an empty list needs the second query */
  if (!l[0] && vm_count(c->st, "id = ?", params, 1) == 0)
    return error(ERR_NOT_FOUND, "VM '%s' does not exist", c->p[0]);
  struct node *n = node_new("disk_attachments");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, render_attachment(&c->r, l[i]));
  return reply(c, 200, n);
}

static int get_attachment(struct api_call *c)
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

static int add_attachment(struct api_call *c)
{
  const struct node *b = body_required(c, "disk_attachment");
  if (!b) return -1;
  AUTOFREE char *disk_id = NULL;
  if (do_attach(c, b, node_child(b, "disk"), &disk_id) < 0) return -1;
  AUTOPTR(attachment) a = attachment_get(c->st, c->p[0], disk_id);
  if (!a) return -1;
  return reply_created(c, render_attachment(&c->r, a));
}

static int update_attachment(struct api_call *c)
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

static int remove_attachment(struct api_call *c)
{
  bool detach_only;
  if (query_bool(c, "detach_only", true, &detach_only) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  if (cmd_detach(c->eng, c->req->user, c->p[0], c->p[1], detach_only) < 0) return -1;
  return reply(c, 200, NULL);
}

/* ---- v3: /vms/{id}/disks ---- */

static int v3_list_vm_disks(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  const char *params[] = {c->p[0]};
  AUTOLIST(attachment) l = attachment_list(c->st, "vm_id = ?", params, 1, "position", 0);
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

static int v3_get_vm_disk(struct api_call *c)
{
  AUTOPTR(attachment) a = attachment_get(c->st, c->p[0], c->p[1]);
  if (!a) return -1;
  AUTOPTR(disk) d = disk_get(c->st, a->disk_id);
  if (!d) return -1;
  return reply(c, 200, render_vm_disk_v3(&c->r, a, d));
}

static int v3_add_vm_disk(struct api_call *c)
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
static int v3_remove_vm_disk(struct api_call *c)
{
  bool detach = false;
  const struct node *b = c->req->body;
  if (b && node_get_bool(b, "detach", &detach) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOPTR(attachment) a = attachment_get(c->st, c->p[0], c->p[1]);
  if (!a) return -1;
  if (detach || a->snapshot_id) {
    if (cmd_detach(c->eng, c->req->user, c->p[0], c->p[1], true) < 0) return -1;
    return reply(c, 200, NULL);
  }
  const char *params[] = {c->p[1]};
  AUTOLIST(attachment) all = attachment_list(c->st, "disk_id = ? AND snapshot_id IS NULL", params, 1, NULL, 0);
  if (!all) return -1;
  for (size_t i = 0; all[i]; i++)
    if (cmd_detach(c->eng, c->req->user, all[i]->vm_id, c->p[1], true) < 0) return -1;
  if (cmd_disk_remove(c->eng, c->req->user, c->p[1]) < 0) return -1;
  return reply(c, 200, NULL);
}

/* ---- events ---- */

/* an event is visible to whoever sees its VM, to the user it names, and to
 * system administrators */
static bool event_visible(struct api_call *c, const struct event *e)
{
  if (perm_is_system_admin(c->pv)) return true;
  if (e->user_id && strcmp(e->user_id, c->req->user->id) == 0) return true;
  return e->vm_id && api_visible(c, OBJ_VM, e->vm_id);
}

static int list_events(struct api_call *c)
{
  int max;
  if (query_max(c, &max) < 0) return -1;
  const char *from = api_query(c->req, "from");
  char *end = NULL;
  long long from_id = from ? strtoll(from, &end, 10) : 0;
  if (from && (*end || from_id < 0))
    return error(ERR_INVALID, "invalid value '%s' for parameter 'from': expected an event id", from);
  char fid[32];
  snprintf(fid, sizeof fid, "%lld", from_id);
  const char *params[] = {fid};
  AUTOLIST(event) l = event_list(c->st, from ? "id > ?" : NULL, from ? params : NULL, from ? 1 : 0,
                                 "id DESC", max);
  if (!l) return -1;
  struct node *n = node_new("events");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++)
    if (event_visible(c, l[i])) node_append(n, render_event(&c->r, l[i]));
  return reply(c, 200, n);
}

static int get_event(struct api_call *c)
{
  char *end;
  long long id = strtoll(c->p[0], &end, 10);
  if (*end || id <= 0) return error(ERR_NOT_FOUND, "event '%s' does not exist", c->p[0]);
  AUTOPTR(event) e = event_get(c->st, id);
  if (!e) return -1;
  if (!event_visible(c, e)) return error(ERR_NOT_FOUND, "event '%s' does not exist", c->p[0]);
  return reply(c, 200, render_event(&c->r, e));
}

static int add_event(struct api_call *c)
{
  const struct node *b = body_required(c, "event");
  if (!b) return -1;
  struct event ev = {.custom_id = -1, .severity = SEVERITY_NORMAL};
  if (node_get_int64(b, "custom_id", &ev.custom_id) < 0) return -1;
  ev.description = (char *)node_text(b, "description");
  ev.origin = (char *)node_text(b, "origin");
  const char *sev = node_text(b, "severity");
  if (sev && (ev.severity = event_severity_from_str(sev)) < 0)
    return error(ERR_INVALID, "invalid severity '%s': use normal, warning, error or alert", sev);
  const struct node *vmref = node_child(b, "vm");
  if (vmref) {
    ev.vm_id = (char *)node_attr(vmref, "id");
    if (!ev.vm_id) return error(ERR_INVALID, "missing VM id: give <vm id=\"...\"/>");
  }
  if (cmd_event_add(c->eng, c->req->user, &ev) < 0) return -1;
  AUTOPTR(event) e = event_get(c->st, ev.id);
  if (!e) return -1;
  return reply_created(c, render_event(&c->r, e));
}



/* ---- image transfers (cmd/transfer.c; the data path is http/imageio.c) ---- */

/* <image_transfer><direction>download</direction><format>raw</format>
 * <snapshot id="VOLUME"/> | <disk id="DISK"/> [<inactivity_timeout>S</...>] */
static int add_image_transfer(struct api_call *c)
{
  const struct node *b = body_required(c, "image_transfer");
  if (!b) return -1;
  struct transfer_spec spec = {.direction = TRANSFER_UPLOAD, .format = DISK_FORMAT_RAW};
  const char *dir = node_text(b, "direction");
  if (dir && (spec.direction = transfer_direction_from_str(dir)) < 0)
    return error(ERR_INVALID, "invalid direction '%s': use 'download' or 'upload'", dir);
  const char *fmt = node_text(b, "format");
  if (fmt && (spec.format = disk_format_from_str(fmt)) < 0)
    return error(ERR_INVALID, "invalid format '%s': use 'raw'", fmt);
  int r = node_get_int64(b, "inactivity_timeout", &spec.inactivity_timeout);
  if (r < 0) return -1;
  if (r == 1 && spec.inactivity_timeout <= 0)
    return error(ERR_INVALID, "invalid inactivity_timeout %lld: give a positive number of seconds",
                 (long long)spec.inactivity_timeout);
  const struct node *backup = node_child(b, "backup");
  const char *backup_id = backup ? node_attr(backup, "id") : NULL;
  if (backup && !backup_id) return error(ERR_INVALID, "missing backup id: give <backup id=\"...\"/>");
  const struct node *snap = node_child(b, "snapshot");
  if (snap && !(spec.volume_id = node_attr(snap, "id")))
    return error(ERR_INVALID, "missing disk snapshot id: give <snapshot id=\"...\"/>");
  const struct node *disk = node_child(b, "disk");
  if (!disk) disk = node_child(b, "image"); /* oVirt 4.0's name for the disk */
  if (disk && !(spec.disk_id = node_attr(disk, "id")))
    return error(ERR_INVALID, "missing disk id: give <disk id=\"...\"/>");
  if (!spec.volume_id && !spec.disk_id)
    return error(ERR_INVALID, "missing required field 'image_transfer.disk' or "
                 "'image_transfer.snapshot': give <disk id=\"...\"/> or <snapshot id=\"...\"/>");
  /* a test hook until backups exist (SNAPBACKD_TEST_HOOKS): the sources a
   * backup's transfer takes (transfer_source): a volume exposing one of its
   * persistent bitmaps, or an NBD server that runs already */
  bool hooks = getenv("SNAPBACKD_TEST_HOOKS") != NULL;
  const char *bitmap = hooks ? node_text(b, "test_bitmap") : NULL;
  const char *sock = hooks ? node_text(b, "test_nbd_socket") : NULL;
  struct transfer_source src = {
    .volume_id = sock ? NULL : spec.volume_id, .bitmap = bitmap, .socket_path = sock,
    .export_name = sock ? node_text(b, "test_export_name") : NULL,
    .dirty_context = sock ? node_text(b, "test_dirty_context") : NULL,
  };
  if (bitmap || sock) spec.source = &src;
  AUTOFREE char *id = NULL;
  if (backup_id ? cmd_backup_transfer(c->eng, c->req->user, backup_id, &spec, &id) < 0
                : cmd_transfer_create(c->eng, c->req->user, &spec, &id) < 0)
    return -1;
  AUTOPTR(image_transfer) t = image_transfer_get(c->st, id);
  if (!t) return -1;
  return reply_created(c, render_image_transfer(&c->r, t, c->req->base_url));
}

static int list_image_transfers(struct api_call *c)
{
  int max;
  if (query_max(c, &max) < 0) return -1;
  AUTOLIST(image_transfer) l = image_transfer_list(c->st, NULL, NULL, 0, NULL, 0);
  if (!l) return -1;
  struct node *n = node_new("image_transfers");
  n->is_list = true;
  int count = 0;
  for (size_t i = 0; l[i] && (max <= 0 || count < max); i++) {
    if (!owned(c, l[i]->user_id)) continue;
    node_append(n, render_image_transfer(&c->r, l[i], c->req->base_url));
    count++;
  }
  return reply(c, 200, n);
}

/* an image transfer and its ticket belong to the user who made it */
static struct image_transfer *own_transfer(struct api_call *c, const char *action)
{
  AUTOPTR(image_transfer) t = image_transfer_get(c->st, c->p[0]);
  if (!t) return NULL;
  if (!owned(c, t->user_id)) {
    engine_event(c->eng, SEVERITY_WARNING, EV_PERMISSION_DENIED, c->req->user, NULL,
                 "permission denied: user '%s' may not %s image transfer '%s' of another user",
                 c->req->user->name, action, c->p[0]);
    return error(ERR_NOT_FOUND, "image transfer '%s' does not exist", c->p[0]), NULL;
  }
  return steal_pointer(&t);
}

static int get_image_transfer(struct api_call *c)
{
  AUTOPTR(image_transfer) t = own_transfer(c, "read");
  if (!t) return -1;
  return reply(c, 200, render_image_transfer(&c->r, t, c->req->base_url));
}

static int image_transfer_finalize(struct api_call *c)
{
  AUTOPTR(image_transfer) t = own_transfer(c, "finalize");
  if (!t || cmd_transfer_finalize(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

static int image_transfer_cancel(struct api_call *c)
{
  AUTOPTR(image_transfer) t = own_transfer(c, "cancel");
  if (!t || cmd_transfer_cancel(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

/* ---- OVA export/import, templates ---- */

/* <action><host/><directory>/abs</directory><filename>x.ova</filename></action> */
static int vm_export_ova(struct api_call *c)
{
  const struct node *b = body_required(c, "action");
  if (!b) return -1;
  const char *dir, *file;
  if (need_text(b, "directory", "action", &dir) < 0 || need_text(b, "filename", "action", &file) < 0)
    return -1;
  const struct node *href = node_child(b, "host");
  if (!href) return error(ERR_INVALID, "missing required field 'action.host': name the host that writes the file");
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  AUTOPTR(host) h = vm ? resolve_host(c, href, "host") : NULL;
  if (!h) return -1;
  AUTOFREE char *job = NULL;
  if (cmd_vm_export_ova(c->eng, c->req->user, vm->id, h->id, dir, file, &job) < 0) return -1;
  struct node *n = node_new("action");
  AUTOFREE char *jhref = render_href(&c->r, "/jobs/%s", job);
  node_add_ref(n, "job", job, jhref);
  node_add_text(n, "status", "complete");
  return reply(c, 200, n);
}

static int add_external_vm_import(struct api_call *c)
{
  const struct node *b = body_required(c, "external_vm_import");
  if (!b) return -1;
  const char *provider, *url;
  if (need_text(b, "provider", "external_vm_import", &provider) < 0 ||
      need_text(b, "url", "external_vm_import", &url) < 0)
    return -1;
  if (strcmp(provider, "ova") != 0)
    return error(ERR_INVALID, "unsupported provider '%s': only 'ova' is supported", provider);
  if (!node_child(b, "cluster") || !node_child(b, "storage_domain"))
    return error(ERR_INVALID, "missing required field: give <cluster> and <storage_domain>");
  AUTOPTR(cluster) cl = resolve_cluster(c, node_child(b, "cluster"), "cluster");
  AUTOPTR(storage_domain) sd = cl ? resolve_storage_domain(c, node_child(b, "storage_domain"), "storage_domain") : NULL;
  if (!sd) return -1;
  AUTOFREE char *vm_id = NULL, *job = NULL;
  if (cmd_vm_import_ova(c->eng, c->req->user, url, node_text(b, "name"), cl->id, sd->id, &vm_id, &job) < 0)
    return -1;
  struct node *n = node_new("external_vm_import");
  node_add_text(n, "provider", "ova");
  node_add_text(n, "url", url);
  node_add_text(n, "name", node_text(b, "name"));
  AUTOFREE char *vhref = render_href(&c->r, "/vms/%s", vm_id);
  AUTOFREE char *jhref = render_href(&c->r, "/jobs/%s", job);
  node_add_ref(n, "vm", vm_id, vhref);
  node_add_ref(n, "job", job, jhref);
  return reply(c, 202, n);
}

static int add_template(struct api_call *c)
{
  const struct node *b = body_required(c, "template");
  if (!b) return -1;
  const char *name;
  if (need_text(b, "name", "template", &name) < 0) return -1;
  const struct node *vref = node_child(b, "vm");
  if (!vref) return error(ERR_INVALID, "missing required field 'template.vm': give <vm id=\"...\"/>");
  AUTOPTR(vm) vm = resolve_vm(c, vref, "vm");
  if (!vm) return -1;
  AUTOFREE char *id = NULL;
  if (cmd_template_add(c->eng, c->req->user, name, node_text(b, "description"), vm->id, &id) < 0) return -1;
  AUTOPTR(template) t = template_get(c->st, id);
  if (!t) return -1;
  return reply_created(c, render_template(&c->r, t));
}

static int remove_template(struct api_call *c)
{
  if (cmd_template_remove(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply(c, 200, NULL);
}

static int list_template_attachments(struct api_call *c)
{
  AUTOPTR(template) t = template_get(c->st, c->p[0]);
  if (!t) return -1;
  const char *params[] = {t->id};
  AUTOLIST(attachment) l = attachment_list(c->st, "vm_id = ?", params, 1, "position", 0);
  if (!l) return -1;
  struct node *n = node_new("disk_attachments");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, render_template_attachment(&c->r, l[i]));
  return reply(c, 200, n);
}

/* ---- the table ---- */

static const struct route ROUTES[] = {
  {"GET", "/", api_root, LOGGED_IN},
  {"GET", "/datacenters", list_datacenter, LOGGED_IN},
  {"GET", "/datacenters/{}", get_datacenter, SEE(OBJ_DATACENTER, 0)},
  {"GET", "/clusters", list_cluster, LOGGED_IN},
  {"GET", "/clusters/{}", get_cluster, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/templates", list_template, LOGGED_IN},
  {"GET", "/templates/{}", get_template, SEE(OBJ_TEMPLATE, 0)},
  {"POST", "/templates", add_template, BODY(PERMIT_CREATE_TEMPLATE)},
  {"DELETE", "/templates/{}", remove_template, ON(OBJ_TEMPLATE, 0, PERMIT_DELETE_TEMPLATE)},
  {"GET", "/templates/{}/diskattachments", list_template_attachments, SEE(OBJ_TEMPLATE, 0)},
  {"GET", "/hosts", list_host, LOGGED_IN},
  {"GET", "/hosts/{}", get_host, SEE(OBJ_HOST, 0)},
  {"POST", "/hosts/{}/deactivate", host_deactivate, ON(OBJ_HOST, 0, PERMIT_MANIPULATE_HOST)},
  {"POST", "/hosts/{}/activate", host_activate, ON(OBJ_HOST, 0, PERMIT_MANIPULATE_HOST)},
  {"GET", "/storagedomains", list_storage_domain, LOGGED_IN},
  {"POST", "/storagedomains", add_storage_domain, SYSTEM(PERMIT_CREATE_STORAGE_DOMAIN)},
  {"GET", "/storagedomains/{}", get_storage_domain, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"DELETE", "/storagedomains/{}", remove_storage_domain, ON(OBJ_STORAGE_DOMAIN, 0, PERMIT_DELETE_STORAGE_DOMAIN)},
  {"GET", "/vms", list_vms, LOGGED_IN},
  {"POST", "/vms", add_vm, BODY(PERMIT_CREATE_VM)},
  {"GET", "/vms/{}", get_vm, SEE(OBJ_VM, 0)},
  {"PUT", "/vms/{}", update_vm, ON(OBJ_VM, 0, PERMIT_EDIT_VM_PROPERTIES)},
  {"DELETE", "/vms/{}", remove_vm, ON(OBJ_VM, 0, PERMIT_DELETE_VM)},
  {"POST", "/vms/{}/start", vm_start, ON(OBJ_VM, 0, PERMIT_VM_BASIC_OPERATIONS)},
  {"POST", "/vms/{}/stop", vm_stop, ON(OBJ_VM, 0, PERMIT_VM_BASIC_OPERATIONS)},
  {"POST", "/vms/{}/shutdown", vm_shutdown, ON(OBJ_VM, 0, PERMIT_VM_BASIC_OPERATIONS)},
  {"POST", "/vms/{}/migrate", vm_migrate, ON(OBJ_VM, 0, PERMIT_MIGRATE_VM)},
  {"POST", "/vms/{}/exporttopathonhost", vm_export_ova, ON(OBJ_VM, 0, PERMIT_IMPORT_EXPORT_VM)},
  {"POST", "/externalvmimports", add_external_vm_import, SYSTEM(PERMIT_IMPORT_EXPORT_VM)},
  {"GET", "/vms/{}/diskattachments", list_attachments, SEE(OBJ_VM, 0)},
  {"POST", "/vms/{}/diskattachments", add_attachment, ON(OBJ_VM, 0, PERMIT_ATTACH_DISK)},
  {"GET", "/vms/{}/diskattachments/{}", get_attachment, SEE(OBJ_VM, 0)},
  {"PUT", "/vms/{}/diskattachments/{}", update_attachment, ON(OBJ_VM, 0, PERMIT_CONFIGURE_VM_STORAGE)},
  {"DELETE", "/vms/{}/diskattachments/{}", remove_attachment, ON(OBJ_VM, 0, PERMIT_CONFIGURE_VM_STORAGE)},
  {"GET", "/vms/{}/disks", v3_list_vm_disks, SEE(OBJ_VM, 0)},
  {"POST", "/vms/{}/disks", v3_add_vm_disk, ON(OBJ_VM, 0, PERMIT_ATTACH_DISK)},
  {"GET", "/vms/{}/disks/{}", v3_get_vm_disk, SEE(OBJ_VM, 0)},
  {"DELETE", "/vms/{}/disks/{}", v3_remove_vm_disk, ON(OBJ_VM, 0, PERMIT_CONFIGURE_VM_STORAGE)},
  {"GET", "/vms/{}/snapshots", list_snapshots, SEE(OBJ_VM, 0)},
  {"POST", "/vms/{}/snapshots", add_snapshot, ON(OBJ_VM, 0, PERMIT_MANIPULATE_VM_SNAPSHOTS)},
  {"GET", "/vms/{}/snapshots/{}", get_snapshot, SEE(OBJ_VM, 0)},
  {"DELETE", "/vms/{}/snapshots/{}", remove_snapshot, ON(OBJ_VM, 0, PERMIT_MANIPULATE_VM_SNAPSHOTS)},
  {"POST", "/vms/{}/snapshots/{}/restore", restore_snapshot, ON(OBJ_VM, 0, PERMIT_MANIPULATE_VM_SNAPSHOTS)},
  {"GET", "/vms/{}/snapshots/{}/disks", list_snapshot_disks, SEE(OBJ_VM, 0)},
  {"GET", "/disks/{}/disksnapshots", list_disk_disksnapshots, SEE(OBJ_DISK, 0)},
  {"GET", "/disks/{}/disksnapshots/{}", get_disk_snapshot, SEE(OBJ_DISK, 0)},
  {"GET", "/storagedomains/{}/disksnapshots", list_sd_disksnapshots, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/storagedomains/{}/disksnapshots/{}", get_disk_snapshot, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/disks", list_disk, LOGGED_IN},
  {"POST", "/disks", add_disk, BODY(PERMIT_CREATE_DISK)},
  {"GET", "/disks/{}", get_disk, SEE(OBJ_DISK, 0)},
  {"PUT", "/disks/{}", update_disk, ON(OBJ_DISK, 0, PERMIT_EDIT_DISK_PROPERTIES)},
  {"DELETE", "/disks/{}", remove_disk, ON(OBJ_DISK, 0, PERMIT_DELETE_DISK)},
  {"POST", "/disks/{}/move", move_disk, ON(OBJ_DISK, 0, PERMIT_CONFIGURE_DISK_STORAGE)},
  {"GET", "/events", list_events, LOGGED_IN},
  {"POST", "/events", add_event, BODY(PERMIT_INJECT_EXTERNAL_EVENTS)},
  {"GET", "/events/{}", get_event, LOGGED_IN},
  {"GET", "/jobs", list_job, LOGGED_IN},
  {"GET", "/jobs/{}", get_job, OWNER},
  {"GET", "/imagetransfers", list_image_transfers, LOGGED_IN},
  {"POST", "/imagetransfers", add_image_transfer, BODY(PERMIT_BACKUP_DISK)},
  {"GET", "/imagetransfers/{}", get_image_transfer, OWNER},
  {"POST", "/imagetransfers/{}/finalize", image_transfer_finalize, OWNER},
  {"POST", "/imagetransfers/{}/cancel", image_transfer_cancel, OWNER},
  {"GET", "/users", api_list_users, LOGGED_IN},
  {"POST", "/users", api_add_user, SYSTEM(PERMIT_MANIPULATE_USERS)},
  {"GET", "/users/{}", api_get_user, OWNER},
  {"GET", "/users/{}/groups", api_list_user_groups, OWNER},
  {"GET", "/users/{}/permissions", api_list_user_permissions, OWNER},
  {"POST", "/users/{}/permissions", api_add_user_permission, BODY(PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/users/{}/permissions/{}", api_get_permission, OWNER},
  {"DELETE", "/users/{}/permissions/{}", api_remove_permission, BODY(PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/groups", api_list_groups, LOGGED_IN},
  {"POST", "/groups", api_add_group, SYSTEM(PERMIT_MANIPULATE_USERS)},
  {"GET", "/groups/{}", api_get_group, OWNER},
  {"DELETE", "/groups/{}", api_remove_group, SYSTEM(PERMIT_MANIPULATE_USERS)},
  {"GET", "/groups/{}/permissions", api_list_group_permissions, OWNER},
  {"POST", "/groups/{}/permissions", api_add_group_permission, BODY(PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/groups/{}/permissions/{}", api_get_permission, OWNER},
  {"DELETE", "/groups/{}/permissions/{}", api_remove_permission, BODY(PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/roles", api_list_roles, LOGGED_IN},
  {"POST", "/roles", api_add_role, SYSTEM(PERMIT_MANIPULATE_ROLES)},
  {"GET", "/roles/{}", api_get_role, LOGGED_IN},
  {"PUT", "/roles/{}", api_update_role, SYSTEM(PERMIT_MANIPULATE_ROLES)},
  {"DELETE", "/roles/{}", api_remove_role, SYSTEM(PERMIT_MANIPULATE_ROLES)},
  {"GET", "/roles/{}/permits", api_list_role_permits, LOGGED_IN},
  {"POST", "/roles/{}/permits", api_add_role_permit, SYSTEM(PERMIT_MANIPULATE_ROLES)},
  {"GET", "/roles/{}/permits/{}", api_get_role_permit, LOGGED_IN},
  {"DELETE", "/roles/{}/permits/{}", api_remove_role_permit, SYSTEM(PERMIT_MANIPULATE_ROLES)},
  {"GET", "/permissions", api_list_system_permissions, SEE(OBJ_SYSTEM, -1)},
  {"POST", "/permissions", api_add_system_permission, SYSTEM(PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/permissions/{}", api_get_permission, SEE(OBJ_SYSTEM, -1)},
  {"DELETE", "/permissions/{}", api_remove_permission, SYSTEM(PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/vms/{}/permissions", api_list_vm_permissions, SEE(OBJ_VM, 0)},
  {"POST", "/vms/{}/permissions", api_add_vm_permission, ON(OBJ_VM, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/vms/{}/permissions/{}", api_get_vm_permission, SEE(OBJ_VM, 0)},
  {"DELETE", "/vms/{}/permissions/{}", api_remove_vm_permission, ON(OBJ_VM, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/disks/{}/permissions", api_list_disk_permissions, SEE(OBJ_DISK, 0)},
  {"POST", "/disks/{}/permissions", api_add_disk_permission, ON(OBJ_DISK, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/disks/{}/permissions/{}", api_get_disk_permission, SEE(OBJ_DISK, 0)},
  {"DELETE", "/disks/{}/permissions/{}", api_remove_disk_permission, ON(OBJ_DISK, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/templates/{}/permissions", api_list_template_permissions, SEE(OBJ_TEMPLATE, 0)},
  {"POST", "/templates/{}/permissions", api_add_template_permission, ON(OBJ_TEMPLATE, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/templates/{}/permissions/{}", api_get_template_permission, SEE(OBJ_TEMPLATE, 0)},
  {"DELETE", "/templates/{}/permissions/{}", api_remove_template_permission, ON(OBJ_TEMPLATE, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/clusters/{}/permissions", api_list_cluster_permissions, SEE(OBJ_CLUSTER, 0)},
  {"POST", "/clusters/{}/permissions", api_add_cluster_permission, ON(OBJ_CLUSTER, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/clusters/{}/permissions/{}", api_get_cluster_permission, SEE(OBJ_CLUSTER, 0)},
  {"DELETE", "/clusters/{}/permissions/{}", api_remove_cluster_permission, ON(OBJ_CLUSTER, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/datacenters/{}/permissions", api_list_datacenter_permissions, SEE(OBJ_DATACENTER, 0)},
  {"POST", "/datacenters/{}/permissions", api_add_datacenter_permission, ON(OBJ_DATACENTER, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/datacenters/{}/permissions/{}", api_get_datacenter_permission, SEE(OBJ_DATACENTER, 0)},
  {"DELETE", "/datacenters/{}/permissions/{}", api_remove_datacenter_permission, ON(OBJ_DATACENTER, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/hosts/{}/permissions", api_list_host_permissions, SEE(OBJ_HOST, 0)},
  {"POST", "/hosts/{}/permissions", api_add_host_permission, ON(OBJ_HOST, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/hosts/{}/permissions/{}", api_get_host_permission, SEE(OBJ_HOST, 0)},
  {"DELETE", "/hosts/{}/permissions/{}", api_remove_host_permission, ON(OBJ_HOST, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/storagedomains/{}/permissions", api_list_storage_domain_permissions, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"POST", "/storagedomains/{}/permissions", api_add_storage_domain_permission, ON(OBJ_STORAGE_DOMAIN, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/storagedomains/{}/permissions/{}", api_get_storage_domain_permission, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"DELETE", "/storagedomains/{}/permissions/{}", api_remove_storage_domain_permission, ON(OBJ_STORAGE_DOMAIN, 0, PERMIT_MANIPULATE_PERMISSIONS)},
  {"GET", "/vms/{}/backups", list_backups, SEE(OBJ_VM, 0)},
  {"POST", "/vms/{}/backups", add_backup, ON(OBJ_VM, 0, PERMIT_BACKUP_DISK)},
  {"GET", "/vms/{}/backups/{}", get_backup, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/backups/{}/disks", list_backup_disks, SEE(OBJ_VM, 0)},
  {"POST", "/vms/{}/backups/{}/finalize", backup_finalize, ON(OBJ_VM, 0, PERMIT_BACKUP_DISK)},
  {"GET", "/vms/{}/checkpoints", list_checkpoints, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/checkpoints/{}", get_checkpoint, SEE(OBJ_VM, 0)},
  {"DELETE", "/vms/{}/checkpoints/{}", remove_checkpoint, ON(OBJ_VM, 0, PERMIT_BACKUP_DISK)},
  {"GET", "/vms/{}/checkpoints/{}/disks", list_checkpoint_disks, SEE(OBJ_VM, 0)},
  /* the rest of oVirt's model (res_conform.c): what snapback has there */
  {"GET", "/datacenters/{}/clusters", list_datacenter_clusters, SEE(OBJ_DATACENTER, 0)},
  {"GET", "/datacenters/{}/storagedomains", list_datacenter_storage_domains, SEE(OBJ_DATACENTER, 0)},
  {"GET", "/storagedomains/{}/disks", list_storage_domain_disks, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/affinitylabels", list_model_collection, LOGGED_IN},
  {"GET", "/bookmarks", list_model_collection, LOGGED_IN},
  {"GET", "/clusterlevels", list_model_collection, LOGGED_IN},
  {"GET", "/cpuprofiles", list_model_collection, LOGGED_IN},
  {"GET", "/diskprofiles", list_model_collection, LOGGED_IN},
  {"GET", "/domains", list_model_collection, LOGGED_IN},
  {"GET", "/externalhostproviders", list_model_collection, LOGGED_IN},
  {"GET", "/icons", list_model_collection, LOGGED_IN},
  {"GET", "/instancetypes", list_model_collection, LOGGED_IN},
  {"GET", "/katelloerrata", list_model_collection, LOGGED_IN},
  {"GET", "/macpools", list_mac_pools, LOGGED_IN},
  {"GET", "/networkfilters", list_model_collection, LOGGED_IN},
  {"GET", "/networks", list_networks, LOGGED_IN},
  {"GET", "/openstackimageproviders", list_model_collection, LOGGED_IN},
  {"GET", "/openstacknetworkproviders", list_model_collection, LOGGED_IN},
  {"GET", "/openstackvolumeproviders", list_model_collection, LOGGED_IN},
  {"GET", "/operatingsystems", list_model_collection, LOGGED_IN},
  {"GET", "/schedulingpolicies", list_model_collection, LOGGED_IN},
  {"GET", "/schedulingpolicyunits", list_model_collection, LOGGED_IN},
  {"GET", "/storageconnections", list_model_collection, LOGGED_IN},
  {"GET", "/tags", list_model_collection, LOGGED_IN},
  {"GET", "/vmpools", list_model_collection, LOGGED_IN},
  {"GET", "/vnicprofiles", list_vnic_profiles, LOGGED_IN},
  {"GET", "/vms/{}/affinitylabels", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/applications", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/cdroms", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/graphicsconsoles", list_vm_consoles, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/hostdevices", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/katelloerrata", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/mediateddevices", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/nics", list_vm_nics, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/numanodes", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/reporteddevices", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/sessions", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/statistics", list_vm_statistics, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/tags", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/watchdogs", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/snapshots/{}/cdroms", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/snapshots/{}/nics", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/disks/{}/statistics", list_disk_statistics, SEE(OBJ_DISK, 0)},
  {"GET", "/templates/{}/cdroms", list_model_collection, SEE(OBJ_TEMPLATE, 0)},
  {"GET", "/templates/{}/graphicsconsoles", list_model_collection, SEE(OBJ_TEMPLATE, 0)},
  {"GET", "/templates/{}/mediateddevices", list_model_collection, SEE(OBJ_TEMPLATE, 0)},
  {"GET", "/templates/{}/nics", list_model_collection, SEE(OBJ_TEMPLATE, 0)},
  {"GET", "/templates/{}/tags", list_model_collection, SEE(OBJ_TEMPLATE, 0)},
  {"GET", "/templates/{}/watchdogs", list_model_collection, SEE(OBJ_TEMPLATE, 0)},
  {"GET", "/hosts/{}/affinitylabels", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/cpuunits", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/devices", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/externalnetworkproviderconfigurations", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/fenceagents", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/hooks", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/katelloerrata", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/networkattachments", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/nics", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/numanodes", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/statistics", list_host_statistics, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/storage", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/storageconnectionextensions", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/tags", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/hosts/{}/unmanagednetworks", list_model_collection, SEE(OBJ_HOST, 0)},
  {"GET", "/clusters/{}/affinitygroups", list_model_collection, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/clusters/{}/cpuprofiles", list_model_collection, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/clusters/{}/enabledfeatures", list_model_collection, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/clusters/{}/externalnetworkproviders", list_model_collection, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/clusters/{}/glusterhooks", list_model_collection, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/clusters/{}/glustervolumes", list_model_collection, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/clusters/{}/networkfilters", list_model_collection, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/clusters/{}/networks", list_cluster_networks, SEE(OBJ_CLUSTER, 0)},
  {"GET", "/datacenters/{}/iscsibonds", list_model_collection, SEE(OBJ_DATACENTER, 0)},
  {"GET", "/datacenters/{}/networks", list_datacenter_networks, SEE(OBJ_DATACENTER, 0)},
  {"GET", "/datacenters/{}/qoss", list_model_collection, SEE(OBJ_DATACENTER, 0)},
  {"GET", "/datacenters/{}/quotas", list_model_collection, SEE(OBJ_DATACENTER, 0)},
  {"GET", "/storagedomains/{}/diskprofiles", list_model_collection, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/storagedomains/{}/files", list_model_collection, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/storagedomains/{}/images", list_model_collection, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/storagedomains/{}/storageconnections", list_model_collection, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/storagedomains/{}/templates", list_model_collection, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/storagedomains/{}/vms", list_model_collection, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/jobs/{}/steps", list_model_collection, OWNER},
  {"GET", "/templates/{}/diskattachments/{}", get_template_attachment, SEE(OBJ_TEMPLATE, 0)},
  {"GET", "/vms/{}/statistics/{}", get_vm_statistic, SEE(OBJ_VM, 0)},
  {"GET", "/disks/{}/statistics/{}", get_disk_statistic, SEE(OBJ_DISK, 0)},
  {"GET", "/hosts/{}/statistics/{}", get_host_statistic, SEE(OBJ_HOST, 0)},
  {"GET", "/vms/{}/graphicsconsoles/{}", get_vm_console, SEE(OBJ_VM, 0)},
  {"POST", "/vms/{}/graphicsconsoles/{}/ticket", vm_console_ticket, ON(OBJ_VM, 0, PERMIT_CONNECT_TO_VM)},
  {"POST", "/vms/{}/graphicsconsoles/{}/remoteviewerconnectionfile", vm_console_vv, ON(OBJ_VM, 0, PERMIT_CONNECT_TO_VM)},
  {"GET", "/networks/{}", get_network, LOGGED_IN},
  {"POST", "/networks", add_network, SYSTEM(PERMIT_CONFIGURE_ENGINE)},
  {"GET", "/vnicprofiles/{}", get_vnic_profile, LOGGED_IN},
  {"POST", "/vms/{}/nics", add_vm_nic, ON(OBJ_VM, 0, PERMIT_CONFIGURE_VM_NETWORK)},
  {"GET", "/vms/{}/nics/{}", get_vm_nic, SEE(OBJ_VM, 0)},
  {"PUT", "/vms/{}/nics/{}", update_vm_nic, ON(OBJ_VM, 0, PERMIT_CONFIGURE_VM_NETWORK)},
  {"DELETE", "/vms/{}/nics/{}", remove_vm_nic, ON(OBJ_VM, 0, PERMIT_CONFIGURE_VM_NETWORK)},
  {"GET", "/macpools/{}", get_mac_pool, LOGGED_IN},
};

/* adds <link rel="X" href="HREF/X"/> to N for each GET route
 * "PATTERN/X": an entity links exactly the sub-collections that answer */
void render_links(struct node *n, const char *pattern, const char *href)
{
  size_t plen = strlen(pattern);
  for (size_t i = 0; i < ARRAY_SIZE(ROUTES); i++) {
    const char *rp = ROUTES[i].pattern;
    if (strcmp(ROUTES[i].method, "GET") != 0 || strncmp(rp, pattern, plen) != 0 || rp[plen] != '/')
      continue;
    const char *rel = rp + plen + 1;
    if (!*rel || strchr(rel, '/') || strchr(rel, '{')) continue;
    AUTOFREE char *h = xasprintf("%s/%s", href, rel);
    node_add_link(n, rel, h);
  }
}

/* matches path against pattern; fills params; returns true on match */
static bool route_match(const char *pattern, const char *path, const char *params[MAX_PARAMS],
                        char *storage, size_t storage_len)
{
  size_t np = 0, used = 0;
  const char *p = pattern, *s = path;
  if (strcmp(pattern, "/") == 0) return strcmp(path, "/") == 0;
  while (*p && *s) {
    if (*p != '/' || *s != '/') return false;
    p++;
    s++;
    const char *pe = strchrnul(p, '/'), *se = strchrnul(s, '/');
    size_t plen = (size_t)(pe - p), slen = (size_t)(se - s);
    if (slen == 0) return false;
    if (plen == 2 && p[0] == '{' && p[1] == '}') {
      if (np == MAX_PARAMS || used + slen + 1 > storage_len) return false;
      memcpy(storage + used, s, slen);
      storage[used + slen] = 0;
      params[np++] = storage + used;
      used += slen + 1;
    } else if (plen != slen || memcmp(p, s, plen) != 0) {
      return false;
    }
    p = pe;
    s = se;
  }
  return *p == 0 && *s == 0;
}

size_t api_route_count(void) { return ARRAY_SIZE(ROUTES); }

void api_route_info(size_t i, const char **method, const char **pattern, struct route_rule *rule)
{
  *method = ROUTES[i].method;
  *pattern = ROUTES[i].pattern;
  *rule = ROUTES[i].rule;
}

/* the route's permission column, checked before its handler runs */
static int route_check(struct api_call *c, const struct route *rt)
{
  const struct route_rule *r = &rt->rule;
  switch (r->kind) {
  case RULE_LOGGED_IN:
  case RULE_OWNER:  /* the handler checks the owner */
    return 0;
  case RULE_BODY:
    /* the command checks the objects of the body (cmd_run); a user who holds
     * the permit nowhere is refused before the body is even read */
    if (perm_holds_anywhere(c->pv, r->permit)) return 0;
    return perm_require(c->pv, r->permit, OBJ_SYSTEM, PERM_SYSTEM_ID, rt->method);
  case RULE_OBJECT: {
    const char *id = r->param >= 0 && r->param < MAX_PARAMS ? c->p[r->param] : PERM_SYSTEM_ID;
    if (perm_allows(c->pv, r->permit, r->obj, id)) return 0;   /* the hot path: no allocation */
    AUTOFREE char *action = xasprintf("%s %s", rt->method, rt->pattern);
    return perm_require(c->pv, r->permit, r->obj, id ? id : "", action);
  }
  default:
    /* fail closed: a route nobody gave a rule is nobody's */
    return error(ERR_INTERNAL, "route '%s %s' has no permission rule", rt->method, rt->pattern);
  }
}

/* CHECK_ONLY: stop after the permission check (api_check_route) */
static int handle(struct engine *eng, const struct api_request *req, struct api_response *resp, bool check_only)
{
  *resp = (struct api_response){0};
  if (!req->user) return error(ERR_AUTH, "authentication required");
  /* a locked user, or one without LOGIN anywhere, stops here (401) */
  AUTOPTR(perm_view) pv = perm_view_open(eng, req->user);
  if (!pv) return -1;
  /* normalise: "" -> "/", drop one trailing slash */
  char pathbuf[1024];
  const char *path = req->path && *req->path ? req->path : "/";
  size_t len = strlen(path);
  if (len >= sizeof pathbuf) return error(ERR_NOT_FOUND, "no such resource: the path is too long");
  memcpy(pathbuf, path, len + 1);
  if (len > 1 && pathbuf[len - 1] == '/') pathbuf[len - 1] = 0;
  char storage[1024];
  struct api_call c = {.eng = eng, .st = engine_store(eng), .req = req, .resp = resp, .pv = pv};
  c.r = (struct render_ctx){eng, req->root, req->all_content, req->version};
  bool path_known = false;
  for (size_t i = 0; i < ARRAY_SIZE(ROUTES); i++) {
    const char *params[MAX_PARAMS] = {0};
    if (!route_match(ROUTES[i].pattern, pathbuf, params, storage, sizeof storage)) continue;
    path_known = true;
    if (strcmp(ROUTES[i].method, req->method) != 0) continue;
    memcpy(c.p, params, sizeof params);
    resp->route = ROUTES[i].pattern;
    if (route_check(&c, &ROUTES[i]) < 0) return -1;
    if (check_only) return 0;
    if (api_check_input(req) < 0) return -1;
    return ROUTES[i].fn(&c);
  }
  if (path_known) {
    struct buf allowed = BUF_INIT;
    for (size_t i = 0; i < ARRAY_SIZE(ROUTES); i++) {
      const char *params[MAX_PARAMS] = {0};
      if (route_match(ROUTES[i].pattern, pathbuf, params, storage, sizeof storage))
        buf_printf(&allowed, "%s%s", allowed.len ? ", " : "", ROUTES[i].method);
    }
    error(ERR_METHOD, "method '%s' is not allowed on '%s': use %s", req->method, pathbuf, buf_str(&allowed));
    buf_free(&allowed);
    return -1;
  }
  return error(ERR_NOT_FOUND, "no such resource '%s'", pathbuf);
}

int api_handle(struct engine *eng, const struct api_request *req, struct api_response *resp)
{
  return handle(eng, req, resp, false);
}

int api_check_route(struct engine *eng, const struct api_request *req)
{
  struct api_response resp;
  return handle(eng, req, &resp, true);
}
