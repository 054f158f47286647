/* query.h: the store's named queries, one function per question the engine asks.
 *
 * Callers name what they want (the attachments of a VM that are not disk
 * snapshots) and pass typed arguments; the SQL stays in store/query.c, where
 * both backends run the same statement with typed parameters (text, int64,
 * an enum as its string). A question no function answers gets a new one
 * here: no SQL text crosses into another layer.
 *
 * Lists are NULL-terminated and freed with T_list_free (AUTOLIST(T)), in the
 * type's default order unless the comment says otherwise; NULL + error when
 * the store fails. Counts are >= 0, or -1 + error. Included by store.h. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* the users in group GROUP_ID, by name */
struct user **user_list_in_group(struct store *st, const char *group_id) WARN_UNUSED;

/* the group called NAME (none or one) */
struct usergroup **usergroup_list_by_name(struct store *st, const char *name) WARN_UNUSED;
/* groups called NAME (0 or 1) */
int64_t usergroup_count_by_name(struct store *st, const char *name) WARN_UNUSED;
/* the groups USER_ID belongs to */
struct usergroup **usergroup_list_of_user(struct store *st, const char *user_id) WARN_UNUSED;

/* the membership of USER_ID in GROUP_ID (none or one) */
struct group_member **group_member_list_by_pair(struct store *st, const char *group_id, const char *user_id) WARN_UNUSED;
/* whether USER_ID is in GROUP_ID (0 or 1) */
int64_t group_member_count_by_pair(struct store *st, const char *group_id, const char *user_id) WARN_UNUSED;
/* the memberships of GROUP_ID */
struct group_member **group_member_list_by_group(struct store *st, const char *group_id) WARN_UNUSED;

/* the role called NAME (none or one) */
struct role **role_list_by_name(struct store *st, const char *name) WARN_UNUSED;

/* the permits of ROLE_ID, by permit */
struct role_permit **role_permit_list_by_role(struct store *st, const char *role_id) WARN_UNUSED;
/* PERMIT of ROLE_ID (none or one) */
struct role_permit **role_permit_list_by_pair(struct store *st, const char *role_id, int64_t permit) WARN_UNUSED;

/* grants of ROLE_ID */
int64_t permission_count_by_role(struct store *st, const char *role_id) WARN_UNUSED;
/* system-wide grants of ROLE_ID to USER_ID */
int64_t permission_count_system_grant(struct store *st, const char *user_id, const char *role_id) WARN_UNUSED;
/* the grants to GROUP_ID */
struct permission **permission_list_by_group(struct store *st, const char *group_id) WARN_UNUSED;
/* the grants to USER_ID */
struct permission **permission_list_by_user(struct store *st, const char *user_id) WARN_UNUSED;
/* the grants on one object (OBJECT_TYPE 'vm', 'cluster'...) */
struct permission **permission_list_on_object(struct store *st, const char *object_type, const char *object_id) WARN_UNUSED;
/* the system-wide grants */
struct permission **permission_list_system(struct store *st) WARN_UNUSED;

/* whether USER_ID is locked (0 or 1) */
int64_t user_lock_count_by_user(struct store *st, const char *user_id) WARN_UNUSED;

/* the tokens of USER_ID */
struct token **token_list_by_user(struct store *st, const char *user_id) WARN_UNUSED;
/* up to LIMIT tokens that expired before NOW_MS */
struct token **token_list_expired(struct store *st, int64_t now_ms, int limit) WARN_UNUSED;
/* tokens that expired before NOW_MS */
int64_t token_count_expired(struct store *st, int64_t now_ms) WARN_UNUSED;
/* tokens not matching the LIKE PATTERN (stored by an older version in the clear) */
struct token **token_list_not_like(struct store *st, const char *pattern) WARN_UNUSED;

/* the data center called NAME (none or one) */
struct datacenter **datacenter_list_by_name(struct store *st, const char *name) WARN_UNUSED;
/* data centers called NAME */
int64_t datacenter_count_by_name(struct store *st, const char *name) WARN_UNUSED;

