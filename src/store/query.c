/* query.c: the named queries of query.h over the entity layer's generic
 * select (store_internal.h). Each holds its statement: portable SQL that
 * both backends run as it is, with typed parameters. */
#include "store/store.h"
#include "store/db.h"
#include "store/store_internal.h"

struct user **user_list_in_group(struct store *st, const char *group_id)
{
  struct db_value p[] = { DBV_TEXT(group_id) };
  return (struct user **)store_select(st, STORE_TYPE(user), "id IN (SELECT user_id FROM group_members WHERE group_id = ?)", p, 1, "name", 0);
}

struct usergroup **usergroup_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct usergroup **)store_select(st, STORE_TYPE(usergroup), "name = ?", p, 1, NULL, 1);
}

int64_t usergroup_count_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return store_count_where(st, STORE_TYPE(usergroup), "name = ?", p, 1);
}

struct usergroup **usergroup_list_of_user(struct store *st, const char *user_id)
{
  struct db_value p[] = { DBV_TEXT(user_id) };
  return (struct usergroup **)store_select(st, STORE_TYPE(usergroup), "id IN (SELECT group_id FROM group_members WHERE user_id = ?)", p, 1, NULL, 0);
}

struct group_member **group_member_list_by_pair(struct store *st, const char *group_id, const char *user_id)
{
  struct db_value p[] = { DBV_TEXT(group_id), DBV_TEXT(user_id) };
  return (struct group_member **)store_select(st, STORE_TYPE(group_member), "group_id = ? AND user_id = ?", p, 2, NULL, 1);
}

int64_t group_member_count_by_pair(struct store *st, const char *group_id, const char *user_id)
{
  struct db_value p[] = { DBV_TEXT(group_id), DBV_TEXT(user_id) };
  return store_count_where(st, STORE_TYPE(group_member), "group_id = ? AND user_id = ?", p, 2);
}

struct group_member **group_member_list_by_group(struct store *st, const char *group_id)
{
  struct db_value p[] = { DBV_TEXT(group_id) };
  return (struct group_member **)store_select(st, STORE_TYPE(group_member), "group_id = ?", p, 1, NULL, 0);
}

struct role **role_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct role **)store_select(st, STORE_TYPE(role), "name = ?", p, 1, NULL, 1);
}

struct role_permit **role_permit_list_by_role(struct store *st, const char *role_id)
{
  struct db_value p[] = { DBV_TEXT(role_id) };
  return (struct role_permit **)store_select(st, STORE_TYPE(role_permit), "role_id = ?", p, 1, "permit", 0);
}

struct role_permit **role_permit_list_by_pair(struct store *st, const char *role_id, int64_t permit)
{
  struct db_value p[] = { DBV_TEXT(role_id), DBV_INT(permit) };
  return (struct role_permit **)store_select(st, STORE_TYPE(role_permit), "role_id = ? AND permit = ?", p, 2, NULL, 1);
}

int64_t permission_count_by_role(struct store *st, const char *role_id)
{
  struct db_value p[] = { DBV_TEXT(role_id) };
  return store_count_where(st, STORE_TYPE(permission), "role_id = ?", p, 1);
}

int64_t permission_count_system_grant(struct store *st, const char *user_id, const char *role_id)
{
  struct db_value p[] = { DBV_TEXT(user_id), DBV_TEXT(role_id) };
  return store_count_where(st, STORE_TYPE(permission), "user_id = ? AND role_id = ? AND object_type = 'system'", p, 2);
}

struct permission **permission_list_by_group(struct store *st, const char *group_id)
{
  struct db_value p[] = { DBV_TEXT(group_id) };
  return (struct permission **)store_select(st, STORE_TYPE(permission), "group_id = ?", p, 1, NULL, 0);
}

struct permission **permission_list_by_user(struct store *st, const char *user_id)
{
  struct db_value p[] = { DBV_TEXT(user_id) };
  return (struct permission **)store_select(st, STORE_TYPE(permission), "user_id = ?", p, 1, NULL, 0);
}

