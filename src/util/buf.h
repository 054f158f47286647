/* buf.h: the one growable byte buffer (after git's strbuf).
 *
 * A buf is never NULL-data for readers: buf_str() returns "" when empty.
 * Allocation failure aborts (out of memory is not recoverable here); every
 * other failure is reported through err.h. Use it to build SQL, XML, JSON,
 * paths and messages. buf_detach() hands the string over to the caller. */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include "util/cleanup.h"

struct buf {
  char *data;   /* NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
};
#define BUF_INIT { NULL, 0, 0 }

void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) PRINTF(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) PRINTF(2, 0);
/* XML-escapes s (&, <, >, ", ') */
void buf_put_xml_escaped(struct buf *b, const char *s);
/* escapes only what element text needs (&, <, >), so messages stay readable */
void buf_put_xml_text(struct buf *b, const char *s);
void buf_reset(struct buf *b);
const char *buf_str(const struct buf *b);
char *buf_detach(struct buf *b); /* never NULL; caller frees */
void buf_free(struct buf *b);    /* releases data, leaves b empty */

static inline void buf_cleanup(struct buf *b) { buf_free(b); }
#define AUTOBUF __attribute__((cleanup(buf_cleanup)))

/* xstrdup/xasprintf: abort on OOM, never return NULL (NULL in -> NULL out for xstrdup) */
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) PRINTF(1, 2);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* A large buffer (a chunk's 4 MiB), freed with free(): aligned to 2 MiB,
 * its whole 2 MiB parts in transparent huge pages where the kernel has them.
 * Fresh memory costs a fault a page: measured on these VMs, 3.2-3.4 ms a MiB
 * in 4 KiB pages against 0.08 ms a MiB in 2 MiB ones. Aborts on OOM. */
void *xalloc_large(size_t size);
