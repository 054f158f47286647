/* mergewatch.h: a thread that follows a live merge's block job and moves a
 * job's progress with it, so a snapshot removal shows how far each disk's
 * merge has come, not only how many disks are done. */
#pragma once
#include "cmd/internal.h"

struct merge_watch;

/* starts watching disk DISK_ID of the running VM VM_ID on host HOST_ID:
 * twice a second, job JOB_ID's progress becomes FROM + SPAN * done / total of
 * the disk's block job. NULL (nothing to stop) when there is no job or the
 * host cannot tell a block job's progress. Errors of the watcher are its own:
 * it never changes the caller's. */
struct merge_watch *merge_watch_start(struct engine *eng, const char *job_id, const char *host_id,
                                      const char *vm_id, const char *disk_id, int64_t from, int64_t span);

/* stops the watcher, waits for its thread and frees W; NULL is fine */
void merge_watch_stop(struct merge_watch *w);
