/* metrics.h: the process's Prometheus metrics (text exposition format 0.0.4).
 *
 * Counters and histograms live in one process-wide registry, like the
 * Prometheus client libraries': the layer where a thing happens counts it
 * (the HTTP layer its requests, cmd/ its jobs and bytes), and the HTTP layer
 * renders the registry at /metrics. Gauges that describe state (jobs in
 * progress, the store's size) are not kept here: they are read at scrape
 * time by whoever owns the state and written with metrics_put_*.
 *
 * A family is created on first use with its help text; NAME must follow
 * Prometheus naming (snapback_..._total for counters, a unit suffix such as
 * _seconds or _bytes). LABELS is a rendered label set without braces, made
 * with metrics_labels(), or "" for none. Thread-safe. */
#pragma once
#include "util/buf.h"

/* adds V (>= 0) to the counter NAME{LABELS} */
void metrics_counter_add(const char *name, const char *help, const char *labels, double v);
/* records one observation V (seconds, bytes...) in the histogram NAME{LABELS};
 * buckets: METRICS_BUCKETS_SECONDS */
void metrics_histogram_observe(const char *name, const char *help, const char *labels, double v);
/* writes every registered family to OUT */
void metrics_render(struct buf *out);
/* forgets everything (tests) */
void metrics_reset(void);

/* "k1=\"v1\",k2=\"v2\"" from NULL-terminated key, value pairs, escaping the
 * values; a NULL value is rendered as ""; caller frees */
char *metrics_labels(const char *key, ...) __attribute__((sentinel));

/* for gauges read at scrape time: the # HELP and # TYPE lines, then samples */
void metrics_put_family(struct buf *out, const char *name, const char *type, const char *help);
void metrics_put_sample(struct buf *out, const char *name, const char *labels, double v);
