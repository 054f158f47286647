/* mergewatch.c: see mergewatch.h. The merge itself blocks its thread in
 * hyper_ops.block_commit; this second thread only reads the block job's
 * progress through the hypervisor and writes the job row (one short store
 * transaction per change), so it holds no object lock and touches no file. */
#include "cmd/mergewatch.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define MERGE_WATCH_INTERVAL_MS 500

struct merge_watch {
  struct engine *eng;
  char *job_id, *host_id, *vm_id, *disk_id;
  int64_t from, span;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  bool stop;                 /* under lock: merge_watch_stop asked the thread to end */
};

static void *merge_watch_run(void *arg)
{
  struct merge_watch *w = arg;
  pthread_mutex_lock(&w->lock);
  while (!w->stop) {
    struct timespec until;
    cond_deadline_after(&until, MERGE_WATCH_INTERVAL_MS);
    while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT) {}
    if (w->stop) break;
    pthread_mutex_unlock(&w->lock);
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(w->eng, w->host_id, &ops);
    uint64_t done = 0, total = 0;
    if (h && ops->block_job_progress(h, w->vm_id, w->disk_id, &done, &total) == 1 && total > 0)
      engine_job_progress(w->eng, w->job_id, w->from + (int64_t)((double)w->span * (double)done / (double)total));
    error_clear();
    pthread_mutex_lock(&w->lock);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

static void merge_watch_free(struct merge_watch *w)
{
  pthread_cond_destroy(&w->wake);
  pthread_mutex_destroy(&w->lock);
  free(w->job_id);
  free(w->host_id);
  free(w->vm_id);
  free(w->disk_id);
  free(w);
}

struct merge_watch *merge_watch_start(struct engine *eng, const char *job_id, const char *host_id,
                                      const char *vm_id, const char *disk_id, int64_t from, int64_t span)
{
  const struct hyper_ops *ops;
  if (!job_id || !engine_hyper(eng, host_id, &ops) || !ops->block_job_progress) {
    error_clear();
    return NULL;
  }
  struct merge_watch *w = xcalloc(1, sizeof *w);
  *w = (struct merge_watch){.eng = eng, .job_id = xstrdup(job_id), .host_id = xstrdup(host_id),
                            .vm_id = xstrdup(vm_id), .disk_id = xstrdup(disk_id), .from = from, .span = span};
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->wake, NULL);
  if (pthread_create(&w->thread, NULL, merge_watch_run, w) != 0) {
    merge_watch_free(w);
    return NULL;
  }
  return w;
}

void merge_watch_stop(struct merge_watch *w)
{
  if (!w) return;
  pthread_mutex_lock(&w->lock);
  w->stop = true;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->thread, NULL);
  merge_watch_free(w);
}
