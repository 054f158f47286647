/* res_conform.c: the collections of oVirt's API model that snapback has
 * nothing (or little) to put in.
 *
 * oVirt's clients walk the model's sub-collections (services/ the *Service.java files
 * in ovirt-engine-api-model) and treat a 404 as a broken engine: starting a
 * VM from oVirt's tooling reads /vms/{id}/numanodes, for example. Each such
 * collection has a route in ROUTES (routes.c) whose handler is
 * list_model_collection(): it checks that the parent object exists (404
 * naming it otherwise) and answers the collection, empty, under the element
 * name oVirt uses. The table below holds only names; a collection that gets
 * content moves to a handler of its own. */
#include "api/resources.h"
#include "util/err.h"
#include <string.h>

/* "PARENT/SUB" (PARENT the collection holding the object the sub-collection
 * belongs to, "" for the API root) -> the collection's element */
static const struct { const char *key, *elem; } MODEL_COLLECTIONS[] = {
  /* the API root (SystemService) */
  {"/affinitylabels", "affinity_labels"},
  {"/bookmarks", "bookmarks"},
  {"/clusterlevels", "cluster_levels"},
  {"/cpuprofiles", "cpu_profiles"},
  {"/diskprofiles", "disk_profiles"},
  {"/domains", "domains"},
  {"/externalhostproviders", "external_host_providers"},
  {"/icons", "icons"},
  {"/instancetypes", "instance_types"},
  {"/katelloerrata", "katello_errata"},
  {"/networkfilters", "network_filters"},
  {"/openstackimageproviders", "openstack_image_providers"},
  {"/openstacknetworkproviders", "openstack_network_providers"},
  {"/openstackvolumeproviders", "openstack_volume_providers"},
  {"/operatingsystems", "operating_systems"},
  {"/schedulingpolicies", "scheduling_policies"},
  {"/schedulingpolicyunits", "scheduling_policy_units"},
  {"/storageconnections", "storage_connections"},
  {"/tags", "tags"},
  {"/vmpools", "vm_pools"},
  /* VmService */
  {"vms/affinitylabels", "affinity_labels"},
  {"vms/applications", "applications"},
  {"vms/cdroms", "cdroms"},
  {"vms/hostdevices", "host_devices"},
  {"vms/katelloerrata", "katello_errata"},
  {"vms/mediateddevices", "vm_mediated_devices"},
  {"vms/numanodes", "vm_numa_nodes"},
  {"vms/reporteddevices", "reported_devices"},
  {"vms/sessions", "sessions"},
  {"vms/tags", "tags"},
  {"vms/watchdogs", "watchdogs"},
  /* SnapshotService */
  {"snapshots/cdroms", "cdroms"},
  {"snapshots/nics", "nics"},
  /* TemplateService */
  {"templates/cdroms", "cdroms"},
  {"templates/graphicsconsoles", "graphics_consoles"},
  {"templates/mediateddevices", "vm_mediated_devices"},
  {"templates/nics", "nics"},
  {"templates/tags", "tags"},
  {"templates/watchdogs", "watchdogs"},
  /* HostService */
  {"hosts/affinitylabels", "affinity_labels"},
  {"hosts/cpuunits", "host_cpu_units"},
  {"hosts/devices", "host_devices"},
  {"hosts/externalnetworkproviderconfigurations", "external_network_provider_configurations"},
  {"hosts/fenceagents", "agents"},
  {"hosts/hooks", "hooks"},
  {"hosts/katelloerrata", "katello_errata"},
  {"hosts/networkattachments", "network_attachments"},
  {"hosts/nics", "host_nics"},
  {"hosts/numanodes", "host_numa_nodes"},
  {"hosts/storage", "host_storages"},
  {"hosts/storageconnectionextensions", "storage_connection_extensions"},
  {"hosts/tags", "tags"},
  {"hosts/unmanagednetworks", "unmanaged_networks"},
  /* ClusterService */
  {"clusters/affinitygroups", "affinity_groups"},
  {"clusters/cpuprofiles", "cpu_profiles"},
  {"clusters/enabledfeatures", "cluster_features"},
  {"clusters/externalnetworkproviders", "external_providers"},
  {"clusters/glusterhooks", "gluster_hooks"},
  {"clusters/glustervolumes", "gluster_volumes"},
  {"clusters/networkfilters", "network_filters"},
  /* DataCenterService */
  {"datacenters/iscsibonds", "iscsi_bonds"},
  {"datacenters/qoss", "qoss"},
  {"datacenters/quotas", "quotas"},
  /* StorageDomainService */
  {"storagedomains/diskprofiles", "disk_profiles"},
  {"storagedomains/files", "files"},
  {"storagedomains/images", "images"},
  {"storagedomains/storageconnections", "storage_connections"},
  {"storagedomains/templates", "templates"},
  {"storagedomains/vms", "vms"},
  /* JobService */
  {"jobs/steps", "steps"},
};

/* does object ID of collection COLL exist? records ERR_NOT_FOUND if not;
 * VM_ID is the VM a snapshot must belong to */
