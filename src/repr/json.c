/* json.c: node trees to and from JSON in oVirt's style, through jansson */
#include "node.h"
#include "util/err.h"
#include <jansson.h>
#include <string.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

static json_t *json_of(const struct node *n);

/* children with the same name become one array; links and the kids of a
 * collection are always arrays. Linear in the number of kids: one pass counts
 * each name, the next appends to that name's array, both through jansson's
 * hash tables (a list of 100,000 events must not cost 10^10 comparisons). */
static void json_add_kids(json_t *obj, const struct node *n)
{
  AUTOPTR(json) counts = json_object();  /* name -> number of kids with it */
  AUTOPTR(json) arrays = json_object();  /* name -> its array in obj */
  for (size_t i = 0; i < n->nkids; i++) {
    const char *name = n->kids[i]->name;
    json_t *c = json_object_get(counts, name);
    json_object_set_new(counts, name, json_integer(c ? json_integer_value(c) + 1 : 1));
  }
  for (size_t i = 0; i < n->nkids; i++) {
    const struct node *k = n->kids[i];
    json_int_t count = json_integer_value(json_object_get(counts, k->name));
    if (count == 1 && !n->is_list && strcmp(k->name, "link") != 0) {
      json_object_set_new(obj, k->name, json_of(k));
      continue;
    }
    json_t *arr = json_object_get(arrays, k->name);
    if (!arr) {
      arr = json_array();
      json_object_set(arrays, k->name, arr);
      json_object_set_new(obj, k->name, arr);
    }
    json_array_append_new(arr, json_of(k));
  }
}

static json_t *json_of(const struct node *n)
{
  if (n->text && !n->nkids && !n->nattrs) return json_string(n->text);
  json_t *obj = json_object();
  for (size_t i = 0; i < n->nattrs; i++)
    json_object_set_new(obj, n->attrs[i].name, json_string(n->attrs[i].value));
  if (n->text) json_object_set_new(obj, "value", json_string(n->text));
  json_add_kids(obj, n);
  return obj;
}

void node_to_json(const struct node *n, struct buf *out)
{
  AUTOPTR(json) j = json_of(n);
  if (n->is_list && !n->nkids) {
    /* an empty collection is {} in oVirt */
  }
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (s) {
    buf_puts(out, s);
    buf_putc(out, '\n');
    free(s);
  }
}

static int node_fill_json(struct node *n, json_t *v, int depth);

static int node_add_json_value(struct node *parent, const char *key, json_t *v, int depth)
{
  if (json_is_array(v)) {
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
      if (json_is_array(e))
        return error(ERR_INVALID, "invalid JSON: nested array under '%s'", key);
      if (node_add_json_value(parent, key, e, depth) < 0) return -1;
    }
    return 0;
  }
  if (json_is_object(v)) {
    struct node *c = node_add(parent, key);
    return node_fill_json(c, v, depth + 1);
  }
  if (json_is_null(v)) return 0;
  /* scalar: id/href on an object are attributes, like XML */
  char numbuf[64];
  const char *text;
  if (json_is_string(v)) text = json_string_value(v);
  else if (json_is_true(v)) text = "true";
  else if (json_is_false(v)) text = "false";
  else if (json_is_integer(v)) { snprintf(numbuf, sizeof numbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); text = numbuf; }
  else { snprintf(numbuf, sizeof numbuf, "%.17g", json_real_value(v)); text = numbuf; }
  if (strcmp(key, "id") == 0 || strcmp(key, "href") == 0 || strcmp(key, "rel") == 0)
    node_set_attr(parent, key, text);
  else
    node_add_text(parent, key, text);
  return 0;
}

static int node_fill_json(struct node *n, json_t *v, int depth)
{
  if (depth > 64) return error(ERR_INVALID, "invalid JSON: nested too deeply");
  const char *key;
  json_t *val;
  json_object_foreach(v, key, val) {
    if (node_add_json_value(n, key, val, depth) < 0) return -1;
  }
  return 0;
}

struct node *node_from_json(const char *data, size_t len, const char *root_name)
{
  json_error_t jerr;
  AUTOPTR(json) j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!j) {
    error(ERR_INVALID, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    return NULL;
  }
  if (!json_is_object(j)) {
    error(ERR_INVALID, "malformed request: the JSON body must be an object");
    return NULL;
  }
  AUTOPTR(node) n = node_new(root_name ? root_name : "request");
  if (node_fill_json(n, j, 0) < 0) return NULL;
  return steal_pointer(&n);
}