/* the clusters of DATACENTER_ID, by name */
struct cluster **cluster_list_by_datacenter(struct store *st, const char *datacenter_id) WARN_UNUSED;

/* hosts in STATUS */
int64_t host_count_by_status(struct store *st, int status) WARN_UNUSED;

/* the storage domains of DATACENTER_ID, by name */
struct storage_domain **storage_domain_list_by_datacenter(struct store *st, const char *datacenter_id) WARN_UNUSED;
/* storage domains called NAME */
int64_t storage_domain_count_by_name(struct store *st, const char *name) WARN_UNUSED;

/* templates called NAME */
int64_t template_count_by_name(struct store *st, const char *name) WARN_UNUSED;

/* the networks called NAME */
struct network **network_list_by_name(struct store *st, const char *name) WARN_UNUSED;
/* the networks of DATACENTER_ID, by name */
struct network **network_list_by_datacenter(struct store *st, const char *datacenter_id) WARN_UNUSED;
/* networks called NAME */
int64_t network_count_by_name(struct store *st, const char *name) WARN_UNUSED;

/* the NICs of VM_ID, by position */
struct nic **nic_list_by_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the NIC of VM_ID called NAME (none or one) */
struct nic **nic_list_by_vm_name(struct store *st, const char *vm_id, const char *name) WARN_UNUSED;
/* the plugged NICs of VM_ID that have a network, by position */
struct nic **nic_list_plugged_networked(struct store *st, const char *vm_id) WARN_UNUSED;

/* the VMs called NAME */
struct vm **vm_list_by_name(struct store *st, const char *name) WARN_UNUSED;
/* the VMs in STATUS, by name */
struct vm **vm_list_by_status(struct store *st, int status) WARN_UNUSED;
/* the VMs made from TEMPLATE_ID, by name */
struct vm **vm_list_by_template(struct store *st, const char *template_id) WARN_UNUSED;
/* whether VM ID exists (0 or 1) */
int64_t vm_count_by_id(struct store *st, const char *id) WARN_UNUSED;
/* VMs called NAME */
int64_t vm_count_by_name(struct store *st, const char *name) WARN_UNUSED;
/* VMs other than ID called NAME */
int64_t vm_count_by_name_other(struct store *st, const char *name, const char *id) WARN_UNUSED;
/* VMs in STATUS */
int64_t vm_count_by_status(struct store *st, int status) WARN_UNUSED;
/* VMs that are not down */
int64_t vm_count_not_down(struct store *st) WARN_UNUSED;
/* VMs on HOST_ID that are not down */
int64_t vm_count_not_down_on_host(struct store *st, const char *host_id) WARN_UNUSED;

/* the disks on STORAGE_DOMAIN_ID, by alias */
struct disk **disk_list_by_storage_domain(struct store *st, const char *storage_domain_id) WARN_UNUSED;
/* disks on STORAGE_DOMAIN_ID */
int64_t disk_count_by_storage_domain(struct store *st, const char *storage_domain_id) WARN_UNUSED;
/* an illegal disk among the active attachments of VM_ID (none or one) */
struct disk **disk_list_illegal_active_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* disks of FORMAT in STATUS */
int64_t disk_count_by_format_status(struct store *st, int format, int status) WARN_UNUSED;

/* the volumes of DISK_ID */
struct volume **volume_list_by_disk(struct store *st, const char *disk_id) WARN_UNUSED;
/* the volumes whose backing file is PARENT_ID */
struct volume **volume_list_by_parent(struct store *st, const char *parent_id) WARN_UNUSED;
/* the volumes of VM snapshot SNAPSHOT_ID */
struct volume **volume_list_by_snapshot(struct store *st, const char *snapshot_id) WARN_UNUSED;
/* the volumes of SNAPSHOT_ID that are not locked */
struct volume **volume_list_unlocked_of_snapshot(struct store *st, const char *snapshot_id) WARN_UNUSED;
/* the locked, inactive volumes of SNAPSHOT_ID */
struct volume **volume_list_locked_inactive_of_snapshot(struct store *st, const char *snapshot_id) WARN_UNUSED;
/* the unlocked volumes of DISK_ID in SNAPSHOT_ID */
struct volume **volume_list_unlocked_of_disk_snapshot(struct store *st, const char *disk_id, const char *snapshot_id) WARN_UNUSED;
/* the qcow2 volumes of DISK_ID */
struct volume **volume_list_cow_of_disk(struct store *st, const char *disk_id) WARN_UNUSED;
/* the active volume of DISK_ID (none or one) */
struct volume **volume_list_active_of_disk(struct store *st, const char *disk_id) WARN_UNUSED;
/* volumes stored at PATH */
int64_t volume_count_by_path(struct store *st, const char *path) WARN_UNUSED;
/* volumes in STATUS */
int64_t volume_count_by_status(struct store *st, int status) WARN_UNUSED;

