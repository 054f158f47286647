/* res_perm.c: the REST resources of the permission model: /users, /groups,
 * /roles (+ permits), /permissions and /{collection}/{id}/permissions.
 *
 * The route table (routes.c) checked the route's own rule; what a body names
 * (the object of a user's new permission) is checked here through the same
 * perm_require(). Reads show what the acting user may see: an administrator
 * (MANIPULATE_USERS on the system) every user and group, anyone else itself
 * and its groups; permissions of objects the user sees. */
#include "api/call.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTERNAL_DOMAIN "internal-authz"

/* the object kinds a permission may name: collection, element */
static const struct { int obj; const char *coll, *elem; } OBJECTS[] = {
  {OBJ_DATACENTER, "datacenters", "data_center"}, {OBJ_CLUSTER, "clusters", "cluster"},
  {OBJ_STORAGE_DOMAIN, "storagedomains", "storage_domain"}, {OBJ_HOST, "hosts", "host"},
  {OBJ_VM, "vms", "vm"}, {OBJ_TEMPLATE, "templates", "template"}, {OBJ_DISK, "disks", "disk"},
};

static int obj_index(int obj)
{
  for (size_t i = 0; i < ARRAY_SIZE(OBJECTS); i++)
    if (OBJECTS[i].obj == obj) return (int)i;
  return -1;
}

static int done(struct api_call *c, int status, struct node *n)
{
  c->resp->status = status;
  c->resp->body = n;
  if (status == 201 && n && node_attr(n, "href")) c->resp->location = xstrdup(node_attr(n, "href"));
  return 0;
}

static const struct node *need_body(struct api_call *c, const char *elem)
{
  const struct node *b = c->req->body;
  if (!b) return error(ERR_INVALID, "missing request body: send a <%s> element", elem), NULL;
  if (strcmp(b->name, elem) != 0 && strcmp(b->name, "request") != 0)
    return error(ERR_INVALID, "wrong request body: expected a <%s> element, got <%s>", elem, b->name), NULL;
  return b;
}

static struct node *list_node(const char *name)
{
  struct node *n = node_new(name);
  n->is_list = true;
  return n;
}

static struct node *entity(struct api_call *c, const char *elem, const char *href, const char *id)
{
  struct node *n = node_new(elem);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", id);
  (void)c;
  return n;
}

/* a refusal of something the user may not see: 404 as if absent, and the
 * audit event every denial is */
static int deny(struct api_call *c, const char *kind, const char *id)
{
  engine_event(c->eng, SEVERITY_WARNING, EV_PERMISSION_DENIED, c->req->user, NULL,
               "permission denied: user '%s' may not %s %s '%s'", c->req->user->name, c->req->method, kind, id);
  return error(ERR_NOT_FOUND, "%s '%s' does not exist", kind, id);
}

static bool is_user_admin(struct api_call *c)
{
  return perm_allows(c->pv, PERMIT_MANIPULATE_USERS, OBJ_SYSTEM, PERM_SYSTEM_ID);
}

static bool is_self(struct api_call *c, const char *user_id)
{
  return user_id && strcmp(user_id, c->req->user->id) == 0;
}

/* ---- rendering ---- */

static struct node *render_user(struct api_call *c, const struct user *u)
{
  AUTOFREE char *href = render_href(&c->r, "/users/%s", u->id);
  struct node *n = entity(c, "user", href, u->id);
  const char *at = strchr(u->name, '@');
  AUTOFREE char *principal = at ? xasprintf("%.*s", (int)(at - u->name), u->name) : xstrdup(u->name);
  node_add_text(n, "name", principal);
  node_add_text(n, "principal", principal);
  node_add_text(n, "user_name", u->name);
  node_add_text(n, "namespace", "*");
  node_add_text(n, "domain_entry_id", u->id);
  struct node *d = node_add(n, "domain");
  node_add_text(d, "name", INTERNAL_DOMAIN);
  AUTOFREE char *perms = render_href(&c->r, "/users/%s/permissions", u->id);
  AUTOFREE char *groups = render_href(&c->r, "/users/%s/groups", u->id);
  node_add_link(n, "permissions", perms);
  node_add_link(n, "groups", groups);
  return n;
}

