/* perm.c: roles, grants and the one decision "may this user do this here"
 * (see perm.h for the model). */
#include "cmd/perm.h"
#include "cmd/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include "util/vec.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

ENUM_IMPL(perm_object, OBJ_LAST, "system", "datacenter", "cluster", "storage_domain", "host", "vm",
          "template", "disk")


static const struct permit_info PERMITS[] = {
  {PERMIT_CREATE_VM, "CREATE_VM", false}, {PERMIT_DELETE_VM, "DELETE_VM", false},
  {PERMIT_EDIT_VM_PROPERTIES, "EDIT_VM_PROPERTIES", false},
  {PERMIT_VM_BASIC_OPERATIONS, "VM_BASIC_OPERATIONS", false},
  {PERMIT_CHANGE_VM_CD, "CHANGE_VM_CD", false}, {PERMIT_MIGRATE_VM, "MIGRATE_VM", false},
  {PERMIT_CONNECT_TO_VM, "CONNECT_TO_VM", false}, {PERMIT_IMPORT_EXPORT_VM, "IMPORT_EXPORT_VM", true},
  {PERMIT_CONFIGURE_VM_NETWORK, "CONFIGURE_VM_NETWORK", false},
  {PERMIT_CONFIGURE_VM_STORAGE, "CONFIGURE_VM_STORAGE", false}, {PERMIT_MOVE_VM, "MOVE_VM", false},
  {PERMIT_MANIPULATE_VM_SNAPSHOTS, "MANIPULATE_VM_SNAPSHOTS", false},
  {PERMIT_RECONNECT_TO_VM, "RECONNECT_TO_VM", false},
  {PERMIT_CREATE_HOST, "CREATE_HOST", true}, {PERMIT_EDIT_HOST_CONFIGURATION, "EDIT_HOST_CONFIGURATION", true},
  {PERMIT_DELETE_HOST, "DELETE_HOST", true}, {PERMIT_MANIPULATE_HOST, "MANIPULATE_HOST", true},
  {PERMIT_CONFIGURE_HOST_NETWORK, "CONFIGURE_HOST_NETWORK", true},
  {PERMIT_CREATE_TEMPLATE, "CREATE_TEMPLATE", false},
  {PERMIT_EDIT_TEMPLATE_PROPERTIES, "EDIT_TEMPLATE_PROPERTIES", false},
  {PERMIT_DELETE_TEMPLATE, "DELETE_TEMPLATE", false}, {PERMIT_COPY_TEMPLATE, "COPY_TEMPLATE", false},
  {PERMIT_CONFIGURE_TEMPLATE_NETWORK, "CONFIGURE_TEMPLATE_NETWORK", false},
  {PERMIT_CREATE_CLUSTER, "CREATE_CLUSTER", true},
  {PERMIT_EDIT_CLUSTER_CONFIGURATION, "EDIT_CLUSTER_CONFIGURATION", true},
  {PERMIT_DELETE_CLUSTER, "DELETE_CLUSTER", true},
  {PERMIT_MANIPULATE_USERS, "MANIPULATE_USERS", true}, {PERMIT_MANIPULATE_ROLES, "MANIPULATE_ROLES", true},
  {PERMIT_MANIPULATE_PERMISSIONS, "MANIPULATE_PERMISSIONS", false},
  {PERMIT_CREATE_STORAGE_DOMAIN, "CREATE_STORAGE_DOMAIN", true},
  {PERMIT_EDIT_STORAGE_DOMAIN_CONFIGURATION, "EDIT_STORAGE_DOMAIN_CONFIGURATION", true},
  {PERMIT_DELETE_STORAGE_DOMAIN, "DELETE_STORAGE_DOMAIN", true},
  {PERMIT_MANIPULATE_STORAGE_DOMAIN, "MANIPULATE_STORAGE_DOMAIN", true},
  {PERMIT_CREATE_STORAGE_POOL, "CREATE_STORAGE_POOL", true},
  {PERMIT_DELETE_STORAGE_POOL, "DELETE_STORAGE_POOL", true},
  {PERMIT_EDIT_STORAGE_POOL_CONFIGURATION, "EDIT_STORAGE_POOL_CONFIGURATION", true},
  {PERMIT_CONFIGURE_ENGINE, "CONFIGURE_ENGINE", true},
  {PERMIT_CREATE_DISK, "CREATE_DISK", false}, {PERMIT_ATTACH_DISK, "ATTACH_DISK", false},
  {PERMIT_EDIT_DISK_PROPERTIES, "EDIT_DISK_PROPERTIES", false},
  {PERMIT_CONFIGURE_DISK_STORAGE, "CONFIGURE_DISK_STORAGE", false},
  {PERMIT_DELETE_DISK, "DELETE_DISK", false}, {PERMIT_BACKUP_DISK, "BACKUP_DISK", false},
  {PERMIT_LOGIN, "LOGIN", false},
  {PERMIT_INJECT_EXTERNAL_EVENTS, "INJECT_EXTERNAL_EVENTS", false},
};