struct permission **permission_list_on_object(struct store *st, const char *object_type, const char *object_id)
{
  struct db_value p[] = { DBV_TEXT(object_type), DBV_TEXT(object_id) };
  return (struct permission **)store_select(st, STORE_TYPE(permission), "object_type = ? AND object_id = ?", p, 2, NULL, 0);
}

struct permission **permission_list_system(struct store *st)
{
  return (struct permission **)store_select(st, STORE_TYPE(permission), "object_type = 'system'", NULL, 0, NULL, 0);
}

int64_t user_lock_count_by_user(struct store *st, const char *user_id)
{
  struct db_value p[] = { DBV_TEXT(user_id) };
  return store_count_where(st, STORE_TYPE(user_lock), "user_id = ?", p, 1);
}

struct token **token_list_by_user(struct store *st, const char *user_id)
{
  struct db_value p[] = { DBV_TEXT(user_id) };
  return (struct token **)store_select(st, STORE_TYPE(token), "user_id = ?", p, 1, NULL, 0);
}

struct token **token_list_expired(struct store *st, int64_t now_ms, int limit)
{
  struct db_value p[] = { DBV_INT(now_ms) };
  return (struct token **)store_select(st, STORE_TYPE(token), "expires_ms < ?", p, 1, NULL, limit);
}

int64_t token_count_expired(struct store *st, int64_t now_ms)
{
  struct db_value p[] = { DBV_INT(now_ms) };
  return store_count_where(st, STORE_TYPE(token), "expires_ms < ?", p, 1);
}

struct token **token_list_not_like(struct store *st, const char *pattern)
{
  struct db_value p[] = { DBV_TEXT(pattern) };
  return (struct token **)store_select(st, STORE_TYPE(token), "token NOT LIKE ?", p, 1, NULL, 0);
}

struct datacenter **datacenter_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct datacenter **)store_select(st, STORE_TYPE(datacenter), "name = ?", p, 1, NULL, 1);
}

int64_t datacenter_count_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return store_count_where(st, STORE_TYPE(datacenter), "name = ?", p, 1);
}

struct cluster **cluster_list_by_datacenter(struct store *st, const char *datacenter_id)
{
  struct db_value p[] = { DBV_TEXT(datacenter_id) };
  return (struct cluster **)store_select(st, STORE_TYPE(cluster), "datacenter_id = ?", p, 1, NULL, 0);
}

int64_t host_count_by_status(struct store *st, int status)
{
  struct db_value p[] = { DBV_TEXT(host_status_to_str(status)) };
  return store_count_where(st, STORE_TYPE(host), "status = ?", p, 1);
}

struct storage_domain **storage_domain_list_by_datacenter(struct store *st, const char *datacenter_id)
{
  struct db_value p[] = { DBV_TEXT(datacenter_id) };
  return (struct storage_domain **)store_select(st, STORE_TYPE(storage_domain), "datacenter_id = ?", p, 1, NULL, 0);
}

int64_t storage_domain_count_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return store_count_where(st, STORE_TYPE(storage_domain), "name = ?", p, 1);
}

int64_t template_count_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return store_count_where(st, STORE_TYPE(template), "name = ?", p, 1);
}

struct network **network_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct network **)store_select(st, STORE_TYPE(network), "name = ?", p, 1, NULL, 0);
}

struct network **network_list_by_datacenter(struct store *st, const char *datacenter_id)
{
  struct db_value p[] = { DBV_TEXT(datacenter_id) };
  return (struct network **)store_select(st, STORE_TYPE(network), "datacenter_id = ?", p, 1, NULL, 0);
}

int64_t network_count_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return store_count_where(st, STORE_TYPE(network), "name = ?", p, 1);
}

struct nic **nic_list_by_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct nic **)store_select(st, STORE_TYPE(nic), "vm_id = ?", p, 1, NULL, 0);
}

