/* perm.h: oVirt's permission model, decided in one place.
 *
 * A role is a set of permits (oVirt's ActionGroup ids). A permission grants
 * a role to a user or a group on an object: the system, a data center, a
 * cluster, a storage domain, a host, a VM, a template or a disk. Grants
 * inherit downwards:
 *
 *   system -> data center -> cluster -> VM / template / host
 *                         -> storage domain -> disk
 *   and a disk also inherits from every VM it is attached to (not as a
 *   disk snapshot of another VM)
 *
 * A user may act on an object when one of its grants (its own or its
 * groups') on the object or an ancestor holds the permit. A user sees an
 * object when it holds any grant there (PERMIT_VIEW): objects it may not see
 * answer 404 exactly as if absent, objects it sees but may not change 403.
 * Every denial is an audit event naming the user, the action and the object.
 *
 * The predefined roles are a static table here (oVirt's names and ids) and
 * never change; custom roles live in the store (roles, role_permits).
 *
 * Thread-safety: a perm_view belongs to one request; the rest only reads the
 * store, which serialises itself. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "store/store.h"
#include "util/cleanup.h"
#include "util/enumstr.h"

struct engine;

enum perm_object {
  OBJ_SYSTEM, OBJ_DATACENTER, OBJ_CLUSTER, OBJ_STORAGE_DOMAIN, OBJ_HOST, OBJ_VM,
  OBJ_TEMPLATE, OBJ_DISK, OBJ_LAST
};
ENUM_DECL(perm_object); /* "system","datacenter","cluster","storage_domain","host","vm","template","disk" */

/* audit event codes: a refusal, a role granted, a permission removed (snapback's own;
 * unchecked against oVirt's AuditLogType numbers) */
enum { EV_PERMISSION_DENIED = 9998, EV_PERMISSION_ADDED = 850, EV_PERMISSION_REMOVED = 851 };

/* the id oVirt gives the system object */
#define PERM_SYSTEM_ID "aaa00000-0000-0000-0000-123456789aaa"
#define PERM_SUPERUSER_ROLE_ID "00000000-0000-0000-0000-000000000001"

/* permits: oVirt's ActionGroup ids. PERMIT_VIEW is ours: "holds any role on
 * the object", which is what seeing it takes. */
enum permit {
  PERMIT_VIEW = 0,
  PERMIT_CREATE_VM = 1, PERMIT_DELETE_VM = 2, PERMIT_EDIT_VM_PROPERTIES = 3,
  PERMIT_VM_BASIC_OPERATIONS = 4, PERMIT_CHANGE_VM_CD = 5, PERMIT_MIGRATE_VM = 6,
  PERMIT_CONNECT_TO_VM = 7, PERMIT_IMPORT_EXPORT_VM = 8, PERMIT_CONFIGURE_VM_NETWORK = 9,
  PERMIT_CONFIGURE_VM_STORAGE = 10, PERMIT_MOVE_VM = 11, PERMIT_MANIPULATE_VM_SNAPSHOTS = 12,
  PERMIT_RECONNECT_TO_VM = 13,
  PERMIT_CREATE_HOST = 100, PERMIT_EDIT_HOST_CONFIGURATION = 101, PERMIT_DELETE_HOST = 102,
  PERMIT_MANIPULATE_HOST = 103, PERMIT_CONFIGURE_HOST_NETWORK = 104,
  PERMIT_CREATE_TEMPLATE = 200, PERMIT_EDIT_TEMPLATE_PROPERTIES = 201, PERMIT_DELETE_TEMPLATE = 202,
  PERMIT_COPY_TEMPLATE = 203, PERMIT_CONFIGURE_TEMPLATE_NETWORK = 204,
  PERMIT_CREATE_CLUSTER = 400, PERMIT_EDIT_CLUSTER_CONFIGURATION = 401, PERMIT_DELETE_CLUSTER = 402,
  PERMIT_MANIPULATE_USERS = 500, PERMIT_MANIPULATE_ROLES = 501, PERMIT_MANIPULATE_PERMISSIONS = 502,
  PERMIT_CREATE_STORAGE_DOMAIN = 600, PERMIT_EDIT_STORAGE_DOMAIN_CONFIGURATION = 601,
  PERMIT_DELETE_STORAGE_DOMAIN = 602, PERMIT_MANIPULATE_STORAGE_DOMAIN = 603,
  PERMIT_CREATE_STORAGE_POOL = 700, PERMIT_DELETE_STORAGE_POOL = 701,
  PERMIT_EDIT_STORAGE_POOL_CONFIGURATION = 702,
  PERMIT_CONFIGURE_ENGINE = 800,
  PERMIT_CREATE_DISK = 1100, PERMIT_ATTACH_DISK = 1101, PERMIT_EDIT_DISK_PROPERTIES = 1102,
  PERMIT_CONFIGURE_DISK_STORAGE = 1103, PERMIT_DELETE_DISK = 1104, PERMIT_BACKUP_DISK = 1110,
  PERMIT_LOGIN = 1300,
  PERMIT_INJECT_EXTERNAL_EVENTS = 1500,
};

