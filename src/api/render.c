/* render.c: entities to oVirt XML/JSON nodes */
#include "api/render.h"
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

char *render_href(const struct render_ctx *r, const char *fmt, ...)
{
  struct buf b = BUF_INIT;
  buf_puts(&b, r->root);
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&b, fmt, ap);
  va_end(ap);
  return buf_detach(&b);
}

/* <name href=".." id=".."> with the entity's own href */
static struct node *entity(const struct render_ctx *r, const char *elem, const char *coll, const char *id)
{
  struct node *n = node_new(elem);
  AUTOFREE char *href = render_href(r, "/%s/%s", coll, id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", id);
  return n;
}

static void ref(const struct render_ctx *r, struct node *parent, const char *elem, const char *coll,
                const char *id)
{
  if (!id) return;
  AUTOFREE char *href = render_href(r, "/%s/%s", coll, id);
  node_add_ref(parent, elem, id, href);
}

static void link(const struct render_ctx *r, struct node *n, const char *coll, const char *id,
                 const char *rel)
{
  AUTOFREE char *href = render_href(r, "/%s/%s/%s", coll, id, rel);
  node_add_link(n, rel, href);
}

/* links to every sub-collection the route table has below PATTERN
 * ("/vms/{}"), relative to the node's own href */
static void sub_links(struct node *n, const char *pattern)
{
  render_links(n, pattern, node_attr(n, "href"));
}

static void add_date(struct node *n, const char *elem, int64_t ms)
{
  char s[32];
  time_format_iso(ms, s);
  node_add_text(n, elem, s);
}

struct node *render_datacenter(const struct render_ctx *r, const struct datacenter *d)
{
  struct node *n = entity(r, "data_center", "datacenters", d->id);
  node_add_text(n, "name", d->name);
  node_add_text(n, "description", d->description);
  sub_links(n, "/datacenters/{}");
  node_add_bool(n, "local", true);
  node_add_text(n, "status", "up");
  node_add_text(n, "storage_format", "v5");
  struct node *v = node_add(n, "version");
  node_add_text(v, "major", "4");
  node_add_text(v, "minor", "7");
  return n;
}

struct node *render_cluster(const struct render_ctx *r, const struct cluster *c)
{
  struct node *n = entity(r, "cluster", "clusters", c->id);
  node_add_text(n, "name", c->name);
  node_add_text(n, "description", c->description);
  ref(r, n, "data_center", "datacenters", c->datacenter_id);
  sub_links(n, "/clusters/{}");
  struct node *cpu = node_add(n, "cpu");
  node_add_text(cpu, "architecture", "x86_64");
  node_add_text(cpu, "type", "Secure Intel Cascadelake Server Family");
  struct node *v = node_add(n, "version");
  node_add_text(v, "major", "4");
  node_add_text(v, "minor", "7");
  return n;
}

struct node *render_template(const struct render_ctx *r, const struct template *t)
{
  struct node *n = entity(r, "template", "templates", t->id);
  node_add_text(n, "name", t->name);
  node_add_text(n, "description", t->description);
  node_add_text(n, "status", "ok");
  node_add_text(n, "type", "server");
  ref(r, n, "cluster", "clusters", t->cluster_id);
  /* oVirt: every template is a version; one without a base is its own base */
  struct node *v = node_add(n, "version");
  ref(r, v, "base_template", "templates", t->id);
  node_add_text(v, "version_name", "base version");
  node_add_int(v, "version_number", 1);
  sub_links(n, "/templates/{}");
  return n;
}

struct node *render_host(const struct render_ctx *r, const struct host *h)
{
  struct node *n = entity(r, "host", "hosts", h->id);
  node_add_text(n, "name", h->name);
  node_add_text(n, "address", h->address);
  node_add_text(n, "status", host_status_to_str(h->status));
  node_add_text(n, "type", "rhel");
  if (h->libvirt_uri) node_add_text(n, "libvirt_uri", h->libvirt_uri); /* snapback's */
  ref(r, n, "cluster", "clusters", h->cluster_id);
  sub_links(n, "/hosts/{}");
  link(r, n, "hosts", h->id, "deactivate");
  link(r, n, "hosts", h->id, "activate");
  return n;
}

struct node *render_storage_domain(const struct render_ctx *r, const struct storage_domain *sd)
{
  struct node *n = entity(r, "storage_domain", "storagedomains", sd->id);
  node_add_text(n, "name", sd->name);
  node_add_text(n, "type", sd->type);
  node_add_text(n, "status", "active");
  node_add_text(n, "external_status", "ok");
  node_add_bool(n, "master", true);
  int64_t avail, used; /* measured off the request path: a hung mount stalls no GET */
  if (engine_fs_space(r->eng, sd->path, &avail, &used)) {
    node_add_int(n, "available", avail);
    node_add_int(n, "used", used);
  }
  /* committed: what the disks on it were promised */
  AUTOLIST(disk) disks = disk_list_by_storage_domain(engine_store(r->eng), sd->id);
  int64_t committed = 0;
  for (size_t i = 0; disks && disks[i]; i++) committed += disks[i]->provisioned_size;
  if (!disks) error_clear();
  node_add_int(n, "committed", committed);
  struct node *storage = node_add(n, "storage");
  node_add_text(storage, "type", "localfs");
  node_add_text(storage, "path", sd->path);
  node_add_text(n, "storage_format", "v5");
  if (sd->datacenter_id) {
    struct node *dcs = node_add_list(n, "data_centers");
    ref(r, dcs, "data_center", "datacenters", sd->datacenter_id);
  }
  sub_links(n, "/storagedomains/{}");
  return n;
}

struct node *render_vm(const struct render_ctx *r, const struct vm *vm)
{
  struct node *n = entity(r, "vm", "vms", vm->id);
  node_add_text(n, "name", vm->name);
  node_add_text(n, "description", vm->description);
  sub_links(n, "/vms/{}");
  static const char *const actions[] = {"start", "stop", "shutdown"};
  for (size_t i = 0; i < ARRAY_SIZE(actions); i++) link(r, n, "vms", vm->id, actions[i]);
  struct node *cpu = node_add(n, "cpu");
  node_add_text(cpu, "architecture", "x86_64");
  struct node *topo = node_add(cpu, "topology");
  node_add_int(topo, "cores", vm->cores);
  node_add_int(topo, "sockets", vm->sockets);
  node_add_int(topo, "threads", vm->threads);
  add_date(n, "creation_time", vm->creation_ms);
  node_add_int(n, "memory", vm->memory);
  struct node *os = node_add(n, "os");
  node_add_text(os, "type", vm->os_type);
  if (vm->kernel) node_add_text(os, "kernel", vm->kernel);
  if (vm->initrd) node_add_text(os, "initrd", vm->initrd);
  if (vm->cmdline) node_add_text(os, "cmdline", vm->cmdline);
  struct node *boot = node_add(os, "boot");
  struct node *devs = node_add_list(boot, "devices");
  const char *bd = vm->boot_devices ? vm->boot_devices : "hd";
  for (const char *p = bd; *p;) {
    size_t len = strcspn(p, ",");
    node_add_textf(devs, "device", "%.*s", (int)len, p);
    p += len + (p[len] == ',');
  }
  node_add_bool(n, "stateless", false);
  node_add_text(n, "type", "server");
  node_add_text(n, "status", vm_status_to_str(vm->status));
  if (vm->host_id) ref(r, n, "host", "hosts", vm->host_id);
  if (vm->placement_host_id) {
    struct node *pp = node_add(n, "placement_policy");
    ref(r, node_add_list(pp, "hosts"), "host", "hosts", vm->placement_host_id);
  }
  ref(r, n, "cluster", "clusters", vm->cluster_id);
  ref(r, n, "template", "templates", vm->template_id);
  if (r->all_content) {
    AUTOFREE char *ovf = vm_ovf(r->eng, vm);
    struct node *conf = node_add(node_add(n, "initialization"), "configuration");
    node_add_text(conf, "type", "ovf");
    node_add_text(conf, "data", ovf);
  }
  return n;
}

struct node *render_disk(const struct render_ctx *r, const struct disk *d)
{
  struct node *n = entity(r, "disk", "disks", d->id);
  node_add_text(n, "name", d->alias);
  node_add_text(n, "alias", d->alias);
  node_add_text(n, "description", d->description);
  node_add_text(n, "backup", disk_backup_to_str(d->backup));
  sub_links(n, "/disks/{}");
  AUTOPTR(volume) vol = disk_active_volume(engine_store(r->eng), d->id);
  int64_t actual = -1;
  if (!vol || !engine_file_size(r->eng, vol->path, &actual)) error_clear();
  node_add_int(n, "actual_size", actual < 0 ? 0 : actual);
  node_add_text(n, "content_type", disk_content_to_str(d->content_type));
  node_add_text(n, "format", disk_format_to_str(d->format));
  if (vol) {
    node_add_text(n, "image_id", vol->id);
  }
  node_add_bool(n, "propagate_errors", false);
  node_add_int(n, "provisioned_size", d->provisioned_size);
  node_add_bool(n, "shareable", d->shareable);
  node_add_bool(n, "sparse", d->sparse);
  node_add_text(n, "status", disk_status_to_str(d->status));
  node_add_text(n, "storage_type", "image");
  node_add_int(n, "total_size", actual < 0 ? 0 : actual);
  struct node *sds = node_add_list(n, "storage_domains");
  ref(r, sds, "storage_domain", "storagedomains", d->storage_domain_id);
  return n;
}

struct node *render_attachment(const struct render_ctx *r, const struct attachment *a)
{
  struct node *n = node_new("disk_attachment");
  AUTOFREE char *href = render_href(r, "/vms/%s/diskattachments/%s", a->vm_id, a->disk_id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", a->disk_id);
  node_add_bool(n, "active", a->active);
  node_add_bool(n, "bootable", a->bootable);
  node_add_text(n, "interface", disk_iface_to_str(a->iface));
  if (a->logical_name) node_add_text(n, "logical_name", a->logical_name);
  node_add_bool(n, "pass_discard", false);
  node_add_bool(n, "read_only", a->read_only);
  node_add_bool(n, "uses_scsi_reservation", false);
  AUTOFREE char *dhref = render_href(r, "/disks/%s", a->disk_id);
  struct node *d = node_add_ref(n, "disk", a->disk_id, dhref);
  if (a->snapshot_id) {
    node_add_ref(d, "snapshot", a->snapshot_id, NULL);
  }
  ref(r, n, "vm", "vms", a->vm_id);
  return n;
}

struct node *render_vm_disk_v3(const struct render_ctx *r, const struct attachment *a, const struct disk *d)
{
  struct node *n = render_disk(r, d);
  AUTOFREE char *href = render_href(r, "/vms/%s/disks/%s", a->vm_id, a->disk_id);
  node_set_attr(n, "href", href);
  node_add_text(n, "interface", disk_iface_to_str(a->iface));
  node_add_bool(n, "bootable", a->bootable);
  node_add_bool(n, "active", a->active);
  node_add_bool(n, "read_only", a->read_only);
  if (a->snapshot_id) node_add_ref(n, "snapshot", a->snapshot_id, NULL);
  ref(r, n, "vm", "vms", a->vm_id);
  return n;
}

struct node *render_snapshot(const struct render_ctx *r, const struct snapshot *s)
{
  struct node *n = node_new("snapshot");
  AUTOFREE char *href = render_href(r, "/vms/%s/snapshots/%s", s->vm_id, s->id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", s->id);
  node_add_text(n, "description", s->description);
  sub_links(n, "/vms/{}/snapshots/{}");
  add_date(n, "date", s->date_ms);
  node_add_bool(n, "persist_memorystate", s->persist_memorystate);
  node_add_text(n, "snapshot_status", snapshot_status_to_str(s->status));
  node_add_text(n, "snapshot_type", snapshot_type_to_str(s->type));
  ref(r, n, "vm", "vms", s->vm_id);
  if (r->all_content && s->ovf) {
    struct node *conf = node_add(node_add(n, "initialization"), "configuration");
    node_add_text(conf, "type", "ovf");
    node_add_text(conf, "data", s->ovf);
  }
  return n;
}

struct node *render_event(const struct render_ctx *r, const struct event *e)
{
  char id[32];
  snprintf(id, sizeof id, "%lld", (long long)e->id);
  struct node *n = entity(r, "event", "events", id);
  node_add_text(n, "description", e->description);
  node_add_int(n, "code", e->code);
  if (e->correlation_id) node_add_text(n, "correlation_id", e->correlation_id);
  if (e->custom_id >= 0) node_add_int(n, "custom_id", e->custom_id);
  node_add_int(n, "flood_rate", 30);
  node_add_text(n, "origin", e->origin);
  node_add_text(n, "severity", event_severity_to_str(e->severity));
  add_date(n, "time", e->time_ms);
  if (e->user_id) {
    struct node *u = node_add(n, "user");
    AUTOFREE char *uhref = render_href(r, "/users/%s", e->user_id);
    node_set_attr(u, "href", uhref);
    node_set_attr(u, "id", e->user_id);
    node_add_text(u, "name", e->user_name);
  }
  ref(r, n, "vm", "vms", e->vm_id);
  return n;
}

struct node *render_job(const struct render_ctx *r, const struct job *j)
{
  struct node *n = entity(r, "job", "jobs", j->id);
  node_add_text(n, "description", j->description);
  sub_links(n, "/jobs/{}");
  node_add_bool(n, "auto_cleared", true);
  add_date(n, "start_time", j->start_ms);
  if (j->end_ms) add_date(n, "end_time", j->end_ms);
  add_date(n, "last_updated", j->end_ms ? j->end_ms : j->start_ms);
  node_add_bool(n, "external", false);
  node_add_text(n, "status", job_status_to_str(j->status));
  if (j->user_id) ref(r, n, "owner", "users", j->user_id);
  node_add_int(n, "progress", j->progress);
  return n;
}

/* the fields a disk has as one volume of its chain shows it: shared by
 * disk_snapshot (a volume) and a snapshot's disk (the disk at that volume) */
static void add_volume_view(const struct render_ctx *r, struct node *n, const struct volume *v,
                            const struct disk *d)
{
  node_add_text(n, "name", d->alias);
  node_add_text(n, "alias", d->alias);
  node_add_text(n, "description", d->description);
  int64_t actual = -1;
  engine_file_size(r->eng, v->path, &actual);
  node_add_int(n, "actual_size", actual < 0 ? 0 : actual);
  node_add_text(n, "content_type", "data");
  node_add_text(n, "format", disk_format_to_str(v->format));
  node_add_text(n, "image_id", v->id);
  node_add_int(n, "provisioned_size", d->provisioned_size);
  node_add_bool(n, "shareable", d->shareable);
  node_add_bool(n, "sparse", d->sparse);
  node_add_text(n, "status", disk_status_to_str(v->status));
  node_add_text(n, "storage_type", "image");
}

struct node *render_disk_snapshot(const struct render_ctx *r, const struct volume *v, const struct disk *d)
{
  struct node *n = node_new("disk_snapshot");
  AUTOFREE char *href = render_href(r, "/storagedomains/%s/disksnapshots/%s", d->storage_domain_id, v->id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", v->id);
  add_volume_view(r, n, v, d);
  ref(r, n, "disk", "disks", d->id);
  if (v->parent_id) {
    struct node *p = node_add(n, "parent");
    node_set_attr(p, "id", v->parent_id);
  }
  if (v->snapshot_id) node_add_ref(n, "snapshot", v->snapshot_id, NULL);
  struct node *sds = node_add_list(n, "storage_domains");
  ref(r, sds, "storage_domain", "storagedomains", d->storage_domain_id);
  return n;
}

struct node *render_snapshot_disk(const struct render_ctx *r, const struct volume *v, const struct disk *d)
{
  struct node *n = node_new("disk");
  AUTOFREE char *href = render_href(r, "/disks/%s", d->id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", d->id);
  add_volume_view(r, n, v, d);
  if (v->snapshot_id) node_add_ref(n, "snapshot", v->snapshot_id, NULL);
  struct node *sds = node_add_list(n, "storage_domains");
  ref(r, sds, "storage_domain", "storagedomains", d->storage_domain_id);
  return n;
}

/* the base of the image data URLs of host_id ("https://HOST:PORT", to which
 * /images/TICKET is added): the imageio endpoint of the host that serves the
 * transfer's export, as oVirt's transfer_url names the host's imageio daemon.
 * Every transfer runs on the engine's own host today, whose data URLs the
 * engine's HTTP(S) server serves itself, reached at the address the client
 * used (base_url); a remote host gets its own endpoint here. Caller frees. */
static char *render_host_data_url(const struct render_ctx *r, const char *host_id, const char *base_url)
{
  (void)r;
  (void)host_id;
  return xstrdup(base_url ? base_url : "");
}

/* an image transfer; base_url ("https://host:port", the address the client
 * used) makes proxy_url, the engine's HTTP data URL, and with the host's data
 * URL transfer_url; nbd_url is the NBD export for clients on the host. The
 * URLs are shown only while the transfer is in progress: they are its
 * credentials. */
struct node *render_image_transfer(const struct render_ctx *r, const struct image_transfer *t,
                                   const char *base_url)
{
  struct node *n = entity(r, "image_transfer", "imagetransfers", t->id);
  link(r, n, "imagetransfers", t->id, "cancel");
  link(r, n, "imagetransfers", t->id, "finalize");
  bool open = t->phase == TRANSFER_INITIALIZING || t->phase == TRANSFER_TRANSFERRING;
  node_add_bool(n, "active", open);
  node_add_text(n, "direction", transfer_direction_to_str(t->direction));
  node_add_text(n, "format", disk_format_to_str(t->format));
  node_add_int(n, "inactivity_timeout", t->inactivity_timeout);
  node_add_text(n, "phase", transfer_phase_to_str(t->phase));
  AUTOFREE char *host_id = store_setting_get(engine_store(r->eng), "local_host_id");
  /* the store has only the ticket's digest: the clear one is in memory while open */
  AUTOFREE char *ticket = open ? transfer_ticket(r->eng, t->id) : NULL;
  if (ticket) {
    AUTOFREE char *data_url = render_host_data_url(r, host_id, base_url);
    AUTOFREE char *nbd_url = transfer_nbd_url(t);
    node_add_textf(n, "transfer_url", "%s/images/%s", data_url, ticket);
    node_add_textf(n, "proxy_url", "%s/images/%s", base_url ? base_url : "", ticket);
    node_add_text(n, "nbd_url", nbd_url); /* snapback's: the export, for clients on the host */
  }
  node_add_bool(n, "shallow", false);
  node_add_text(n, "timeout_policy", "cancel");
  node_add_int(n, "transferred", t->bytes_transferred);
  ref(r, n, "disk", "disks", t->disk_id);
  struct node *img = node_add(n, "image");
  node_set_attr(img, "id", t->volume_id);
  if (t->snapshot_id) {
    AUTOFREE char *href = render_href(r, "/disks/%s/disksnapshots/%s", t->disk_id, t->volume_id);
    node_add_ref(n, "snapshot", t->volume_id, href);
  }
  ref(r, n, "host", "hosts", host_id);
  return n;
}

struct node *render_template_attachment(const struct render_ctx *r, const struct attachment *a)
{
  struct node *n = node_new("disk_attachment");
  AUTOFREE char *href = render_href(r, "/templates/%s/diskattachments/%s", a->vm_id, a->disk_id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", a->disk_id);
  node_add_bool(n, "active", a->active);
  node_add_bool(n, "bootable", a->bootable);
  node_add_text(n, "interface", disk_iface_to_str(a->iface));
  node_add_bool(n, "read_only", a->read_only);
  ref(r, n, "disk", "disks", a->disk_id);
  ref(r, n, "template", "templates", a->vm_id);
  return n;
}

struct node *render_entity(const struct render_ctx *r, const char *elem, const char *coll, const char *id)
{
  return entity(r, elem, coll, id);
}

void render_ref(const struct render_ctx *r, struct node *parent, const char *elem, const char *coll,
                const char *id)
{
  ref(r, parent, elem, coll, id);
}

void render_date(struct node *n, const char *elem, int64_t ms)
{
  add_date(n, elem, ms);
}
