/* search.c: the subset of oVirt's search language that clients send.
 *
 * A query is a list of terms joined by "and": FIELD=VALUE or FIELD!=VALUE,
 * with optional spaces around the operator, VALUE either a bare word or
 * "double quoted" (\" and \\ escape inside quotes), and '*' matching any run
 * of characters. The whole query is parsed once into a list of terms, so
 * matching a collection does no parsing per object. An empty query matches
 * everything. */
#include "api/search.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/vec.h"
#include <ctype.h>
#include <string.h>
#include <strings.h>

struct search_term {
  const char *field;  /* borrowed from the caller's fields list (canonical spelling) */
  char *value;        /* glob pattern */
  bool negate;        /* != */
};
DEFINE_VEC(termvec, struct search_term);

struct search {
  struct termvec terms;
  bool case_sensitive;
};

void search_free(struct search *s)
{
  if (!s) return;
  for (size_t i = 0; i < s->terms.len; i++) free(s->terms.ptr[i].value);
  free(s->terms.ptr);
  free(s);
}

static const char *skip_space(const char *p)
{
  while (isspace((unsigned char)*p)) p++;
  return p;
}

static bool is_field_char(char c)
{
  return isalnum((unsigned char)c) || c == '_' || c == '.';
}

/* the caller's spelling of field name [start, start+len), or NULL + error
 * naming the valid fields */
static const char *lookup_field(const char *start, size_t len, const char *const *fields)
{
  for (const char *const *f = fields; f && *f; f++)
    if (strlen(*f) == len && strncasecmp(*f, start, len) == 0) return *f;

  AUTOBUF struct buf valid = BUF_INIT;
  for (const char *const *f = fields; f && *f; f++) buf_printf(&valid, "%s%s", f == fields ? "" : ", ", *f);
  error(ERR_INVALID, "unknown search field '%.*s': valid fields are %s", (int)len, start,
        valid.len ? buf_str(&valid) : "none");
  return NULL;
}

/* Reads a value at *pp into out: a quoted string or a run of non-space
 * characters. Advances *pp past it. */
static int parse_value(const char **pp, const char *field, struct buf *out)
{
  const char *p = *pp;
  if (*p == '"') {
    for (p++; *p != '"'; p++) {
      if (!*p) return error(ERR_INVALID, "unterminated quoted value for search field '%s'", field);
      if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
      buf_putc(out, *p);
    }
    *pp = p + 1;
    return 0;
  }
  while (*p && !isspace((unsigned char)*p)) {
    if (*p == '"') return error(ERR_INVALID, "stray quote in value of search field '%s'", field);
    buf_putc(out, *p++);
  }
  if (out->len == 0) return error(ERR_INVALID, "missing value for search field '%s'", field);
  *pp = p;
  return 0;
}

/* true when p starts with the keyword kw followed by a space or the end */
static bool at_keyword(const char *p, const char *kw)
{
  size_t n = strlen(kw);
  return strncasecmp(p, kw, n) == 0 && (p[n] == 0 || isspace((unsigned char)p[n]));
}

struct search *search_parse(const char *query, const char *const *fields, bool case_sensitive)
{
  AUTOPTR(search) s = xcalloc(1, sizeof(*s));
  s->case_sensitive = case_sensitive;
  const char *p = skip_space(query ? query : "");

  while (*p) {
    if (s->terms.len > 0) {
      if (at_keyword(p, "or")) {
        error(ERR_UNSUPPORTED, "'or' is not supported in search queries, only 'and'");
        return NULL;
      }
      if (!at_keyword(p, "and")) {
        error(ERR_INVALID, "invalid search query '%s': expected 'and' at '%s'", query, p);
        return NULL;
      }
      p = skip_space(p + 3);
      if (!*p) {
        error(ERR_INVALID, "invalid search query '%s': nothing after 'and'", query);
        return NULL;
      }
    }

    const char *start = p;
    while (is_field_char(*p)) p++;
    if (p == start) {
      error(ERR_INVALID, "invalid search query '%s': expected a field name at '%s'", query, p);
      return NULL;
    }
    const char *field = lookup_field(start, (size_t)(p - start), fields);
    if (!field) return NULL;

    p = skip_space(p);
    bool negate = false;
    if (p[0] == '!' && p[1] == '=') {
      negate = true;
      p += 2;
    } else if (p[0] == '=') {
      p++;
    } else if (*p == '<' || *p == '>') {
      error(ERR_UNSUPPORTED, "operator '%c' is not supported in search queries, only '=' and '!='", *p);
      return NULL;
    } else {
      error(ERR_INVALID, "invalid search query '%s': expected '=' or '!=' after '%s'", query, field);
      return NULL;
    }

    p = skip_space(p);
    if (*p == '=') {  /* "name==x": an operator we do not have, not the value "=x" */
      error(ERR_INVALID, "invalid search query '%s': unexpected '=' after '%s'", query, field);
      return NULL;
    }
    AUTOBUF struct buf value = BUF_INIT;
    if (parse_value(&p, field, &value) < 0) return NULL;
    struct search_term t = { field, buf_detach(&value), negate };
    vec_push(&s->terms, t);
    p = skip_space(p);
  }
  return steal_pointer(&s);
}

bool search_match(const struct search *s, search_getter get, const void *obj)
{
  for (size_t i = 0; i < s->terms.len; i++) {
    const struct search_term *t = &s->terms.ptr[i];
    const char *text = get(obj, t->field);
    bool m = search_glob(t->value, text ? text : "", s->case_sensitive);
    if (m == t->negate) return false;
  }
  return true;
}

static bool chars_equal(char a, char b, bool case_sensitive)
{
  if (case_sensitive) return a == b;
  return tolower((unsigned char)a) == tolower((unsigned char)b);
}

/* Glob without recursion: on a mismatch, retry from the last '*' letting it
 * swallow one more character of text. Only the last star needs remembering:
 * '*' matches any run, so earlier stars never need to give back what they
 * matched. Worst case O(len(pattern) * len(text)). */
bool search_glob(const char *pattern, const char *text, bool case_sensitive)
{
  const char *star = NULL, *resume = NULL;
  while (*text) {
    if (*pattern == '*') {
      star = pattern++;
      resume = text;
    } else if (*pattern && chars_equal(*pattern, *text, case_sensitive)) {
      pattern++;
      text++;
    } else if (star) {
      pattern = star + 1;
      text = ++resume;
    } else {
      return false;
    }
  }
  while (*pattern == '*') pattern++;
  return *pattern == 0;
}
