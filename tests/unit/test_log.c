/* test_log.c: util/log (the journal's native protocol, levels, fields) and
 * util/metrics (the registry and its text format) */
#include "tap.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/metrics.h"
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* the next datagram on FD as a string (binary fields included), or NULL */
static char *next_datagram(int fd, size_t *len)
{
  char data[65536];
  ssize_t n = recv(fd, data, sizeof data - 1, MSG_DONTWAIT);
  if (n < 0) return NULL;
  *len = (size_t)n;
  char *out = xcalloc(1, (size_t)n + 1);
  memcpy(out, data, (size_t)n);
  return out;
}

static bool has_bytes(const char *hay, size_t len, const char *needle, size_t nlen)
{
  return nlen <= len && memmem(hay, len, needle, nlen) != NULL;
}

static void test_journal(void)
{
  char dir[] = "/tmp/snapback-log-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  AUTOFREE char *path = xasprintf("%s/journal.sock", dir);
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);

  /* not started by systemd: stderr */
  unsetenv("JOURNAL_STREAM");
  CHECK(log_open_journal(path) < 0);
  log_info("to stderr");
  size_t len = 0;
  AUTOFREE char *none = next_datagram(fd, &len);
  CHECK(none == NULL);

  /* JOURNAL_STREAM names our stderr: the journal */
  struct stat st;
  CHECK(fstat(STDERR_FILENO, &st) == 0);
  AUTOFREE char *js = xasprintf("%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  setenv("JOURNAL_STREAM", js, 1);
  CHECK(log_open_journal(path) == 0);
  struct log_fields f = {.vm = "vm-1", .job = "job-1", .user = "admin@internal", .code = "ERR_NOT_FOUND"};
  const struct log_fields *prev = log_fields_set(&f);
  log_warn("two\nlines");
  log_fields_set(prev);
  AUTOFREE char *d = next_datagram(fd, &len);
  CHECK(d != NULL);
  if (d) {
    static const char binary_message[] = "MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\n";
    CHECK(has_bytes(d, len, binary_message, sizeof binary_message - 1));
    const char *fields[] = {"PRIORITY=4\n", "SYSLOG_IDENTIFIER=snapbackd\n", "VM=vm-1\n", "JOB=job-1\n",
                            "USER=admin@internal\n", "CODE=ERR_NOT_FOUND\n"};
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) CHECK(has_bytes(d, len, fields[i], strlen(fields[i])));
  }
  /* below the level: nothing; fields restored: none sent */
  log_debug("hidden");
  log_set_level(LOG_DEBUG);
  log_debug("shown");
  log_set_level(LOG_INFO);
  AUTOFREE char *shown = next_datagram(fd, &len);
  CHECK(shown && has_bytes(shown, len, "MESSAGE=shown\nPRIORITY=7\n", 25) && !strstr(shown, "VM="));

  /* SIGHUP after systemd is gone: back to stderr */
  unsetenv("JOURNAL_STREAM");
  log_reopen();
  log_info("after reopen");
  AUTOFREE char *after = next_datagram(fd, &len);
  CHECK(after == NULL);
  log_close();
  close(fd);
  unlink(path);
  rmdir(dir);

  CHECK(log_level_from_str("warning") == LOG_WARN && log_level_from_str("loud") < 0);
}

static void test_metrics(void)
{
  metrics_reset();
  AUTOFREE char *l1 = metrics_labels("route", "/vms/{}", "code", "404", NULL);
  CHECK_STR(l1, "route=\"/vms/{}\",code=\"404\"");
  AUTOFREE char *esc = metrics_labels("x", "a\"b\\c\nd", NULL);
  CHECK_STR(esc, "x=\"a\\\"b\\\\c\\nd\"");
  metrics_counter_add("t_requests_total", "requests", l1, 1);
  metrics_counter_add("t_requests_total", "requests", l1, 2);
  metrics_counter_add("t_requests_total", "requests", l1, -5); /* a counter never goes down */
  metrics_histogram_observe("t_duration_seconds", "durations", "", 0.003);
  metrics_histogram_observe("t_duration_seconds", "durations", "", 7);
  metrics_histogram_observe("t_duration_seconds", "durations", "", 10000);
  metrics_counter_add("t_duration_seconds", "wrong type", "", 1); /* dropped */
  AUTOBUF struct buf out = BUF_INIT;
  metrics_render(&out);
  const char *want[] = {
    "# HELP t_requests_total requests\n# TYPE t_requests_total counter\n",
    "t_requests_total{route=\"/vms/{}\",code=\"404\"} 3\n",
    "# TYPE t_duration_seconds histogram\n",
    "t_duration_seconds_bucket{le=\"0.005\"} 1\n",
    "t_duration_seconds_bucket{le=\"5\"} 1\n",
    "t_duration_seconds_bucket{le=\"10\"} 2\n",
    "t_duration_seconds_bucket{le=\"7200\"} 2\n",
    "t_duration_seconds_bucket{le=\"+Inf\"} 3\n",
    "t_duration_seconds_sum 10007.003\n",
    "t_duration_seconds_count 3\n",
  };
  for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
    if (!strstr(buf_str(&out), want[i])) fprintf(stderr, "# missing: %s", want[i]);
    CHECK(strstr(buf_str(&out), want[i]) != NULL);
  }
  metrics_reset();
}

int main(void)
{
  test_journal();
  test_metrics();
  return tap_done();
}
