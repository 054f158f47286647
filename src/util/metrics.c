/* metrics.c: see metrics.h. A small registry: a vector of families, each a
 * vector of series keyed by their rendered labels. Lookups are linear: a
 * family has at most a few hundred series (routes x methods x codes). */
#include "util/metrics.h"
#include "util/vec.h"
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* upper bounds of the histogram buckets, seconds: HTTP latencies at the low
 * end, snapshots, backups and transfers at the high end */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                 2.5,   5,    10,    30,   60,  300, 1800, 7200};
#define NBUCKETS ARRAY_SIZE(buckets)

enum family_type { FAMILY_COUNTER, FAMILY_HISTOGRAM };

struct series {
  char *labels;
  double value;               /* counter value, or histogram sum */
  uint64_t count;             /* histogram: observations */
  uint64_t bucket[NBUCKETS];  /* histogram: observations <= buckets[i] (not cumulative) */
};
DEFINE_VEC(series_vec, struct series);

struct family {
  char *name, *help;
  enum family_type type;
  struct series_vec series;
};
DEFINE_VEC(family_vec, struct family);

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct family_vec registry;  /* guarded by registry_mu */

/* the series NAME{LABELS}, created when new; under registry_mu. NULL when
 * NAME exists with another type (a programming error: the update is dropped) */
static struct series *series_get(const char *name, const char *help, enum family_type type,
                                 const char *labels)
{
  struct family *f = NULL;
  for (size_t i = 0; i < registry.len && !f; i++)
    if (strcmp(registry.ptr[i].name, name) == 0) f = &registry.ptr[i];
  if (!f) {
    struct family nf = {xstrdup(name), xstrdup(help), type, VEC_INIT};
    vec_push(&registry, nf);
    f = &registry.ptr[registry.len - 1];
  }
  if (f->type != type) return NULL;
  for (size_t i = 0; i < f->series.len; i++)
    if (strcmp(f->series.ptr[i].labels, labels) == 0) return &f->series.ptr[i];
  struct series s = {.labels = xstrdup(labels)};
  vec_push(&f->series, s);
  return &f->series.ptr[f->series.len - 1];
}

void metrics_counter_add(const char *name, const char *help, const char *labels, double v)
{
  pthread_mutex_lock(&registry_mu);
  struct series *s = series_get(name, help, FAMILY_COUNTER, labels ? labels : "");
  if (s && v > 0) s->value += v;
  pthread_mutex_unlock(&registry_mu);
}

void metrics_histogram_observe(const char *name, const char *help, const char *labels, double v)
{
  pthread_mutex_lock(&registry_mu);
  struct series *s = series_get(name, help, FAMILY_HISTOGRAM, labels ? labels : "");
  if (s && !isnan(v)) {
    s->value += v;
    s->count++;
    for (size_t i = 0; i < NBUCKETS; i++)
      if (v <= buckets[i]) {
        s->bucket[i]++;
        break;
      }
  }
  pthread_mutex_unlock(&registry_mu);
}

void metrics_put_family(struct buf *out, const char *name, const char *type, const char *help)
{
  buf_printf(out, "# HELP %s ", name);
  for (const char *p = help; *p; p++) {  /* help text escapes \ and newline */
    if (*p == '\\') buf_puts(out, "\\\\");
    else if (*p == '\n') buf_puts(out, "\\n");
    else buf_putc(out, *p);
  }
  buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

void metrics_put_sample(struct buf *out, const char *name, const char *labels, double v)
{
  if (labels && *labels) buf_printf(out, "%s{%s} %.15g\n", name, labels, v);
  else buf_printf(out, "%s %.15g\n", name, v);
}

/* labels plus le="BOUND" for one bucket line */
static void put_bucket(struct buf *out, const char *name, const char *labels, const char *le, uint64_t n)
{
  buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, *labels ? "," : "", le,
             (unsigned long long)n);
}

void metrics_render(struct buf *out)
{
  pthread_mutex_lock(&registry_mu);
  for (size_t i = 0; i < registry.len; i++) {
    const struct family *f = &registry.ptr[i];
    metrics_put_family(out, f->name, f->type == FAMILY_COUNTER ? "counter" : "histogram", f->help);
    for (size_t j = 0; j < f->series.len; j++) {
      const struct series *s = &f->series.ptr[j];
      if (f->type == FAMILY_COUNTER) {
        metrics_put_sample(out, f->name, s->labels, s->value);
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t b = 0; b < NBUCKETS; b++) {
        char le[32];
        snprintf(le, sizeof le, "%g", buckets[b]);
        cumulative += s->bucket[b];
        put_bucket(out, f->name, s->labels, le, cumulative);
      }
      put_bucket(out, f->name, s->labels, "+Inf", s->count);
      AUTOFREE char *sum = xasprintf("%s_sum", f->name), *count = xasprintf("%s_count", f->name);
      metrics_put_sample(out, sum, s->labels, s->value);
      metrics_put_sample(out, count, s->labels, (double)s->count);
    }
  }
  pthread_mutex_unlock(&registry_mu);
}

void metrics_reset(void)
{
  pthread_mutex_lock(&registry_mu);
  for (size_t i = 0; i < registry.len; i++) {
    struct family *f = &registry.ptr[i];
    for (size_t j = 0; j < f->series.len; j++) free(f->series.ptr[j].labels);
    free(f->series.ptr);
    free(f->name);
    free(f->help);
  }
  free(registry.ptr);
  registry = (struct family_vec)VEC_INIT;
  pthread_mutex_unlock(&registry_mu);
}

char *metrics_labels(const char *key, ...)
{
  struct buf b = BUF_INIT;
  va_list ap;
  va_start(ap, key);
  for (const char *k = key; k; k = va_arg(ap, const char *)) {
    const char *v = va_arg(ap, const char *);
    buf_printf(&b, "%s%s=\"", b.len ? "," : "", k);
    for (const char *p = v ? v : ""; *p; p++) {
      if (*p == '\\') buf_puts(&b, "\\\\");
      else if (*p == '"') buf_puts(&b, "\\\"");
      else if (*p == '\n') buf_puts(&b, "\\n");
      else buf_putc(&b, *p);
    }
    buf_putc(&b, '"');
  }
  va_end(ap);
  return buf_detach(&b);
}
