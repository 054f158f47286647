/* internal.h: what the cmd/ files share and nobody else sees */
#pragma once
#include <pthread.h>
#include "cmd/commands.h"
#include "cmd/engine.h"
#include "util/uuid.h"
#include "util/vec.h"

struct lock_entry { char *id; const char *cmd; char *user; };
/* ticket.c: the clear ticket of an open image transfer (the store has its digest) */
struct ticket_entry { char id[UUID_STRLEN + 1]; char *ticket; };
DEFINE_VEC(ticket_vec, struct ticket_entry);

struct engine {
  char *state_dir, *db_url, *libvirt_uri;
  int domain_type, detach_timeout_ms;
  char *console_listen;
  struct store *st;
  char *host_id;               /* the local host (--libvirt-uri), made at first start */
  /* host/host.c: one libvirt connection per host, opened on first use */
  struct host_conn **conns;
  size_t nconns;
  const struct hyper_ops *hyper_ops;
  pthread_mutex_t hyper_mu;     /* guards conns and (re)connecting */
  /* object locks held by running commands */
  pthread_mutex_t lock_mu;
  struct lock_entry *locks;
  size_t nlocks, cap_locks;
  /* background jobs (snapshot create/remove) still running */
  pthread_mutex_t bg_mu;
  pthread_cond_t bg_cv;
  int bg_running;
  /* ticket.c: clear tickets of open image transfers, in memory only */
  pthread_mutex_t tickets_mu;
  struct ticket_vec tickets;
  /* hostpath.c: the resolved state directory and --allow-path roots */
  struct strvec allow_roots;
  /* transfer.c: cancels idle image transfers; NULL when not running */
  struct transfer_reaper *transfer_reaper;
  /* perm.c: users' grants and objects' parents, valid for one store generation */
  struct perm_cache *perm_cache;
  int state_lock_fd;            /* statelock.c: the flock on the state directory */
  int event_retention_days;     /* housekeeping.c prunes older events */
  int nbd_port_min, nbd_port_max; /* backup.c: libvirt's NBD servers on other hosts */
  struct housekeeping *housekeeping; /* housekeeping.c: NULL when not running */
  struct size_cache *sizes;     /* sizecache.c */
  bool reconcile_needed;        /* atomic: a host reconnected; housekeeping reconciles */
  int64_t retry_until_ms;       /* atomic: a connection closed; housekeeping pings every second until then */
};

/* hostpath.c: PATH resolved by realpath() (caller frees) when it lies under
 * the state directory or an --allow-path root; otherwise NULL with
 * ERR_FORBIDDEN naming --allow-path (the same whether the file exists or
 * not), or ERR_INVALID when not absolute or missing under a root. WHAT names
 * it in messages ("OVA directory"). */
char *host_path_resolve(struct engine *eng, const char *path, const char *what);
/* hostpath.c: resolves the state directory and ALLOW_PATHS (NULL-terminated)
 * into eng->allow_roots; ERR_INVALID naming --allow-path when one is missing */
int host_paths_init(struct engine *eng, const char *const *allow_paths);

/* ticket.c: keeps TICKET of transfer TRANSFER_ID in memory while it is open */
void transfer_ticket_remember(struct engine *eng, const char *transfer_id, const char *ticket);
void transfer_tickets_free(struct engine *eng);
/* ticket.c: at start, replaces tickets an older version stored in the clear by their digest */
void transfer_tickets_hash_legacy(struct engine *eng);
/* engine.c: store vs. libvirt, at start and after a host reconnect */
void engine_reconcile(struct engine *eng, bool at_start);
/* host/host.c: the callbacks every host connection reports through */
extern const struct hyper_callbacks engine_callbacks;
/* host/host.c: pings every host; one that stops answering becomes
 * non_responsive (an event) and its VMs unknown, one that answers again is
 * up and reconciled. Housekeeping calls it periodically; true when every
 * host answered. */