static struct node *render_group(struct api_call *c, const struct usergroup *g)
{
  AUTOFREE char *href = render_href(&c->r, "/groups/%s", g->id);
  struct node *n = entity(c, "group", href, g->id);
  node_add_text(n, "name", g->name);
  node_add_text(n, "namespace", "*");
  node_add_text(n, "domain_entry_id", g->id);
  struct node *d = node_add(n, "domain");
  node_add_text(d, "name", g->domain ? g->domain : INTERNAL_DOMAIN);
  AUTOFREE char *perms = render_href(&c->r, "/groups/%s/permissions", g->id);
  node_add_link(n, "permissions", perms);
  return n;
}

/* permit names as the API shows them: lowercase, "attach_disk" */
static char *permit_api_name(const struct permit_info *p)
{
  char *s = xstrdup(p->name);
  for (char *q = s; *q; q++) *q = (char)tolower((unsigned char)*q);
  return s;
}

static struct node *render_permit(struct api_call *c, const char *role_id, const struct permit_info *p)
{
  char pid[16];
  snprintf(pid, sizeof pid, "%d", p->id);
  AUTOFREE char *href = render_href(&c->r, "/roles/%s/permits/%d", role_id, p->id);
  struct node *n = entity(c, "permit", href, pid);
  AUTOFREE char *name = permit_api_name(p);
  node_add_text(n, "name", name);
  node_add_bool(n, "administrative", p->administrative);
  AUTOFREE char *rhref = render_href(&c->r, "/roles/%s", role_id);
  node_add_ref(n, "role", role_id, rhref);
  return n;
}

static struct node *render_role(struct api_call *c, const struct role_info *r)
{
  AUTOFREE char *href = render_href(&c->r, "/roles/%s", r->id);
  struct node *n = entity(c, "role", href, r->id);
  node_add_text(n, "name", r->name);
  node_add_text(n, "description", r->description);
  node_add_bool(n, "administrative", r->administrative);
  node_add_bool(n, "mutable", r->mutable_);
  AUTOFREE char *permits = render_href(&c->r, "/roles/%s/permits", r->id);
  node_add_link(n, "permits", permits);
  return n;
}

static struct node *render_permission(struct api_call *c, const struct permission *p)
{
  int obj = perm_object_from_str(p->object_type);
  int k = obj_index(obj);
  AUTOFREE char *href = k >= 0 ? render_href(&c->r, "/%s/%s/permissions/%s", OBJECTS[k].coll, p->object_id, p->id)
                               : render_href(&c->r, "/permissions/%s", p->id);
  struct node *n = entity(c, "permission", href, p->id);
  AUTOFREE char *rhref = render_href(&c->r, "/roles/%s", p->role_id);
  node_add_ref(n, "role", p->role_id, rhref);
  if (p->user_id) {
    AUTOFREE char *uhref = render_href(&c->r, "/users/%s", p->user_id);
    node_add_ref(n, "user", p->user_id, uhref);
  }
  if (p->group_id) {
    AUTOFREE char *ghref = render_href(&c->r, "/groups/%s", p->group_id);
    node_add_ref(n, "group", p->group_id, ghref);
  }
  if (k >= 0) {
    AUTOFREE char *ohref = render_href(&c->r, "/%s/%s", OBJECTS[k].coll, p->object_id);
    node_add_ref(n, OBJECTS[k].elem, p->object_id, ohref);
  }
  return n;
}

/* ---- permissions: shared by users, groups, the system and objects ---- */

/* the permissions of L (a store query's list, NULL on error) that the acting
 * user may see: its own, and those on objects it sees */
static int reply_permissions(struct api_call *c, struct permission **list)
{
  AUTOLIST(permission) l = list;
  if (!l) return -1;
  struct node *n = list_node("permissions");
  for (size_t i = 0; l[i]; i++) {
    int obj = perm_object_from_str(l[i]->object_type);
    if (!is_self(c, l[i]->user_id) && !perm_allows(c->pv, PERMIT_VIEW, obj, l[i]->object_id)) continue;
    node_append(n, render_permission(c, l[i]));
  }
  return done(c, 200, n);
}

