/* call.h: what the files of the API layer share: one call's context and the
 * permission column of the route table.
 *
 * Every ROUTES entry (routes.c) names the permission its method needs, as a
 * fourth field built with one of these macros:
 *
 *   LOGGED_IN           any user who may log in; the handler shows only what
 *                       the user may see (collections, the root)
 *   SEE(OBJ, n)         the user sees object OBJ named by path parameter n
 *                       (any role on it or above it); else 404 as if absent
 *   ON(OBJ, n, PERMIT)  PERMIT on that object (404 when the user cannot see
 *                       it, 403 when it sees it but lacks the permit)
 *   SYSTEM(PERMIT)      PERMIT on the system (administrative actions)
 *   BODY(PERMIT)        the objects come from the request body: the command
 *                       checks PERMIT on them in cmd_run (cmd_ctx.needs)
 *   OWNER               the object belongs to a user (transfers, jobs, the
 *                       user's own account): the handler checks ownership
 *
 * e.g. {"GET", "/vms/{}/backups", list_backups, SEE(OBJ_VM, 0)}. A route
 * without the fourth field is refused at run time (500) and fails the unit
 * test that walks the table. */
#pragma once
#include "api/api.h"
#include "api/render.h"
#include "cmd/perm.h"

#define MAX_PARAMS 4

struct api_call {
  struct engine *eng;
  struct store *st;
  const struct api_request *req;
  struct api_response *resp;
  const char *p[MAX_PARAMS];   /* the path's {} segments */
  struct render_ctx r;
  struct perm_view *pv;        /* the acting user's permissions: every read asks it */
};

enum route_rule_kind { RULE_MISSING = 0, RULE_LOGGED_IN, RULE_OBJECT, RULE_BODY, RULE_OWNER };

struct route_rule {
  unsigned char kind;          /* enum route_rule_kind */
  unsigned char obj;           /* enum perm_object */
  signed char param;           /* index into api_call.p, -1: the system */
  short permit;                /* enum permit */
};

#define LOGGED_IN ((struct route_rule){RULE_LOGGED_IN, OBJ_SYSTEM, -1, PERMIT_LOGIN})
#define SEE(obj, n) ((struct route_rule){RULE_OBJECT, (obj), (n), PERMIT_VIEW})
#define ON(obj, n, permit) ((struct route_rule){RULE_OBJECT, (obj), (n), (permit)})
#define SYSTEM(permit) ((struct route_rule){RULE_OBJECT, OBJ_SYSTEM, -1, (permit)})
#define BODY(permit) ((struct route_rule){RULE_BODY, OBJ_SYSTEM, -1, (permit)})
#define OWNER ((struct route_rule){RULE_OWNER, OBJ_SYSTEM, -1, PERMIT_LOGIN})

/* the route table, for the test that walks it */
size_t api_route_count(void);
void api_route_info(size_t i, const char **method, const char **pattern, struct route_rule *rule);
/* api_handle up to and including the permission check, without running the
 * handler: 0 when the acting user passes the route's rule */
int api_check_route(struct engine *eng, const struct api_request *req);

/* may the acting user see object (obj, id)? the one filter of every read */
static inline bool api_visible(struct api_call *c, int obj, const char *id)
{
  return perm_allows(c->pv, PERMIT_VIEW, obj, id);
}

/* ---- res_perm.c: users, groups, roles and permissions ---- */
int api_list_users(struct api_call *c);
int api_add_user(struct api_call *c);
int api_get_user(struct api_call *c);
int api_list_user_groups(struct api_call *c);
int api_list_user_permissions(struct api_call *c);
int api_add_user_permission(struct api_call *c);
int api_list_groups(struct api_call *c);
int api_add_group(struct api_call *c);
int api_get_group(struct api_call *c);
int api_remove_group(struct api_call *c);
int api_list_group_permissions(struct api_call *c);
int api_add_group_permission(struct api_call *c);
int api_list_roles(struct api_call *c);
int api_add_role(struct api_call *c);
int api_get_role(struct api_call *c);
int api_update_role(struct api_call *c);
int api_remove_role(struct api_call *c);
int api_list_role_permits(struct api_call *c);
int api_add_role_permit(struct api_call *c);
int api_get_role_permit(struct api_call *c);
int api_remove_role_permit(struct api_call *c);
/* /permissions: the system's */
int api_list_system_permissions(struct api_call *c);
int api_add_system_permission(struct api_call *c);
int api_get_permission(struct api_call *c);
int api_remove_permission(struct api_call *c);
/* /{collection}/{id}/permissions[/{pid}] for each kind of object */
#define API_OBJECT_PERMISSIONS(T)                     \
  int api_list_##T##_permissions(struct api_call *c); \
  int api_add_##T##_permission(struct api_call *c);   \
  int api_get_##T##_permission(struct api_call *c);   \
  int api_remove_##T##_permission(struct api_call *c);
API_OBJECT_PERMISSIONS(vm) API_OBJECT_PERMISSIONS(disk) API_OBJECT_PERMISSIONS(template)
API_OBJECT_PERMISSIONS(cluster) API_OBJECT_PERMISSIONS(datacenter) API_OBJECT_PERMISSIONS(host)
API_OBJECT_PERMISSIONS(storage_domain)
#undef API_OBJECT_PERMISSIONS