bool hosts_watch(struct engine *eng);
/* host/host.c: closes every host connection (engine_close) */
void hosts_close(struct engine *eng);
/* host/host.c: the libvirt URI of host row H (its libvirt_uri, else its address) */
const char *host_uri(const struct host *h);
/* host/host.c: the up host of CLUSTER_ID with the most free memory, other than
 * EXCEPT (may be NULL); its id (caller frees), or NULL with ERR_CONFLICT
 * "there is no host up in cluster ..." (WHAT prefixes it) */
char *host_pick(struct engine *eng, const char *cluster_id, const char *except);
/* host/host.c: ERR_CONFLICT with the seed's message when a VM running on HOST
 * holds a plugged disk snapshot (it cannot migrate: no maintenance) */
int host_check_no_pinned(struct engine *eng, const struct host *host);
/* vm/migrate.c: live-migrates every VM running on HOST_ID to other hosts of its
 * cluster (maintenance); the first failure stops it with its error */
int host_evacuate(struct engine *eng, const struct user *u, const char *host_id);

/* housekeeping.c: the periodic thread (event pruning, size refresh) */
void housekeeping_start(struct engine *eng);
void housekeeping_stop(struct engine *eng);
void housekeeping_wake(struct engine *eng);
void engine_prune_events(struct engine *eng);
/* sizecache.c: measured by housekeeping, read by renders */
void size_cache_init(struct engine *eng);
void size_cache_refresh(struct engine *eng);
void size_cache_free(struct engine *eng);

/* statelock.c: takes the exclusive lock on STATE_DIR (one engine per store);
 * its descriptor, or -1 with ERR_CONFLICT naming the running engine's pid */
int engine_state_lock(const char *state_dir);
void engine_state_unlock(int fd);
/* children.c: stops qemu-img/qemu-nbd processes a dead engine left running */
void engine_sweep_children(struct engine *eng);

/* metrics.c: observes snapback_WHAT_duration_seconds{operation,outcome} for
 * an operation that started at STARTED_MONO_MS (mono_ms()); WHAT is
 * "snapshot", "backup"... */
void engine_observe_operation(const char *what, const char *operation, bool ok, int64_t started_mono_ms);

/* perm.c: the cache above (thread-safe) */
struct perm_cache *perm_cache_new(void);
void perm_cache_free(struct perm_cache *pc);

/* disk.c: within the caller's transaction, deletes a disk's volume rows and
 * its row; the volume files are pushed onto files, to go after the commit */
int disk_rows_delete(struct store *st, const char *disk_id, struct strvec *files);
/* disk.c: deletes volume files after their rows are gone (a failure is an
 * event; the orphan sweep retries at start), and emptied image directories */
void volume_files_remove(struct engine *eng, const struct user *u, const struct strvec *files);
/* disk.c: removes disks for good. In one transaction: each disk of
 * DISK_IDS (NULL-terminated) with every attachment of it, its volume rows
 * and its row, then OWNER_DELETE(st, OWNER_ID) when given (template_delete:
 * the template they belonged to); after the commit, their volume files
 * (volume_files_remove). -1 with nothing changed. */
int disks_remove(struct engine *eng, const struct user *u, const char *const *disk_ids,
                 int (*owner_delete)(struct store *st, const char *id), const char *owner_id);

/* transient.c: overlays of disk-snapshot attachments */
struct volume *snapshot_volume_of(struct store *st, const char *disk_id, const char *snap_id);
/* a fresh overlay above the snapshot volume of at (disk_id, snapshot_id) */
int transient_overlay_create(struct engine *eng, const struct attachment *at, int64_t size,
                             char **out_path);
/* deletes it, retrying; a failure is an event, never only a log line */
void transient_overlay_remove(struct engine *eng, const char *vm_id, const char *path);
void transient_sweep(struct engine *eng);
void engine_sweep_dir(struct engine *eng, const char *root,
                      bool (*owned)(struct engine *eng, const char *path), const char *why);

/* snapshot.c: finishes or undoes snapshot operations a crash interrupted */
void snapshot_recover(struct engine *eng);
/* storage.c-like sweep: volume files no row names are removed and reported */
void engine_sweep_orphans(struct engine *eng);

