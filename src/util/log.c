#include "util/log.h"
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
void log_set_level(enum log_level l) { min_level = l; }

void log_msg(enum log_level l, const char *fmt, ...)
{
  static const char *names[] = {"debug", "info", "warning", "error"};
  if (l < min_level) return;
  char ts[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  va_list ap;
  va_start(ap, fmt);
  flockfile(stderr);
  fprintf(stderr, "%s snapbackd %s: ", ts, names[l]);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  funlockfile(stderr);
  va_end(ap);
}
