/* hyper_lvcommit.c: live merges, libvirt's block commit of a running VM's
 * disk (active or below the top), followed by its block job events and by
 * polling, and the progress of a job under way */

#include "hyper/hyper_lv.h"
#include "hyper/domxml.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMMIT_TIMEOUT_DEFAULT_MS (10 * 60 * 1000)
/* how often block_commit asks libvirt about the job when no event came */
#define COMMIT_POLL_MS 500

/* position of path in chain, -1 when absent */
static int chain_index(const struct strvec *chain, const char *path)
{
  for (size_t i = 0; i < chain->len; i++)
    if (strcmp(chain->ptr[i], path) == 0) return (int)i;
  return -1;
}

/* the target name and backing chain (active layer first) of disk alias */
static int live_chain(virDomainPtr d, const char *vm_id, const char *alias, char **target, struct strvec *chain)
{
  AUTOFREE char *xml = hyper_lv_live_xml(d, vm_id);
  if (!xml) return -1;
  return domxml_disk_chain(xml, alias, target, chain);
}

static bool past(const struct timespec *deadline)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* cancels the job on target; libvirt leaves the chain as it was */
static void job_cancel(virDomainPtr d, const char *target)
{
  if (virDomainBlockJobAbort(d, target, 0) < 0 && !hyper_lv_last_error_is(VIR_ERR_OPERATION_INVALID))
    log_warn("cannot cancel the block job on disk '%s': %s", target, virGetLastErrorMessage());
  virResetLastError();
}

/* Starts the commit and drives it until libvirt has no job on the disk any
 * more: an active commit is pivoted once ready (READY event, or cur == end
 * in the job info, which libvirt reports only when QEMU says ready). Events
 * wake the loop early; the job info is polled every COMMIT_POLL_MS anyway,
 * so a lost event costs half a second, not the merge. The caller checks the
 * result in the live XML. */
