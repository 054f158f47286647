/* snapshot.h: what snapshot/snapshot.c (create, restore, recovery) and
 * snapshot/remove.c (removal: live and offline merges) share; private to cmd/ */
#pragma once
#include "cmd/internal.h"

/* a removal in flight; restore reuses it for its arguments */
struct snap_remove {
  char *vm_id, *snap_id;
  struct vm *vm;
  struct snapshot *snap;
  struct user *user;
  bool for_backup;               /* the backup that made it removes it at finalize */
};

/* ---- snapshot.c ---- */

/* a snapshot operation already running on the VM answers 409 */
int no_snapshot_in_progress(struct store *st, const struct vm *vm);
/* no snapshot of this VM's disks may be attached to another VM (Backup API);
 * 409 naming them, WHAT says what was refused ("remove snapshots of") */
int no_snapshot_attached_elsewhere(struct store *st, const struct vm *vm, const char *what);
/* snapshot SNAP_ID when it belongs to VM (404 otherwise); caller frees *OUT */
int snapshot_of_vm(struct store *st, const struct vm *vm, const char *snap_id, struct snapshot **out);
/* the volumes a snapshot owns */
struct volume **snapshot_volumes(struct store *st, const char *snap_id);
/* a copy of U (id and name) a background job keeps; user_free */
struct user *user_copy(const struct user *u);

/* ---- remove.c ---- */

/* frees A and what it holds; NULL members are fine */
void snap_remove_free(struct snap_remove *a);
/* merges the snapshot's volumes, deletes it and unlocks the VM; takes A */
void snap_remove_job(struct engine *eng, void *arg);
/* the job that follows the removal of snapshot SNAP_DESC of VM VM_NAME: the
 * one an engine that died mid-merge left started, else a new one when
 * CREATE; NULL if none. Caller frees. */
char *snap_removal_job(struct engine *eng, const struct user *u, const char *vm_id, const char *vm_name,
                       const char *snap_desc, bool create);
