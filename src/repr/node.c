#include "node.h"
#include "util/err.h"
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct node *node_new(const char *name)
{
  struct node *n = xcalloc(1, sizeof *n);
  n->name = xstrdup(name);
  return n;
}

void node_free(struct node *n)
{
  if (!n) return;
  for (size_t i = 0; i < n->nkids; i++) node_free(n->kids[i]);
  for (size_t i = 0; i < n->nattrs; i++) {
    free(n->attrs[i].name);
    free(n->attrs[i].value);
  }
  free(n->kids);
  free(n->attrs);
  free(n->name);
  free(n->text);
  free(n);
}

void node_append(struct node *parent, struct node *child)
{
  /* geometric growth: a collection of N entities costs O(N), not O(N^2) copies */
  if (parent->nkids == parent->capkids) {
    parent->capkids = parent->capkids ? parent->capkids * 2 : 8;
    parent->kids = xrealloc(parent->kids, parent->capkids * sizeof *parent->kids);
  }
  parent->kids[parent->nkids++] = child;
}

struct node *node_add(struct node *parent, const char *name)
{
  struct node *c = node_new(name);
  node_append(parent, c);
  return c;
}

struct node *node_add_list(struct node *parent, const char *name)
{
  struct node *c = node_add(parent, name);
  c->is_list = true;
  return c;
}

struct node *node_add_text(struct node *parent, const char *name, const char *text)
{
  if (!text) return NULL;
  struct node *c = node_add(parent, name);
  c->text = xstrdup(text);
  return c;
}

struct node *node_add_textf(struct node *parent, const char *name, const char *fmt, ...)
{
  struct buf b = BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&b, fmt, ap);
  va_end(ap);
  struct node *c = node_add(parent, name);
  c->text = buf_detach(&b);
  return c;
}

struct node *node_add_bool(struct node *parent, const char *name, bool v)
{
  return node_add_text(parent, name, v ? "true" : "false");
}

struct node *node_add_int(struct node *parent, const char *name, int64_t v)
{
  return node_add_textf(parent, name, "%" PRId64, v);
}

void node_set_attr(struct node *n, const char *name, const char *value)
{
  if (!value) return;
  for (size_t i = 0; i < n->nattrs; i++) {
    if (strcmp(n->attrs[i].name, name) == 0) {
      free(n->attrs[i].value);
      n->attrs[i].value = xstrdup(value);
      return;
    }
  }
  n->attrs = xrealloc(n->attrs, (n->nattrs + 1) * sizeof *n->attrs);
  n->attrs[n->nattrs].name = xstrdup(name);
  n->attrs[n->nattrs].value = xstrdup(value);
  n->nattrs++;
}

struct node *node_add_ref(struct node *parent, const char *name, const char *id, const char *href)
{
  struct node *c = node_add(parent, name);
  if (href) node_set_attr(c, "href", href);
  node_set_attr(c, "id", id);
  return c;
}

void node_add_link(struct node *parent, const char *rel, const char *href)
{
  struct node *c = node_add(parent, "link");
  node_set_attr(c, "href", href);
  node_set_attr(c, "rel", rel);
}

struct node *node_child(const struct node *n, const char *name)
{
  if (!n) return NULL;
  for (size_t i = 0; i < n->nkids; i++)
    if (strcmp(n->kids[i]->name, name) == 0) return n->kids[i];
  return NULL;
}

static const struct node *node_walk(const struct node *n, const char *path)
{
  char seg[128];
  while (n && *path) {
    const char *slash = strchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : strlen(path);
    if (len >= sizeof seg) return NULL;
    memcpy(seg, path, len);
    seg[len] = 0;
    n = node_child(n, seg);
    path += len + (slash ? 1 : 0);
  }
  return n;
}

const char *node_text(const struct node *n, const char *path)
{
  const struct node *c = node_walk(n, path);
  if (!c || !c->text || !c->text[0]) return NULL;
  return c->text;
}

const char *node_attr(const struct node *n, const char *name)
{
  if (!n) return NULL;
  for (size_t i = 0; i < n->nattrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return n->attrs[i].value;
  return NULL;
}

int node_get_bool(const struct node *n, const char *path, bool *out)
{
  const char *t = node_text(n, path);
  if (!t) return 0;
  if (strcmp(t, "true") == 0 || strcmp(t, "1") == 0) { *out = true; return 1; }
  if (strcmp(t, "false") == 0 || strcmp(t, "0") == 0) { *out = false; return 1; }
  return error(ERR_INVALID, "invalid value '%s' for '%s': expected true or false", t, path);
}

int node_get_int64(const struct node *n, const char *path, int64_t *out)
{
  const char *t = node_text(n, path);
  if (!t) return 0;
  char *end;
  errno = 0;
  long long v = strtoll(t, &end, 10);
  if (errno || end == t || *end)
    return error(ERR_INVALID, "invalid value '%s' for '%s': expected a whole number", t, path);
  *out = v;
  return 1;
}

/* ---- XML rendering ---- */

static void xml_indent(struct buf *out, int depth)
{
  for (int i = 0; i < depth; i++) buf_puts(out, "    ");
}

static void xml_render(const struct node *n, struct buf *out, int depth)
{
  xml_indent(out, depth);
  buf_printf(out, "<%s", n->name);
  for (size_t i = 0; i < n->nattrs; i++) {
    buf_printf(out, " %s=\"", n->attrs[i].name);
    buf_put_xml_escaped(out, n->attrs[i].value);
    buf_putc(out, '"');
  }
  if (!n->nkids && !n->text) {
    buf_puts(out, "/>\n");
    return;
  }
  buf_putc(out, '>');
  if (n->text) buf_put_xml_text(out, n->text);
  if (n->nkids) {
    buf_putc(out, '\n');
    for (size_t i = 0; i < n->nkids; i++) xml_render(n->kids[i], out, depth + 1);
    xml_indent(out, depth);
  }
  buf_printf(out, "</%s>\n", n->name);
}

void node_to_xml(const struct node *n, struct buf *out)
{
  buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
  xml_render(n, out, 0);
}