const struct permit_info *permit_table(size_t *n)
{
  *n = ARRAY_SIZE(PERMITS);
  return PERMITS;
}

const struct permit_info *permit_by_id(int id)
{
  for (size_t i = 0; i < ARRAY_SIZE(PERMITS); i++)
    if (PERMITS[i].id == id) return &PERMITS[i];
  return NULL;
}

const struct permit_info *permit_by_name(const char *name)
{
  for (size_t i = 0; i < ARRAY_SIZE(PERMITS); i++)
    if (name && strcasecmp(PERMITS[i].name, name) == 0) return &PERMITS[i];
  return NULL;
}

/* ---- predefined roles: oVirt's names and ids; every one includes LOGIN ---- */

#define P_VM_USER 4, 5, 7
#define P_VM_ALL 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
#define P_DISK_ALL 1100, 1101, 1102, 1103, 1104, 1110
#define P_TEMPLATE_ALL 200, 201, 202, 203, 204
#define P_HOST_ALL 100, 101, 102, 103, 104
#define PREDEF(id_, name_, desc_, admin_, ...) \
  {id_, name_, desc_, admin_, (const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int)}

struct predefined_role {
  const char *id, *name, *description;
  bool administrative;
  const int *permits;
  size_t npermits;
};

static const struct predefined_role ROLES[] = {
  PREDEF(PERM_SUPERUSER_ROLE_ID, "SuperUser", "Roles management administrator", true, 0),
  PREDEF("00000000-0000-0000-0001-000000000001", "UserRole", "Standard User Role", false, P_VM_USER, 1300),
  PREDEF("00000000-0000-0000-0001-000000000002", "PowerUserRole",
         "User Role, allowed to create VMs, Templates and Disks", false, 1, 200, 1100, 1300),
  PREDEF("def00001-0000-0000-0000-def000000001", "ClusterAdmin",
         "Administrator Role, permission for all the objects underneath a specific Cluster", true,
         P_VM_ALL, P_HOST_ALL, 400, 401, 402, P_DISK_ALL, 502, 1300),
  PREDEF("def00002-0000-0000-0000-def000000002", "DataCenterAdmin",
         "Administrator Role, permission for all the objects underneath a specific Data Center, except Storage",
         true, P_VM_ALL, P_HOST_ALL, P_TEMPLATE_ALL, 400, 401, 402, 702, P_DISK_ALL, 502, 1300),
  PREDEF("def00003-0000-0000-0000-def000000003", "StorageAdmin",
         "Administrator Role, permission for all operations on a specific Storage Domain", true,
         600, 601, 602, 603, P_DISK_ALL, 1300),
  PREDEF("def00004-0000-0000-0000-def000000004", "HostAdmin",
         "Administrator Role, permission for all operations on a specific Host", true, P_HOST_ALL, 1300),
  PREDEF("def00006-0000-0000-0000-def000000006", "UserVmManager",
         "User Role, with permission for any operation on Vms", false,
         2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 1101, 1102, 1103, 1104, 1110, 502, 1300),
  PREDEF("def00008-0000-0000-0000-def000000008", "TemplateAdmin",
         "Administrator Role, permission for all operations on a specific Template", true,
         P_TEMPLATE_ALL, 502, 1300),
  PREDEF("def0000a-0000-0000-0000-def00000000b", "DiskOperator",
         "User Role, permissions for all operations on a specific disk", false,
         1101, 1102, 1103, 1104, 1110, 502, 1300),
  PREDEF("def0000a-0000-0000-0000-def00000000c", "DiskCreator", "User Role, permission to create Disks",
         false, 1100, 1300),
  PREDEF("def0000a-0000-0000-0000-def00000000d", "VmCreator", "User Role, permission to create VMs",
         false, 1, 1300),
  PREDEF("def0000a-0000-0000-0000-def00000000e", "TemplateCreator",
         "User Role, permission to create Templates", false, 200, 1300),
  PREDEF("def0000a-0000-0000-0000-def00000000f", "TemplateOwner",
         "User Role, permissions for all operations on Templates", false, 201, 202, 203, 204, 502, 1300),
  PREDEF("def0000c-0000-0000-0000-def000000000", "ExternalEventsCreator", "External Events Creator",
         false, 1500, 1300),
  PREDEF("def0000c-0000-0000-0000-def00000000c", "ReadOnlyAdmin", "Read Only Administrator Role",
         true, 1300),
};

