/* vmbackup.h: oVirt's VM backup API as the snapback CLI uses it (the one
 * module that knows it): POST /vms/{vm}/backups (full, or incremental from a
 * checkpoint), its phases, its disks' backup_mode, finalize.
 * docs/backup-api.md describes the engine side. */
#pragma once
#include <stdbool.h>
#include "cli/client.h"

struct vm_backup {
  char *id;
  char *vm_id;
  char *phase;
  char *from_checkpoint;   /* NULL for a full backup */
  char *to_checkpoint;     /* the checkpoint this backup creates */
  char *snapshot_id;       /* hybrid backups: the snapshot it reads */
};
void vm_backup_clear(struct vm_backup *b);

/* Starts a backup of the VM's disks (disk_ids, n) and waits until it is
 * ready. description names the client (a later run finds it by it). from_checkpoint NULL asks for a full backup.
 * use_active asks for a live pull backup of a running VM's active layers
 * (?use_active=true; the engine takes a snapshot all the same for a VM
 * that is down, and an engine without the parameter ignores it). Fails with
 * ERR_UNSUPPORTED when the engine has no backup API (404 for the
 * collection), ERR_NOT_FOUND when it does not know from_checkpoint. A backup
 * that was created is finalized again on failure. */
int vm_backup_start(struct client *api, const char *vm_id, char **disk_ids, size_t n, const char *from_checkpoint,
                    bool use_active, const char *description, struct vm_backup *b) WARN_UNUSED;
/* ends a backup a dead client left running: cancels its open transfers,
 * finalizes it and waits until it has ended */
int vm_backup_end_stale(struct client *api, const char *vm_id, const char *backup_id) WARN_UNUSED;
/* the backup_mode the engine chose for a disk of the backup ("full" or
 * "incremental") and, for a full one, its backup_mode_reason (*reason, NULL
 * when none); caller frees both */
char *vm_backup_disk_mode(struct client *api, const struct vm_backup *b, const char *disk_id, char **reason);
/* finalizes and waits until succeeded (fails on failed, naming the phase) */
int vm_backup_finalize(struct client *api, struct vm_backup *b) WARN_UNUSED;
/* the same in two steps, for work in between while the engine finalizes:
 * asks for the finalize, then waits until succeeded */
int vm_backup_finalize_send(struct client *api, struct vm_backup *b) WARN_UNUSED;
int vm_backup_finalized(struct client *api, struct vm_backup *b) WARN_UNUSED;
/* finalizes without waiting for success; keeps the current error */
void vm_backup_abort(struct client *api, struct vm_backup *b);
