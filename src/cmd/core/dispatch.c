/* dispatch.c: the one command dispatcher.
 *
 * Every command passes here with its acting user: the permissions on the
 * objects it names (cmd_ctx.needs, cmd/perm.h) are checked here, once, for
 * all commands. Shape: permissions -> lock -> validate -> execute ->
 * (compensate on failure) -> job + audit event -> unlock. The command's error survives the bookkeeping unchanged. */
#include "cmd/internal.h"
#include "cmd/perm.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <stdarg.h>

void engine_event(struct engine *eng, int severity, int64_t code, const struct user *user,
                  const char *vm_id, const char *fmt, ...)
{
  struct err_saved saved;
  error_save(&saved);
  struct buf b = BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&b, fmt, ap);
  va_end(ap);
  AUTOFREE char *desc = buf_detach(&b);
  struct event ev = {
    .time_ms = now_ms(), .severity = severity, .code = code, .description = desc,
    .origin = (char *)"oVirt", .custom_id = -1,
    .user_id = user ? user->id : NULL, .user_name = user ? user->name : NULL,
    .vm_id = (char *)vm_id,
  };
  if (event_insert(eng->st, &ev) < 0)
    log_err("cannot record event '%s': %s", desc, error_message());
  if (saved.code != ERR_NONE) error_restore(&saved);
  else { free(saved.msg); error_clear(); }
}

static void job_begin(struct engine *eng, struct job *job, const char *desc, const struct user *u,
                      const char *vm_id)
{
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return;
  job->id = xstrdup(id);
  job->description = xstrdup(desc);
  job->status = JOB_STARTED;
  job->start_ms = now_ms();
  job->user_id = u ? xstrdup(u->id) : NULL;
  job->vm_id = vm_id ? xstrdup(vm_id) : NULL;
  if (job_insert(eng->st, job) < 0) {
    log_err("cannot record job '%s': %s", desc, error_message());
    free(job->id);
    job->id = NULL;
  }
}

/* marks a job ended, finished or failed (always a change to write) */
static bool set_ended(struct job *j, int64_t ok)
{
  j->status = ok ? JOB_FINISHED : JOB_FAILED;
  j->end_ms = now_ms();
  j->progress = 100;
  return true;
}

static void job_end(struct engine *eng, struct job *job, bool ok)
{
  if (!job->id) return;
  set_ended(job, ok);
  if (job_update(eng->st, job) < 0) log_err("cannot update job: %s", error_message());
}

void engine_unlock(struct engine *eng, const char *const *ids) { locks_release(eng, ids); }

char *engine_job_start(struct engine *eng, const struct user *u, const char *vm_id, const char *desc)
{
  struct err_saved s;
  error_save(&s);
  struct job job = {0};
  job_begin(eng, &job, desc, u, vm_id);
  free(job.description);
  free(job.user_id);
  free(job.vm_id);
  if (s.code != ERR_NONE) error_restore(&s);
  else { free(s.msg); error_clear(); }
  return job.id;
}

/* changes the job's row with fn(job, arg) (false: nothing to write),
 * keeping the thread's error */
static void job_change(struct engine *eng, const char *job_id, bool (*fn)(struct job *, int64_t), int64_t arg)
{
  if (!job_id) return;
  struct err_saved s;
  error_save(&s);
  AUTOPTR(job) j = job_get(eng->st, job_id);
  if (j && fn(j, arg) && job_update(eng->st, j) < 0)
    log_err("cannot update job '%s': %s", job_id, error_message());
  if (s.code != ERR_NONE) error_restore(&s);
  else { free(s.msg); error_clear(); }
}

static bool set_progress(struct job *j, int64_t pct)
{
  pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
  if (j->progress == pct) return false;
  j->progress = pct;
  return true;
}

void engine_job_progress(struct engine *eng, const char *job_id, int64_t pct)
{
  job_change(eng, job_id, set_progress, pct);
}

void engine_job_finish(struct engine *eng, const char *job_id, bool ok) { job_change(eng, job_id, set_ended, ok); }

int cmd_run(const struct cmd_def *def, struct cmd_ctx *c)
{
  struct engine *eng = c->eng;
  /* the permissions on the objects the command names (the route's own
   * object was checked by the API's route table); a denial is its own
   * audit event */
  for (size_t i = 0; i < CMD_MAX_NEEDS && c->needs[i].id; i++)
    if (perm_require_user(eng, c->user, c->needs[i].permit, c->needs[i].obj, c->needs[i].id, def->name) < 0)
      return -1;
  if (locks_acquire(eng, c->locks, def->name, c->user) < 0) {
    engine_event(eng, SEVERITY_WARNING, EV_COMMAND_FAILED, c->user, c->vm_id,
                 "%s by %s refused: %s", def->name, c->user ? c->user->name : "engine",
                 error_message());
    return -1;
  }
  struct job job = {0};
  int64_t started = mono_ms();
  job_begin(eng, &job, def->name, c->user, c->vm_id);
  struct log_fields fields = {.vm = c->vm_id, .job = job.id, .user = c->user ? c->user->name : NULL};
  const struct log_fields *outer = log_fields_set(&fields);
  error_clear();
  int rc = def->validate ? def->validate(c) : 0;
  bool executed = false;
  if (rc == 0) {
    executed = true;
    rc = def->execute(c);
  }
  if (rc < 0 && executed && def->compensate) {
    struct err_saved saved;
    error_save(&saved);
    def->compensate(c);
    error_restore(&saved);
  }
  struct err_saved saved;
  error_save(&saved);
  AUTOFREE char *what = def->describe ? def->describe(c, rc == 0) : NULL;
  if (rc == 0) {
    if (what)
      engine_event(eng, SEVERITY_NORMAL, def->event_code, c->user, c->vm_id, "%s", what);
  } else {
    engine_event(eng, SEVERITY_ERROR, EV_COMMAND_FAILED, c->user, c->vm_id,
                 "%s by %s failed: %s", what ? what : def->name,
                 c->user ? c->user->name : "engine", saved.msg ? saved.msg : "unknown error");
  }
  if (rc < 0) error_restore(&saved);
  else free(saved.msg);
  job_end(eng, &job, rc == 0);
  log_fields_set(outer);  /* before job.id goes */
  AUTOFREE char *labels = metrics_labels("command", def->name, "outcome", rc == 0 ? "ok" : "failed", NULL);
  metrics_histogram_observe("snapback_command_duration_seconds", "how long commands took in the "
                            "dispatcher (background work excluded), by command and outcome", labels,
                            (double)(mono_ms() - started) / 1000.0);
  free(job.id);
  free(job.description);
  free(job.user_id);
  free(job.vm_id);
  if (!(rc == 0 && c->keep_locks)) locks_release(eng, c->locks);
  return rc;
}