static const struct predefined_role *predefined(const char *id, const char *name)
{
  for (size_t i = 0; i < ARRAY_SIZE(ROLES); i++)
    if ((id && strcasecmp(ROLES[i].id, id) == 0) || (name && strcmp(ROLES[i].name, name) == 0))
      return &ROLES[i];
  return NULL;
}

bool role_is_predefined(const char *id) { return id && predefined(id, NULL); }

void role_info_free(struct role_info *r)
{
  if (!r) return;
  free(r->id);
  free(r->name);
  free(r->description);
  free(r->permits);
  free(r);
}

static struct role_info *role_info_from_predefined(const struct predefined_role *p)
{
  struct role_info *r = xcalloc(1, sizeof *r);
  r->id = xstrdup(p->id);
  r->name = xstrdup(p->name);
  r->description = xstrdup(p->description);
  r->administrative = p->administrative;
  if (strcmp(p->id, PERM_SUPERUSER_ROLE_ID) == 0) {
    /* SuperUser holds every permit */
    r->permits = xcalloc(ARRAY_SIZE(PERMITS), sizeof(int));
    for (size_t i = 0; i < ARRAY_SIZE(PERMITS); i++) r->permits[i] = PERMITS[i].id;
    r->npermits = ARRAY_SIZE(PERMITS);
  } else {
    r->permits = xcalloc(p->npermits, sizeof(int));
    memcpy(r->permits, p->permits, p->npermits * sizeof(int));
    r->npermits = p->npermits;
  }
  return r;
}

/* the permits of custom role ID from the store */
static int custom_permits(struct store *st, const char *role_id, int **out, size_t *n)
{
  AUTOLIST(role_permit) l = role_permit_list_by_role(st, role_id);
  if (!l) return -1;
  size_t k = 0;
  while (l[k]) k++;
  *out = xcalloc(k ? k : 1, sizeof(int));
  for (size_t i = 0; i < k; i++) (*out)[i] = (int)l[i]->permit;
  *n = k;
  return 0;
}

static struct role_info *role_info_from_custom(struct store *st, struct role *c)
{
  struct role_info *r = xcalloc(1, sizeof *r);
  r->id = steal_pointer(&c->id);
  r->name = steal_pointer(&c->name);
  r->description = steal_pointer(&c->description);
  r->administrative = c->administrative;
  r->mutable_ = true;
  if (custom_permits(st, r->id, &r->permits, &r->npermits) < 0) {
    role_info_free(r);
    return NULL;
  }
  return r;
}