struct nic **nic_list_by_vm_name(struct store *st, const char *vm_id, const char *name)
{
  struct db_value p[] = { DBV_TEXT(vm_id), DBV_TEXT(name) };
  return (struct nic **)store_select(st, STORE_TYPE(nic), "vm_id = ? AND name = ?", p, 2, NULL, 1);
}

struct nic **nic_list_plugged_networked(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct nic **)store_select(st, STORE_TYPE(nic), "vm_id = ? AND plugged = 1 AND network_id IS NOT NULL", p, 1, NULL, 0);
}

struct vm **vm_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct vm **)store_select(st, STORE_TYPE(vm), "name = ?", p, 1, NULL, 0);
}

struct vm **vm_list_by_status(struct store *st, int status)
{
  struct db_value p[] = { DBV_TEXT(vm_status_to_str(status)) };
  return (struct vm **)store_select(st, STORE_TYPE(vm), "status = ?", p, 1, NULL, 0);
}

struct vm **vm_list_by_template(struct store *st, const char *template_id)
{
  struct db_value p[] = { DBV_TEXT(template_id) };
  return (struct vm **)store_select(st, STORE_TYPE(vm), "template_id = ?", p, 1, NULL, 0);
}

int64_t vm_count_by_id(struct store *st, const char *id)
{
  struct db_value p[] = { DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(vm), "id = ?", p, 1);
}

int64_t vm_count_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return store_count_where(st, STORE_TYPE(vm), "name = ?", p, 1);
}

int64_t vm_count_by_name_other(struct store *st, const char *name, const char *id)
{
  struct db_value p[] = { DBV_TEXT(name), DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(vm), "name = ? AND id <> ?", p, 2);
}

int64_t vm_count_by_status(struct store *st, int status)
{
  struct db_value p[] = { DBV_TEXT(vm_status_to_str(status)) };
  return store_count_where(st, STORE_TYPE(vm), "status = ?", p, 1);
}

int64_t vm_count_not_down(struct store *st)
{
  return store_count_where(st, STORE_TYPE(vm), "status <> 'down'", NULL, 0);
}

int64_t vm_count_not_down_on_host(struct store *st, const char *host_id)
{
  struct db_value p[] = { DBV_TEXT(host_id) };
  return store_count_where(st, STORE_TYPE(vm), "host_id = ? AND status <> 'down'", p, 1);
}

struct disk **disk_list_by_storage_domain(struct store *st, const char *storage_domain_id)
{
  struct db_value p[] = { DBV_TEXT(storage_domain_id) };
  return (struct disk **)store_select(st, STORE_TYPE(disk), "storage_domain_id = ?", p, 1, NULL, 0);
}

int64_t disk_count_by_storage_domain(struct store *st, const char *storage_domain_id)
{
  struct db_value p[] = { DBV_TEXT(storage_domain_id) };
  return store_count_where(st, STORE_TYPE(disk), "storage_domain_id = ?", p, 1);
}

struct disk **disk_list_illegal_active_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct disk **)store_select(st, STORE_TYPE(disk), "status = 'illegal' AND id IN (SELECT disk_id FROM attachments WHERE vm_id = ? AND active = 1 AND snapshot_id IS NULL)", p, 1, NULL, 1);
}

int64_t disk_count_by_format_status(struct store *st, int format, int status)
{
  struct db_value p[] = { DBV_TEXT(disk_format_to_str(format)), DBV_TEXT(disk_status_to_str(status)) };
  return store_count_where(st, STORE_TYPE(disk), "format = ? AND status = ?", p, 2);
}

struct volume **volume_list_by_disk(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "disk_id = ?", p, 1, NULL, 0);
}

struct volume **volume_list_by_parent(struct store *st, const char *parent_id)
{
  struct db_value p[] = { DBV_TEXT(parent_id) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "parent_id = ?", p, 1, NULL, 0);
}

struct volume **volume_list_by_snapshot(struct store *st, const char *snapshot_id)
{
  struct db_value p[] = { DBV_TEXT(snapshot_id) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "snapshot_id = ?", p, 1, NULL, 0);
}

