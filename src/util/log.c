/* log.c: see log.h. The journal's native protocol (systemd.journal-fields(7),
 * "Native Journal Protocol"): one datagram per entry holding KEY=value lines;
 * a value with a newline is sent as KEY, newline, its length as 64-bit
 * little endian, the bytes, newline. No libsystemd needed. */
#include "util/log.h"
#include "util/buf.h"
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

ENUM_IMPL(log_level, LOG_LEVEL_LAST, "debug", "info", "warning", "error")

static int min_level = LOG_INFO;                 /* atomic */
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static int journal_fd = -1;                      /* guarded by sink_mu */
static char *journal_path;                       /* guarded by sink_mu; for log_reopen */
static __thread const struct log_fields *thread_fields;

void log_set_level(enum log_level l) { __atomic_store_n(&min_level, (int)l, __ATOMIC_RELAXED); }
enum log_level log_get_level(void) { return (enum log_level)__atomic_load_n(&min_level, __ATOMIC_RELAXED); }

const struct log_fields *log_fields_set(const struct log_fields *f)
{
  const struct log_fields *old = thread_fields;
  thread_fields = f;
  return old;
}

/* true when JOURNAL_STREAM ("DEV:INODE") is the file stderr is */
static bool stderr_is_journal(void)
{
  const char *js = getenv("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  if (fstat(STDERR_FILENO, &st) < 0) return false;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void close_locked(void)
{
  if (journal_fd >= 0) close(journal_fd);
  journal_fd = -1;
}

static int open_locked(const char *path)
{
  close_locked();
  if (path != journal_path) {
    free(journal_path);
    journal_path = path ? strdup(path) : NULL;
  }
  if (!journal_path || !stderr_is_journal()) return -1;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(journal_path) >= sizeof sa.sun_path) return -1;
  strcpy(sa.sun_path, journal_path);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  journal_fd = fd;
  return 0;
}

int log_open_journal(const char *socket_path)
{
  pthread_mutex_lock(&sink_mu);
  int rc = open_locked(socket_path);
  pthread_mutex_unlock(&sink_mu);
  return rc;
}

void log_open(void) { log_open_journal(LOG_JOURNAL_SOCKET); }

void log_reopen(void)
{
  pthread_mutex_lock(&sink_mu);
  open_locked(journal_path);
  pthread_mutex_unlock(&sink_mu);
}

void log_close(void)
{
  pthread_mutex_lock(&sink_mu);
  close_locked();
  free(journal_path);
  journal_path = NULL;
  pthread_mutex_unlock(&sink_mu);
}

static void journal_field(struct buf *b, const char *key, const char *value)
{
  if (!value) return;
  if (!strchr(value, '\n')) {
    buf_printf(b, "%s=%s\n", key, value);
    return;
  }
  uint64_t n = strlen(value);
  unsigned char le[8];
  for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
  buf_printf(b, "%s\n", key);
  buf_add(b, le, sizeof le);
  buf_add(b, value, (size_t)n);
  buf_putc(b, '\n');
}

/* 0 when the journal took the entry */
static int journal_send(enum log_level l, const char *msg, const struct log_fields *f)
{
  static const char *const priority[] = {"7", "6", "4", "3"};
  AUTOBUF struct buf b = BUF_INIT;
  journal_field(&b, "MESSAGE", msg);
  journal_field(&b, "PRIORITY", priority[l]);
  journal_field(&b, "SYSLOG_IDENTIFIER", "snapbackd");
  if (f) {
    journal_field(&b, "VM", f->vm);
    journal_field(&b, "JOB", f->job);
    journal_field(&b, "USER", f->user);
    journal_field(&b, "CODE", f->code);
  }
  pthread_mutex_lock(&sink_mu);
  ssize_t n = journal_fd >= 0 ? send(journal_fd, b.data, b.len, MSG_NOSIGNAL) : -1;
  pthread_mutex_unlock(&sink_mu);
  return n == (ssize_t)b.len ? 0 : -1;
}

void log_msg(enum log_level l, const char *fmt, ...)
{
  if ((int)l < __atomic_load_n(&min_level, __ATOMIC_RELAXED) || l >= LOG_LEVEL_LAST) return;
  AUTOBUF struct buf msg = BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&msg, fmt, ap);
  va_end(ap);
  const struct log_fields *f = thread_fields;
  if (journal_send(l, buf_str(&msg), f) == 0) return;

  char ts[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  AUTOBUF struct buf extra = BUF_INIT;
  if (f) {
    const char *keys[] = {"vm", "job", "user", "code"}, *vals[] = {f->vm, f->job, f->user, f->code};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
      if (vals[i]) buf_printf(&extra, "%s%s=%s", extra.len ? " " : " [", keys[i], vals[i]);
    if (extra.len) buf_putc(&extra, ']');
  }
  flockfile(stderr);
  fprintf(stderr, "%s snapbackd %s: %s%s\n", ts, log_level_to_str(l), buf_str(&msg), buf_str(&extra));
  funlockfile(stderr);
}