static int commit_drive(struct hyper *h, virDomainPtr d, struct job_waiter *w, const char *what,
                        const char *top, const char *base, bool active, int timeout_ms)
{
  unsigned flags = active ? VIR_DOMAIN_BLOCK_COMMIT_ACTIVE : 0;
  if (virDomainBlockCommit(d, w->target, base, top, 0, flags) < 0) return virt_error("cannot start the %s", what);
  struct timespec deadline;
  hyper_lv_deadline_after(&deadline, timeout_ms);
  unsigned seen = 0;
  bool pivoted = false, wait = true;
  for (;;) {
    bool ready;
    struct timespec slice;
    hyper_lv_deadline_after(&slice, COMMIT_POLL_MS);
    if (slice.tv_sec > deadline.tv_sec || (slice.tv_sec == deadline.tv_sec && slice.tv_nsec > deadline.tv_nsec))
      slice = deadline;
    pthread_mutex_lock(&h->wait_lock);
    while (wait && w->events == seen)
      if (pthread_cond_timedwait(&h->wait_cond, &h->wait_lock, &slice) == ETIMEDOUT) break;
    seen = w->events;
    ready = w->ready;
    pthread_mutex_unlock(&h->wait_lock);
    wait = true;

    virDomainBlockJobInfo info;
    int r = virDomainGetBlockJobInfo(d, w->target, &info, 0);
    if (r == 0) return 0;
    if (r < 0) {
      int rc = virt_error("cannot follow the %s", what);
      job_cancel(d, w->target);
      return rc;
    }
    if (past(&deadline)) {
      job_cancel(d, w->target);
      return error(ERR_INTERNAL, "%s did not finish within %d s; it was cancelled and the chain is unchanged",
                   what, (timeout_ms + 999) / 1000);
    }
    if (active && !pivoted && (ready || (info.end > 0 && info.cur == info.end))) {
      /* synchronous: returns once QEMU switched the disk to base */
      if (virDomainBlockJobAbort(d, w->target, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0) {
        /* cur == end can be seen before QEMU calls the job ready: "block
         * copy still active ... not ready for pivot yet"; try again at the
         * next event or poll */
        if (hyper_lv_last_error_is(VIR_ERR_BLOCK_COPY_ACTIVE)) {
          virResetLastError();
          continue;
        }
        int rc = virt_error("cannot pivot the %s", what);
        job_cancel(d, w->target);
        return rc;
      }
      pivoted = true;
      wait = false;
    }
  }
}

/* Checks the paths against the live chain, watches the disk's block job
 * events (registered before the job starts, so none is missed), drives the
 * job, and decides success from the live XML afterwards: base on top for an
 * active commit, top gone from the chain otherwise. */
int hyper_lv_block_commit(struct hyper *h, const char *vm_id, const char *disk_id, const char *top_path,
                          const char *base_path, int timeout_ms)
{
  if (timeout_ms <= 0) timeout_ms = COMMIT_TIMEOUT_DEFAULT_MS;
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  AUTOFREE char *what = xasprintf("merge of '%s' into '%s' of disk '%s'", top_path, base_path, disk_id);
  AUTOFREE char *alias = xasprintf("ua-%s", disk_id);
  AUTOFREE char *target = NULL;
  AUTOSTRVEC struct strvec chain = VEC_INIT;
  if (live_chain(d, vm_id, alias, &target, &chain) < 0) return error_prefix("cannot start the %s: ", what);
  if (!target) return error(ERR_INTERNAL, "cannot start the %s: the disk has no target in VM '%s'", what, vm_id);
  int top = chain_index(&chain, top_path), base = chain_index(&chain, base_path);
  if (top < 0)
    return error(ERR_NOT_FOUND, "cannot start the %s: '%s' is not in the disk's chain", what, top_path);
  if (base <= top)
    return error(ERR_NOT_FOUND, "cannot start the %s: '%s' is not below '%s' in the disk's chain", what,
                 base_path, top_path);
  bool active = top == 0;

  /* a merge job left running by an engine that died mid-merge: cancel it
   * (the chain stays as it is, the VM keeps writing its top) and start over */
  virDomainBlockJobInfo info;
  if (virDomainGetBlockJobInfo(d, target, &info, 0) == 1) {
    if (virDomainBlockJobAbort(d, target, 0) < 0)
      return error(ERR_CONFLICT, "cannot start the %s: a block job already runs on the disk and cannot "
                   "be cancelled: %s", what, virGetLastErrorMessage());
    for (int i = 0; i < 200 && virDomainGetBlockJobInfo(d, target, &info, 0) == 1; i++) usleep(50000);
    if (virDomainGetBlockJobInfo(d, target, &info, 0) == 1)
      return error(ERR_CONFLICT, "cannot start the %s: an earlier block job on the disk does not end", what);
  }

  struct job_waiter w = {vm_id, target, false, 0, NULL};
  pthread_mutex_lock(&h->wait_lock);
  w.next = h->job_waiters;
  h->job_waiters = &w;
  pthread_mutex_unlock(&h->wait_lock);
  int rc = commit_drive(h, d, &w, what, top_path, base_path, active, timeout_ms);
  pthread_mutex_lock(&h->wait_lock);
  for (struct job_waiter **p = &h->job_waiters; *p; p = &(*p)->next)
    if (*p == &w) {
      *p = w.next;
      break;
    }
  pthread_mutex_unlock(&h->wait_lock);
  if (rc < 0) return rc;

  AUTOFREE char *target_after = NULL;
  AUTOSTRVEC struct strvec after = VEC_INIT;
  if (live_chain(d, vm_id, alias, &target_after, &after) < 0) return error_prefix("after the %s: ", what);
  bool done = active ? after.len > 0 && strcmp(after.ptr[0], base_path) == 0
                     : chain_index(&after, top_path) < 0 && chain_index(&after, base_path) >= 0;
  if (!done) return error(ERR_INTERNAL, "%s failed; the chain is unchanged", what);
  return 0;
}

int hyper_lv_block_job_progress(struct hyper *h, const char *vm_id, const char *disk_id, uint64_t *done,
                                uint64_t *total)
{
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  AUTOFREE char *alias = xasprintf("ua-%s", disk_id);
  AUTOFREE char *target = NULL;
  AUTOSTRVEC struct strvec chain = VEC_INIT;
  if (live_chain(d, vm_id, alias, &target, &chain) < 0) return -1;
  if (!target) return 0;
  virDomainBlockJobInfo info;
  int rc = virDomainGetBlockJobInfo(d, target, &info, 0);
  if (rc < 0)
    return error(ERR_INTERNAL, "cannot read the block job of disk '%s' of VM '%s': %s", disk_id, vm_id,
                 virGetLastErrorMessage());
  if (rc == 0) return 0;
  *done = info.cur;
  *total = info.end;
  return 1;
}
