/* node.h: the representation tree shared by XML and JSON.
 *
 * The API layer builds a node tree for every answer and renders it once, as
 * XML (oVirt's default) or JSON (Accept: application/json). Request bodies in
 * either format are parsed into the same tree, so handlers read one shape.
 *
 * Ownership: a node owns its name, text, attributes and children; node_free()
 * releases the whole subtree. Builders never fail (OOM aborts). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "util/buf.h"
#include "util/cleanup.h"

struct node_attr { char *name; char *value; };

struct node {
  char *name;               /* element name, e.g. "vm" */
  char *text;               /* text content of a leaf, or NULL */
  struct node_attr *attrs;  /* id, href, rel ... */
  size_t nattrs;
  struct node **kids;
  size_t nkids;
  size_t capkids;           /* allocated slots of kids (grows geometrically) */
  bool is_list;             /* a collection: JSON renders its kids as arrays */
};

struct node *node_new(const char *name);
void node_free(struct node *n);
DEFINE_AUTOPTR(node, struct node, node_free)

/* builders; each returns the new child */
struct node *node_add(struct node *parent, const char *name);
struct node *node_add_list(struct node *parent, const char *name);
/* adds <name>text</name>; a NULL text adds nothing and returns NULL */
struct node *node_add_text(struct node *parent, const char *name, const char *text);
struct node *node_add_textf(struct node *parent, const char *name, const char *fmt, ...) PRINTF(3, 4);
struct node *node_add_bool(struct node *parent, const char *name, bool v);
struct node *node_add_int(struct node *parent, const char *name, int64_t v);
/* adds <name id="ID" href="HREF"/> (a reference to another entity) */
struct node *node_add_ref(struct node *parent, const char *name, const char *id, const char *href);
/* adds <link rel="REL" href="HREF"/> */
void node_add_link(struct node *parent, const char *rel, const char *href);
void node_set_attr(struct node *n, const char *name, const char *value);
/* takes ownership of child and appends it */
void node_append(struct node *parent, struct node *child);

/* readers; NULL-safe */
struct node *node_child(const struct node *n, const char *name);
/* text of child NAME (or of a path "a/b/c"); NULL when absent or empty */
const char *node_text(const struct node *n, const char *path);
/* attribute value; for JSON input id/href are attributes too */
const char *node_attr(const struct node *n, const char *name);

/* typed readers: return 1 when present and valid, 0 when absent (out untouched),
 * -1 with ERR_INVALID naming the field when present but malformed */
int node_get_bool(const struct node *n, const char *path, bool *out);
int node_get_int64(const struct node *n, const char *path, int64_t *out);

/* rendering; pretty=true indents as oVirt does */
void node_to_xml(const struct node *n, struct buf *out);
/* JSON in oVirt's style: an entity is an object without its element name;
 * a collection is {"vm": [...]}; values are strings */
void node_to_json(const struct node *n, struct buf *out);

/* parsing; NULL with ERR_INVALID (message says where) on malformed input.
 * node_from_json names the root `root_name` (JSON has no root element). */
struct node *node_from_xml(const char *data, size_t len);
struct node *node_from_json(const char *data, size_t len, const char *root_name);

/* xml.c: parses XML from outside (request bodies, OVFs) with libxml2: a
 * document with a <!DOCTYPE> is refused (ERR_INVALID, "WHAT has a
 * <!DOCTYPE>") as soon as the parser meets it, so no entity is declared or
 * expanded and nothing is fetched; malformed XML is ERR_INVALID too. The
 * caller frees the document with xmlFreeDoc(). */
struct _xmlDoc;
struct _xmlDoc *xml_read_untrusted(const char *data, size_t len, const char *what);