/* adds a permission of the role in BODY for (user_id | group_id) on
 * (obj, obj_id); the acting user needs MANIPULATE_PERMISSIONS there */
static int add_permission(struct api_call *c, const struct node *b, const char *user_id, const char *group_id,
                          int obj, const char *obj_id)
{
  const struct node *rref = node_child(b, "role");
  if (!rref)
    return error(ERR_INVALID, "missing required field 'permission.role': give <role><name>UserVmManager</name></role>");
  AUTOPTR(role_info) role = role_info_get(c->st, node_attr(rref, "id"), node_text(rref, "name"));
  if (!role) {
    if (error_code() == ERR_NOT_FOUND) error_prefix("cannot add permission: ");
    return -1;
  }
  if (!user_id && !group_id) {
    const struct node *u = node_child(b, "user"), *g = node_child(b, "group");
    user_id = u ? node_attr(u, "id") : NULL;
    group_id = g ? node_attr(g, "id") : NULL;
    if (!user_id && !group_id)
      return error(ERR_INVALID, "missing required field 'permission.user' or 'permission.group': give <user id=\"...\"/>");
    if (user_id && group_id)
      return error(ERR_INVALID, "invalid permission: give either <user> or <group>, not both");
  }
  if (user_id) {
    AUTOPTR(user) u = user_get(c->st, user_id);
    if (!u) return -1;
  } else {
    AUTOPTR(usergroup) g = usergroup_get(c->st, group_id);
    if (!g) return -1;
  }
  if (perm_require(c->pv, PERMIT_MANIPULATE_PERMISSIONS, obj, obj_id, "add permission") < 0) return -1;
  if (perm_object_exists(c->st, obj, obj_id) < 0) return -1;
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  struct permission p = {.id = id, .role_id = role->id, .user_id = (char *)user_id, .group_id = (char *)group_id,
                         .object_type = (char *)perm_object_to_str(obj), .object_id = (char *)obj_id};
  if (permission_insert(c->st, &p) < 0) return -1;
  engine_event(c->eng, SEVERITY_NORMAL, EV_PERMISSION_ADDED, c->req->user, obj == OBJ_VM ? obj_id : NULL,
               "role %s was granted to %s '%s' on %s '%s' by %s", role->name, user_id ? "user" : "group",
               user_id ? user_id : group_id, perm_object_kind(obj), obj == OBJ_SYSTEM ? "system" : obj_id,
               c->req->user->name);
  return done(c, 201, render_permission(c, &p));
}

/* the object a <permission> body names (<vm id>, <cluster id> ...); none: the system */
static int body_object(const struct node *b, int *obj, const char **id)
{
  for (size_t i = 0; i < ARRAY_SIZE(OBJECTS); i++) {
    const struct node *o = node_child(b, OBJECTS[i].elem);
    if (!o) continue;
    if (!(*id = node_attr(o, "id")))
      return error(ERR_INVALID, "missing id: give <%s id=\"...\"/>", OBJECTS[i].elem);
    *obj = OBJECTS[i].obj;
    return 0;
  }
  *obj = OBJ_SYSTEM;
  *id = PERM_SYSTEM_ID;
  return 0;
}

static bool is_member(struct api_call *c, const char *group_id);

/* the permission the path names: /users/U/permissions/P, /groups/G/permissions/P,
 * /permissions/P or /COLL/ID/permissions/P; 404 when it is not there or the
 * acting user may not see it */
static struct permission *path_permission(struct api_call *c)
{
  const char *path = c->req->path ? c->req->path : "";
  bool sys = strncmp(path, "/permissions/", 13) == 0;
  const char *pid = sys ? c->p[0] : c->p[1];
  AUTOPTR(permission) p = permission_get(c->st, pid);
  if (!p) return NULL;
  bool match;
  if (sys) match = strcmp(p->object_type, "system") == 0;
  else if (strncmp(path, "/users/", 7) == 0)
    match = p->user_id && strcmp(p->user_id, c->p[0]) == 0 && (is_self(c, c->p[0]) || is_user_admin(c));
  else if (strncmp(path, "/groups/", 8) == 0)
    match = p->group_id && strcmp(p->group_id, c->p[0]) == 0 && (is_member(c, c->p[0]) || is_user_admin(c));
  else match = p->object_id && strcmp(p->object_id, c->p[0]) == 0;
  int obj = perm_object_from_str(p->object_type);
  if (!match || (!is_self(c, p->user_id) && !perm_allows(c->pv, PERMIT_VIEW, obj, p->object_id)))
    return deny(c, "permission", pid), NULL;
  return steal_pointer(&p);
}

