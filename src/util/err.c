#include "util/err.h"
#include "util/buf.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local enum err_code cur_code;
static _Thread_local char *cur_msg;
static _Thread_local char cur_where[96];

static void set_msg(char *m) { free(cur_msg); cur_msg = m; }

int error_at(enum err_code code, const char *func, int line, const char *fmt, ...)
{
  va_list ap;
  struct buf b = BUF_INIT;
  va_start(ap, fmt);
  buf_vprintf(&b, fmt, ap);
  va_end(ap);
  cur_code = code;
  set_msg(buf_detach(&b));
  snprintf(cur_where, sizeof cur_where, "%s:%d", func, line);
  return -1;
}

int error_prefix(const char *fmt, ...)
{
  va_list ap;
  struct buf b = BUF_INIT;
  va_start(ap, fmt);
  buf_vprintf(&b, fmt, ap);
  va_end(ap);
  buf_puts(&b, cur_msg ? cur_msg : "unknown error");
  if (cur_code == ERR_NONE) cur_code = ERR_INTERNAL;
  set_msg(buf_detach(&b));
  return -1;
}

enum err_code error_code(void) { return cur_code; }
const char *error_message(void) { return cur_msg ? cur_msg : ""; }
const char *error_where(void) { return cur_where; }
void error_clear(void) { cur_code = ERR_NONE; set_msg(NULL); cur_where[0] = 0; }

void error_save(struct err_saved *s)
{
  s->code = cur_code;
  s->msg = cur_msg ? strdup(cur_msg) : NULL;
}

int error_restore(struct err_saved *s)
{
  cur_code = s->code;
  set_msg(s->msg);
  s->msg = NULL;
  return -1;
}

static const char *const code_names[ERR_LAST] = {
  [ERR_NONE] = "none", [ERR_INVALID] = "invalid", [ERR_AUTH] = "unauthorized",
  [ERR_FORBIDDEN] = "forbidden", [ERR_NOT_FOUND] = "not_found",
  [ERR_METHOD] = "method_not_allowed", [ERR_CONFLICT] = "conflict",
  [ERR_TOO_LARGE] = "too_large", [ERR_UNSUPPORTED] = "unsupported",
  [ERR_INTERNAL] = "internal", [ERR_UNAVAILABLE] = "unavailable", [ERR_THROTTLED] = "too_many_requests",
};
static const int code_status[ERR_LAST] = {
  [ERR_NONE] = 200, [ERR_INVALID] = 400, [ERR_AUTH] = 401, [ERR_FORBIDDEN] = 403,
  [ERR_NOT_FOUND] = 404, [ERR_METHOD] = 405, [ERR_CONFLICT] = 409,
  [ERR_TOO_LARGE] = 413, [ERR_UNSUPPORTED] = 501, [ERR_INTERNAL] = 500,
  [ERR_UNAVAILABLE] = 503, [ERR_THROTTLED] = 429,
};

const char *error_code_name(enum err_code c)
{
  return (unsigned)c < ERR_LAST ? code_names[c] : "internal";
}

int error_http_status(enum err_code c)
{
  return (unsigned)c < ERR_LAST ? code_status[c] : 500;
}