/* the attachments of VM_ID, by position */
struct attachment **attachment_list_by_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* attachments of VM_ID */
int64_t attachment_count_by_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the attachments of VM_ID's own disks (no disk snapshots), by position */
struct attachment **attachment_list_own_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the disk-snapshot attachments of VM_ID, by position */
struct attachment **attachment_list_snapshots_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the plugged disk-snapshot attachments of VM_ID, by position */
struct attachment **attachment_list_plugged_snapshots_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the active attachments of VM_ID, by position */
struct attachment **attachment_list_active_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* a bootable attachment of VM_ID other than DISK_ID (none or one) */
struct attachment **attachment_list_other_bootable(struct store *st, const char *vm_id, const char *disk_id) WARN_UNUSED;
/* the attachments of DISK_ID */
struct attachment **attachment_list_by_disk(struct store *st, const char *disk_id) WARN_UNUSED;
/* attachments of DISK_ID */
int64_t attachment_count_by_disk(struct store *st, const char *disk_id) WARN_UNUSED;
/* the attachments of DISK_ID itself (not of its snapshots) */
struct attachment **attachment_list_own_of_disk(struct store *st, const char *disk_id) WARN_UNUSED;
/* an attachment of a snapshot of DISK_ID (none or one) */
struct attachment **attachment_list_snapshots_of_disk(struct store *st, const char *disk_id) WARN_UNUSED;
/* the plugged attachments of DISK_ID */
struct attachment **attachment_list_plugged_of_disk(struct store *st, const char *disk_id) WARN_UNUSED;
/* an attachment of DISK_ID to a VM other than VM_ID (none or one) */
struct attachment **attachment_list_by_disk_other_vm(struct store *st, const char *disk_id, const char *vm_id) WARN_UNUSED;
/* plugged attachments of VMs not down that use the overlay at OVERLAY_PATH */
int64_t attachment_count_live_overlay(struct store *st, const char *overlay_path) WARN_UNUSED;

/* the snapshots of VM_ID, oldest first */
struct snapshot **snapshot_list_by_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the active snapshot of VM_ID (none or one) */
struct snapshot **snapshot_list_active_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* a locked snapshot of VM_ID (none or one) */
struct snapshot **snapshot_list_locked_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* a snapshot of VM_ID that is not ok (none or one) */
struct snapshot **snapshot_list_not_ok_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the regular snapshots of VM_ID from DATE_MS on, except EXCEPT_ID */
struct snapshot **snapshot_list_regular_since(struct store *st, const char *vm_id, int64_t date_ms, const char *except_id) WARN_UNUSED;
/* the locked snapshots of every VM */
struct snapshot **snapshot_list_locked(struct store *st) WARN_UNUSED;
/* snapshots of TYPE */
int64_t snapshot_count_by_type(struct store *st, int type) WARN_UNUSED;

/* the jobs in STATUS */
struct job **job_list_by_status(struct store *st, int status) WARN_UNUSED;
/* jobs in STATUS */
int64_t job_count_by_status(struct store *st, int status) WARN_UNUSED;

