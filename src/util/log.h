/* log.h: daemon logging with a level, to the systemd journal or to stderr.
 *
 * Log what happened, not errors already reported: an error is reported once,
 * by whoever finally handles it (the HTTP layer logs failed requests).
 *
 * Sink: log_open() picks the journal when systemd started us (JOURNAL_STREAM
 * names the file our stderr is): each line is then one native-protocol
 * datagram to /run/systemd/journal/socket with MESSAGE, PRIORITY,
 * SYSLOG_IDENTIFIER and the thread's fields (VM, JOB, USER, CODE). Otherwise,
 * and whenever the journal refuses a message, lines go to stderr with a UTC
 * timestamp and the fields in brackets. log_reopen() (SIGHUP) decides again.
 *
 * Every function here is thread-safe. */
#pragma once
#include "util/cleanup.h"
#include "util/enumstr.h"

#define LOG_JOURNAL_SOCKET "/run/systemd/journal/socket"

/* not syslog.h's LOG_* macros: do not include <syslog.h> next to this */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_LEVEL_LAST };
ENUM_DECL(log_level); /* "debug", "info", "warning", "error" */

void log_set_level(enum log_level l);
enum log_level log_get_level(void);
void log_msg(enum log_level l, const char *fmt, ...) PRINTF(2, 3);
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* chooses the sink (see above); before it, and after log_close, stderr */
void log_open(void);
/* the same with another journal socket (tests); 0 when the journal is used */
int log_open_journal(const char *socket_path);
/* SIGHUP: closes and chooses the sink again */
void log_reopen(void);
void log_close(void);

/* The structured fields every line of the calling thread carries, until
 * replaced. Strings are borrowed: the caller keeps them alive while set.
 * Set by the dispatcher (VM, JOB, USER) and the HTTP layer (USER, CODE). */
struct log_fields {
  const char *vm;    /* VM id */
  const char *job;   /* job id */
  const char *user;  /* acting user name */
  const char *code;  /* error code name (ERR_NOT_FOUND...) or audit event code */
};
/* sets the thread's fields (NULL: none); returns the previous ones to restore */
const struct log_fields *log_fields_set(const struct log_fields *f);
/* sets the thread's fields until the end of the enclosing scope */
static inline void log_fields_restorep(const struct log_fields **outer) { log_fields_set(*outer); }
#define LOG_FIELDS_SCOPED(f) \
  __attribute__((cleanup(log_fields_restorep), unused)) const struct log_fields *log_fields_outer_ = log_fields_set(f)
