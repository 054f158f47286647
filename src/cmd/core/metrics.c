/* metrics.c: the engine's side of /metrics.
 *
 * Counters and histograms go to the registry (util/metrics.h) where things
 * happen: every command's duration (dispatch.c), bytes through image
 * transfers (transfer.c), snapshot create/remove durations (snapshot.c, via
 * engine_observe_operation, which a backup job uses the same way). The
 * gauges below describe state and are read from the store and the hosts at
 * each scrape, so they are right after a restart too. */
#include "cmd/internal.h"
#include "util/err.h"
#include "util/metrics.h"
#include "util/timeutil.h"
#include <stdio.h>

void engine_observe_operation(const char *what, const char *operation, bool ok, int64_t started_mono_ms)
{
  AUTOFREE char *name = xasprintf("snapback_%s_duration_seconds", what);
  AUTOFREE char *help = xasprintf("how long %s operations took, from start to their last state change, "
                                  "by operation and outcome", what);
  AUTOFREE char *labels = metrics_labels("operation", operation, "outcome", ok ? "ok" : "failed", NULL);
  metrics_histogram_observe(name, help, labels, (double)(mono_ms() - started_mono_ms) / 1000.0);
}

/* one gauge sample counted by FN; -1 + error when the store fails */
static int put_count(struct buf *out, const char *name, const char *help, int64_t n)
{
  if (n < 0) return -1;
  metrics_put_family(out, name, "gauge", help);
  metrics_put_sample(out, name, "", (double)n);
  return 0;
}

int engine_metrics_render(struct engine *eng, struct buf *out)
{
  struct store *st = eng->st;
  if (put_count(out, "snapback_jobs_in_progress", "jobs started and not yet finished",
                job_count_by_status(st, JOB_STARTED)) < 0)
    return -1;
  if (put_count(out, "snapback_image_transfers_in_progress", "image transfers initializing or transferring",
                image_transfer_count_open(st)) < 0)
    return -1;
  int64_t size = store_size_bytes(st);
  if (size < 0) return -1;
  metrics_put_family(out, "snapback_store_size_bytes", "gauge", "size of the store's database");
  metrics_put_sample(out, "snapback_store_size_bytes", "", (double)size);

  /* what the watcher saw last (host.c): a scrape never waits for a host */
  AUTOLIST(host) hosts = host_list_all(st);
  if (!hosts) return -1;
  metrics_put_family(out, "snapback_host_connected", "gauge",
                     "1 when the host's libvirt connection answers, else 0");
  for (size_t i = 0; hosts[i]; i++) {
    AUTOFREE char *labels = metrics_labels("host", hosts[i]->name, "uri", host_uri(hosts[i]), NULL);
    metrics_put_sample(out, "snapback_host_connected", labels, hosts[i]->status == HOST_UP || hosts[i]->status == HOST_MAINTENANCE ? 1 : 0);
  }
  return 0;
}
