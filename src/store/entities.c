/* entities.c: the description of every entity type (entity.h): its
 * table, key columns, default order and field table, and the strings its
 * enums are stored as ('up', 'virtio_scsi'), so the database reads well from
 * the sqlite3/psql shell. */
#include "store/entity.h"
#include "util/cleanup.h"
#include "util/enumstr.h"

ENUM_IMPL(vm_status, VM_STATUS_LAST, "down", "powering_up", "up", "powering_down", "paused", "unknown")
ENUM_IMPL(disk_format, DISK_FORMAT_LAST, "cow", "raw")
ENUM_IMPL(disk_status, DISK_STATUS_LAST, "ok", "locked", "illegal")
ENUM_IMPL(disk_iface, IFACE_LAST, "virtio", "virtio_scsi", "sata", "ide")
ENUM_IMPL(disk_content, DISK_CONTENT_LAST, "data", "iso")
ENUM_IMPL(nic_iface, NIC_IFACE_LAST, "virtio", "e1000", "rtl8139")
ENUM_IMPL(snapshot_type, SNAPSHOT_TYPE_LAST, "active", "regular")
ENUM_IMPL(snapshot_status, SNAPSHOT_STATUS_LAST, "ok", "locked", "in_preview")
ENUM_IMPL(host_status, HOST_STATUS_LAST, "up", "maintenance", "non_responsive", "installing")
ENUM_IMPL(job_status, JOB_STATUS_LAST, "started", "finished", "failed")
ENUM_IMPL(event_severity, SEVERITY_LAST, "normal", "warning", "error", "alert")
ENUM_IMPL(transfer_direction, TRANSFER_DIRECTION_LAST, "upload", "download")
ENUM_IMPL(transfer_phase, TRANSFER_PHASE_LAST, "initializing", "transferring", "finished_success",
          "finished_failure", "cancelled")
ENUM_IMPL(disk_backup, DISK_BACKUP_LAST, "none", "incremental")
ENUM_IMPL(backup_phase, BACKUP_PHASE_LAST, "initializing", "starting", "ready", "finalizing",
          "succeeded", "failed")
ENUM_IMPL(backup_mode, BACKUP_MODE_LAST, "full", "incremental")
ENUM_IMPL(checkpoint_state, CHECKPOINT_STATE_LAST, "created", "invalid", "pending")

/* ---- descriptors ---- */

#define ENUM_CODEC(e) static const struct enum_codec e##_codec = { #e, e##_to_str, e##_from_str };
ENUM_CODEC(vm_status) ENUM_CODEC(disk_format) ENUM_CODEC(disk_status) ENUM_CODEC(disk_iface)
ENUM_CODEC(snapshot_type) ENUM_CODEC(snapshot_status) ENUM_CODEC(host_status)
ENUM_CODEC(job_status) ENUM_CODEC(event_severity)
ENUM_CODEC(transfer_direction) ENUM_CODEC(transfer_phase)
ENUM_CODEC(disk_backup) ENUM_CODEC(backup_phase) ENUM_CODEC(backup_mode) ENUM_CODEC(checkpoint_state)
ENUM_CODEC(nic_iface) ENUM_CODEC(disk_content)

#define FSTR(T, m) { #m, F_STR, offsetof(struct T, m), NULL }
#define FINT(T, m) { #m, F_INT, offsetof(struct T, m), NULL }
#define FBOOL(T, m) { #m, F_BOOL, offsetof(struct T, m), NULL }
#define FENUM(T, m, e) { #m, F_ENUM, offsetof(struct T, m), &e##_codec }

#define ENTITY(T, kind_, table_, order_, ...)                                                  \
  const struct entity_desc T##_desc = {                                                 \
    kind_, table_, { __VA_ARGS__ }, sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *), \
    order_, sizeof(struct T), T##_fields, ARRAY_SIZE(T##_fields) }

static const struct field user_fields[] = {
  FSTR(user, id), FSTR(user, name), FSTR(user, password_hash),
};
ENTITY(user, "user", "users", "name", "id");

static const struct field token_fields[] = {
  FSTR(token, token), FSTR(token, user_id), FINT(token, expires_ms),
};
ENTITY(token, "token", "tokens", "expires_ms", "token");

static const struct field host_fields[] = {
  FSTR(host, id), FSTR(host, name), FSTR(host, address), FSTR(host, cluster_id),
  FENUM(host, status, host_status), FSTR(host, libvirt_uri),
};
ENTITY(host, "host", "hosts", "name", "id");

static const struct field datacenter_fields[] = {
  FSTR(datacenter, id), FSTR(datacenter, name), FSTR(datacenter, description),
};
ENTITY(datacenter, "data center", "datacenters", "name", "id");