/* the newest LIMIT events, newest first */
struct event **event_list_newest(struct store *st, int limit) WARN_UNUSED;
/* the newest LIMIT events with ids above AFTER_ID, newest first */
struct event **event_list_after(struct store *st, int64_t after_id, int limit) WARN_UNUSED;
/* events with ids above AFTER_ID */
int64_t event_count_after(struct store *st, int64_t after_id) WARN_UNUSED;
/* events posted with CUSTOM_ID */
int64_t event_count_by_custom_id(struct store *st, int64_t custom_id) WARN_UNUSED;

/* the transfers initializing or transferring */
struct image_transfer **image_transfer_list_open(struct store *st) WARN_UNUSED;
/* transfers initializing or transferring */
int64_t image_transfer_count_open(struct store *st) WARN_UNUSED;
/* up to LIMIT transfers of DISK_ID initializing or transferring */
struct image_transfer **image_transfer_list_open_of_disk(struct store *st, const char *disk_id, int limit) WARN_UNUSED;
/* whether transfer ID is initializing or transferring (0 or 1) */
int64_t image_transfer_count_open_by_id(struct store *st, const char *id) WARN_UNUSED;
/* the transfers transferring */
struct image_transfer **image_transfer_list_transferring(struct store *st) WARN_UNUSED;
/* the transferring transfer of TICKET (none or one) */
struct image_transfer **image_transfer_list_transferring_by_ticket(struct store *st, const char *ticket) WARN_UNUSED;
/* transfers whose ticket does not match the LIKE PATTERN (an older version's clear ticket) */
struct image_transfer **image_transfer_list_not_like(struct store *st, const char *pattern) WARN_UNUSED;

/* the backups of VM_ID, oldest first */
struct backup **backup_list_by_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the backups not yet succeeded or failed */
struct backup **backup_list_running(struct store *st) WARN_UNUSED;
/* a running backup of VM_ID (none or one) */
struct backup **backup_list_running_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;

/* the disks of BACKUP_ID */
struct backup_disk **backup_disk_list_by_backup(struct store *st, const char *backup_id) WARN_UNUSED;

/* the checkpoints of VM_ID the API lists (not pending), oldest first */
struct checkpoint **checkpoint_list_listed_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the newest created checkpoint of VM_ID (none or one) */
struct checkpoint **checkpoint_list_leaf_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* the checkpoints of VM_ID not invalid, made at SINCE_MS or later */
struct checkpoint **checkpoint_list_valid_since(struct store *st, const char *vm_id, int64_t since_ms) WARN_UNUSED;
/* the checkpoints whose parent is PARENT_ID */
struct checkpoint **checkpoint_list_by_parent(struct store *st, const char *parent_id) WARN_UNUSED;
/* whether checkpoint ID of VM_ID is created or pending (0 or 1) */
int64_t checkpoint_count_usable(struct store *st, const char *id, const char *vm_id) WARN_UNUSED;

/* the disks of CHECKPOINT_ID */
struct checkpoint_disk **checkpoint_disk_list_by_checkpoint(struct store *st, const char *checkpoint_id) WARN_UNUSED;

/* the disk snapshots (unlocked volumes) of DISK_ID, with its active volume when INCLUDE_ACTIVE */
struct volume **volume_list_snapshots_of_disk(struct store *st, const char *disk_id, bool include_active) WARN_UNUSED;
/* the disk snapshots of every disk on STORAGE_DOMAIN_ID, with the active volumes when INCLUDE_ACTIVE */
struct volume **volume_list_snapshots_on_storage_domain(struct store *st, const char *storage_domain_id, bool include_active) WARN_UNUSED;

/* an attachment, to another VM, of a snapshot of one of VM_ID's own disks (none or one) */
struct attachment **attachment_list_snapshots_of_own_disks_elsewhere(struct store *st, const char *vm_id) WARN_UNUSED;
/* the attachments, to other VMs, of snapshots of the disks attached to VM_ID */
struct attachment **attachment_list_snapshots_of_disks_elsewhere(struct store *st, const char *vm_id) WARN_UNUSED;
/* the attachments of VM_ID that are plugged or keep a transient overlay */
struct attachment **attachment_list_plugged_or_overlaid_of_vm(struct store *st, const char *vm_id) WARN_UNUSED;
/* a plugged disk-snapshot attachment of a VM on HOST_ID (none or one) */
struct attachment **attachment_list_plugged_snapshots_on_host(struct store *st, const char *host_id) WARN_UNUSED;

