/* statelock.c: one engine per store.
 *
 * Two daemons on one state directory would each believe they own every
 * transfer, overlay and qemu-nbd in it: the second one's start-up recovery
 * cancels the first one's open image transfers as if the engine had
 * restarted. So the engine takes an exclusive flock on STATE/snapbackd.lock
 * before it opens the store, and keeps it until it exits; the kernel drops it
 * when the process dies, however it dies, so a kill -9 never leaves a stale
 * lock. The file holds the owner's pid, for the message the second daemon
 * prints. (A PostgreSQL store, shared by state directories on several
 * machines, will take an advisory lock in its backend as well.) */
#include "cmd/internal.h"
#include "util/err.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int engine_state_lock(const char *state_dir)
{
  AUTOFREE char *path = xasprintf("%s/snapbackd.lock", state_dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return error(ERR_INTERNAL, "cannot open lock file '%s': %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    int e = errno;
    char owner[32] = "";
    ssize_t n = pread(fd, owner, sizeof owner - 1, 0);
    owner[n > 0 ? n : 0] = 0;
    owner[strcspn(owner, "\n")] = 0;
    close(fd);
    if (e == EWOULDBLOCK)
      return error(ERR_CONFLICT, "state directory '%s' is in use by another snapbackd%s%s%s: "
                   "one engine per store; stop it first or choose another --state-dir",
                   state_dir, *owner ? " (pid " : "", owner, *owner ? ")" : "");
    return error(ERR_INTERNAL, "cannot lock '%s': %s", path, strerror(e));
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
    int e = errno;
    close(fd);
    return error(ERR_INTERNAL, "cannot write lock file '%s': %s", path, strerror(e));
  }
  return fd;
}

void engine_state_unlock(int fd)
{
  if (fd >= 0) close(fd); /* closing the last descriptor drops the flock */
}