static const struct field cluster_fields[] = {
  FSTR(cluster, id), FSTR(cluster, name), FSTR(cluster, description), FSTR(cluster, datacenter_id),
};
ENTITY(cluster, "cluster", "clusters", "name", "id");

static const struct field template_fields[] = {
  FSTR(template, id), FSTR(template, name), FSTR(template, description), FSTR(template, cluster_id),
};
ENTITY(template, "template", "templates", "name", "id");

static const struct field storage_domain_fields[] = {
  FSTR(storage_domain, id), FSTR(storage_domain, name), FSTR(storage_domain, path),
  FSTR(storage_domain, datacenter_id), FSTR(storage_domain, type),
};
ENTITY(storage_domain, "storage domain", "storage_domains", "name", "id");

static const struct field vm_fields[] = {
  FSTR(vm, id), FSTR(vm, name), FSTR(vm, description), FSTR(vm, cluster_id),
  FSTR(vm, template_id), FSTR(vm, host_id), FINT(vm, memory), FINT(vm, sockets),
  FINT(vm, cores), FINT(vm, threads), FSTR(vm, os_type), FENUM(vm, status, vm_status),
  FSTR(vm, kernel), FSTR(vm, initrd), FSTR(vm, cmdline), FINT(vm, creation_ms),
  FSTR(vm, placement_host_id),
  FSTR(vm, cdrom_disk_id), FSTR(vm, boot_devices),
};
ENTITY(vm, "VM", "vms", "name", "id");

static const struct field disk_fields[] = {
  FSTR(disk, id), FSTR(disk, alias), FSTR(disk, description), FINT(disk, provisioned_size),
  FENUM(disk, format, disk_format), FBOOL(disk, sparse), FBOOL(disk, shareable),
  FSTR(disk, storage_domain_id), FENUM(disk, status, disk_status),
  FENUM(disk, backup, disk_backup), FENUM(disk, content_type, disk_content),
};
ENTITY(disk, "disk", "disks", "alias", "id");

static const struct field volume_fields[] = {
  FSTR(volume, id), FSTR(volume, disk_id), FSTR(volume, parent_id), FSTR(volume, snapshot_id),
  FENUM(volume, format, disk_format), FENUM(volume, status, disk_status), FSTR(volume, path),
  FBOOL(volume, active),
};
ENTITY(volume, "volume", "volumes", "disk_id, id", "id");

static const struct field attachment_fields[] = {
  FSTR(attachment, vm_id), FSTR(attachment, disk_id), FSTR(attachment, snapshot_id),
  FENUM(attachment, iface, disk_iface), FBOOL(attachment, bootable), FBOOL(attachment, active),
  FBOOL(attachment, read_only), FBOOL(attachment, plugged), FSTR(attachment, logical_name),
  FSTR(attachment, overlay_path), FINT(attachment, position),
};
/* kind reads "attachment of disk 'D' to VM 'V'": see key_describe() */
ENTITY(attachment, "attachment of disk", "attachments", "vm_id, position, disk_id", "vm_id", "disk_id");

static const struct field snapshot_fields[] = {
  FSTR(snapshot, id), FSTR(snapshot, vm_id), FSTR(snapshot, description),
  FENUM(snapshot, type, snapshot_type), FENUM(snapshot, status, snapshot_status),
  FINT(snapshot, date_ms), FBOOL(snapshot, persist_memorystate), FSTR(snapshot, ovf),
  FSTR(snapshot, operation),
};
ENTITY(snapshot, "snapshot", "snapshots", "date_ms, id", "id");

static const struct field event_fields[] = {
  FINT(event, id), FINT(event, time_ms), FENUM(event, severity, event_severity),
  FINT(event, code), FSTR(event, description), FSTR(event, origin), FINT(event, custom_id),
  FSTR(event, user_id), FSTR(event, user_name), FSTR(event, vm_id), FSTR(event, correlation_id),
};
ENTITY(event, "event", "events", "id", "id");

static const struct field job_fields[] = {
  FSTR(job, id), FSTR(job, description), FENUM(job, status, job_status),
  FINT(job, start_ms), FINT(job, end_ms), FSTR(job, user_id), FINT(job, progress), FSTR(job, vm_id),
};
ENTITY(job, "job", "jobs", "start_ms, id", "id");

