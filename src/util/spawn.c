#include "util/spawn.h"
#include "util/err.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void close_pair(int p[2])
{
  if (p[0] >= 0) close(p[0]);
  if (p[1] >= 0) close(p[1]);
}

int spawn_status(const char *const argv[], struct buf *out, struct buf *errout)
{
  int po[2] = {-1, -1}, pe[2] = {-1, -1};
  if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
    close_pair(po);
    return error(ERR_INTERNAL, "cannot run '%s': pipe: %s", argv[0], strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(po[1]);
  close(pe[1]);
  if (rc != 0) {
    close(po[0]);
    close(pe[0]);
    return error(ERR_INTERNAL, "cannot run '%s': %s", argv[0], strerror(rc));
  }
  struct buf sink = BUF_INIT, esink = BUF_INIT;
  struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  int open_fds = 2;
  char tmp[8192];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !fds[i].revents) continue;
      ssize_t n = read(fds[i].fd, tmp, sizeof tmp);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
        continue;
      }
      struct buf *dst = i == 0 ? (out ? out : &sink) : (errout ? errout : &esink);
      buf_add(dst, tmp, (size_t)n);
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0) close(fds[i].fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  buf_free(&sink);
  buf_free(&esink);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int spawn_run(const char *const argv[], struct buf *out, struct buf *errout)
{
  struct buf e = BUF_INIT;
  int st = spawn_status(argv, out, &e);
  if (st < 0) {
    buf_free(&e);
    return -1;
  }
  if (st != 0) {
    /* trim trailing newlines from the tool's message */
    while (e.len && (e.data[e.len - 1] == '\n' || e.data[e.len - 1] == '\r'))
      e.data[--e.len] = 0;
    error(ERR_INTERNAL, "'%s' failed (exit %d): %s", argv[0], st, buf_str(&e));
    if (errout) buf_add(errout, buf_str(&e), e.len);
    buf_free(&e);
    return -1;
  }
  if (errout) buf_add(errout, buf_str(&e), e.len);
  buf_free(&e);
  return 0;
}