struct role_info *role_info_get(struct store *st, const char *id, const char *name)
{
  const struct predefined_role *p = predefined(id, name);
  if (p) return role_info_from_predefined(p);
  AUTOPTR(role) c = NULL;
  if (name && !id) {
    AUTOLIST(role) l = role_list_by_name(st, name);
    if (!l) return NULL;
    if (!l[0]) return error(ERR_NOT_FOUND, "role '%s' does not exist", name), NULL;
    c = steal_pointer(&l[0]);
  } else {
    c = role_get(st, id);
    if (!c) {
      if (error_code() == ERR_NOT_FOUND) error(ERR_NOT_FOUND, "role '%s' does not exist", id ? id : "");
      return NULL;
    }
  }
  return role_info_from_custom(st, c);
}

struct role_info **role_info_list(struct store *st, size_t *n)
{
  AUTOLIST(role) custom = role_list_all(st);
  if (!custom) return NULL;
  size_t nc = 0;
  while (custom[nc]) nc++;
  struct role_info **out = xcalloc(ARRAY_SIZE(ROLES) + nc + 1, sizeof *out);
  size_t k = 0;
  for (size_t i = 0; i < ARRAY_SIZE(ROLES); i++) out[k++] = role_info_from_predefined(&ROLES[i]);
  for (size_t i = 0; i < nc; i++) {
    struct role_info *r = role_info_from_custom(st, custom[i]);
    if (!r) {
      for (size_t j = 0; j < k; j++) role_info_free(out[j]);
      free(out);
      return NULL;
    }
    out[k++] = r;
  }
  *n = k;
  return out;
}

/* ---- grants and the view ---- */

struct grant {
  int obj;                /* enum perm_object */
  char *obj_id;
  struct role_info *role;
};

struct node_ref { int obj; char *id; };
DEFINE_VEC(grant_vec, struct grant);
DEFINE_VEC(ref_vec, struct node_ref);

struct perm_view {
  struct engine *eng;
  struct store *st;
  const struct user *user;   /* borrowed; NULL: the engine */
  struct grant_vec grants;
  bool any_below_system;     /* a grant on something other than the system */
  int64_t gen;               /* store_generation() when loaded */
  struct perm_cache *cache;  /* the engine's, or NULL */
};

/* ---- the cache: one store generation's grants and parents ----
 *
 * An authenticated GET must stay cheap: without the cache every request
 * would read the user's permissions, its lock, and each object's parents
 * (a VM's cluster, the cluster's data center). Entries carry the store
 * generation they were read under; any write, by this process or another
 * (`snapbackd user lock`), changes the generation, so a stale entry is never
 * used: a lock or a revoked permission counts at the next request. */
#define PC_USERS 64
#define PC_PARENTS 1024

struct pc_user {
  char *user_id;
  int64_t gen;
  struct grant_vec grants;
  bool any_below_system;
};

struct pc_parent {
  int obj;
  char *id;
  int64_t gen;
  struct ref_vec refs;
};

struct perm_cache {
  pthread_mutex_t mu;
  struct pc_user users[PC_USERS];
  size_t next_user;          /* round-robin replacement */
  struct pc_parent parents[PC_PARENTS];
};

static void grants_free(struct grant_vec *g)
{
  for (size_t i = 0; i < g->len; i++) {
    free(g->ptr[i].obj_id);
    role_info_free(g->ptr[i].role);
  }
  free(g->ptr);
  *g = (struct grant_vec)VEC_INIT;
}

static void refs_free(struct ref_vec *r)
{
  for (size_t i = 0; i < r->len; i++) free(r->ptr[i].id);
  free(r->ptr);
  *r = (struct ref_vec)VEC_INIT;
}

static struct role_info *role_info_dup(const struct role_info *r)
{
  struct role_info *c = xcalloc(1, sizeof *c);
  c->id = xstrdup(r->id);
  c->name = xstrdup(r->name);
  c->description = xstrdup(r->description);
  c->administrative = r->administrative;
  c->mutable_ = r->mutable_;
  c->permits = xcalloc(r->npermits ? r->npermits : 1, sizeof(int));
  memcpy(c->permits, r->permits, r->npermits * sizeof(int));
  c->npermits = r->npermits;
  return c;
}