int api_get_permission(struct api_call *c)
{
  AUTOPTR(permission) p = path_permission(c);
  if (!p) return -1;
  return done(c, 200, render_permission(c, p));
}

int api_remove_permission(struct api_call *c)
{
  AUTOPTR(permission) p = path_permission(c);
  if (!p) return -1;
  int obj = perm_object_from_str(p->object_type);
  if (perm_require(c->pv, PERMIT_MANIPULATE_PERMISSIONS, obj, p->object_id, "remove permission") < 0) return -1;
  /* the engine's own administrator keeps SuperUser on the system */
  AUTOPTR(user) admin = user_get_by_name(c->st, "admin@internal");
  error_clear();
  if (admin && p->user_id && strcmp(p->user_id, admin->id) == 0 && obj == OBJ_SYSTEM &&
      strcmp(p->role_id, PERM_SUPERUSER_ROLE_ID) == 0)
    return error(ERR_CONFLICT, "cannot remove permission '%s': admin@internal keeps SuperUser on the system", p->id);
  if (permission_delete(c->st, p->id) < 0) return -1;
  engine_event(c->eng, SEVERITY_NORMAL, EV_PERMISSION_REMOVED, c->req->user, obj == OBJ_VM ? p->object_id : NULL,
               "permission %s on %s '%s' was removed by %s", p->id, perm_object_kind(obj),
               obj == OBJ_SYSTEM ? "system" : p->object_id, c->req->user->name);
  return done(c, 200, NULL);
}

int api_list_system_permissions(struct api_call *c)
{
  return reply_permissions(c, permission_list_system(c->st));
}

int api_add_system_permission(struct api_call *c)
{
  const struct node *b = need_body(c, "permission");
  if (!b) return -1;
  return add_permission(c, b, NULL, NULL, OBJ_SYSTEM, PERM_SYSTEM_ID);
}

#define DEFINE_OBJECT_PERMISSIONS(T, OBJ)                                      \
  int api_list_##T##_permissions(struct api_call *c)                           \
  {                                                                            \
    if (perm_object_exists(c->st, OBJ, c->p[0]) < 0) return -1;                \
    return reply_permissions(c, permission_list_on_object(c->st, perm_object_to_str(OBJ), c->p[0])); \
  }                                                                            \
  int api_add_##T##_permission(struct api_call *c)                             \
  {                                                                            \
    const struct node *b = need_body(c, "permission");                         \
    if (!b) return -1;                                                         \
    return add_permission(c, b, NULL, NULL, OBJ, c->p[0]);                     \
  }                                                                            \
  int api_get_##T##_permission(struct api_call *c) { return api_get_permission(c); } \
  int api_remove_##T##_permission(struct api_call *c) { return api_remove_permission(c); }
DEFINE_OBJECT_PERMISSIONS(vm, OBJ_VM)
DEFINE_OBJECT_PERMISSIONS(disk, OBJ_DISK)
DEFINE_OBJECT_PERMISSIONS(template, OBJ_TEMPLATE)
DEFINE_OBJECT_PERMISSIONS(cluster, OBJ_CLUSTER)
DEFINE_OBJECT_PERMISSIONS(datacenter, OBJ_DATACENTER)
DEFINE_OBJECT_PERMISSIONS(host, OBJ_HOST)
DEFINE_OBJECT_PERMISSIONS(storage_domain, OBJ_STORAGE_DOMAIN)

/* ---- users ---- */

/* the user the path names, when the acting user may see it (itself, or an
 * administrator) */
static struct user *path_user(struct api_call *c)
{
  if (!is_self(c, c->p[0]) && !is_user_admin(c)) return deny(c, "user", c->p[0]), NULL;
  struct user *u = user_get(c->st, c->p[0]);
  if (u) {
    free(u->password_hash);
    u->password_hash = NULL;
  }
  return u;
}