struct volume **volume_list_unlocked_of_snapshot(struct store *st, const char *snapshot_id)
{
  struct db_value p[] = { DBV_TEXT(snapshot_id) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "snapshot_id = ? AND status <> 'locked'", p, 1, NULL, 0);
}

struct volume **volume_list_locked_inactive_of_snapshot(struct store *st, const char *snapshot_id)
{
  struct db_value p[] = { DBV_TEXT(snapshot_id) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "snapshot_id = ? AND status = 'locked' AND active = 0", p, 1, NULL, 0);
}

struct volume **volume_list_unlocked_of_disk_snapshot(struct store *st, const char *disk_id, const char *snapshot_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id), DBV_TEXT(snapshot_id) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "disk_id = ? AND snapshot_id = ? AND status <> 'locked'", p, 2, NULL, 0);
}

struct volume **volume_list_cow_of_disk(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "disk_id = ? AND format = 'cow'", p, 1, NULL, 0);
}

struct volume **volume_list_active_of_disk(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "disk_id = ? AND active = 1", p, 1, NULL, 1);
}

int64_t volume_count_by_path(struct store *st, const char *path)
{
  struct db_value p[] = { DBV_TEXT(path) };
  return store_count_where(st, STORE_TYPE(volume), "path = ?", p, 1);
}

int64_t volume_count_by_status(struct store *st, int status)
{
  struct db_value p[] = { DBV_TEXT(disk_status_to_str(status)) };
  return store_count_where(st, STORE_TYPE(volume), "status = ?", p, 1);
}

struct attachment **attachment_list_by_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "vm_id = ?", p, 1, NULL, 0);
}

int64_t attachment_count_by_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return store_count_where(st, STORE_TYPE(attachment), "vm_id = ?", p, 1);
}

struct attachment **attachment_list_own_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "vm_id = ? AND snapshot_id IS NULL", p, 1, NULL, 0);
}

struct attachment **attachment_list_snapshots_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "vm_id = ? AND snapshot_id IS NOT NULL", p, 1, NULL, 0);
}

struct attachment **attachment_list_plugged_snapshots_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "vm_id = ? AND plugged = 1 AND snapshot_id IS NOT NULL", p, 1, NULL, 0);
}

struct attachment **attachment_list_active_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "vm_id = ? AND active = 1", p, 1, NULL, 0);
}

struct attachment **attachment_list_other_bootable(struct store *st, const char *vm_id, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id), DBV_TEXT(disk_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "vm_id = ? AND bootable = 1 AND disk_id <> ?", p, 2, NULL, 1);
}

struct attachment **attachment_list_by_disk(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "disk_id = ?", p, 1, NULL, 0);
}

int64_t attachment_count_by_disk(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return store_count_where(st, STORE_TYPE(attachment), "disk_id = ?", p, 1);
}

struct attachment **attachment_list_own_of_disk(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "disk_id = ? AND snapshot_id IS NULL", p, 1, NULL, 0);
}

struct attachment **attachment_list_snapshots_of_disk(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "disk_id = ? AND snapshot_id IS NOT NULL", p, 1, NULL, 1);
}

struct attachment **attachment_list_plugged_of_disk(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "disk_id = ? AND plugged = 1", p, 1, NULL, 0);
}

struct attachment **attachment_list_by_disk_other_vm(struct store *st, const char *disk_id, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id), DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "disk_id = ? AND vm_id <> ?", p, 2, NULL, 1);
}

int64_t attachment_count_live_overlay(struct store *st, const char *overlay_path)
{
  struct db_value p[] = { DBV_TEXT(overlay_path) };
  return store_count_where(st, STORE_TYPE(attachment), "overlay_path = ? AND plugged = 1 AND vm_id IN (SELECT id FROM vms WHERE status <> 'down')", p, 1);
}

struct snapshot **snapshot_list_by_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct snapshot **)store_select(st, STORE_TYPE(snapshot), "vm_id = ?", p, 1, NULL, 0);
}