static int parent_exists(struct store *st, const char *coll, const char *id, const char *vm_id)
{
#define EXISTS(T) do { struct T *x = T##_get(st, id); if (!x) return -1; T##_free(x); return 0; } while (0)
  if (strcmp(coll, "vms") == 0) EXISTS(vm);
  if (strcmp(coll, "disks") == 0) EXISTS(disk);
  if (strcmp(coll, "templates") == 0) EXISTS(template);
  if (strcmp(coll, "hosts") == 0) EXISTS(host);
  if (strcmp(coll, "clusters") == 0) EXISTS(cluster);
  if (strcmp(coll, "datacenters") == 0) EXISTS(datacenter);
  if (strcmp(coll, "storagedomains") == 0) EXISTS(storage_domain);
#undef EXISTS
  if (strcmp(coll, "snapshots") == 0) {
    AUTOPTR(snapshot) s = snapshot_get(st, id);
    if (!s) return -1;
    if (vm_id && strcmp(s->vm_id, vm_id) != 0)
      return error(ERR_NOT_FOUND, "snapshot '%s' does not belong to VM '%s'", id, vm_id);
    return 0;
  }
  return error(ERR_INTERNAL, "no parent lookup for collection '%s'", coll);
}

/* GET of a model collection listed in MODEL_COLLECTIONS: the path's last
 * segment names it, the two before it its parent ("/vms/ID/numanodes") */
int list_model_collection(struct api_call *c)
{
  const char *path = c->req->path;
  const char *seg[8];
  size_t lens[8], n = 0;
  for (const char *s = path; *s && n < ARRAY_SIZE(seg);) {
    while (*s == '/') s++;
    if (!*s) break;
    const char *e = strchrnul(s, '/');
    seg[n] = s;
    lens[n++] = (size_t)(e - s);
    s = e;
  }
  if (n == 0) return error(ERR_NOT_FOUND, "no such resource '%s'", path);
  struct buf key = BUF_INIT;
  if (n >= 3) buf_printf(&key, "%.*s", (int)lens[n - 3], seg[n - 3]);
  buf_printf(&key, "/%.*s", (int)lens[n - 1], seg[n - 1]);
  const char *elem = NULL;
  for (size_t i = 0; i < ARRAY_SIZE(MODEL_COLLECTIONS) && !elem; i++)
    if (strcmp(MODEL_COLLECTIONS[i].key, buf_str(&key)) == 0) elem = MODEL_COLLECTIONS[i].elem;
  int r = 0;
  if (!elem) {
    r = error(ERR_INTERNAL, "route '%s' has no entry in the model's collections", buf_str(&key));
  } else if (n >= 3) {
    AUTOFREE char *coll = xasprintf("%.*s", (int)lens[n - 3], seg[n - 3]);
    AUTOFREE char *id = xasprintf("%.*s", (int)lens[n - 2], seg[n - 2]);
    if (strcmp(coll, "jobs") == 0) {
      /* OWNER route: the job's creator's, or a system administrator's; 404 for anyone else */
      AUTOPTR(job) j = job_get(c->st, id);
      if (!j) r = -1;
      else if (!(j->user_id && strcmp(j->user_id, c->req->user->id) == 0) && !perm_is_system_admin(c->pv))
        r = error(ERR_NOT_FOUND, "job '%s' does not exist", id);
    } else {
      r = parent_exists(c->st, coll, id, n >= 5 ? c->p[0] : NULL);
    }
  }
  buf_free(&key);
  if (r < 0) return -1;
  struct node *list = node_new(elem);
  list->is_list = true;
  return reply(c, 200, list);
}

/* /datacenters/{dc}/clusters */
int list_datacenter_clusters(struct api_call *c)
{
  AUTOPTR(datacenter) dc = datacenter_get(c->st, c->p[0]);
  if (!dc) return -1;
  AUTOLIST(cluster) l = cluster_list_by_datacenter(c->st, dc->id);
  if (!l) return -1;
  struct node *n = node_new("clusters");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++)
    if (api_visible(c, OBJ_CLUSTER, l[i]->id)) node_append(n, render_cluster(&c->r, l[i]));
  return reply(c, 200, n);
}

/* /datacenters/{dc}/storagedomains: the domains attached to it */
int list_datacenter_storage_domains(struct api_call *c)
{
  AUTOPTR(datacenter) dc = datacenter_get(c->st, c->p[0]);
  if (!dc) return -1;
  AUTOLIST(storage_domain) l = storage_domain_list_by_datacenter(c->st, dc->id);
  if (!l) return -1;
  struct node *n = node_new("storage_domains");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++)
    if (api_visible(c, OBJ_STORAGE_DOMAIN, l[i]->id)) node_append(n, render_storage_domain(&c->r, l[i]));
  return reply(c, 200, n);
}

/* /storagedomains/{sd}/disks: the disks whose volumes live there */
int list_storage_domain_disks(struct api_call *c)
{
  AUTOPTR(storage_domain) sd = storage_domain_get(c->st, c->p[0]);
  if (!sd) return -1;
  AUTOLIST(disk) l = disk_list_by_storage_domain(c->st, sd->id);
  if (!l) return -1;
  struct node *n = node_new("disks");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++)
    if (api_visible(c, OBJ_DISK, l[i]->id)) node_append(n, render_disk(&c->r, l[i]));
  return reply(c, 200, n);
}

/* /templates/{t}/diskattachments/{d}: a template's disk, as the list shows it */
int get_template_attachment(struct api_call *c)
{
  AUTOPTR(template) t = template_get(c->st, c->p[0]);
  if (!t) return -1;
  AUTOPTR(attachment) a = attachment_get(c->st, t->id, c->p[1]);
  if (!a) return -1;
  return reply(c, 200, render_template_attachment(&c->r, a));
}
