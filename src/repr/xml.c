/* xml.c: XML request bodies to node trees, through libxml2.
 * A document with a <!DOCTYPE> is refused before its DTD is read, so no entity
 * is ever declared, expanded or fetched; no network is touched. */
#include "node.h"
#include "util/err.h"
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

DEFINE_AUTOPTR(xmlDoc, xmlDoc, xmlFreeDoc)

static void trim_copy(struct node *n, const char *s)
{
  while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
  size_t len = strlen(s);
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\n' || s[len - 1] == '\t' || s[len - 1] == '\r')) len--;
  if (!len) return;
  struct buf b = BUF_INIT;
  buf_add(&b, s, len);
  n->text = buf_detach(&b);
}

static int node_fill_xml(struct node *n, xmlNode *x, int depth)
{
  if (depth > 64) return error(ERR_INVALID, "malformed XML: nested too deeply");
  for (xmlAttr *a = x->properties; a; a = a->next) {
    xmlChar *v = xmlNodeListGetString(x->doc, a->children, 1);
    node_set_attr(n, (const char *)a->name, v ? (const char *)v : "");
    xmlFree(v);
  }
  bool has_elem = false;
  for (xmlNode *c = x->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    has_elem = true;
    struct node *k = node_add(n, (const char *)c->name);
    if (node_fill_xml(k, c, depth + 1) < 0) return -1;
  }
  if (!has_elem) {
    xmlChar *t = xmlNodeGetContent(x);
    if (t) trim_copy(n, (const char *)t);
    xmlFree(t);
  }
  return 0;
}

static _Thread_local char xml_last_err[256];

static void xml_quiet(void *ctx, const char *msg, ...)
{
  (void)ctx;
  (void)msg;
}

DEFINE_AUTOPTR(xmlParserCtxt, xmlParserCtxt, xmlFreeParserCtxt)

/* SAX: a <!DOCTYPE> stops the parse before any entity is declared */
static void refuse_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                           const xmlChar *system_id)
{
  (void)name;
  (void)external_id;
  (void)system_id;
  xmlParserCtxtPtr ctxt = ctx;
  ctxt->_private = (void *)refuse_doctype;
  xmlStopParser(ctxt);
}

xmlDoc *xml_read_untrusted(const char *data, size_t len, const char *what)
{
  if (len > INT32_MAX) return error(ERR_INVALID, "malformed XML: %s is too large", what), NULL;
  AUTOPTR(xmlParserCtxt) ctxt = xmlNewParserCtxt();
  if (!ctxt) return error(ERR_INTERNAL, "cannot parse XML: out of memory"), NULL;
  ctxt->sax->internalSubset = refuse_doctype;
  xmlDoc *doc = xmlCtxtReadMemory(ctxt, data, (int)len, what, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (ctxt->_private == (void *)refuse_doctype) {
    xmlFreeDoc(doc);
    return error(ERR_INVALID, "%s has a <!DOCTYPE>: XML with a document type declaration is "
                 "refused (no DTDs and no entities); remove it", what), NULL;
  }
  if (!doc) {
    const xmlError *e = xmlCtxtGetLastError(ctxt);
    snprintf(xml_last_err, sizeof xml_last_err, "%s", e && e->message ? e->message : "unreadable");
    size_t l = strlen(xml_last_err);
    while (l && xml_last_err[l - 1] == '\n') xml_last_err[--l] = 0;
    error(ERR_INVALID, "malformed XML at line %d: %s", e ? e->line : 0, xml_last_err);
  }
  return doc;
}

struct node *node_from_xml(const char *data, size_t len)
{
  xmlSetGenericErrorFunc(NULL, xml_quiet);
  AUTOPTR(xmlDoc) doc = xml_read_untrusted(data, len, "the request body");
  if (!doc) return NULL;
  xmlNode *root = xmlDocGetRootElement(doc);
  if (!root) {
    error(ERR_INVALID, "malformed XML: no root element");
    return NULL;
  }
  AUTOPTR(node) n = node_new((const char *)root->name);
  if (node_fill_xml(n, root, 0) < 0) return NULL;
  return steal_pointer(&n);
}
