/* res_root.c: the API root and the simple collections (data centers,
 * clusters, templates, hosts, storage domains, disks, jobs): lists filtered by
 * what the user sees, gets. Its routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "api/search.h"
#include "cmd/commands.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_root(struct api_call *c)
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
    node_add_int(vms, "active", vm_count_not_down(c->st));
    node_add_int(vms, "total", vm_count_all(c->st));
  } else {
    /* only the VMs this user sees */
    AUTOLIST(vm) all = vm_list_all(c->st);
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
static bool job_visible(struct api_call *c, const struct job *j) { return api_owned(c, j->user_id); }
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
#define DEFINE_LIST_GET(T, kind, coll_elem, list_fn)                                  \
  int list_##T(struct api_call *c)                                             \
  {                                                                                   \
    int max;                                                                          \
    if (query_max(c, &max) < 0) return -1;                                            \
    AUTOLIST(T) l = list_fn(c->st);                                                   \
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
  int get_##T(struct api_call *c)                                              \
  {                                                                                   \
    AUTOPTR(T) x = T##_get(c->st, c->p[0]);                                           \
    if (!x) return -1;                                                                \
    if (!T##_visible(c, x)) return error(ERR_NOT_FOUND, kind " '%s' does not exist", c->p[0]); \
    return reply(c, 200, render_##T(&c->r, x));                                       \
  }
DEFINE_LIST_GET(datacenter, "data center", "data_centers", datacenter_list_all)
DEFINE_LIST_GET(cluster, "cluster", "clusters", cluster_list_all)
DEFINE_LIST_GET(template, "template", "templates", template_list_all)
DEFINE_LIST_GET(host, "host", "hosts", host_list_all)
DEFINE_LIST_GET(storage_domain, "storage domain", "storage_domains", storage_domain_list_all)
DEFINE_LIST_GET(disk, "disk", "disks", disk_list_all)
DEFINE_LIST_GET(job, "job", "jobs", job_list_newest_first)

/* a job's fields for GET /jobs?search=: oVirt's JobsService takes a search,
 * and its Job type names no VM, so the VM a job acts on is searchable
 * (vm.id, vm.name) without being rendered */
struct job_row {
  const struct job *job;
  const char *vm_name;
};

static const char *job_field(const void *obj, const char *field)
{
  const struct job_row *r = obj;
  if (strcmp(field, "id") == 0) return r->job->id;
  if (strcmp(field, "description") == 0) return r->job->description;
  if (strcmp(field, "status") == 0) return job_status_to_str(r->job->status);
  if (strcmp(field, "vm.id") == 0) return r->job->vm_id;
  if (strcmp(field, "vm.name") == 0) return r->vm_name;
  return NULL;
}

int list_jobs(struct api_call *c)
{
  static const char *const fields[] = {"id", "description", "status", "vm.id", "vm.name", NULL};
  const char *q = api_query(c->req, "search");
  if (!q || !*q) return list_job(c);
  int max;
  bool cs;
  if (query_max(c, &max) < 0 || query_bool(c, "case_sensitive", true, &cs) < 0) return -1;
  AUTOPTR(search) s = search_parse(q, fields, cs);
  if (!s) return -1;
  AUTOLIST(job) l = job_list_all(c->st);
  AUTOLIST(vm) vms = l ? vm_list_all(c->st) : NULL;
  if (!vms) return -1;
  struct node *n = node_new("jobs");
  n->is_list = true;
  int count = 0;
  for (size_t i = 0; l[i] && (max <= 0 || count < max); i++) {
    struct job_row row = {l[i], NULL};
    for (size_t k = 0; l[i]->vm_id && vms[k] && !row.vm_name; k++)
      if (strcmp(vms[k]->id, l[i]->vm_id) == 0) row.vm_name = vms[k]->name;
    if (!job_visible(c, l[i]) || !search_match(s, job_field, &row)) continue;
    node_append(n, render_job(&c->r, l[i]));
    count++;
  }
  return reply(c, 200, n);
}
