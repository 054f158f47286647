/* ova_job.c: the job and intent record of an OVA export or import, and
 * qemu-img over a byte range of an archive. See ova_job.h. */
#include "cmd/ova_job.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- jobs with progress, and the intent record ---- */

char *job_key(const char *job_id) { return xasprintf("ova-job:%s", job_id); }

/* a job row of our own (the dispatcher's ends with the command; ours lives
 * as long as the background work) and the record recovery reads */
char *ova_job_begin(struct engine *eng, const struct user *u, const char *desc, const char *record)
{
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return NULL;
  struct job j = {.id = id, .description = (char *)desc, .status = JOB_STARTED, .start_ms = now_ms(),
                  .user_id = u ? u->id : NULL, .progress = 0};
  AUTOFREE char *key = job_key(id);
  if (store_begin(eng->st) < 0) return NULL;
  if (job_insert(eng->st, &j) < 0 || store_setting_set(eng->st, key, record) < 0) {
    store_rollback(eng->st);
    return NULL;
  }
  if (store_commit(eng->st) < 0) return NULL;
  return xstrdup(id);
}

void ova_job_record(struct engine *eng, const char *job_id, const char *record)
{
  AUTOFREE char *key = job_key(job_id);
  if (store_setting_set(eng->st, key, record) < 0) log_err("%s", error_message());
}

void ova_job_end(struct engine *eng, const char *job_id, bool ok)
{
  if (!job_id) return;
  engine_job_finish(eng, job_id, ok);
  struct err_saved s;
  error_save(&s);
  ova_job_record(eng, job_id, "");
  if (s.code != ERR_NONE) error_restore(&s);
  else { free(s.msg); error_clear(); }
}

int64_t free_bytes(const char *dir)
{
  struct statvfs vfs;
  if (statvfs(dir, &vfs) < 0)
    return error(ERR_INTERNAL, "cannot read the free space of '%s': %s", dir, strerror(errno));
  return (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
}

bool is_enospc(const char *msg)
{
  return strstr(msg, "No space left") || strstr(msg, "ENOSPC") || strstr(msg, "Disk quota exceeded");
}
