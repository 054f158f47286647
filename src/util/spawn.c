#include "util/spawn.h"
#include "util/blocking.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void close_pair(int p[2])
{
  if (p[0] >= 0) close(p[0]);
  if (p[1] >= 0) close(p[1]);
}

/* the child side of spawn_status, between fork and exec: only
 * async-signal-safe calls. The child asks for SIGKILL when the thread that
 * forked it ends (PR_SET_PDEATHSIG). spawn_status waits for the child on that
 * same thread, so this fires only when the engine itself dies: a killed
 * engine leaves no qemu-img writing on behind it. An exec failure travels
 * back as an errno through the CLOEXEC pipe ERRFD. */
static void __attribute__((noreturn))
status_child(const char *const argv[], pid_t parent, int outfd, int errfd_out, int errfd)
{
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(127);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(outfd, 1) < 0 || dup2(errfd_out, 2) < 0) goto fail;
  /* the daemon ignores SIGPIPE and blocks nothing the tool should see */
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  closefrom(3); /* errfd is CLOEXEC: it stays open until exec */
  execvp(argv[0], (char *const *)argv);
fail:;
  int e = errno;
  ssize_t w = write(errfd, &e, sizeof e);
  (void)w;
  _exit(127);
}

int spawn_status(const char *const argv[], struct buf *out, struct buf *errout)
{
  AUTOFREE char *what = xasprintf("run '%s'", argv[0]);
  if (blocking_check(what) < 0) return -1;
  int po[2] = {-1, -1}, pe[2] = {-1, -1}, px[2] = {-1, -1};
  if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 || pipe2(px, O_CLOEXEC) < 0) {
    int e = errno;
    close_pair(po);
    close_pair(pe);
    return error(ERR_INTERNAL, "cannot run '%s': pipe: %s", argv[0], strerror(e));
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) status_child(argv, parent, po[1], pe[1], px[1]);
  int fork_errno = errno;
  close(po[1]);
  close(pe[1]);
  close(px[1]);
  int rc = pid < 0 ? fork_errno : 0;
  if (pid > 0) {
    int e = 0;
    ssize_t n;
    while ((n = read(px[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    if (n == (ssize_t)sizeof e) {
      rc = e;
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    }
  }
  close(px[0]);
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

int spawn_start(const char *const argv[], const char *log_path, pid_t *out)
{
  return spawn_start_env(argv, NULL, log_path, out);
}

/* environ with the entries of env added, same names replaced (the array is
 * the caller's to free; its strings belong to environ and env) */
static char **env_merge(const char *const env[])
{
  size_t n = 0, k = 0;
  while (environ[n]) n++;
  while (env && env[k]) k++;
  char **out = xcalloc(n + k + 1, sizeof *out);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    bool replaced = false;
    for (size_t j = 0; j < k && !replaced; j++) {
      size_t len = strcspn(env[j], "=");
      replaced = strncmp(environ[i], env[j], len + 1) == 0;
    }
    if (!replaced) out[o++] = environ[i];
  }
  for (size_t j = 0; j < k; j++) out[o++] = (char *)env[j];
  return out;
}

int spawn_start_env(const char *const argv[], const char *const env[], const char *log_path, pid_t *out)
{
  AUTOFREE char *what = xasprintf("start '%s'", argv[0]);
  if (blocking_check(what) < 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path ? log_path : "/dev/null",
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  /* a long-lived child must hold none of the daemon's descriptors (sockets,
   * the store, libvirt's pipes), even ones a library opened without CLOEXEC */
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                  POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all); /* SIGPIPE is ignored in the daemon */
  pid_t pid;
  char **envp = env ? env_merge(env) : environ;
  int rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, envp);
  if (envp != environ) free(envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return error(ERR_INTERNAL, "cannot run '%s': %s", argv[0], strerror(rc));
  *out = pid;
  return 0;
}

bool spawn_alive(pid_t pid, int *status)
{
  if (pid <= 0) return false;
  int st = 0;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r == pid) {
    if (status) *status = st;
    return false;
  }
  if (r == 0) return true;
  /* not our child (ECHILD): a process left from a previous run */
  return kill(pid, 0) == 0 || errno == EPERM;
}

int spawn_stop(pid_t pid, int timeout_ms)
{
  if (!spawn_alive(pid, NULL)) return 0;
  kill(pid, SIGTERM);
  int64_t deadline = mono_ms() + timeout_ms;
  /* most children exit within a few ms of SIGTERM: look soon, then every 20 ms */
  struct backoff wait;
  backoff_start(&wait, 1000, 20000, 0);
  for (bool killed = false;;) {
    if (!spawn_alive(pid, NULL)) return 0;
    if (mono_ms() > deadline) {
      if (killed) return error(ERR_INTERNAL, "process %d does not exit after SIGKILL", (int)pid);
      kill(pid, SIGKILL);
      killed = true;
      deadline = mono_ms() + 5000;
    }
    backoff_sleep(&wait);
  }
}

/* argv of pid from /proc as one buffer of NUL-separated strings; len set */
static char *proc_cmdline(pid_t pid, size_t *len)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct buf b = BUF_INIT;
  char tmp[4096];
  ssize_t n;
  while ((n = read(fd, tmp, sizeof tmp)) > 0) buf_add(&b, tmp, (size_t)n);
  close(fd);
  *len = b.len;
  return buf_detach(&b);
}

bool process_matches(pid_t pid, const char *prog, const char *needle)
{
  if (pid <= 0) return false;
  size_t len = 0;
  AUTOFREE char *cmd = proc_cmdline(pid, &len);
  if (!cmd || len == 0) return false;
  const char *base = strrchr(cmd, '/');
  base = base ? base + 1 : cmd;
  if (strcmp(base, prog) != 0) return false;
  for (size_t off = strlen(cmd) + 1; off < len; off += strlen(cmd + off) + 1)
    if (strstr(cmd + off, needle)) return true;
  return false;
}

pid_t *process_find(const char *prog, const char *needle, size_t *n)
{
  *n = 0;
  pid_t *out = NULL;
  DIR *d = opendir("/proc");
  if (!d) return NULL;
  struct dirent *de;
  size_t cap = 0;
  while ((de = readdir(d))) {
    if (!isdigit((unsigned char)de->d_name[0])) continue;
    pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
    if (pid == getpid() || !process_matches(pid, prog, needle)) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 4;
      out = xrealloc(out, cap * sizeof *out);
    }
    out[(*n)++] = pid;
  }
  closedir(d);
  return out;
}

pid_t process_parent(pid_t pid)
{
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, line, sizeof line - 1);
  close(fd);
  if (n <= 0) return -1;
  line[n] = 0;
  /* "pid (comm) state ppid ...": comm may hold spaces and parentheses */
  const char *end = strrchr(line, ')');
  int ppid;
  if (!end || sscanf(end + 1, " %*c %d", &ppid) != 1) return -1;
  return (pid_t)ppid;
}