/* the permit table: id, oVirt name ("ATTACH_DISK"), administrative or not */
struct permit_info { int id; const char *name; bool administrative; };
const struct permit_info *permit_by_id(int id);   /* NULL when unknown */
const struct permit_info *permit_by_name(const char *name);
const struct permit_info *permit_table(size_t *n);

/* a role as the API shows it: predefined (static) or custom (store) */
struct role_info {
  char *id, *name, *description;
  bool administrative, mutable_;
  int *permits;
  size_t npermits;
};
void role_info_free(struct role_info *r);
DEFINE_AUTOPTR(role_info, struct role_info, role_info_free)
/* by id or (name != NULL) by name; ERR_NOT_FOUND "role 'X' does not exist" */
struct role_info *role_info_get(struct store *st, const char *id, const char *name);
/* every role, predefined first; *n gets the count; caller frees each and the array */
struct role_info **role_info_list(struct store *st, size_t *n);
bool role_is_predefined(const char *id);

/* ---- the acting user's view ---- */

struct perm_view;
/* loads USER's grants (its own and its groups'). USER NULL is the engine
 * itself, which may do anything. Fails with ERR_AUTH for a locked user, and
 * for one without LOGIN anywhere ("... is not authorized to perform login"). */
struct perm_view *perm_view_open(struct engine *eng, const struct user *user);
void perm_view_free(struct perm_view *v);
DEFINE_AUTOPTR(perm_view, struct perm_view, perm_view_free)

/* may the view's user use PERMIT on object (OBJ, ID)? PERMIT_VIEW: may it see it? */
bool perm_allows(struct perm_view *v, int permit, int obj, const char *id);
/* does any grant of the user hold PERMIT, on any object? (a cheap first
 * check for commands whose objects come from the request body) */
bool perm_holds_anywhere(struct perm_view *v, int permit);
/* a grant of an administrative role on the system (sees everyone's
 * transfers, jobs and events) */
bool perm_is_system_admin(struct perm_view *v);
/* the same for a user without an open view (false when the view cannot be loaded) */
bool perm_user_is_admin(struct engine *eng, const struct user *user);
/* 0 when allowed; else -1 with ERR_NOT_FOUND as if the object were absent
 * (the user cannot see it) or ERR_FORBIDDEN, and an audit event naming the
 * user, ACTION and the object */
int perm_require(struct perm_view *v, int permit, int obj, const char *id, const char *action);
/* the same for one check without a view at hand (commands) */
int perm_require_user(struct engine *eng, const struct user *user, int permit, int obj,
                      const char *id, const char *action);
/* "VM 'ID' does not exist": the message of an object that is absent */
int perm_not_found(int obj, const char *id);
const char *perm_object_kind(int obj);   /* "VM", "storage domain" ... */

/* the user named USERNAME is locked (a store error counts as locked) */
bool perm_user_locked(struct store *st, const char *user_id);
/* makes sure admin@internal, when it exists, holds SuperUser on the system */
int perm_ensure_admin(struct store *st);

/* ERR_NOT_FOUND "VM 'ID' does not exist" unless (obj, id) exists (the system always does) */
int perm_object_exists(struct store *st, int obj, const char *id);
/* a custom role with its permits, in one transaction */
int perm_role_insert(struct store *st, const struct role *r, const int *permits, size_t n);
/* a custom role and its permits; ERR_CONFLICT while a permission grants it */
int perm_role_remove(struct store *st, const char *role_id, const char *name);
/* a group, its memberships and its permissions, in one transaction */
int perm_group_remove(struct store *st, const char *group_id);
/* 0 when USER may log in (not locked, LOGIN from some grant); else ERR_AUTH */
int perm_can_login(struct store *st, const struct user *user);
