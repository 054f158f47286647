/* progress.c: the progress bar. Redraws at most 5 times a second with \r. */
#include "cli/progress.h"
#include "util/timeutil.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void human_bytes(uint64_t n, char out[32])
{
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  snprintf(out, 32, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void progress_start(struct progress *p, bool on, const char *label, uint64_t total)
{
  memset(p, 0, sizeof *p);
  p->enabled = on && isatty(STDERR_FILENO);
  snprintf(p->label, sizeof p->label, "%s", label);
  p->total = total;
  p->start_ms = mono_ms();
}

static void draw(struct progress *p, uint64_t done, bool final)
{
  int64_t now = mono_ms();
  if (!final && p->drawn && now - p->last_ms < 200) return;
  p->last_ms = now;
  p->drawn = true;
  double secs = (double)(now - p->start_ms) / 1000.0;
  double rate = secs > 0.05 ? (double)done / secs : 0;
  double frac = p->total ? (double)done / (double)p->total : 1.0;
  if (frac > 1) frac = 1;
  char bar[31];
  int fill = (int)(frac * 30);
  for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
  bar[30] = '\0';
  char d[32], t[32], r[32], eta[32] = "--:--";
  human_bytes(done, d);
  human_bytes(p->total, t);
  human_bytes((uint64_t)rate, r);
  if (final) {
    snprintf(eta, sizeof eta, "%.1fs", secs);
  } else if (rate > 0 && p->total > done) {
    long left = (long)((double)(p->total - done) / rate);
    snprintf(eta, sizeof eta, "%02ld:%02ld", left / 60, left % 60);
  }
  fprintf(stderr, "\r%-20.20s [%s] %3.0f%% %s/%s %s/s %s %s\033[K", p->label, bar, frac * 100, d, t, r,
          final ? "in" : "ETA", eta);
  if (final) fputc('\n', stderr);
  fflush(stderr);
}

void progress_update(struct progress *p, uint64_t done)
{
  if (p->enabled) draw(p, done, false);
}

void progress_end(struct progress *p, uint64_t done)
{
  if (p->enabled) draw(p, done, true);
}

void progress_cb(void *opaque, uint64_t done) { progress_update(opaque, done); }

void progress_cb2(void *opaque, uint64_t done, uint64_t total)
{
  struct progress *p = opaque;
  p->total = total;
  progress_update(p, done);
}