static void grants_copy(struct grant_vec *dst, const struct grant_vec *src)
{
  for (size_t i = 0; i < src->len; i++)
    vec_push(dst, ((struct grant){src->ptr[i].obj, xstrdup(src->ptr[i].obj_id), role_info_dup(src->ptr[i].role)}));
}

static void refs_copy(struct ref_vec *dst, const struct ref_vec *src)
{
  for (size_t i = 0; i < src->len; i++) vec_push(dst, ((struct node_ref){src->ptr[i].obj, xstrdup(src->ptr[i].id)}));
}

struct perm_cache *perm_cache_new(void)
{
  struct perm_cache *pc = xcalloc(1, sizeof *pc);
  pthread_mutex_init(&pc->mu, NULL);
  return pc;
}

void perm_cache_free(struct perm_cache *pc)
{
  if (!pc) return;
  for (size_t i = 0; i < PC_USERS; i++) {
    free(pc->users[i].user_id);
    grants_free(&pc->users[i].grants);
  }
  for (size_t i = 0; i < PC_PARENTS; i++) {
    free(pc->parents[i].id);
    refs_free(&pc->parents[i].refs);
  }
  pthread_mutex_destroy(&pc->mu);
  free(pc);
}

static size_t pc_hash(int obj, const char *id)
{
  uint64_t h = 1469598103934665603ULL ^ (uint64_t)obj;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  return (size_t)(h % PC_PARENTS);
}

/* copies the cached grants of USER_ID at GEN into v; false when absent */
static bool pc_get_user(struct perm_cache *pc, const char *user_id, int64_t gen, struct perm_view *v)
{
  bool hit = false;
  pthread_mutex_lock(&pc->mu);
  for (size_t i = 0; i < PC_USERS && !hit; i++) {
    struct pc_user *e = &pc->users[i];
    if (e->user_id && e->gen == gen && strcmp(e->user_id, user_id) == 0) {
      grants_copy(&v->grants, &e->grants);
      v->any_below_system = e->any_below_system;
      hit = true;
    }
  }
  pthread_mutex_unlock(&pc->mu);
  return hit;
}

static void pc_put_user(struct perm_cache *pc, const struct perm_view *v)
{
  pthread_mutex_lock(&pc->mu);
  struct pc_user *e = NULL;
  for (size_t i = 0; i < PC_USERS && !e; i++)
    if (pc->users[i].user_id && strcmp(pc->users[i].user_id, v->user->id) == 0) e = &pc->users[i];
  if (!e) e = &pc->users[pc->next_user++ % PC_USERS];
  free(e->user_id);
  grants_free(&e->grants);
  e->user_id = xstrdup(v->user->id);
  e->gen = v->gen;
  grants_copy(&e->grants, &v->grants);
  e->any_below_system = v->any_below_system;
  pthread_mutex_unlock(&pc->mu);
}

static bool pc_get_parents(struct perm_cache *pc, int obj, const char *id, int64_t gen, struct ref_vec *out)
{
  bool hit = false;
  pthread_mutex_lock(&pc->mu);
  struct pc_parent *e = &pc->parents[pc_hash(obj, id)];
  if (e->id && e->obj == obj && e->gen == gen && strcmp(e->id, id) == 0) {
    refs_copy(out, &e->refs);
    hit = true;
  }
  pthread_mutex_unlock(&pc->mu);
  return hit;
}

static void pc_put_parents(struct perm_cache *pc, int obj, const char *id, int64_t gen, const struct ref_vec *refs)
{
  pthread_mutex_lock(&pc->mu);
  struct pc_parent *e = &pc->parents[pc_hash(obj, id)];
  free(e->id);
  refs_free(&e->refs);
  e->obj = obj;
  e->id = xstrdup(id);
  e->gen = gen;
  refs_copy(&e->refs, refs);
  pthread_mutex_unlock(&pc->mu);
}

void perm_view_free(struct perm_view *v)
{
  if (!v) return;
  grants_free(&v->grants);
  free(v);
}

static bool role_has(const struct role_info *r, int permit)
{
  if (permit == PERMIT_VIEW) return true;
  for (size_t i = 0; i < r->npermits; i++)
    if (r->permits[i] == permit) return true;
  return false;
}