struct snapshot **snapshot_list_active_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct snapshot **)store_select(st, STORE_TYPE(snapshot), "vm_id = ? AND type = 'active'", p, 1, NULL, 1);
}

struct snapshot **snapshot_list_locked_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct snapshot **)store_select(st, STORE_TYPE(snapshot), "vm_id = ? AND status = 'locked'", p, 1, NULL, 1);
}

struct snapshot **snapshot_list_not_ok_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct snapshot **)store_select(st, STORE_TYPE(snapshot), "vm_id = ? AND status <> 'ok'", p, 1, NULL, 1);
}

struct snapshot **snapshot_list_regular_since(struct store *st, const char *vm_id, int64_t date_ms, const char *except_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id), DBV_INT(date_ms), DBV_TEXT(except_id) };
  return (struct snapshot **)store_select(st, STORE_TYPE(snapshot), "vm_id = ? AND type = 'regular' AND date_ms >= ? AND id <> ?", p, 3, NULL, 0);
}

struct snapshot **snapshot_list_locked(struct store *st)
{
  return (struct snapshot **)store_select(st, STORE_TYPE(snapshot), "status = 'locked'", NULL, 0, NULL, 0);
}

int64_t snapshot_count_by_type(struct store *st, int type)
{
  struct db_value p[] = { DBV_TEXT(snapshot_type_to_str(type)) };
  return store_count_where(st, STORE_TYPE(snapshot), "type = ?", p, 1);
}

struct job **job_list_by_status(struct store *st, int status)
{
  struct db_value p[] = { DBV_TEXT(job_status_to_str(status)) };
  return (struct job **)store_select(st, STORE_TYPE(job), "status = ?", p, 1, NULL, 0);
}

int64_t job_count_by_status(struct store *st, int status)
{
  struct db_value p[] = { DBV_TEXT(job_status_to_str(status)) };
  return store_count_where(st, STORE_TYPE(job), "status = ?", p, 1);
}

struct event **event_list_newest(struct store *st, int limit)
{
  return (struct event **)store_select(st, STORE_TYPE(event), NULL, NULL, 0, "id DESC", limit);
}

struct event **event_list_after(struct store *st, int64_t after_id, int limit)
{
  struct db_value p[] = { DBV_INT(after_id) };
  return (struct event **)store_select(st, STORE_TYPE(event), "id > ?", p, 1, "id DESC", limit);
}

int64_t event_count_after(struct store *st, int64_t after_id)
{
  struct db_value p[] = { DBV_INT(after_id) };
  return store_count_where(st, STORE_TYPE(event), "id > ?", p, 1);
}

int64_t event_count_by_custom_id(struct store *st, int64_t custom_id)
{
  struct db_value p[] = { DBV_INT(custom_id) };
  return store_count_where(st, STORE_TYPE(event), "custom_id = ?", p, 1);
}

struct image_transfer **image_transfer_list_open(struct store *st)
{
  return (struct image_transfer **)store_select(st, STORE_TYPE(image_transfer), "phase IN ('initializing', 'transferring')", NULL, 0, NULL, 0);
}

int64_t image_transfer_count_open(struct store *st)
{
  return store_count_where(st, STORE_TYPE(image_transfer), "phase IN ('initializing', 'transferring')", NULL, 0);
}

struct image_transfer **image_transfer_list_open_of_disk(struct store *st, const char *disk_id, int limit)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct image_transfer **)store_select(st, STORE_TYPE(image_transfer), "disk_id = ? AND phase IN ('initializing', 'transferring')", p, 1, NULL, limit);
}

int64_t image_transfer_count_open_by_id(struct store *st, const char *id)
{
  struct db_value p[] = { DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(image_transfer), "id = ? AND phase IN ('initializing', 'transferring')", p, 1);
}

struct image_transfer **image_transfer_list_transferring(struct store *st)
{
  return (struct image_transfer **)store_select(st, STORE_TYPE(image_transfer), "phase = 'transferring'", NULL, 0, NULL, 0);
}

