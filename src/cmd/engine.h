/* engine.h: the engine context and the one command dispatcher.
 *
 * struct engine is passed explicitly (no global): the HTTP layer gets it as
 * libmicrohttpd's closure, the API layer as an argument.
 *
 * Every state-changing operation is a command run through cmd_run(): it
 * knows the acting user (roles and per-object permissions will be enforced
 * there, in one place), takes the object locks the command declares (a
 * conflicting command answers ERR_CONFLICT naming the holder), runs
 * validate -> execute -> (compensate on failure), and records an audit event
 * with the user, the VM and the outcome. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "store/store.h"
#include "hyper/hyper.h"

struct engine_options {
  const char *state_dir;       /* absolute */
  const char *db_url;          /* store URL */
  const char *libvirt_uri;     /* the local host's URI */
  int domain_type;             /* enum domain_type */
  int detach_timeout_ms;
  const char *const *allow_paths; /* --allow-path roots, NULL-terminated; may be NULL */
  int event_retention_days;    /* events older than this are pruned; 0: 30 */
  const char *console_listen;  /* where VMs' VNC consoles listen (an IP address) */
  int nbd_port_min, nbd_port_max; /* TCP ports of backups' NBD servers on other hosts; 0: 10809-10909 */
};

struct engine;

/* opens the store, first-start set-up (admin user, Default DC/cluster, Blank,
 * storage domain 'data', host 'localhost'), connects the host and reconciles
 * the store with the domains libvirt runs. admin_password may be NULL: then
 * one is generated and printed once. */
struct engine *engine_open(const struct engine_options *opts, const char *admin_password);
void engine_close(struct engine *eng);
struct store *engine_store(struct engine *eng);
const char *engine_state_dir(struct engine *eng);
/* cached sizes, measured off the request path (sizecache.c): true with the
 * value when known; false (nothing set) until the first measurement */
bool engine_file_size(struct engine *eng, const char *path, int64_t *allocated);
bool engine_fs_space(struct engine *eng, const char *path, int64_t *available, int64_t *used);
/* the hyper connection of host HOST_ID (NULL: the default host); NULL + error when down */
struct hyper *engine_hyper(struct engine *eng, const char *host_id, const struct hyper_ops **ops);

/* ---- the dispatcher ---- */

#define CMD_MAX_LOCKS 8
#define CMD_MAX_NEEDS 4

/* a permission a command needs on an object it names (cmd/perm.h: permit
 * ids and enum perm_object); cmd_run checks every one before anything else */
struct cmd_need { int permit, obj; const char *id; };

struct cmd_ctx {
  struct engine *eng;
  const struct user *user;       /* acting user */
  const char *vm_id;             /* the VM the audit event names, or NULL */
  const char *locks[CMD_MAX_LOCKS]; /* object ids to hold exclusively; NULL-terminated */
  void *data;                    /* the command's own arguments and results */
  struct cmd_need needs[CMD_MAX_NEEDS]; /* the objects the command names beyond the
                                    route's own (body references); id NULL ends */
  bool keep_locks;               /* set by execute: the locks pass to a background
                                    job, which drops them with engine_unlock() */
};

struct cmd_def {
  const char *name;              /* "AddVm", "HotPlugDisk" ... (audit and lock holder) */
  int64_t event_code;            /* audit event code on success */
  /* checks arguments and state without changing anything */
  int (*validate)(struct cmd_ctx *c);
  /* does the work; on failure it must leave nothing changed, or... */
  int (*execute)(struct cmd_ctx *c);
  /* ...undo what execute did outside the store (files, devices); may be NULL */
  void (*compensate)(struct cmd_ctx *c);
  /* audit text on success/failure; may use c->data; returns malloc'd string */
  char *(*describe)(struct cmd_ctx *c, bool ok);
};

/* runs a command; 0 or -1 with the command's error (the audit event is recorded either way) */
int cmd_run(const struct cmd_def *def, struct cmd_ctx *c);

/* drops locks a command handed to its background job (keep_locks) */
void engine_unlock(struct engine *eng, const char *const *ids);
/* runs fn(eng, arg) on a background thread; engine_close() waits for it */
void engine_background(struct engine *eng, void (*fn)(struct engine *eng, void *arg), void *arg);

/* a job of its own for background work whose progress clients follow (a
 * snapshot's merge): started with DESC for the user and VM, moved on with
 * engine_job_progress (0..100), ended with engine_job_finish. The id is the
 * caller's (NULL when the store refused it: the work goes on unrecorded);
 * none of these change the thread's error. */
char *engine_job_start(struct engine *eng, const struct user *u, const char *vm_id, const char *desc);
void engine_job_progress(struct engine *eng, const char *job_id, int64_t pct);
void engine_job_finish(struct engine *eng, const char *job_id, bool ok);

/* writes the engine's gauges (jobs and transfers in progress, the store's
 * size, each host's libvirt connection) in Prometheus text format; -1 +
 * error when the store fails (cmd/core/metrics.c) */
int engine_metrics_render(struct engine *eng, struct buf *out);

/* records an audit event (never fails the caller: store errors are logged) */
void engine_event(struct engine *eng, int severity, int64_t code, const struct user *user,
                  const char *vm_id, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
