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
/* migrate.c: live migration of running VM VM_ID to HOST_ID, or with
 * HOST_ID NULL to the up host of its cluster with the most free memory;
 * refused with ERR_CONFLICT naming the rule (a plugged disk snapshot, a
 * running backup, a VM not running, no other host) */
int cmd_vm_migrate(struct engine *eng, const struct user *u, const char *vm_id, const char *host_id);

/* disks; in->storage_domain_id resolved by the caller */
int cmd_disk_add(struct engine *eng, const struct user *u, const struct disk *in, char **out_id);
int cmd_disk_remove(struct engine *eng, const struct user *u, const char *disk_id);
/* alias/description (NULL: unchanged), growing provisioned_size (<= 0: unchanged)
 * and backup (enum disk_backup; -1: unchanged) */
int cmd_disk_update(struct engine *eng, const struct user *u, const char *disk_id, const char *alias,
                    const char *description, int64_t new_size, int backup);
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
/* oVirt 3's DELETE /vms/{vm}/disks/{disk}: detach_only (or a disk snapshot of
 * another VM) only detaches it from vm_id; otherwise the disk is detached from
 * every VM and removed from the whole setup */
int cmd_vm_disk_remove_v3(struct engine *eng, const struct user *u, const char *vm_id, const char *disk_id,
                          bool detach_only);

/* storage domains: a data domain on a local directory */
int cmd_sd_add(struct engine *eng, const struct user *u, const char *name, const char *path,
               char **out_id);
int cmd_sd_remove(struct engine *eng, const struct user *u, const char *sd_id);

/* hosts: maintenance on/off */
int cmd_host_deactivate(struct engine *eng, const struct user *u, const char *host_id);
int cmd_host_activate(struct engine *eng, const struct user *u, const char *host_id);
/* hosts (host/host.c): adds H (name, address, optional libvirt_uri and
 * cluster_id; H gets its id, URI and status); removes one no VM runs on */
int cmd_host_add(struct engine *eng, const struct user *u, struct host *h);
int cmd_host_remove(struct engine *eng, const struct user *u, const char *host_id);


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

/* OVA (export.c). Export writes the VM's own disks and its OVF as
 * DIRECTORY/FILENAME on host HOST_ID: a down VM from its active volumes, a
 * running one from a temporary snapshot removed afterwards. It answers at
 * once; a background job (*out_job_id, with progress) writes FILENAME.part
 * and renames it when complete. Disk-snapshot attachments are left out. */
int cmd_vm_export_ova(struct engine *eng, const struct user *u, const char *vm_id, const char *host_id,
                      const char *directory, const char *filename, char **out_job_id);
/* Import checks the OVA at PATH at once (400 for a damaged one, 409 for a
 * name in use), then creates the VM in the background with new disk and
 * volume ids on storage domain sd_id; the VM row appears only when every
 * disk is copied. name NULL takes the OVF's. *out_vm_id is the id the VM
 * will have. */
int cmd_vm_import_ova(struct engine *eng, const struct user *u, const char *path, const char *name,
                      const char *cluster_id, const char *sd_id, char **out_vm_id, char **out_job_id);

/* templates (template.c): a copy of a down VM's own disks */
int cmd_template_add(struct engine *eng, const struct user *u, const char *name, const char *description,
                     const char *vm_id, char **out_id);
/* refused (409) while a VM was made from it */
int cmd_template_remove(struct engine *eng, const struct user *u, const char *template_id);
/* cmd_vm_add, giving the VM one disk per disk of its template: a qcow2
 * overlay on the template's volume, or with clone a full copy */
int cmd_vm_add_from_template(struct engine *eng, const struct user *u, const struct vm *in, bool clone,
                             char **out_id);

/* image transfers (transfer.c): a volume exported over NBD by qemu-nbd
 * (transfer_url) and over HTTP at /images/TICKET (proxy_url, http/imageio.c).
 * Download: a disk snapshot's volume (the chain up to it), or the active
 * volume of a disk no running VM uses. Upload: into a disk's active volume,
 * the disk not in use by a running VM. Only format raw (guest bytes). */
