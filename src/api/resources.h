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
