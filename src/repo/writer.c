/* writer.c: write-behind for chunk files.
 *
 * Writing a chunk file blocks its thread: a direct write returns when the
 * device has the data, then the fsync. With repo_writers_start, threads of
 * the repository's own write the files that repo_chunk_put queues, and the
 * thread that hashed and compressed the chunk goes on with the next one. The
 * file's buffer changes hands: the worker takes a free one from the pool,
 * and a writer returns it when the file is written. At most QUEUE_PER_THREAD
 * files per writer wait or are being written, so memory stays bounded and a
 * slow disk slows the workers down instead of piling up buffers.
 *
 * Every file is still written, fsynced and renamed by repo_write_file_direct,
 * so what a crash leaves is the same. A failed write is saved; repo_sync
 * waits for every queued file and returns it, and a repo_chunk_put after it
 * fails with it too, so no manifest names a chunk whose write failed. */
#include "repo/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 8
#define QUEUE_PER_THREAD 2

struct wjob {
  char *dir;
  char id[REPO_ID_HEX + 1];
  unsigned char *buf;
  size_t len;
};

struct repo_writers {
  struct repo *r;
  pthread_mutex_t lock;
  pthread_cond_t work;  /* writers wait for jobs */
  pthread_cond_t freed; /* submitters wait for room; repo_writers_drain for an empty queue */
  struct wjob q[MAX_THREADS * QUEUE_PER_THREAD];
  size_t head, len, cap; /* the ring of queued jobs; cap = threads * QUEUE_PER_THREAD */
  int busy;              /* jobs being written */
  int reserved;          /* places taken by submitters still getting a buffer */
  unsigned char *spare[MAX_THREADS * QUEUE_PER_THREAD];
  size_t nspare;
  size_t bufsize;        /* every buffer's size (the workers' file buffers) */
  bool stop, failed;
  struct err_saved err;  /* the first failure */
  pthread_t tid[MAX_THREADS];
  int threads;
};

static void *writer_main(void *arg)
{
  struct repo_writers *wr = arg;
  pthread_mutex_lock(&wr->lock);
  for (;;) {
    while (!wr->len && !wr->stop) pthread_cond_wait(&wr->work, &wr->lock);
    if (!wr->len) break;
    struct wjob j = wr->q[wr->head];
    wr->head = (wr->head + 1) % wr->cap;
    wr->len--;
    wr->busy++;
    bool skip = wr->failed;
    pthread_mutex_unlock(&wr->lock);
    int rc = skip ? 0 : repo_write_file_direct(j.dir, j.id, j.buf, j.len, wr->bufsize, true);
    if (rc == 0 && !skip) repo_mark_dirty(wr->r, j.id);
    else if (rc < 0) error_prefix("cannot store chunk: ");
    free(j.dir);
    pthread_mutex_lock(&wr->lock);
    if (rc < 0 && !wr->failed) {
      error_save(&wr->err);
      wr->failed = true;
    }
    if (rc < 0) error_clear();
    if (wr->nspare < wr->cap) wr->spare[wr->nspare++] = j.buf;
    else free(j.buf);
    wr->busy--;
    pthread_cond_broadcast(&wr->freed);
  }
  pthread_mutex_unlock(&wr->lock);
  return NULL;
}

/* under lock: the saved failure, reported again by the caller's thread */
static int failed_error(struct repo_writers *wr)
{
  struct err_saved copy = {wr->err.code, wr->err.msg ? xstrdup(wr->err.msg) : NULL};
  return error_restore(&copy);
}

int repo_writers_start(struct repo *r, int threads)
{
  if (r->writers) return 0;
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  struct repo_writers *wr = xcalloc(1, sizeof *wr);
  wr->r = r;
  wr->cap = (size_t)threads * QUEUE_PER_THREAD;
  pthread_mutex_init(&wr->lock, NULL);
  pthread_cond_init(&wr->work, NULL);
  pthread_cond_init(&wr->freed, NULL);
  for (; wr->threads < threads; wr->threads++)
    if (pthread_create(&wr->tid[wr->threads], NULL, writer_main, wr) != 0) break;
  if (wr->threads == 0) {
    pthread_cond_destroy(&wr->work);
    pthread_cond_destroy(&wr->freed);
    pthread_mutex_destroy(&wr->lock);
    free(wr);
    return error(ERR_INTERNAL, "cannot start the repository's writer threads");
  }
  r->writers = wr;
  return 0;
}

int repo_writers_submit(struct repo *r, const char *dir, const char *id, unsigned char **buf, size_t len,
                        size_t bufsize)
{
  struct repo_writers *wr = r->writers;
  pthread_mutex_lock(&wr->lock);
  while (!wr->failed && wr->len + (size_t)(wr->busy + wr->reserved) >= wr->cap)
    pthread_cond_wait(&wr->freed, &wr->lock);
  if (wr->failed) {
    int rc = failed_error(wr);
    pthread_mutex_unlock(&wr->lock);
    return rc;
  }
  if (!wr->bufsize) wr->bufsize = bufsize;
  if (bufsize != wr->bufsize) { /* every worker's buffer has the same size: a caller's mistake */
    pthread_mutex_unlock(&wr->lock);
    return error(ERR_INTERNAL, "cannot store chunk: a buffer of %zu bytes where the writers take %zu", bufsize,
                 wr->bufsize);
  }
  unsigned char *fresh = wr->nspare ? wr->spare[--wr->nspare] : NULL;
  wr->reserved++;
  pthread_mutex_unlock(&wr->lock);
  /* the buffer that replaces the queued one: a spare, else a new one */
  if (!fresh) fresh = xalloc_large(bufsize); /* as the workers' buffers: aligned for direct I/O */
  pthread_mutex_lock(&wr->lock);
  wr->reserved--;
  struct wjob *j = &wr->q[(wr->head + wr->len) % wr->cap];
  j->dir = xstrdup(dir);
  memcpy(j->id, id, REPO_ID_HEX + 1);
  j->buf = *buf;
  j->len = len;
  wr->len++;
  pthread_cond_signal(&wr->work);
  pthread_mutex_unlock(&wr->lock);
  *buf = fresh;
  return 0;
}

int repo_writers_drain(struct repo *r)
{
  struct repo_writers *wr = r->writers;
  if (!wr) return 0;
  pthread_mutex_lock(&wr->lock);
  while (wr->len || wr->busy) pthread_cond_wait(&wr->freed, &wr->lock);
  int rc = wr->failed ? failed_error(wr) : 0;
  pthread_mutex_unlock(&wr->lock);
  return rc;
}

void repo_writers_stop(struct repo *r)
{
  struct repo_writers *wr = r->writers;
  if (!wr) return;
  pthread_mutex_lock(&wr->lock);
  wr->stop = true;
  pthread_cond_broadcast(&wr->work);
  pthread_mutex_unlock(&wr->lock);
  for (int i = 0; i < wr->threads; i++) pthread_join(wr->tid[i], NULL);
  for (size_t i = 0; i < wr->nspare; i++) free(wr->spare[i]);
  free(wr->err.msg);
  pthread_cond_destroy(&wr->work);
  pthread_cond_destroy(&wr->freed);
  pthread_mutex_destroy(&wr->lock);
  free(wr);
  r->writers = NULL;
}
