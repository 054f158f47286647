/* err.h: the one error convention.
 *
 * Functions return 0 / -1 or pointer / NULL. Where a failure happens, the code
 * records it once with error() (a code and a message, kept per thread with the
 * function and line); callers only propagate -1/NULL. The HTTP layer turns the
 * code into a status and an oVirt <fault> in one place (http/fault.c).
 *
 * Messages: lowercase start, no full stop, the problem first, the subject in
 * quotes: "cannot attach disk 'db-data': snapshot 'nightly' is locked". */
#pragma once
#include "util/cleanup.h"

enum err_code {
  ERR_NONE = 0,
  ERR_INVALID,     /* 400: malformed or missing input */
  ERR_AUTH,        /* 401: no or bad credentials */
  ERR_FORBIDDEN,   /* 403 */
  ERR_NOT_FOUND,   /* 404: an id or path that does not exist */
  ERR_METHOD,      /* 405: path exists, method does not */
  ERR_CONFLICT,    /* 409: state forbids it now (locked, running, attached...) */
  ERR_TOO_LARGE,   /* 413: body over the limit */
  ERR_UNSUPPORTED, /* 501: understood, not implemented */
  ERR_INTERNAL,    /* 500: a bug or a failing backend */
  ERR_UNAVAILABLE, /* 503: a backend (libvirt, store) does not answer */
  ERR_THROTTLED,   /* 429: too many failed logins; try again later */
  ERR_LAST
};

/* error_at records code+message for this thread and returns -1, so that
 * `return error(ERR_INVALID, "...")` reads naturally. */
int error_at(enum err_code code, const char *func, int line, const char *fmt, ...)
    PRINTF(4, 5);
#define error(code, ...) error_at((code), __func__, __LINE__, __VA_ARGS__)

/* error_prefix prepends context ("cannot start VM 'x': ") to the current
 * message without changing its code. Returns -1. */
int error_prefix(const char *fmt, ...) PRINTF(1, 2);

enum err_code error_code(void);
const char *error_message(void); /* never NULL; "" when none */
const char *error_where(void);   /* "func:line" of the report */
const char *error_code_name(enum err_code c);
int error_http_status(enum err_code c);
void error_clear(void);

/* Saved copy of an error, to carry it across a cleanup that may overwrite it. */
struct err_saved { enum err_code code; char *msg; };
void error_save(struct err_saved *s);
int error_restore(struct err_saved *s); /* returns -1 */