struct image_transfer **image_transfer_list_transferring_by_ticket(struct store *st, const char *ticket)
{
  struct db_value p[] = { DBV_TEXT(ticket) };
  return (struct image_transfer **)store_select(st, STORE_TYPE(image_transfer), "ticket = ? AND phase = 'transferring'", p, 1, NULL, 1);
}

struct image_transfer **image_transfer_list_not_like(struct store *st, const char *pattern)
{
  struct db_value p[] = { DBV_TEXT(pattern) };
  return (struct image_transfer **)store_select(st, STORE_TYPE(image_transfer), "ticket NOT LIKE ?", p, 1, NULL, 0);
}

struct backup **backup_list_by_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct backup **)store_select(st, STORE_TYPE(backup), "vm_id = ?", p, 1, NULL, 0);
}

struct backup **backup_list_running(struct store *st)
{
  return (struct backup **)store_select(st, STORE_TYPE(backup), "phase IN ('initializing', 'starting', 'ready', 'finalizing')", NULL, 0, NULL, 0);
}

struct backup **backup_list_running_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct backup **)store_select(st, STORE_TYPE(backup), "vm_id = ? AND phase IN ('initializing', 'starting', 'ready', 'finalizing')", p, 1, NULL, 1);
}

struct backup_disk **backup_disk_list_by_backup(struct store *st, const char *backup_id)
{
  struct db_value p[] = { DBV_TEXT(backup_id) };
  return (struct backup_disk **)store_select(st, STORE_TYPE(backup_disk), "backup_id = ?", p, 1, NULL, 0);
}

struct checkpoint **checkpoint_list_listed_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct checkpoint **)store_select(st, STORE_TYPE(checkpoint), "vm_id = ? AND state <> 'pending'", p, 1, NULL, 0);
}

struct checkpoint **checkpoint_list_leaf_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct checkpoint **)store_select(st, STORE_TYPE(checkpoint), "vm_id = ? AND state = 'created'", p, 1, "creation_ms DESC, id", 1);
}

struct checkpoint **checkpoint_list_valid_since(struct store *st, const char *vm_id, int64_t since_ms)
{
  struct db_value p[] = { DBV_TEXT(vm_id), DBV_INT(since_ms) };
  return (struct checkpoint **)store_select(st, STORE_TYPE(checkpoint), "vm_id = ? AND state <> 'invalid' AND creation_ms >= ?", p, 2, NULL, 0);
}

struct checkpoint **checkpoint_list_by_parent(struct store *st, const char *parent_id)
{
  struct db_value p[] = { DBV_TEXT(parent_id) };
  return (struct checkpoint **)store_select(st, STORE_TYPE(checkpoint), "parent_id = ?", p, 1, NULL, 0);
}

int64_t checkpoint_count_usable(struct store *st, const char *id, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(id), DBV_TEXT(vm_id) };
  return store_count_where(st, STORE_TYPE(checkpoint), "id = ? AND vm_id = ? AND state IN ('created', 'pending')", p, 2);
}

struct checkpoint_disk **checkpoint_disk_list_by_checkpoint(struct store *st, const char *checkpoint_id)
{
  struct db_value p[] = { DBV_TEXT(checkpoint_id) };
  return (struct checkpoint_disk **)store_select(st, STORE_TYPE(checkpoint_disk), "checkpoint_id = ?", p, 1, NULL, 0);
}

struct volume **volume_list_snapshots_of_disk(struct store *st, const char *disk_id, bool include_active)
{
  struct db_value p[] = { DBV_TEXT(disk_id), DBV_INT(include_active ? 1 : 0) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "disk_id = ? AND status <> 'locked' AND (active = 0 OR ? = 1)", p, 2, NULL, 0);
}

