/* routes.c: the one REST route table, the helpers its handlers share, and
 * the dispatch. The handlers live in res_*.c, one file per resource.
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
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int query_max(struct api_call *c, int *out)
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

int need_text(const struct node *n, const char *path, const char *elem, const char **out)
{
  *out = node_text(n, path);
  if (!*out)
    return error(ERR_INVALID, "missing required field '%s.%s': add <%s> to the <%s> element",
                 elem, path, path, elem);
  return 0;
}

/* resolves a reference given by id attribute or by <name> child */
#define DEFINE_RESOLVE(T, kind, obj)                                                           \
  struct T *resolve_##T(struct api_call *c, const struct node *ref, const char *what)          \
  {                                                                                            \
    const char *id = node_attr(ref, "id");                                                     \
    if (id && perm_require(c->pv, PERMIT_VIEW, obj, id, "refer to") < 0) return NULL;          \
    if (id) return T##_get(c->st, id);                                                         \
    const char *name = node_text(ref, "name");                                                 \
    if (!name)                                                                                 \
      return error(ERR_INVALID, "missing %s: give <%s id=\"...\"/> or <%s><name>...</name></%s>", \
                   what, what, what, what), NULL;                                              \
    AUTOLIST(T) l = T##_list_by_name(c->st, name);                                             \
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

/* a job, a transfer: its creator's, and visible to system administrators */
bool api_owned(struct api_call *c, const char *user_id)
{
  return (user_id && strcmp(user_id, c->req->user->id) == 0) || perm_is_system_admin(c->pv);
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
  {"POST", "/hosts", add_host, BODY(PERMIT_CREATE_HOST)},
  {"DELETE", "/hosts/{}", remove_host, ON(OBJ_HOST, 0, PERMIT_DELETE_HOST)},
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
  {"GET", "/jobs", list_jobs, LOGGED_IN},
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
  {"GET", "/vms/{}/cdroms", list_vm_cdroms, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/graphicsconsoles", list_vm_consoles, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/hostdevices", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/katelloerrata", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/mediateddevices", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/nics", list_vm_nics, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/numanodes", list_model_collection, SEE(OBJ_VM, 0)},
  {"GET", "/vms/{}/reporteddevices", list_vm_reported_devices, SEE(OBJ_VM, 0)},
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
  {"GET", "/storagedomains/{}/files", list_storage_domain_files, SEE(OBJ_STORAGE_DOMAIN, 0)},
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
  {"GET", "/vms/{}/cdroms/{}", get_vm_cdrom, SEE(OBJ_VM, 0)},
  {"PUT", "/vms/{}/cdroms/{}", update_vm_cdrom, ON(OBJ_VM, 0, PERMIT_CHANGE_VM_CD)},
  {"GET", "/storagedomains/{}/files/{}", get_storage_domain_file, SEE(OBJ_STORAGE_DOMAIN, 0)},
  {"GET", "/vms/{}/reporteddevices/{}", get_vm_reported_device, SEE(OBJ_VM, 0)},
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