int api_list_users(struct api_call *c)
{
  AUTOLIST(user) l = user_list_all(c->st);
  if (!l) return -1;
  bool admin = is_user_admin(c);
  struct node *n = list_node("users");
  for (size_t i = 0; l[i]; i++)
    if (admin || is_self(c, l[i]->id)) node_append(n, render_user(c, l[i]));
  return done(c, 200, n);
}

/* oVirt registers a directory user; snapback's users are made on the host
 * (snapbackd user add), so this finds it and answers it */
int api_add_user(struct api_call *c)
{
  const struct node *b = need_body(c, "user");
  if (!b) return -1;
  const char *name = node_text(b, "user_name");
  if (!name) name = node_text(b, "principal");
  if (!name)
    return error(ERR_INVALID, "missing required field 'user.user_name': give <user_name>bob@internal</user_name>");
  const char *domain = node_text(b, "domain/name");
  if (domain && strcmp(domain, INTERNAL_DOMAIN) != 0)
    return error(ERR_INVALID, "unknown domain '%s': snapback has only '%s'", domain, INTERNAL_DOMAIN);
  const char *at = strchr(name, '@');
  AUTOFREE char *full = at ? xstrdup(name) : xasprintf("%s@internal", name);
  AUTOPTR(user) u = user_get_by_name(c->st, full);
  if (!u) {
    if (error_code() != ERR_NOT_FOUND) return -1;
    return error(ERR_INVALID, "cannot add user '%s': no such user in domain '%s' (create it on the host "
                 "with 'snapbackd user add')", full, INTERNAL_DOMAIN);
  }
  return done(c, 201, render_user(c, u));
}

int api_get_user(struct api_call *c)
{
  AUTOPTR(user) u = path_user(c);
  if (!u) return -1;
  return done(c, 200, render_user(c, u));
}

int api_list_user_groups(struct api_call *c)
{
  AUTOPTR(user) u = path_user(c);
  if (!u) return -1;
  AUTOLIST(usergroup) l = usergroup_list_of_user(c->st, u->id);
  if (!l) return -1;
  struct node *n = list_node("groups");
  for (size_t i = 0; l[i]; i++) node_append(n, render_group(c, l[i]));
  return done(c, 200, n);
}

int api_list_user_permissions(struct api_call *c)
{
  AUTOPTR(user) u = path_user(c);
  if (!u) return -1;
  return reply_permissions(c, permission_list_by_user(c->st, u->id));
}

int api_add_user_permission(struct api_call *c)
{
  const struct node *b = need_body(c, "permission");
  if (!b) return -1;
  int obj;
  const char *obj_id;
  if (body_object(b, &obj, &obj_id) < 0) return -1;
  return add_permission(c, b, c->p[0], NULL, obj, obj_id);
}

/* ---- groups ---- */

static bool is_member(struct api_call *c, const char *group_id)
{
  return group_member_count_by_pair(c->st, group_id, c->req->user->id) > 0;
}

static struct usergroup *path_group(struct api_call *c)
{
  if (!is_user_admin(c) && !is_member(c, c->p[0])) return deny(c, "group", c->p[0]), NULL;
  return usergroup_get(c->st, c->p[0]);
}

int api_list_groups(struct api_call *c)
{
  AUTOLIST(usergroup) l = usergroup_list_all(c->st);
  if (!l) return -1;
  bool admin = is_user_admin(c);
  struct node *n = list_node("groups");
  for (size_t i = 0; l[i]; i++)
    if (admin || is_member(c, l[i]->id)) node_append(n, render_group(c, l[i]));
  return done(c, 200, n);
}

int api_add_group(struct api_call *c)
{
  const struct node *b = need_body(c, "group");
  if (!b) return -1;
  const char *name = node_text(b, "name");
  if (!name || !*name) return error(ERR_INVALID, "missing required field 'group.name'");
  const char *domain = node_text(b, "domain/name");
  if (domain && strcmp(domain, INTERNAL_DOMAIN) != 0)
    return error(ERR_INVALID, "unknown domain '%s': snapback has only '%s'", domain, INTERNAL_DOMAIN);
  int64_t n = usergroup_count_by_name(c->st, name);
  if (n < 0) return -1;
  if (n > 0) return error(ERR_CONFLICT, "cannot add group '%s': the name is in use", name);
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  struct usergroup g = {.id = id, .name = (char *)name, .domain = (char *)INTERNAL_DOMAIN};
  if (usergroup_insert(c->st, &g) < 0) return -1;
  return done(c, 201, render_group(c, &g));
}

