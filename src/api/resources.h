/* resources.h: what the route table (routes.c) shares with the files that
 * hold groups of its handlers (res_*.c). Only the api layer sees it. */
#pragma once
#include "api/api.h"
#include "api/call.h"
#include "api/render.h"

typedef int (*api_handler)(struct api_call *c);

/* routes.c: answers */
int reply(struct api_call *c, int status, struct node *n);
/* 201 with Location: the node's href */
int reply_created(struct api_call *c, struct node *n);
/* <action><status>complete</status></action> */
int reply_action(struct api_call *c);
/* the request body, which must be element ELEM (400 otherwise) */
const struct node *body_required(struct api_call *c, const char *elem);
/* query parameter NAME as true/false (400 otherwise), DFLT when absent */
int query_bool(struct api_call *c, const char *name, bool dflt, bool *out);
/* query parameter max: 0 (no limit) when absent or -1; 400 when not a number */
int query_max(struct api_call *c, int *out);
/* the text at PATH below n, a required field of element ELEM (400 naming it otherwise) */
int need_text(const struct node *n, const char *path, const char *elem, const char **out);
/* a reference given by id attribute or by <name> child, among what the user
 * sees (404 otherwise; 400 when it gives neither); WHAT names it in messages */
struct cluster *resolve_cluster(struct api_call *c, const struct node *ref, const char *what);
struct template *resolve_template(struct api_call *c, const struct node *ref, const char *what);
struct storage_domain *resolve_storage_domain(struct api_call *c, const struct node *ref, const char *what);
struct host *resolve_host(struct api_call *c, const struct node *ref, const char *what);
struct vm *resolve_vm(struct api_call *c, const struct node *ref, const char *what);
/* a job, a transfer: the caller's own, or any for a system administrator */
bool api_owned(struct api_call *c, const char *user_id);

/* res_root.c: the API root and the simple collections (data centers, clusters, templates, hosts, storage domains, disks, jobs): lists filtered by what the user sees, gets */
int api_root(struct api_call *c);
int list_datacenter(struct api_call *c);
int get_datacenter(struct api_call *c);
int list_cluster(struct api_call *c);
int get_cluster(struct api_call *c);
int list_template(struct api_call *c);
int get_template(struct api_call *c);
int list_host(struct api_call *c);
int get_host(struct api_call *c);
int list_storage_domain(struct api_call *c);
int get_storage_domain(struct api_call *c);
int list_disk(struct api_call *c);
int get_disk(struct api_call *c);
int list_job(struct api_call *c);
int list_jobs(struct api_call *c); /* list_job, or the jobs matching ?search= */
int get_job(struct api_call *c);

/* res_host.c: host actions (maintenance on/off), adding and removing hosts */
int host_deactivate(struct api_call *c);
int host_activate(struct api_call *c);
int add_host(struct api_call *c);
int remove_host(struct api_call *c);
/* the host of <placement_policy><hosts><host> in VM body VM (id or name,
 * one the user sees) in *host_id (caller frees), NULL when not given */
int vm_placement_from_node(struct api_call *c, const struct node *vm, char **host_id);

/* res_storage.c: adding and removing storage domains */
int add_storage_domain(struct api_call *c);
int remove_storage_domain(struct api_call *c);

/* res_vm.c: VMs: list (with search), get, add, update, remove, start/stop/shutdown, migrate */
int list_vms(struct api_call *c);
int get_vm(struct api_call *c);
int add_vm(struct api_call *c);
int update_vm(struct api_call *c);
int remove_vm(struct api_call *c);
int vm_start(struct api_call *c);
int vm_stop(struct api_call *c);
int vm_shutdown(struct api_call *c);
int vm_migrate(struct api_call *c);

/* res_snapshot.c: VM snapshots and disk snapshots (the volumes of a disk) */
int list_snapshots(struct api_call *c);
int get_snapshot(struct api_call *c);
int add_snapshot(struct api_call *c);
int remove_snapshot(struct api_call *c);
int restore_snapshot(struct api_call *c);
int list_snapshot_disks(struct api_call *c);
int list_disk_disksnapshots(struct api_call *c);
int list_sd_disksnapshots(struct api_call *c);
int get_disk_snapshot(struct api_call *c);

/* res_disk.c: disks: add, update, move, remove */
int add_disk(struct api_call *c);
int update_disk(struct api_call *c);
int move_disk(struct api_call *c);
int remove_disk(struct api_call *c);
/* fills d from a <disk> element (400 for a missing or bad field); *sd is the resolved domain */
int disk_from_node(struct api_call *c, const struct node *b, struct disk *d, struct storage_domain **sd);

