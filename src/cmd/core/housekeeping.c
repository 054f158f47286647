/* housekeeping.c: the engine's periodic chores, on one thread of their own.
 *
 * - Events older than the retention (--event-retention-days, default 30 as
 *   oVirt's) are pruned, in batches, so /events cannot grow without bound.
 * - Every host is pinged, so a libvirtd restart or a host that stops
 *   answering is noticed (host.c), and the engine reconciles with libvirt
 *   after it comes back (the events sent meanwhile are lost).
 * - Volume and storage domain sizes are refreshed (sizecache.c), so that GET
 *   renders never stat() or statvfs() a path that may sit on a hung mount.
 *
 * It runs once at start and then every HOUSEKEEPING_PERIOD_MS, every
 * HOUSEKEEPING_RETRY_MS while a host does not answer in the minute after
 * its connection closed under us (so a libvirtd restart is reconciled about
 * a second after libvirtd is back); stopping it wakes it at once. Nothing
 * here holds the store lock across file I/O. */
#include "cmd/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include <pthread.h>
#include <time.h>

#define HOUSEKEEPING_PERIOD_MS (10 * 1000)
/* while a host whose connection closed does not answer (for a minute) */
#define HOUSEKEEPING_RETRY_MS 1000
#define EVENT_PRUNE_BATCH 1000
#define EVENT_PRUNE_PERIOD_MS (10 * 60 * 1000)

struct housekeeping {
  struct engine *eng;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  bool pending;           /* woken while busy: go round again at once */
  int64_t last_prune_ms;  /* monotonic; 0 before the first */
};

/* deletes events older than the retention, a batch at a time; a steady
 * trickle of new events never blocks others for long */
void engine_prune_events(struct engine *eng)
{
  int64_t before = now_ms() - (int64_t)eng->event_retention_days * 24 * 3600 * 1000;
  int64_t total = 0, n = 0;
  do {
    if (event_prune(eng->st, before, EVENT_PRUNE_BATCH, &n) < 0) {
      log_err("cannot prune old events: %s", error_message());
      error_clear();
      return;
    }
    total += n;
  } while (n == EVENT_PRUNE_BATCH);
  if (total) log_info("pruned %lld event(s) older than %d days", (long long)total, eng->event_retention_days);
}

static void *housekeeping_main(void *p)
{
  struct housekeeping *hk = p;
  pthread_mutex_lock(&hk->mu);
  while (!hk->stop) {
    pthread_mutex_unlock(&hk->mu);
    int64_t t = mono_ms();
    if (!hk->last_prune_ms || t - hk->last_prune_ms >= EVENT_PRUNE_PERIOD_MS) {
      engine_prune_events(hk->eng);
      hk->last_prune_ms = t;
    }
    /* a ping notices a libvirtd that restarted even when nothing else talks
     * to the host, and a host that stopped answering (host.c); the
     * reconnect it makes asks for a reconcile */
    bool answered = hosts_watch(hk->eng);
    bool retry = !answered && mono_ms() < __atomic_load_n(&hk->eng->retry_until_ms, __ATOMIC_ACQUIRE);
    if (__atomic_exchange_n(&hk->eng->reconcile_needed, false, __ATOMIC_ACQ_REL))
      engine_reconcile(hk->eng, false);
    size_cache_refresh(hk->eng);
    pthread_mutex_lock(&hk->mu);
    if (hk->stop) break;
    struct timespec ts;
    cond_deadline_after(&ts, retry ? HOUSEKEEPING_RETRY_MS : HOUSEKEEPING_PERIOD_MS);
    while (!hk->stop && !hk->pending)
      if (pthread_cond_timedwait(&hk->cv, &hk->mu, &ts) != 0) break;
    hk->pending = false;
  }
  pthread_mutex_unlock(&hk->mu);
  return NULL;
}

void housekeeping_start(struct engine *eng)
{
  struct housekeeping *hk = xcalloc(1, sizeof *hk);
  hk->eng = eng;
  pthread_mutex_init(&hk->mu, NULL);
  pthread_cond_init(&hk->cv, NULL);
  if (pthread_create(&hk->thread, NULL, housekeeping_main, hk) != 0) {
    log_err("cannot start the housekeeping thread: old events are not pruned");
    pthread_mutex_destroy(&hk->mu);
    pthread_cond_destroy(&hk->cv);
    free(hk);
    return;
  }
  eng->housekeeping = hk;
}

void housekeeping_wake(struct engine *eng)
{
  struct housekeeping *hk = eng->housekeeping;
  if (!hk) return;
  pthread_mutex_lock(&hk->mu);
  hk->pending = true;
  pthread_cond_broadcast(&hk->cv);
  pthread_mutex_unlock(&hk->mu);
}

void housekeeping_stop(struct engine *eng)
{
  struct housekeeping *hk = eng->housekeeping;
  if (!hk) return;
  pthread_mutex_lock(&hk->mu);
  hk->stop = true;
  pthread_cond_broadcast(&hk->cv);
  pthread_mutex_unlock(&hk->mu);
  pthread_join(hk->thread, NULL);
  pthread_mutex_destroy(&hk->mu);
  pthread_cond_destroy(&hk->cv);
  free(hk);
  eng->housekeeping = NULL;
}