int api_get_group(struct api_call *c)
{
  AUTOPTR(usergroup) g = path_group(c);
  if (!g) return -1;
  return done(c, 200, render_group(c, g));
}

int api_remove_group(struct api_call *c)
{
  AUTOPTR(usergroup) g = usergroup_get(c->st, c->p[0]);
  if (!g) return -1;
  if (perm_group_remove(c->st, g->id) < 0) return -1;
  return done(c, 200, NULL);
}

int api_list_group_permissions(struct api_call *c)
{
  AUTOPTR(usergroup) g = path_group(c);
  if (!g) return -1;
  return reply_permissions(c, permission_list_by_group(c->st, g->id));
}

int api_add_group_permission(struct api_call *c)
{
  const struct node *b = need_body(c, "permission");
  if (!b) return -1;
  int obj;
  const char *obj_id;
  if (body_object(b, &obj, &obj_id) < 0) return -1;
  return add_permission(c, b, NULL, c->p[0], obj, obj_id);
}

/* ---- roles and permits ---- */

int api_list_roles(struct api_call *c)
{
  size_t n = 0;
  struct role_info **l = role_info_list(c->st, &n);
  if (!l) return -1;
  struct node *out = list_node("roles");
  for (size_t i = 0; i < n; i++) {
    node_append(out, render_role(c, l[i]));
    role_info_free(l[i]);
  }
  free(l);
  return done(c, 200, out);
}

/* the permit a <permit id="1101"/> or <permit><name>attach_disk</name></permit> names */
static const struct permit_info *body_permit(const struct node *p)
{
  const char *id = node_attr(p, "id");
  const char *name = node_text(p, "name");
  const struct permit_info *pi = id ? permit_by_id(atoi(id)) : name ? permit_by_name(name) : NULL;
  if (!pi)
    return error(ERR_INVALID, "unknown permit '%s': give the id or name of one of oVirt's action groups "
                 "(GET /roles/%s/permits lists SuperUser's)", id ? id : name ? name : "", PERM_SUPERUSER_ROLE_ID),
           NULL;
  return pi;
}

int api_add_role(struct api_call *c)
{
  const struct node *b = need_body(c, "role");
  if (!b) return -1;
  const char *name = node_text(b, "name");
  if (!name || !*name) return error(ERR_INVALID, "missing required field 'role.name'");
  struct role r = {.name = (char *)name, .description = (char *)node_text(b, "description")};
  if (node_get_bool(b, "administrative", &r.administrative) < 0) return -1;
  AUTOPTR(role_info) clash = role_info_get(c->st, NULL, name);
  if (clash) return error(ERR_CONFLICT, "cannot add role '%s': the name is in use", name);
  if (error_code() != ERR_NOT_FOUND) return -1;
  error_clear();
  /* every role lets its holders log in, as oVirt's do */
  int permits[128] = {PERMIT_LOGIN};
  size_t np = 1;
  const struct node *ps = node_child(b, "permits");
  for (size_t i = 0; ps && i < ps->nkids; i++) {
    const struct permit_info *pi = body_permit(ps->kids[i]);
    if (!pi) return -1;
    bool dup = false;
    for (size_t j = 0; j < np; j++) dup |= permits[j] == pi->id;
    if (!dup && np < ARRAY_SIZE(permits)) permits[np++] = pi->id;
  }
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  r.id = id;
  if (perm_role_insert(c->st, &r, permits, np) < 0) return -1;
  AUTOPTR(role_info) ri = role_info_get(c->st, id, NULL);
  if (!ri) return -1;
  return done(c, 201, render_role(c, ri));
}

int api_get_role(struct api_call *c)
{
  AUTOPTR(role_info) r = role_info_get(c->st, c->p[0], NULL);
  if (!r) return -1;
  return done(c, 200, render_role(c, r));
}