static const struct field image_transfer_fields[] = {
  FSTR(image_transfer, id), FENUM(image_transfer, direction, transfer_direction),
  FENUM(image_transfer, phase, transfer_phase), FENUM(image_transfer, format, disk_format),
  FSTR(image_transfer, disk_id), FSTR(image_transfer, volume_id), FSTR(image_transfer, snapshot_id),
  FSTR(image_transfer, vm_id), FSTR(image_transfer, socket_path), FSTR(image_transfer, ticket),
  FINT(image_transfer, pid), FINT(image_transfer, size), FINT(image_transfer, created_ms),
  FINT(image_transfer, last_activity_ms), FINT(image_transfer, bytes_transferred),
  FINT(image_transfer, inactivity_timeout), FSTR(image_transfer, user_id),
  FSTR(image_transfer, message), FSTR(image_transfer, dirty_context),
  FSTR(image_transfer, export_name), FINT(image_transfer, external_server),
  FINT(image_transfer, chosen_source), FSTR(image_transfer, nbd_server),
};
ENTITY(image_transfer, "image transfer", "image_transfers", "created_ms, id", "id");

static const struct field usergroup_fields[] = {
  FSTR(usergroup, id), FSTR(usergroup, name), FSTR(usergroup, domain),
};
ENTITY(usergroup, "group", "usergroups", "name", "id");

static const struct field group_member_fields[] = {
  FSTR(group_member, id), FSTR(group_member, group_id), FSTR(group_member, user_id),
};
ENTITY(group_member, "group membership", "group_members", "group_id, user_id", "id");

static const struct field role_fields[] = {
  FSTR(role, id), FSTR(role, name), FSTR(role, description), FBOOL(role, administrative),
};
ENTITY(role, "role", "roles", "name", "id");

static const struct field role_permit_fields[] = {
  FSTR(role_permit, id), FSTR(role_permit, role_id), FINT(role_permit, permit),
};
ENTITY(role_permit, "permit", "role_permits", "role_id, permit", "id");

static const struct field permission_fields[] = {
  FSTR(permission, id), FSTR(permission, role_id), FSTR(permission, user_id),
  FSTR(permission, group_id), FSTR(permission, object_type), FSTR(permission, object_id),
};
ENTITY(permission, "permission", "permissions", "object_type, object_id, id", "id");

static const struct field user_lock_fields[] = {
  FSTR(user_lock, user_id), FINT(user_lock, since_ms),
};
ENTITY(user_lock, "lock of user", "user_locks", "user_id", "user_id");
static const struct field backup_fields[] = {
  FSTR(backup, id), FSTR(backup, vm_id), FSTR(backup, description),
  FENUM(backup, phase, backup_phase), FSTR(backup, from_checkpoint_id),
  FSTR(backup, to_checkpoint_id), FSTR(backup, snapshot_id), FSTR(backup, host_id),
  FBOOL(backup, require_consistency), FBOOL(backup, use_active), FINT(backup, creation_ms),
  FINT(backup, modification_ms), FSTR(backup, user_id), FSTR(backup, message),
  FSTR(backup, nbd_server),
};
ENTITY(backup, "backup", "backups", "creation_ms, id", "id");

static const struct field backup_disk_fields[] = {
  FSTR(backup_disk, id), FSTR(backup_disk, backup_id), FSTR(backup_disk, disk_id),
  FENUM(backup_disk, mode, backup_mode), FSTR(backup_disk, volume_id), FSTR(backup_disk, reason),
};
ENTITY(backup_disk, "disk of backup", "backup_disks", "id", "id");

static const struct field checkpoint_fields[] = {
  FSTR(checkpoint, id), FSTR(checkpoint, vm_id), FSTR(checkpoint, parent_id),
  FENUM(checkpoint, state, checkpoint_state), FINT(checkpoint, creation_ms),
  FSTR(checkpoint, backup_id), FSTR(checkpoint, message),
};
ENTITY(checkpoint, "checkpoint", "checkpoints", "creation_ms, id", "id");

static const struct field checkpoint_disk_fields[] = {
  FSTR(checkpoint_disk, id), FSTR(checkpoint_disk, checkpoint_id), FSTR(checkpoint_disk, disk_id),
  FSTR(checkpoint_disk, volume_id),
};
ENTITY(checkpoint_disk, "disk of checkpoint", "checkpoint_disks", "id", "id");
static const struct field network_fields[] = {
  FSTR(network, id), FSTR(network, name), FSTR(network, description), FSTR(network, datacenter_id),
  FSTR(network, libvirt_network), FSTR(network, bridge),
};
ENTITY(network, "network", "networks", "name", "id");

static const struct field nic_fields[] = {
  FSTR(nic, id), FSTR(nic, vm_id), FSTR(nic, name), FSTR(nic, network_id), FSTR(nic, mac),
  FENUM(nic, iface, nic_iface), FBOOL(nic, plugged), FINT(nic, position),
};
ENTITY(nic, "NIC", "nics", "vm_id, position, id", "id");

#define STORE_DESC_PTR(T) &T##_desc,
const struct entity_desc *const store_entities[] = { STORE_TYPES(STORE_DESC_PTR) };
const size_t store_nentities = ARRAY_SIZE(store_entities);