struct volume **volume_list_snapshots_on_storage_domain(struct store *st, const char *storage_domain_id, bool include_active)
{
  struct db_value p[] = { DBV_TEXT(storage_domain_id), DBV_INT(include_active ? 1 : 0) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "disk_id IN (SELECT id FROM disks WHERE storage_domain_id = ?) AND status <> 'locked' AND (active = 0 OR ? = 1)", p, 2, NULL, 0);
}

struct attachment **attachment_list_snapshots_of_own_disks_elsewhere(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id), DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "snapshot_id IS NOT NULL AND vm_id <> ? AND disk_id IN (SELECT disk_id FROM attachments WHERE vm_id = ? AND snapshot_id IS NULL)", p, 2, NULL, 1);
}

struct attachment **attachment_list_snapshots_of_disks_elsewhere(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id), DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "snapshot_id IS NOT NULL AND vm_id <> ? AND disk_id IN (SELECT disk_id FROM attachments WHERE vm_id = ?)", p, 2, NULL, 0);
}

struct attachment **attachment_list_plugged_or_overlaid_of_vm(struct store *st, const char *vm_id)
{
  struct db_value p[] = { DBV_TEXT(vm_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "vm_id = ? AND (plugged = 1 OR overlay_path IS NOT NULL)", p, 1, NULL, 0);
}

struct attachment **attachment_list_plugged_snapshots_on_host(struct store *st, const char *host_id)
{
  struct db_value p[] = { DBV_TEXT(host_id) };
  return (struct attachment **)store_select(st, STORE_TYPE(attachment), "plugged = 1 AND snapshot_id IS NOT NULL AND vm_id IN (SELECT id FROM vms WHERE host_id = ?)", p, 1, NULL, 1);
}

struct permission **permission_list_of_user_or_groups(struct store *st, const char *user_id)
{
  struct db_value p[] = { DBV_TEXT(user_id), DBV_TEXT(user_id) };
  return (struct permission **)store_select(st, STORE_TYPE(permission), "user_id = ? OR group_id IN (SELECT group_id FROM group_members WHERE user_id = ?)", p, 2, NULL, 0);
}

struct image_transfer **image_transfer_list_open_chosen_of_backup(struct store *st, const char *backup_id)
{
  struct db_value p[] = { DBV_TEXT(backup_id) };
  return (struct image_transfer **)store_select(st, STORE_TYPE(image_transfer), "chosen_source = 1 AND phase IN ('initializing', 'transferring') AND disk_id IN (SELECT disk_id FROM backup_disks WHERE backup_id = ?)", p, 1, NULL, 0);
}

struct image_transfer **image_transfer_list_chosen_of_backup(struct store *st, const char *backup_id,
                                                             int64_t since_ms)
{
  struct db_value p[] = { DBV_TEXT(backup_id), DBV_INT(since_ms) };
  return (struct image_transfer **)store_select(st, STORE_TYPE(image_transfer), "chosen_source = 1 AND disk_id IN (SELECT disk_id FROM backup_disks WHERE backup_id = ?) AND created_ms >= ?", p, 2, "created_ms DESC", 0);
}

struct image_transfer **image_transfer_list_open_of_vm_disks(struct store *st, const char *vm_id, bool active_only)
{
  struct db_value p[] = { DBV_TEXT(vm_id), DBV_INT(active_only ? 1 : 0) };
  return (struct image_transfer **)store_select(st, STORE_TYPE(image_transfer), "disk_id IN (SELECT disk_id FROM attachments WHERE vm_id = ? AND snapshot_id IS NULL) AND (snapshot_id IS NULL OR ? = 0) AND phase IN ('initializing', 'transferring')", p, 2, NULL, 1);
}

int64_t datacenter_count_by_id(struct store *st, const char *id)
{
  struct db_value p[] = { DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(datacenter), "id = ?", p, 1);
}

int64_t cluster_count_by_id(struct store *st, const char *id)
{
  struct db_value p[] = { DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(cluster), "id = ?", p, 1);
}

int64_t storage_domain_count_by_id(struct store *st, const char *id)
{
  struct db_value p[] = { DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(storage_domain), "id = ?", p, 1);
}

int64_t host_count_by_id(struct store *st, const char *id)
{
  struct db_value p[] = { DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(host), "id = ?", p, 1);
}

int64_t template_count_by_id(struct store *st, const char *id)
{
  struct db_value p[] = { DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(template), "id = ?", p, 1);
}

int64_t disk_count_by_id(struct store *st, const char *id)
{
  struct db_value p[] = { DBV_TEXT(id) };
  return store_count_where(st, STORE_TYPE(disk), "id = ?", p, 1);
}

struct cluster **cluster_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct cluster **)store_select(st, STORE_TYPE(cluster), "name = ?", p, 1, NULL, 1);
}

