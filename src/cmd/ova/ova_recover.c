/* ova_recover.c: at start, what an OVA export or import cut off by a crash
 * left behind, from the intent records of jobs still 'started' (ova_job.h):
 * an export's .part file (and the PART.empty beside it) and temporary snapshot are removed; an import
 * created no VM (its volume files are swept as orphans). Each gets an event. */
#include "cmd/ova_job.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* an export's partial file, from its record: only an absolute path that ends
 * in ".part" is ever removed */
static bool part_path_ok(const char *p)
{
  size_t n = p ? strlen(p) : 0;
  return n > 5 && p[0] == '/' && strcmp(p + n - 5, ".part") == 0;
}

static void recover_export(struct engine *eng, const char *part, const char *vm_id, const char *snap_id)
{
  static const struct user engine_user = {.id = NULL, .name = (char *)"engine"};
  struct store *st = eng->st;
  bool removed = false;
  if (part_path_ok(part)) {
    removed = unlink(part) == 0;
    /* the empty qcow2 the export makes beside it for each disk (export.c) */
    AUTOFREE char *empty = xasprintf("%s.empty", part);
    if (unlink(empty) < 0 && errno != ENOENT) log_warn("cannot remove '%s': %s", empty, strerror(errno));
  }
  AUTOFREE char *snap_note = NULL;
  AUTOPTR(snapshot) s = vm_id && snap_id ? snapshot_get(st, snap_id) : NULL;
  error_clear();
  if (s && s->status == SNAPSHOT_OK && strcmp(s->vm_id, vm_id) == 0) {
    if (cmd_snapshot_remove(eng, &engine_user, vm_id, snap_id) == 0)
      snap_note = xstrdup("; its temporary snapshot is being removed");
    else
      snap_note = xasprintf("; its temporary snapshot '%s' could not be removed: %s", s->description,
                            error_message());
    error_clear();
  }
  engine_event(eng, SEVERITY_WARNING, EV_VM_EXPORT_FAILED, NULL, vm_id,
               "an export to OVA was interrupted by an engine restart; %s '%s'%s",
               removed ? "removed the partial file" : "no partial file was left at", part ? part : "?",
               snap_note ? snap_note : "");
}

void ova_recover(struct engine *eng)
{
  struct store *st = eng->st;
  AUTOLIST(job) jobs = job_list_by_status(st, JOB_STARTED);
  if (!jobs) { log_err("%s", error_message()); error_clear(); return; }
  for (size_t i = 0; jobs[i]; i++) {
    AUTOFREE char *key = job_key(jobs[i]->id);
    AUTOFREE char *rec = store_setting_get(st, key);
    if (!rec || !rec[0]) continue;
    /* {"kind":"export","part":P,"vm":V,"snapshot":S} or {"kind":"import","path":P,"name":N};
     * an older engine's newline-joined record is not trusted with a file name */
    AUTOPTR(json) j = json_loads(rec, 0, NULL);
    const char *kind = json_string_value(json_object_get(j, "kind"));
    if (kind && strcmp(kind, "export") == 0) {
      recover_export(eng, json_string_value(json_object_get(j, "part")),
                     json_string_value(json_object_get(j, "vm")),
                     json_string_value(json_object_get(j, "snapshot")));
    } else if (kind && strcmp(kind, "import") == 0) {
      const char *name = json_string_value(json_object_get(j, "name"));
      const char *path = json_string_value(json_object_get(j, "path"));
      engine_event(eng, SEVERITY_WARNING, EV_VM_IMPORT_FAILED, NULL, NULL,
                   "the import of VM %s from OVA '%s' was interrupted by an engine restart; no VM was "
                   "created and its partial volume files are removed", name ? name : "?", path ? path : "?");
    } else {
      engine_event(eng, SEVERITY_WARNING, EV_VM_EXPORT_FAILED, NULL, NULL,
                   "an OVA export or import (job %s) was interrupted by an engine restart; its record "
                   "is from an older engine, so no file was removed: remove any .part file by hand",
                   jobs[i]->id);
    }
    ova_job_end(eng, jobs[i]->id, false);
  }
  error_clear();
}
