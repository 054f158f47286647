/* spawn.h: run a program with posix_spawn and an argv array (never a shell).
 *
 * spawn_run() waits for the child and captures stdout and stderr. A non-zero
 * exit is reported with error(ERR_INTERNAL, "'prog' failed: <stderr>"). */
#pragma once
#include "util/buf.h"

/* argv is NULL-terminated; argv[0] is looked up in PATH. out/errout may be NULL.
 * Returns 0 when the program exited 0, else -1 with the error recorded. */
int spawn_run(const char *const argv[], struct buf *out, struct buf *errout);
/* like spawn_run but returns the exit status (>=0) instead of failing on it;
 * -1 only when the program could not be run */
int spawn_status(const char *const argv[], struct buf *out, struct buf *errout);