bool perm_user_locked(struct store *st, const char *user_id)
{
  return user_lock_count_by_user(st, user_id) != 0;
}

static struct perm_view *view_load(struct engine *eng, struct store *st, const struct user *user)
{
  AUTOPTR(perm_view) v = xcalloc(1, sizeof *v);
  v->eng = eng;
  v->st = st;
  v->user = user;
  v->cache = eng ? eng->perm_cache : NULL;
  if (!user) return steal_pointer(&v);
  v->gen = store_generation(st);
  /* a cached entry holds only a user that may log in (not locked, LOGIN) */
  if (v->cache && v->gen >= 0 && pc_get_user(v->cache, user->id, v->gen, v)) return steal_pointer(&v);
  AUTOLIST(permission) l = permission_list_of_user_or_groups(v->st, user->id);
  if (!l) return NULL;
  bool login = false;
  for (size_t i = 0; l[i]; i++) {
    int obj = perm_object_from_str(l[i]->object_type);
    if (obj < 0) continue;
    struct role_info *r = role_info_get(v->st, l[i]->role_id, NULL);
    if (!r) {
      /* a grant of a role removed meanwhile counts for nothing */
      if (error_code() != ERR_NOT_FOUND) return NULL;
      error_clear();
      continue;
    }
    if (role_has(r, PERMIT_LOGIN)) login = true;
    if (obj != OBJ_SYSTEM) v->any_below_system = true;
    vec_push(&v->grants, ((struct grant){obj, xstrdup(l[i]->object_id), r}));
  }
  if (perm_user_locked(v->st, user->id))
    return error(ERR_AUTH, "the user account '%s' is locked", user->name), NULL;
  if (!login) {
    /* oVirt's words, which clients may look for */
    const char *at = strchr(user->name, '@');
    int n = at ? (int)(at - user->name) : (int)strlen(user->name);
    return error(ERR_AUTH, "The user %.*s@%s-authz with profile [%s] is not authorized to perform login", n,
                 user->name, at ? at + 1 : "internal", at ? at + 1 : "internal"), NULL;
  }
  if (v->cache && v->gen >= 0) pc_put_user(v->cache, v);
  return steal_pointer(&v);
}

struct perm_view *perm_view_open(struct engine *eng, const struct user *user)
{
  return view_load(eng, engine_store(eng), user);
}

int perm_can_login(struct store *st, const struct user *user)
{
  AUTOPTR(perm_view) v = view_load(NULL, st, user);
  return v ? 0 : -1;
}

static void ref_push(struct ref_vec *r, int obj, const char *id)
{
  if (!id) return;
  for (size_t i = 0; i < r->len; i++)
    if (r->ptr[i].obj == obj && strcmp(r->ptr[i].id, id) == 0) return;
  vec_push(r, ((struct node_ref){obj, xstrdup(id)}));
}

/* the object and everything above it; missing rows end the walk quietly */
static void ancestors(struct store *st, int obj, const char *id, struct ref_vec *out, int depth)
{
  if (!id || depth > 4) return;
  ref_push(out, obj, id);
  switch (obj) {
  case OBJ_VM: {
    AUTOPTR(vm) x = vm_get(st, id);
    if (x) ancestors(st, OBJ_CLUSTER, x->cluster_id, out, depth + 1);
    break;
  }
  case OBJ_TEMPLATE: {
    AUTOPTR(template) x = template_get(st, id);
    if (x) ancestors(st, OBJ_CLUSTER, x->cluster_id, out, depth + 1);
    break;
  }
  case OBJ_HOST: {
    AUTOPTR(host) x = host_get(st, id);
    if (x) ancestors(st, OBJ_CLUSTER, x->cluster_id, out, depth + 1);
    break;
  }
  case OBJ_CLUSTER: {
    AUTOPTR(cluster) x = cluster_get(st, id);
    if (x) ancestors(st, OBJ_DATACENTER, x->datacenter_id, out, depth + 1);
    break;
  }
  case OBJ_STORAGE_DOMAIN: {
    AUTOPTR(storage_domain) x = storage_domain_get(st, id);
    if (x) ancestors(st, OBJ_DATACENTER, x->datacenter_id, out, depth + 1);
    break;
  }
  case OBJ_DISK: {
    AUTOPTR(disk) x = disk_get(st, id);
    if (x) ancestors(st, OBJ_STORAGE_DOMAIN, x->storage_domain_id, out, depth + 1);
    AUTOLIST(attachment) at = attachment_list_own_of_disk(st, id);
    for (size_t i = 0; at && at[i]; i++) ancestors(st, OBJ_VM, at[i]->vm_id, out, depth + 1);
    break;
  }
  default:
    break;
  }
  error_clear();
}