/* transfer.c: cancels the image transfers a crash left open (kills their
 * qemu-nbd); the reaper cancels idle ones, and at stop every open one */
void transfer_recover(struct engine *eng);
void transfer_reaper_start(struct engine *eng);
void transfer_reaper_stop(struct engine *eng);
/* another host's local directory for snapback's files (transient overlays,
 * backup scratch files): under libvirt's own state directory there, never
 * on a storage domain; REMOTE_ROOT/HOST_ID/... says which host holds them */
#define REMOTE_ROOT "/var/lib/libvirt/snapback"

/* tcpclients.c: ADDR (caller frees; an IPv6 address without brackets) and
 * PORT of NBD server "nbd://ADDR:PORT" (or nbds://) */
int nbd_server_split(const char *server, char **addr, int *port);
/* tcpclients.c: this machine's established connections to that server */
int nbd_tcp_clients(const char *server);

/* lock.c: take every id in ids (NULL-terminated) or none; ERR_CONFLICT names the holder */
int locks_acquire(struct engine *eng, const char *const *ids, const char *cmd, const struct user *u);
void locks_release(struct engine *eng, const char *const *ids);

/* engine.c */
void engine_on_lifecycle(void *opaque, const char *vm_id, int status, const char *reason);
/* marks every attachment of vm unplugged and drops transient overlays */
void engine_vm_went_down(struct engine *eng, const char *vm_id);
/* builds the hyper_disk array of a VM's plugged-at-start attachments */
int vm_start_disks(struct engine *eng, const char *vm_id, struct hyper_disk **out, size_t *n,
                   struct strvec *paths);

/* event codes (oVirt's AuditLogType numbers where one fits) */
enum {
  EV_VM_ADDED = 34, EV_VM_REMOVED = 113, EV_VM_UPDATED = 35, EV_VM_STARTED = 153,
  EV_VM_STOPPED = 33, EV_VM_SHUTDOWN = 73, EV_VM_DOWN = 61, EV_VM_START_FAILED = 119,
  EV_DISK_ADDED = 2021, EV_DISK_REMOVED = 2014, EV_DISK_ATTACHED = 2016,
  EV_DISK_DETACHED = 2018, EV_DISK_PLUGGED = 2000, EV_DISK_UNPLUGGED = 2002,
  EV_HOST_MAINTENANCE = 17, EV_HOST_ACTIVATED = 16, EV_SD_ADDED = 956,
  EV_SNAPSHOT_CREATED = 68, EV_SNAPSHOT_FAILED = 69, EV_SNAPSHOT_REMOVED = 342,
  EV_SNAPSHOT_REMOVE_FAILED = 357, EV_SNAPSHOT_RESTORED = 44, EV_ORPHAN_REMOVED = 10001,
  EV_COMMAND_FAILED = 9999, EV_EXTERNAL = 12000, EV_ENGINE_STARTED = 1, EV_RECONCILED = 2,
  EV_TRANSFER_STARTED = 1031, EV_TRANSFER_SUCCEEDED = 1032, EV_TRANSFER_CANCELLED = 1033,
  EV_TRANSFER_FAILED = 1034, EV_CONSOLE_TICKET = 1138,
  EV_NIC_ADDED = 932, EV_NIC_UPDATED = 933, EV_NIC_REMOVED = 934, EV_NETWORK_ADDED = 942,
  EV_HOST_NON_RESPONSIVE = 12, EV_HOST_ADDED = 42, EV_HOST_REMOVED = 10042, EV_VM_MIGRATED = 63,
};

/* export.c: at start, removes what a stop interrupted: partial OVA files,
 * temporary export snapshots; an interrupted import left only volume files
 * without rows, which engine_sweep_orphans() removes */
void ova_recover(struct engine *eng);
/* the VM's disk-snapshot attachments (other VMs' disks attached for backup)
 * as text for events and job descriptions, or NULL when it has none */
char *snapshot_attachments_text(struct store *st, const char *vm_id);
struct user *user_dup(const struct user *u);

