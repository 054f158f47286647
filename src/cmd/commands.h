/* commands.h: every state-changing operation of the engine.
 *
 * Each entry point fills a cmd_ctx and runs a cmd_def through cmd_run(), the
 * one dispatcher (engine.h): locks, validate, execute, compensate, audit.
 * Arguments are already well-formed (the API layer checked shapes and types);
 * commands check state and existence. All return 0 or -1 with the error
 * recorded; out ids are malloc'd for the caller. */
#pragma once
#include "cmd/engine.h"

/* VMs. in->name required; cluster/template ids resolved by the caller. */
int cmd_vm_add(struct engine *eng, const struct user *u, const struct vm *in, char **out_id);
/* changes the fields set in `in` (NULL strings / negative numbers mean unchanged) */
int cmd_vm_update(struct engine *eng, const struct user *u, const struct vm *in);
/* detach_only=false also removes the VM's own non-shareable disks */
int cmd_vm_remove(struct engine *eng, const struct user *u, const char *vm_id, bool detach_only);
int cmd_vm_start(struct engine *eng, const struct user *u, const char *vm_id);
int cmd_vm_stop(struct engine *eng, const struct user *u, const char *vm_id);
int cmd_vm_shutdown(struct engine *eng, const struct user *u, const char *vm_id);

/* disks; in->storage_domain_id resolved by the caller */
int cmd_disk_add(struct engine *eng, const struct user *u, const struct disk *in, char **out_id);
int cmd_disk_remove(struct engine *eng, const struct user *u, const char *disk_id);
/* alias/description (NULL: unchanged) and growing provisioned_size (<= 0: unchanged) */
int cmd_disk_update(struct engine *eng, const struct user *u, const char *disk_id, const char *alias,
                    const char *description, int64_t new_size);
/* moving between storage domains: refused while a snapshot of the disk is
 * attached to another VM; not implemented otherwise */
int cmd_disk_move(struct engine *eng, const struct user *u, const char *disk_id, const char *sd_id);

/* attachments; a->disk_id names an existing disk, or new_disk (not NULL) is created first */
int cmd_attach(struct engine *eng, const struct user *u, const struct attachment *a,
               const struct disk *new_disk, char **out_disk_id);
/* fields: active / bootable / iface / read_only; set_* says which are given */
struct attach_update {
  bool set_active, set_bootable, set_iface, set_read_only;
  bool active, bootable, read_only;
  int iface;
};
int cmd_attach_update(struct engine *eng, const struct user *u, const char *vm_id,
                      const char *disk_id, const struct attach_update *upd);
int cmd_detach(struct engine *eng, const struct user *u, const char *vm_id,
               const char *disk_id, bool detach_only);

/* storage domains: a data domain on a local directory */
int cmd_sd_add(struct engine *eng, const struct user *u, const char *name, const char *path,
               char **out_id);
int cmd_sd_remove(struct engine *eng, const struct user *u, const char *sd_id);

/* hosts: maintenance on/off */
int cmd_host_deactivate(struct engine *eng, const struct user *u, const char *host_id);
int cmd_host_activate(struct engine *eng, const struct user *u, const char *host_id);

/* external events (backup applications) */
int cmd_event_add(struct engine *eng, const struct user *u, struct event *ev);

/* the VM's configuration as OVF text (caller frees) */
char *vm_ovf(struct engine *eng, const struct vm *vm);
/* the path of a volume file on a storage domain */
char *volume_path_for(const struct storage_domain *sd, const char *disk_id, const char *vol_id);
/* the top volume of a disk's chain (NULL + error when none) */
struct volume *disk_active_volume(struct store *st, const char *disk_id);

/* snapshots (snapshot.c). create answers at once with the snapshot locked;
 * a background job creates the overlays, switches a running VM to them in
 * one atomic step and marks it ok. disk_ids (NULL-terminated, may be NULL)
 * limits it to some of the VM's own disks. */
int cmd_snapshot_create(struct engine *eng, const struct user *u, const char *vm_id,
                        const char *description, bool persist_memorystate,
                        const char *const *disk_ids, char **out_id);
/* removal merges each of the snapshot's volumes with its child (live block
 * commit, or qemu-img offline) in the background; the snapshot stays listed,
 * locked, until it is gone */
int cmd_snapshot_remove(struct engine *eng, const struct user *u, const char *vm_id,
                        const char *snap_id);
/* VM down: the VM runs from the snapshot's state next time; newer snapshots go */
int cmd_snapshot_restore(struct engine *eng, const struct user *u, const char *vm_id,
                         const char *snap_id);
/* the VM's active snapshot (caller frees) */
struct snapshot *vm_active_snapshot(struct store *st, const char *vm_id);
