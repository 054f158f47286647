/* ova_job.h: what export.c, import.c and ova_recover.c share (cmd only).
 *
 * An OVA export or import runs as a job of its own whose intent record, the
 * setting "ova-job:JOB" (JSON: {"kind":"export","part":P,"vm":V,"snapshot":S}
 * or {"kind":"import","path":P,"name":N}), tells ova_recover() what a crash
 * left behind. The helpers are in ova_job.c. */
#pragma once
#include "cmd/internal.h"
#include "util/cleanup.h"
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

#define OVF_MEMBER "vm.ovf"
#define OVF_MAX_BYTES (16 << 20)

/* the setting key of a job's intent record (caller frees) */
char *job_key(const char *job_id);
/* a job row of our own and its record, in one transaction; the job id or NULL */
char *ova_job_begin(struct engine *eng, const struct user *u, const char *desc, const char *record);
/* replaces the record (errors are logged) */
void ova_job_record(struct engine *eng, const char *job_id, const char *record);
/* finishes or fails the job and clears its record; the thread's error is kept */
void ova_job_end(struct engine *eng, const char *job_id, bool ok);

/* free bytes of the file system holding DIR; -1 with the error */
int64_t free_bytes(const char *dir);
/* whether a qemu-img message says the disk is full */
bool is_enospc(const char *msg);