/* the grants to USER_ID and to the groups it belongs to */
struct permission **permission_list_of_user_or_groups(struct store *st, const char *user_id) WARN_UNUSED;

/* the open transfers of BACKUP_ID's disks that read the backup's chosen source */
struct image_transfer **image_transfer_list_open_chosen_of_backup(struct store *st, const char *backup_id) WARN_UNUSED;
/* an open transfer of a disk of VM_ID (with ACTIVE_ONLY, of its active volume; else also of its snapshots) (none or one) */
struct image_transfer **image_transfer_list_open_of_vm_disks(struct store *st, const char *vm_id, bool active_only) WARN_UNUSED;
/* the transfers of BACKUP_ID's disks that read the backup's chosen source, made at SINCE_MS
 * or later (the backup's creation), newest first */
struct image_transfer **image_transfer_list_chosen_of_backup(struct store *st, const char *backup_id,
                                                             int64_t since_ms) WARN_UNUSED;

/* whether data center ID exists (0 or 1) */
int64_t datacenter_count_by_id(struct store *st, const char *id) WARN_UNUSED;

/* whether cluster ID exists (0 or 1) */
int64_t cluster_count_by_id(struct store *st, const char *id) WARN_UNUSED;

/* whether storage domain ID exists (0 or 1) */
int64_t storage_domain_count_by_id(struct store *st, const char *id) WARN_UNUSED;

/* whether host ID exists (0 or 1) */
int64_t host_count_by_id(struct store *st, const char *id) WARN_UNUSED;

/* whether template ID exists (0 or 1) */
int64_t template_count_by_id(struct store *st, const char *id) WARN_UNUSED;

/* whether disk ID exists (0 or 1) */
int64_t disk_count_by_id(struct store *st, const char *id) WARN_UNUSED;

/* the cluster called NAME (none or one) */
struct cluster **cluster_list_by_name(struct store *st, const char *name) WARN_UNUSED;

/* the template called NAME (none or one) */
struct template **template_list_by_name(struct store *st, const char *name) WARN_UNUSED;

/* the storage domain called NAME (none or one) */
struct storage_domain **storage_domain_list_by_name(struct store *st, const char *name) WARN_UNUSED;

/* the host called NAME (none or one) */
struct host **host_list_by_name(struct store *st, const char *name) WARN_UNUSED;

/* every job, the newest first */
struct job **job_list_newest_first(struct store *st) WARN_UNUSED;

/* the hosts of CLUSTER_ID, by name */
struct host **host_list_by_cluster(struct store *st, const char *cluster_id) WARN_UNUSED;
/* the hosts of CLUSTER_ID in STATUS, by name */
struct host **host_list_by_cluster_status(struct store *st, const char *cluster_id, int status) WARN_UNUSED;
/* hosts called NAME */
int64_t host_count_by_name(struct store *st, const char *name) WARN_UNUSED;

/* the VMs on HOST_ID that are not down, by name */
struct vm **vm_list_not_down_on_host(struct store *st, const char *host_id) WARN_UNUSED;

/* the volume stored at PATH (none or one) */
struct volume **volume_list_by_path(struct store *st, const char *path) WARN_UNUSED;

/* the ISO images on STORAGE_DOMAIN_ID that are ok, by alias */
struct disk **disk_list_isos_of_storage_domain(struct store *st, const char *storage_domain_id) WARN_UNUSED;

/* the started job of VM_ID described as DESCRIPTION (none or one) */
struct job **job_list_started_of_vm(struct store *st, const char *vm_id, const char *description) WARN_UNUSED;

/* a VM with ISO disk DISK_ID in its CD-ROM (none or one) */
struct vm **vm_list_by_cdrom(struct store *st, const char *disk_id) WARN_UNUSED;
/* VMs pinned to HOST_ID */
int64_t vm_count_by_placement_host(struct store *st, const char *host_id) WARN_UNUSED;