static struct role_info *mutable_role(struct api_call *c, const char *what)
{
  AUTOPTR(role_info) r = role_info_get(c->st, c->p[0], NULL);
  if (!r) return NULL;
  if (!r->mutable_)
    return error(ERR_CONFLICT, "cannot %s role '%s': predefined roles cannot be changed", what, r->name), NULL;
  return steal_pointer(&r);
}

int api_update_role(struct api_call *c)
{
  const struct node *b = need_body(c, "role");
  if (!b) return -1;
  AUTOPTR(role_info) ri = mutable_role(c, "change");
  if (!ri) return -1;
  AUTOPTR(role) r = role_get(c->st, ri->id);
  if (!r) return -1;
  const char *name = node_text(b, "name"), *desc = node_text(b, "description");
  if (name && *name && strcmp(name, r->name) != 0) {
    AUTOPTR(role_info) clash = role_info_get(c->st, NULL, name);
    if (clash) return error(ERR_CONFLICT, "cannot rename role '%s' to '%s': the name is in use", r->name, name);
    error_clear();
    free(r->name);
    r->name = xstrdup(name);
  }
  if (desc) {
    free(r->description);
    r->description = xstrdup(desc);
  }
  if (node_get_bool(b, "administrative", &r->administrative) < 0) return -1;
  if (role_update(c->st, r) < 0) return -1;
  AUTOPTR(role_info) out = role_info_get(c->st, r->id, NULL);
  if (!out) return -1;
  return done(c, 200, render_role(c, out));
}

int api_remove_role(struct api_call *c)
{
  AUTOPTR(role_info) r = mutable_role(c, "remove");
  if (!r) return -1;
  if (perm_role_remove(c->st, r->id, r->name) < 0) return -1;
  return done(c, 200, NULL);
}

int api_list_role_permits(struct api_call *c)
{
  AUTOPTR(role_info) r = role_info_get(c->st, c->p[0], NULL);
  if (!r) return -1;
  struct node *n = list_node("permits");
  for (size_t i = 0; i < r->npermits; i++) {
    const struct permit_info *pi = permit_by_id(r->permits[i]);
    if (pi) node_append(n, render_permit(c, r->id, pi));
  }
  return done(c, 200, n);
}

int api_get_role_permit(struct api_call *c)
{
  AUTOPTR(role_info) r = role_info_get(c->st, c->p[0], NULL);
  if (!r) return -1;
  int id = atoi(c->p[1]);
  for (size_t i = 0; i < r->npermits; i++)
    if (r->permits[i] == id && permit_by_id(id)) return done(c, 200, render_permit(c, r->id, permit_by_id(id)));
  return error(ERR_NOT_FOUND, "permit '%s' of role '%s' does not exist", c->p[1], r->name);
}

int api_add_role_permit(struct api_call *c)
{
  const struct node *b = need_body(c, "permit");
  if (!b) return -1;
  AUTOPTR(role_info) r = mutable_role(c, "change");
  if (!r) return -1;
  const struct permit_info *pi = body_permit(b);
  if (!pi) return -1;
  for (size_t i = 0; i < r->npermits; i++)
    if (r->permits[i] == pi->id)
      return error(ERR_CONFLICT, "cannot add permit '%s' to role '%s': the role has it", pi->name, r->name);
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  struct role_permit rp = {.id = id, .role_id = r->id, .permit = pi->id};
  if (role_permit_insert(c->st, &rp) < 0) return -1;
  return done(c, 201, render_permit(c, r->id, pi));
}

int api_remove_role_permit(struct api_call *c)
{
  AUTOPTR(role_info) r = mutable_role(c, "change");
  if (!r) return -1;
  char *end = NULL;
  long long permit = strtoll(c->p[1], &end, 10);
  if (*end || end == c->p[1]) permit = -1;  /* no permit has that id: not found below */
  AUTOLIST(role_permit) l = role_permit_list_by_pair(c->st, r->id, permit);
  if (!l) return -1;
  if (!l[0]) return error(ERR_NOT_FOUND, "permit '%s' of role '%s' does not exist", c->p[1], r->name);
  if (role_permit_delete(c->st, l[0]->id) < 0) return -1;
  return done(c, 200, NULL);
}
