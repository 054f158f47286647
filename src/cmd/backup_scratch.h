/* backup_scratch.h: where a backup's scratch files and libvirt's NBD
 * socket live, and their removal (cmd/backup/scratch.c). A backup of the
 * engine's host keeps STATE/backups/ID/ (scratch overlays of the hybrid
 * mode, libvirt's socket) and, for use_active, its scratch files in
 * STATE/transient/VM_ID/ beside the transient overlays; on another host,
 * its scratch files are in that host's local directory. */
#ifndef SNAPBACK_CMD_BACKUP_SCRATCH_H
#define SNAPBACK_CMD_BACKUP_SCRATCH_H

#include "cmd/engine.h"
#include "store/store.h"
#include <stdbool.h>

/* STATE/backups/BACKUP_ID (caller frees) */
char *backup_dir(struct engine *eng, const char *backup_id);
/* STATE/backups/BACKUP_ID/nbd.sock: libvirt's NBD server of a use_active backup */
char *backup_socket(struct engine *eng, const char *backup_id);
/* STATE/transient/VM_ID/backup-BACKUP_ID-DISK_ID.qcow2: a use_active
 * backup's scratch file on the engine's host */
char *backup_scratch_path(struct engine *eng, const char *vm_id, const char *backup_id, const char *disk_id);

/* a use_active backup of a VM on another host than the engine's: its
 * scratch files and libvirt's NBD server are on that host (b->host_id) */
bool backup_on_remote(struct engine *eng, const struct backup *b);
/* that host's local directory for them: REMOTE_ROOT/HOST_ID/scratch, files
 * BACKUP_ID-DISK_ID.qcow2 */
char *remote_scratch_dir(const char *host_id);

/* Deletes, through host host_id's libvirt, the scratch files of backup
 * backup_id there; with backup_id NULL every file there that no running
 * backup owns, each reported as an event (the sweep at start). libvirt
 * deletes the files it made when its job ends: this removes what a job
 * that never ended (the engine or the VM gone meanwhile) left. A host that
 * does not answer keeps them until the next engine start. */
void remote_scratch_remove(struct engine *eng, const char *host_id, const char *backup_id);
/* removes STATE/backups/ID (scratch overlays, libvirt's socket) and the
 * scratch files of a use_active backup: in STATE/transient/VM_ID/ on the
 * engine's host, in the VM host's local directory on another */
void backup_scratch_remove(struct engine *eng, const char *backup_id);

#endif