struct template **template_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct template **)store_select(st, STORE_TYPE(template), "name = ?", p, 1, NULL, 1);
}

struct storage_domain **storage_domain_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct storage_domain **)store_select(st, STORE_TYPE(storage_domain), "name = ?", p, 1, NULL, 1);
}

struct host **host_list_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return (struct host **)store_select(st, STORE_TYPE(host), "name = ?", p, 1, NULL, 1);
}

struct job **job_list_newest_first(struct store *st)
{
  return (struct job **)store_select(st, STORE_TYPE(job), NULL, NULL, 0, "start_ms DESC", 0);
}

struct host **host_list_by_cluster(struct store *st, const char *cluster_id)
{
  struct db_value p[] = { DBV_TEXT(cluster_id) };
  return (struct host **)store_select(st, STORE_TYPE(host), "cluster_id = ?", p, 1, NULL, 0);
}

struct host **host_list_by_cluster_status(struct store *st, const char *cluster_id, int status)
{
  struct db_value p[] = { DBV_TEXT(cluster_id), DBV_TEXT(host_status_to_str(status)) };
  return (struct host **)store_select(st, STORE_TYPE(host), "cluster_id = ? AND status = ?", p, 2, NULL, 0);
}

int64_t host_count_by_name(struct store *st, const char *name)
{
  struct db_value p[] = { DBV_TEXT(name) };
  return store_count_where(st, STORE_TYPE(host), "name = ?", p, 1);
}

struct vm **vm_list_not_down_on_host(struct store *st, const char *host_id)
{
  struct db_value p[] = { DBV_TEXT(host_id) };
  return (struct vm **)store_select(st, STORE_TYPE(vm), "host_id = ? AND status <> 'down'", p, 1, NULL, 0);
}

struct volume **volume_list_by_path(struct store *st, const char *path)
{
  struct db_value p[] = { DBV_TEXT(path) };
  return (struct volume **)store_select(st, STORE_TYPE(volume), "path = ?", p, 1, NULL, 1);
}

struct disk **disk_list_isos_of_storage_domain(struct store *st, const char *storage_domain_id)
{
  struct db_value p[] = { DBV_TEXT(storage_domain_id) };
  return (struct disk **)store_select(st, STORE_TYPE(disk), "storage_domain_id = ? AND content_type = 'iso' AND status = 'ok'", p, 1, NULL, 0);
}

struct job **job_list_started_of_vm(struct store *st, const char *vm_id, const char *description)
{
  struct db_value p[] = { DBV_TEXT(vm_id), DBV_TEXT(description) };
  return (struct job **)store_select(st, STORE_TYPE(job), "status = 'started' AND vm_id = ? AND description = ?", p, 2, NULL, 1);
}

struct vm **vm_list_by_cdrom(struct store *st, const char *disk_id)
{
  struct db_value p[] = { DBV_TEXT(disk_id) };
  return (struct vm **)store_select(st, STORE_TYPE(vm), "cdrom_disk_id = ?", p, 1, NULL, 1);
}

int64_t vm_count_by_placement_host(struct store *st, const char *host_id)
{
  struct db_value p[] = { DBV_TEXT(host_id) };
  return store_count_where(st, STORE_TYPE(vm), "placement_host_id = ?", p, 1);
}
