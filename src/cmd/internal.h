/* internal.h: what the cmd/ files share and nobody else sees */
#pragma once
#include <pthread.h>
#include "cmd/commands.h"
#include "cmd/engine.h"

struct lock_entry { char *id; const char *cmd; char *user; };

struct engine {
  char *state_dir, *db_url, *libvirt_uri;
  int domain_type, detach_timeout_ms;
  struct store *st;
  /* the one local host today; an array of these later */
  char *host_id;
  struct hyper *hyper;
  const struct hyper_ops *hyper_ops;
  pthread_mutex_t hyper_mu;     /* guards (re)connecting */
  /* object locks held by running commands */
  pthread_mutex_t lock_mu;
  struct lock_entry *locks;
  size_t nlocks, cap_locks;
  /* background jobs (snapshot create/remove) still running */
  pthread_mutex_t bg_mu;
  pthread_cond_t bg_cv;
  int bg_running;
};

/* transient.c: overlays of disk-snapshot attachments */
struct volume *snapshot_volume_of(struct store *st, const char *disk_id, const char *snap_id);
/* a fresh overlay above the snapshot volume of at (disk_id, snapshot_id) */
int transient_overlay_create(struct engine *eng, const struct attachment *at, int64_t size,
                             char **out_path);
/* deletes it, retrying; a failure is an event, never only a log line */
void transient_overlay_remove(struct engine *eng, const char *vm_id, const char *path);
void transient_sweep(struct engine *eng);

/* snapshot.c: finishes or undoes snapshot operations a crash interrupted */
void snapshot_recover(struct engine *eng);
/* storage.c-like sweep: volume files no row names are removed and reported */
void engine_sweep_orphans(struct engine *eng);

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
};
