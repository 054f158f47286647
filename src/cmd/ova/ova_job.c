/* ova_job.c: the job and intent record of an OVA export or import, and
 * qemu-img over a byte range of an archive. See ova_job.h. */
#include "cmd/ova_job.h"
#include "util/err.h"
#include "util/log.h"
#include "util/spawn.h"
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

/* ---- qemu-img on parts of a file ---- */

/* json:{...} naming the byte range [offset, offset+size) of PATH as an image
 * of format qcow2 (backing files never followed) or raw; size < 0: to EOF.
 * QEMU's raw layer takes only sizes in whole 512-byte sectors: a qcow2 member
 * of another size is read through its tar padding (zeros, which qcow2
 * ignores past its last cluster); a raw member's size is its disk's size and
 * stays exact. */
char *range_image(const char *path, int64_t offset, int64_t size, bool qcow2)
{
  if (qcow2 && size >= 0) size = (size + 511) / 512 * 512;
  json_t *file = json_pack("{s:s,s:s}", "driver", "file", "filename", path);
  json_t *raw = json_pack("{s:s,s:I,s:o}", "driver", "raw", "offset", (json_int_t)offset, "file", file);
  if (size >= 0) json_object_set_new(raw, "size", json_integer(size));
  AUTOPTR(json) top = qcow2 ? json_pack("{s:s,s:n,s:o}", "driver", "qcow2", "backing", "file", raw) : raw;
  AUTOFREE char *s = json_dumps(top, JSON_COMPACT);
  return xasprintf("json:%s", s);
}

/* qemu-img info -U of FILENAME (a path or json:); NULL with the error */
json_t *image_info(const char *filename, const char *format)
{
  const char *argv[8];
  size_t n = 0;
  argv[n++] = "qemu-img";
  argv[n++] = "info";
  argv[n++] = "-U";
  argv[n++] = "--output=json";
  if (format) { argv[n++] = "-f"; argv[n++] = format; }
  argv[n++] = filename;
  argv[n] = NULL;
  AUTOBUF struct buf out = BUF_INIT;
  if (spawn_run(argv, &out, NULL) < 0) return NULL;
  json_error_t jerr;
  json_t *info = json_loads(buf_str(&out), 0, &jerr);
  if (!json_is_object(info)) {
    json_decref(info);
    return error(ERR_INTERNAL, "qemu-img info printed no JSON: %s", jerr.text), NULL;
  }
  return info;
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
