/* input.c: the one check every request's text passes before a handler sees it.
 *
 * Names, descriptions, paths and every other value a client sends end up in
 * file names, domain XML, recovery records, logs and events. A control
 * character in any of them (a newline above all) can split a record or a log
 * line into something the client chose, so none is accepted anywhere: C0
 * (U+0000-U+001F), DEL and the C1 range (U+0080-U+009F). XML bodies are trimmed
 * of surrounding whitespace by the parser already (repr/xml.c), so pretty
 * printed bodies pass. */
#include "api/api.h"
#include "util/buf.h"
#include "util/err.h"
#include <stdio.h>
#include <string.h>

/* the code point of the first control character of S, or -1 */
static int first_control(const char *s)
{
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) return *p;
    if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) return p[1];
  }
  return -1;
}

static int refuse(const char *what, int cp)
{
  return error(ERR_INVALID, "invalid value for %s: it contains the control character U+%04X; names, "
               "descriptions and paths must be printable text", what, (unsigned)cp);
}

/* checks N's text and attributes, then its children; PATH is "vm.os" */
static int check_node(const struct node *n, struct buf *path)
{
  size_t mark = path->len;
  if (mark) buf_putc(path, '.');
  buf_puts(path, n->name);
  int cp;
  if (n->text && (cp = first_control(n->text)) >= 0) {
    AUTOFREE char *what = xasprintf("'%s'", buf_str(path));
    return refuse(what, cp);
  }
  for (size_t i = 0; i < n->nattrs; i++)
    if ((cp = first_control(n->attrs[i].value)) >= 0 || (cp = first_control(n->attrs[i].name)) >= 0) {
      AUTOFREE char *what = xasprintf("'%s' attribute '%s'", buf_str(path), n->attrs[i].name);
      return refuse(what, cp);
    }
  for (size_t i = 0; i < n->nkids; i++)
    if (check_node(n->kids[i], path) < 0) return -1;
  path->len = mark;
  if (path->data) path->data[mark] = 0;
  return 0;
}

int api_check_input(const struct api_request *req)
{
  int cp;
  if (req->path && (cp = first_control(req->path)) >= 0) return refuse("the path", cp);
  for (const struct api_param *q = req->query; q && q->name; q++)
    if ((cp = first_control(q->name)) >= 0 || (cp = first_control(q->value)) >= 0) {
      AUTOFREE char *what = xasprintf("parameter '%s'", q->name);
      return refuse(what, cp);
    }
  if (!req->body) return 0;
  struct buf path = BUF_INIT;
  int rc = check_node(req->body, &path);
  buf_free(&path);
  return rc;
}