/* res_attachment.c: disk attachments (v4 /vms/{}/diskattachments) and oVirt 3's /vms/{}/disks */
int list_attachments(struct api_call *c);
int get_attachment(struct api_call *c);
int add_attachment(struct api_call *c);
int update_attachment(struct api_call *c);
int remove_attachment(struct api_call *c);
int v3_list_vm_disks(struct api_call *c);
int v3_get_vm_disk(struct api_call *c);
int v3_add_vm_disk(struct api_call *c);
int v3_remove_vm_disk(struct api_call *c);

/* res_event.c: events: list, get, and those a backup application adds */
int list_events(struct api_call *c);
int get_event(struct api_call *c);
int add_event(struct api_call *c);

/* res_transfer.c: image transfers (cmd/transfer/transfer.c; the data path is http/imageio.c) */
int add_image_transfer(struct api_call *c);
int list_image_transfers(struct api_call *c);
int get_image_transfer(struct api_call *c);
int image_transfer_finalize(struct api_call *c);
int image_transfer_cancel(struct api_call *c);

/* res_ova.c: OVA export of a VM and external VM import from an OVA (cmd/ova/export.c, cmd/ova/import.c) */
int vm_export_ova(struct api_call *c);
int add_external_vm_import(struct api_call *c);

/* res_template.c: templates: add from a VM, remove, their disk attachments */
int add_template(struct api_call *c);
int remove_template(struct api_call *c);
int list_template_attachments(struct api_call *c);

/* res_backup.c: VM backups and checkpoints */
int list_backups(struct api_call *c);
int add_backup(struct api_call *c);
int get_backup(struct api_call *c);
int list_backup_disks(struct api_call *c);
int backup_finalize(struct api_call *c);
int list_checkpoints(struct api_call *c);
int get_checkpoint(struct api_call *c);
int remove_checkpoint(struct api_call *c);
int list_checkpoint_disks(struct api_call *c);
/* <backup>incremental|none</backup> of a disk: *out -1 when absent (400 for another value) */
int disk_backup_from_node(const struct node *disk, int *out);

/* res_conform.c: the sub-collections of oVirt's model that snapback serves
 * with what it has (often nothing: an empty collection, never a 404) */
int list_model_collection(struct api_call *c);
int list_datacenter_clusters(struct api_call *c);
int list_datacenter_storage_domains(struct api_call *c);
int list_storage_domain_disks(struct api_call *c);
int get_template_attachment(struct api_call *c);

/* routes.c: adds <link rel="X" href="HREF/X"/> to N for each GET route
 * "PATTERN/X" ("/vms/{}"), so every link rendered has a route */
void render_links(struct node *n, const char *pattern, const char *href);

/* res_stats.c: statistics of VMs, hosts and disks */
int list_vm_statistics(struct api_call *c);
int get_vm_statistic(struct api_call *c);
int list_host_statistics(struct api_call *c);
int get_host_statistic(struct api_call *c);
int list_disk_statistics(struct api_call *c);
int get_disk_statistic(struct api_call *c);

/* res_console.c: graphics consoles */
int list_vm_consoles(struct api_call *c);
int get_vm_console(struct api_call *c);
int vm_console_ticket(struct api_call *c);
int vm_console_vv(struct api_call *c);

/* res_net.c: networks, vNIC profiles, NICs */
int list_networks(struct api_call *c);
int get_network(struct api_call *c);
int add_network(struct api_call *c);
int list_vnic_profiles(struct api_call *c);
int get_vnic_profile(struct api_call *c);
int list_datacenter_networks(struct api_call *c);
int list_cluster_networks(struct api_call *c);
int list_vm_nics(struct api_call *c);
int get_vm_nic(struct api_call *c);
int add_vm_nic(struct api_call *c);
int update_vm_nic(struct api_call *c);
int remove_vm_nic(struct api_call *c);
int list_mac_pools(struct api_call *c);
int get_mac_pool(struct api_call *c);

/* res_cdrom.c: CD-ROMs, ISO files of storage domains, boot devices */
int list_vm_cdroms(struct api_call *c);
int get_vm_cdrom(struct api_call *c);
int update_vm_cdrom(struct api_call *c);
int list_storage_domain_files(struct api_call *c);
int get_storage_domain_file(struct api_call *c);
/* os/boot/devices of a <vm> as "cdrom,hd" in *out (caller frees; NULL when
 * absent); 400 on an unknown or repeated device */
int boot_devices_from_node(const struct node *vm, char **out);

/* res_guest.c: what a running guest reports (its addresses) */
int list_vm_reported_devices(struct api_call *c);
int get_vm_reported_device(struct api_call *c);
/* appends <reported_devices> of VM c->p[0] to the rendered VM (?follow=reported_devices) */
int add_vm_reported_devices(struct api_call *c, struct node *vm);
