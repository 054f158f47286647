#include "util/timeutil.h"
#include <stdio.h>
#include <time.h>

int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_format_iso(int64_t ms, char out[32])
{
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char base[64];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 32, "%.19s.%03d+00:00", base, (int)(ms % 1000));
}

void backoff_start(struct backoff *b, unsigned first_us, unsigned max_us, int64_t fast_for_ms)
{
  b->start_ms = mono_ms();
  b->fast_for_ms = fast_for_ms;
  b->delay_us = first_us;
  b->max_us = max_us;
}

void backoff_sleep(struct backoff *b)
{
  struct timespec ts = {.tv_sec = b->delay_us / 1000000, .tv_nsec = (long)(b->delay_us % 1000000) * 1000};
  nanosleep(&ts, NULL); /* a signal ends it early: the caller looks again sooner */
  if (mono_ms() - b->start_ms >= b->fast_for_ms)
    b->delay_us = b->delay_us < b->max_us / 2 ? b->delay_us * 2 : b->max_us;
}

void cond_deadline_after(struct timespec *ts, int64_t ms)
{
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += (time_t)(ms / 1000);
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}