/* template.c: the disks a new VM gets from its template. prepare creates
 * the files (nothing for Blank or a template without disks: *out NULL);
 * insert adds their rows inside the caller's transaction and fails when
 * the template is gone; free removes the files too when asked (failure). */
struct template_disks;
int template_disks_prepare(struct engine *eng, const char *template_id, bool clone,
                           struct template_disks **out);
int template_disks_insert(struct store *st, const struct template_disks *td, const char *vm_id,
                          const char *active_snapshot_id);
void template_disks_free(struct template_disks *td, bool remove_files);

enum {
  EV_VM_EXPORTED = 1223, EV_VM_EXPORT_FAILED = 1225, EV_VM_IMPORTED = 1153,
  EV_VM_IMPORT_FAILED = 1154, EV_TEMPLATE_ADDED = 48, EV_TEMPLATE_REMOVED = 52,
};

/* snapshot.c, for backups: a snapshot with id snap_id (chosen by the
 * caller, recorded for recovery first) taken now, in the caller's thread.
 * Its new overlays of bitmap_disks get the empty persistent bitmap BITMAP
 * before the VM switches to them, so it records every write after the
 * snapshot. require_quiesce fails it when the guest agent cannot freeze
 * the file systems. 0, or -1 with the error (the VM as before). */
int snapshot_create_for_backup(struct engine *eng, const struct user *u, const char *vm_id,
                               const char *snap_id, const char *description,
                               const char *const *disk_ids, const char *bitmap,
                               const char *const *bitmap_disks, bool require_quiesce);
/* removes (merges) the backup's snapshot in the caller's thread, past the
 * rule that refuses snapshot removal during a backup */
int snapshot_remove_for_backup(struct engine *eng, const struct user *u, const char *vm_id,
                               const char *snap_id);

/* checkpoint.c: the persistent bitmaps of a VM's checkpoints in its volumes.
 * Each bitmap is named after its checkpoint id and lives in every layer of
 * a disk's chain from the one that was active when the checkpoint was made.
 * A running QEMU (libvirt 9.0) carries them over to a snapshot's overlay
 * and merges them in live commits; offline, these functions do it. A
 * failure never fails the caller: the VM's checkpoints are invalidated with
 * an event saying why. */
/* adds to OVERLAY_PATH every checkpoint bitmap of BASE (a new top layer) */
void checkpoint_bitmaps_propagate(struct engine *eng, const char *vm_id, const struct volume *base,
                                  const char *overlay_path);
/* after `qemu-img commit` of TOP into BASE: BASE's bitmaps take TOP's bits */
void checkpoint_bitmaps_merge(struct engine *eng, const char *vm_id, const char *top_path,
                              const char *base_path);
/* marks the VM's checkpoints made at or after since_ms invalid (0: all),
 * with one event: "<why> '<what>'" */
void checkpoint_invalidate_since(struct engine *eng, const char *vm_id, int64_t since_ms,
                                 const char *why, const char *what);
/* the bitmap of checkpoint CP was found missing or not saved cleanly (WHY):
 * CP and every later checkpoint of its VM are marked invalid, with one
 * event; a running backup's pending checkpoint is kept */
void checkpoint_invalidate_lost(struct engine *eng, const struct checkpoint *cp, const char *why);

/* backup.c */
/* at start: every backup a stop interrupted ends failed, with its snapshot
 * removed, its scratch files deleted and its pending checkpoint dropped; a
 * down VM's checkpoint whose bitmap is lost invalidates the chain from it */
void backup_recover(struct engine *eng);
/* " (backup B of VM NAME)" when transfer t reads a backup of its VM that has not
 * ended, so its events name both; else an empty string (caller frees) */
char *backup_transfer_note(struct store *st, const struct image_transfer *t);

enum {
  EV_BACKUP_STARTED = 10790, EV_BACKUP_READY = 10791, EV_BACKUP_FINALIZED = 10792,
  EV_BACKUP_SUCCEEDED = 10793, EV_BACKUP_FAILED = 10794, EV_BACKUP_FALLBACK = 10795,
  EV_CHECKPOINT_INVALID = 10796, EV_CHECKPOINT_REMOVED = 10797,
};