struct transfer_spec {
  int direction;                /* enum transfer_direction */
  int format;                   /* enum disk_format */
  const char *disk_id;          /* <disk id>, or NULL */
  const char *volume_id;        /* <snapshot id>: a disk snapshot (volume) id, or NULL */
  int64_t inactivity_timeout;   /* seconds; <= 0: 60 */
  const struct transfer_source *source; /* set by a command that chose the data (a backup) */
};
/* Where a download's data comes from when another command chose it (a VM
 * backup): the one way the backup engine opens a transfer. Exactly one of:
 *   - volume_id: a volume of the disk, served by a qemu-nbd of the transfer's
 *     own (its chain up to it, as qcow2 or raw per the volume);
 *   - path + format: a file that is no volume of the store (a scratch or
 *     temporary image), served the same way;
 *   - socket_path (+ export_name): an NBD server that already runs, such as
 *     the one of libvirt's pull backup job; the transfer neither starts nor
 *     stops it, and dirty_context names its bitmap's meta context;
 *   - nbd_server (+ export_name): the same on TCP, "nbd://ADDR:PORT" or, with
 *     TLS, "nbds://ADDR:PORT" (libvirt's backup job on another host).
 * bitmap: a persistent bitmap of the served file to expose as the meta
 * context qemu:dirty-bitmap:BITMAP (qemu-nbd --bitmap); the transfer then
 * answers extents?context=dirty. Without a bitmap or dirty_context it
 * answers 404 there, as imageio does for a full backup.
 * The disk is neither checked for use nor locked: the caller holds what it
 * needs (a backup's snapshot or libvirt's job keep the data stable). */
struct transfer_source {
  const char *volume_id;
  const char *path;
  int format;                   /* enum disk_format of path */
  const char *bitmap;
  const char *socket_path, *export_name, *dirty_context;
  const char *nbd_server;
};
/* answers with the export ready (phase transferring) */
int cmd_transfer_create(struct engine *eng, const struct user *u, const struct transfer_spec *spec,
                        char **out_id);
/* stops the export (an upload is flushed first): finished_success, the disk unlocked */
int cmd_transfer_finalize(struct engine *eng, const struct user *u, const char *id);
/* stops the export: cancelled, the disk unlocked */
int cmd_transfer_cancel(struct engine *eng, const struct user *u, const char *id);
/* the transfer in progress with TICKET (caller frees); ERR_NOT_FOUND otherwise */
struct image_transfer *transfer_by_ticket(struct engine *eng, const char *ticket);
/* the NBD URL of t's export, nbd+unix:///EXPORT?socket=PATH for clients
 * on the engine's host, or NBD_SERVER/EXPORT for a server on TCP; caller frees */
char *transfer_nbd_url(const struct image_transfer *t);
struct nbd_handle;
/* connects libnbd handle H (created, not yet connected) to t's export,
 * over its unix socket or to its TCP server (TLS when nbds://; libnbd's
 * certificates, /etc/pki/libnbd for root); -1 with libnbd's error
 * (nbd_get_error), nothing recorded: the caller says what failed */
int transfer_nbd_connect(const struct image_transfer *t, struct nbd_handle *h);
/* the clear ticket of open transfer ID (caller frees), or NULL when it is not
 * open in this engine; the store keeps only its digest (ticket.c) */
char *transfer_ticket(struct engine *eng, const char *transfer_id);
/* a client used transfer ID: its idle clock restarts, BYTES more were moved */
void transfer_touch(struct engine *eng, const char *id, int64_t bytes);
/* ERR_CONFLICT "cannot WHAT 'NAME': an image transfer is in progress ..."
 * when one is, on disk_id / on the disks VM vm_id owns (active_only: only
 * transfers of active volumes, which the VM itself would open) */
int transfer_check_disk(struct store *st, const char *disk_id, const char *what, const char *name);
int transfer_check_vm(struct store *st, const char *vm_id, bool active_only, const char *what,
                      const char *name);

/* VM backups (backup.c): oVirt's hybrid backup. start answers at once
 * (phase initializing); a background job takes a snapshot whose new
 * overlays start the bitmaps of the backup's checkpoint, chooses each
 * disk's mode and reaches ready. Clients read each disk through an image
 * transfer naming the backup; finalize removes the snapshot and makes the
 * checkpoint. */
struct backup_spec {
  const char *vm_id;
  const char *id;                    /* wanted id, or NULL */
  const char *const *disk_ids;       /* NULL-terminated, at least one */
  const char *from_checkpoint_id;    /* NULL: full */
  const char *description;
  bool require_consistency, use_active;
};
int cmd_backup_start(struct engine *eng, const struct user *u, const struct backup_spec *spec,
                     char **out_id);
int cmd_backup_finalize(struct engine *eng, const struct user *u, const char *vm_id,
                        const char *backup_id);
/* POST /imagetransfers with <backup id> and <disk id>: a download of that
 * disk of backup backup_id (phase ready) from the source the backup chose
 * (transfer_spec.source): the snapshot's frozen volume, a scratch overlay
 * whose bitmap holds the changed blocks, or libvirt's NBD export */
int cmd_backup_transfer(struct engine *eng, const struct user *u, const char *backup_id,
                        const struct transfer_spec *spec, char **out_id);
/* ERR_CONFLICT "cannot WHAT 'NAME': backup '...' of the VM is PHASE ..." while one runs */
int backup_check_vm(struct store *st, const char *vm_id, const char *what, const char *name);
/* checkpoints (checkpoint.c): only the root of the chain can be removed */
int cmd_checkpoint_remove(struct engine *eng, const struct user *u, const char *vm_id,
                          const char *checkpoint_id);
