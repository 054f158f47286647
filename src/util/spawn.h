/* spawn.h: run a program with posix_spawn and an argv array (never a shell).
 *
 * spawn_run() waits for the child and captures stdout and stderr. A non-zero
 * exit is reported with error(ERR_INTERNAL, "'prog' failed: <stderr>"). */
#pragma once
#include <stdbool.h>
#include <sys/types.h>
#include "util/buf.h"

/* argv is NULL-terminated; argv[0] is looked up in PATH. out/errout may be NULL.
 * Returns 0 when the program exited 0, else -1 with the error recorded. */
int spawn_run(const char *const argv[], struct buf *out, struct buf *errout);
/* like spawn_run but returns the exit status (>=0) instead of failing on it;
 * -1 only when the program could not be run */
int spawn_status(const char *const argv[], struct buf *out, struct buf *errout);

/* starts a long-running program without waiting for it: stdin is /dev/null,
 * stdout and stderr go to log_path (appended; NULL: /dev/null), no other
 * descriptor is inherited. The child gets its own process group, so a terminal's ^C reaches only the daemon.
 * Returns 0 with *out set, or -1 when it could not be started. */
int spawn_start(const char *const argv[], const char *log_path, pid_t *out);
/* the same with env (NAME=VALUE entries, NULL-terminated) added to the
 * daemon's environment, replacing a variable of the same name */
int spawn_start_env(const char *const argv[], const char *const env[], const char *log_path, pid_t *out);
/* true while pid runs; reaps it (our child) when it has exited, storing its
 * wait status in *status when not NULL */
bool spawn_alive(pid_t pid, int *status);
/* SIGTERM, then SIGKILL after timeout_ms; waits for it (reaping our own
 * child; a process that is not ours, left from a previous run, is only
 * watched until it is gone). 0, or -1 when it would not die. */
int spawn_stop(pid_t pid, int timeout_ms);
/* true when process pid runs program PROG (argv[0]'s base name) with an
 * argument containing NEEDLE: checked before killing a pid read from the
 * store, which may belong to another program by now */
bool process_matches(pid_t pid, const char *prog, const char *needle);
/* every running process of PROG with an argument containing NEEDLE; *n set */
pid_t *process_find(const char *prog, const char *needle, size_t *n);
/* the parent of pid from /proc, or -1 when pid is gone */
pid_t process_parent(pid_t pid);