bool perm_allows(struct perm_view *v, int permit, int obj, const char *id)
{
  if (!v->user) return true;
  for (size_t i = 0; i < v->grants.len; i++)
    if (v->grants.ptr[i].obj == OBJ_SYSTEM && role_has(v->grants.ptr[i].role, permit)) return true;
  if (obj == OBJ_SYSTEM || !v->any_below_system || !id) return false;
  struct ref_vec refs = VEC_INIT;
  if (!v->cache || v->gen < 0 || !pc_get_parents(v->cache, obj, id, v->gen, &refs)) {
    ancestors(v->st, obj, id, &refs, 0);
    if (v->cache && v->gen >= 0) pc_put_parents(v->cache, obj, id, v->gen, &refs);
  }
  bool ok = false;
  for (size_t i = 0; i < v->grants.len && !ok; i++) {
    const struct grant *g = &v->grants.ptr[i];
    if (!role_has(g->role, permit)) continue;
    for (size_t j = 0; j < refs.len; j++)
      if (refs.ptr[j].obj == g->obj && g->obj_id && strcmp(refs.ptr[j].id, g->obj_id) == 0) {
        ok = true;
        break;
      }
  }
  refs_free(&refs);
  return ok;
}

bool perm_holds_anywhere(struct perm_view *v, int permit)
{
  if (!v->user) return true;
  for (size_t i = 0; i < v->grants.len; i++)
    if (role_has(v->grants.ptr[i].role, permit)) return true;
  return false;
}

bool perm_is_system_admin(struct perm_view *v)
{
  if (!v->user) return true;
  for (size_t i = 0; i < v->grants.len; i++)
    if (v->grants.ptr[i].obj == OBJ_SYSTEM && v->grants.ptr[i].role->administrative) return true;
  return false;
}

bool perm_user_is_admin(struct engine *eng, const struct user *user)
{
  AUTOPTR(perm_view) v = perm_view_open(eng, user);
  return v && perm_is_system_admin(v);
}

const char *perm_object_kind(int obj)
{
  static const char *const kinds[] = {"system", "data center", "cluster", "storage domain", "host",
                                      "VM", "template", "disk"};
  return obj >= 0 && obj < OBJ_LAST ? kinds[obj] : "object";
}

int perm_not_found(int obj, const char *id)
{
  return error(ERR_NOT_FOUND, "%s '%s' does not exist", perm_object_kind(obj), id ? id : "");
}

int perm_require(struct perm_view *v, int permit, int obj, const char *id, const char *action)
{
  if (perm_allows(v, permit, obj, id)) return 0;
  const struct permit_info *pi = permit_by_id(permit);
  bool sees = permit != PERMIT_VIEW && perm_allows(v, PERMIT_VIEW, obj, id);
  if (v->eng)
    engine_event(v->eng, SEVERITY_WARNING, EV_PERMISSION_DENIED, v->user, obj == OBJ_VM ? id : NULL,
                 "permission denied: user '%s' may not %s (%s) on %s '%s'", v->user->name, action,
                 pi ? pi->name : "VIEW", perm_object_kind(obj), obj == OBJ_SYSTEM ? "system" : id);
  if (!sees && obj != OBJ_SYSTEM) return perm_not_found(obj, id);
  return error(ERR_FORBIDDEN, "user '%s' is not authorized to perform this action: %s needs permit %s "
               "on %s '%s'", v->user->name, action, pi ? pi->name : "VIEW", perm_object_kind(obj),
               obj == OBJ_SYSTEM ? "system" : id);
}

