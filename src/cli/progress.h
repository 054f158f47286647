/* progress.h: a one-line progress bar on a terminal (stderr), with throughput
 * and ETA. Silent when stderr is not a terminal or output is JSON. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct progress {
  bool enabled;
  char label[64];
  uint64_t total;
  int64_t start_ms, last_ms;
  bool drawn;
};

/* enabled only when on is true and stderr is a terminal */
void progress_start(struct progress *p, bool on, const char *label, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
/* draws the final state and ends the line */
void progress_end(struct progress *p, uint64_t done);
/* a callback for copy_progress_fn / repo_verify */
void progress_cb(void *opaque, uint64_t done);
void progress_cb2(void *opaque, uint64_t done, uint64_t total);
/* "1.5 GiB" */
void human_bytes(uint64_t n, char out[32]);
