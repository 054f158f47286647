#include "util/buf.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void oom(void)
{
  fputs("snapback: out of memory\n", stderr);
  abort();
}

void *xrealloc(void *p, size_t size)
{
  void *q = realloc(p, size ? size : 1);
  if (!q) oom();
  return q;
}

#define HUGE_PAGE ((size_t)2 << 20)

void *xalloc_large(size_t size)
{
  void *p = NULL;
  if (posix_memalign(&p, HUGE_PAGE, size ? size : 1) != 0) oom();
  size_t whole = size / HUGE_PAGE * HUGE_PAGE;
  /* only a hint: without THP the buffer is plain memory */
  if (whole) (void)madvise(p, whole, MADV_HUGEPAGE);
  return p;
}

void *xcalloc(size_t n, size_t size)
{
  void *q = calloc(n ? n : 1, size ? size : 1);
  if (!q) oom();
  return q;
}

char *xstrdup(const char *s)
{
  if (!s) return NULL;
  char *d = strdup(s);
  if (!d) oom();
  return d;
}

void buf_grow(struct buf *b, size_t extra)
{
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  b->data = xrealloc(b->data, cap);
  b->cap = cap;
}

void buf_add(struct buf *b, const void *data, size_t len)
{
  buf_grow(b, len);
  memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = 0;
}

void buf_puts(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }
void buf_putc(struct buf *b, char c) { buf_add(b, &c, 1); }

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
  if (!fmt) return; /* keeps GCC 12's -Wformat-truncation quiet under UBSan */
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0) return;
  buf_grow(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(b, fmt, ap);
  va_end(ap);
}

char *xasprintf(const char *fmt, ...)
{
  struct buf b = BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&b, fmt, ap);
  va_end(ap);
  return buf_detach(&b);
}

static void xml_escape(struct buf *b, const char *s, bool quotes)
{
  const char *run = s;
  for (; *s; s++) {
    const char *rep = NULL;
    switch (*s) {
    case '&': rep = "&amp;"; break;
    case '<': rep = "&lt;"; break;
    case '>': rep = "&gt;"; break;
    case '"': rep = quotes ? "&quot;" : NULL; break;
    case '\'': rep = quotes ? "&apos;" : NULL; break;
    default: break;
    }
    if (!rep) continue;
    buf_add(b, run, (size_t)(s - run));
    buf_puts(b, rep);
    run = s + 1;
  }
  buf_add(b, run, (size_t)(s - run));
}

void buf_put_xml_escaped(struct buf *b, const char *s) { xml_escape(b, s, true); }
void buf_put_xml_text(struct buf *b, const char *s) { xml_escape(b, s, false); }

void buf_reset(struct buf *b)
{
  b->len = 0;
  if (b->data) b->data[0] = 0;
}

const char *buf_str(const struct buf *b) { return b->data ? b->data : ""; }

char *buf_detach(struct buf *b)
{
  char *s = b->data ? b->data : xstrdup("");
  b->data = NULL;
  b->len = b->cap = 0;
  return s;
}

void buf_free(struct buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