int perm_require_user(struct engine *eng, const struct user *user, int permit, int obj,
                      const char *id, const char *action)
{
  if (!user) return 0;
  AUTOPTR(perm_view) v = perm_view_open(eng, user);
  if (!v) return -1;
  return perm_require(v, permit, obj, id, action);
}

int perm_ensure_admin(struct store *st)
{
  AUTOPTR(user) admin = user_get_by_name(st, "admin@internal");
  if (!admin) {
    if (error_code() != ERR_NOT_FOUND) return -1;
    error_clear();
    return 0;
  }
  int64_t n = permission_count_system_grant(st, admin->id, PERM_SUPERUSER_ROLE_ID);
  if (n < 0) return -1;
  if (n > 0) return 0;
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  struct permission p = {.id = id, .role_id = (char *)PERM_SUPERUSER_ROLE_ID, .user_id = admin->id,
                         .object_type = (char *)"system", .object_id = (char *)PERM_SYSTEM_ID};
  return permission_insert(st, &p);
}

int perm_object_exists(struct store *st, int obj, const char *id)
{
  int64_t (*count)(struct store *, const char *) = NULL;
  switch (obj) {
  case OBJ_SYSTEM: return 0;
  case OBJ_DATACENTER: count = datacenter_count_by_id; break;
  case OBJ_CLUSTER: count = cluster_count_by_id; break;
  case OBJ_STORAGE_DOMAIN: count = storage_domain_count_by_id; break;
  case OBJ_HOST: count = host_count_by_id; break;
  case OBJ_VM: count = vm_count_by_id; break;
  case OBJ_TEMPLATE: count = template_count_by_id; break;
  case OBJ_DISK: count = disk_count_by_id; break;
  default: return perm_not_found(obj, id);
  }
  int64_t n = count(st, id ? id : "");
  if (n < 0) return -1;
  return n > 0 ? 0 : perm_not_found(obj, id);
}

int perm_role_insert(struct store *st, const struct role *r, const int *permits, size_t n)
{
  if (store_begin(st) < 0) return -1;
  if (role_insert(st, r) < 0) goto fail;
  for (size_t i = 0; i < n; i++) {
    char id[UUID_STRLEN + 1];
    if (uuid_generate_str(id) < 0) goto fail;
    struct role_permit rp = {.id = id, .role_id = r->id, .permit = permits[i]};
    if (role_permit_insert(st, &rp) < 0) goto fail;
  }
  return store_commit(st);
fail:
  store_rollback(st);
  return -1;
}

int perm_role_remove(struct store *st, const char *role_id, const char *name)
{
  if (store_begin(st) < 0) return -1;
  int64_t used = permission_count_by_role(st, role_id);
  if (used != 0) {
    store_rollback(st);
    if (used < 0) return -1;
    return error(ERR_CONFLICT, "cannot remove role '%s': %lld permissions grant it; remove them first", name,
                 (long long)used);
  }
  AUTOLIST(role_permit) l = role_permit_list_by_role(st, role_id);
  if (!l) goto fail;
  for (size_t i = 0; l[i]; i++)
    if (role_permit_delete(st, l[i]->id) < 0) goto fail;
  if (role_delete(st, role_id) < 0) goto fail;
  return store_commit(st);
fail:
  store_rollback(st);
  return -1;
}

int perm_group_remove(struct store *st, const char *group_id)
{
  if (store_begin(st) < 0) return -1;
  AUTOLIST(group_member) m = group_member_list_by_group(st, group_id);
  AUTOLIST(permission) p = m ? permission_list_by_group(st, group_id) : NULL;
  if (!p) goto fail;
  for (size_t i = 0; m[i]; i++)
    if (group_member_delete(st, m[i]->id) < 0) goto fail;
  for (size_t i = 0; p[i]; i++)
    if (permission_delete(st, p[i]->id) < 0) goto fail;
  if (usergroup_delete(st, group_id) < 0) goto fail;
  return store_commit(st);
fail:
  store_rollback(st);
  return -1;
}
