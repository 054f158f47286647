/* timeutil.h: wall and monotonic clocks, and oVirt's date format */
#pragma once
#include <stdint.h>
int64_t now_ms(void);       /* wall clock, ms since epoch */
int64_t mono_ms(void);      /* monotonic clock, ms */
struct timespec;
/* *ts becomes the wall-clock time ms from now, as pthread_cond_timedwait
 * (on a condition variable with the default clock) takes a deadline */
void cond_deadline_after(struct timespec *ts, int64_t ms);
/* formats ms-since-epoch as oVirt does: 2026-11-25T18:54:18.123+00:00 (out >= 32 bytes) */
void time_format_iso(int64_t ms, char out[32]);

/* how a loop waits for something that usually comes soon but may take long:
 * every first_us for the first fast_for_ms, then twice as long each time up
 * to max_us. A look costs little (a stat, a kill(0), a GET), and a change seen
 * late costs the whole wait: the child that exits within ms of SIGTERM, the
 * qemu-nbd that serves after 40-90 ms, a backup's phase that changes within
 * tens of ms. */
struct backoff {
  int64_t start_ms;
  int64_t fast_for_ms;
  unsigned delay_us;
  unsigned max_us;
};
/* starts waiting now */
void backoff_start(struct backoff *b, unsigned first_us, unsigned max_us, int64_t fast_for_ms);
/* sleeps until the next look */
void backoff_sleep(struct backoff *b);
