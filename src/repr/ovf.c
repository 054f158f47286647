/* ovf.c: the OVF reader (see ovf.h), straight over libxml2's tree so that
 * namespace prefixes (ovf:, rasd:, xsi:) do not matter; the document is read
 * with xml_read_untrusted (no DTD, no entities, no network). */
#include "repr/ovf.h"
#include "repr/node.h"
#include "util/err.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

DEFINE_AUTOPTR(xmlDoc, xmlDoc, xmlFreeDoc)

static bool is_elem(const xmlNode *n, const char *name)
{
  return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* an attribute by local name, whatever its namespace prefix (ovf:, xsi:) */
static const char *attr(const xmlNode *n, const char *name)
{
  for (const xmlAttr *a = n->properties; a; a = a->next)
    if (strcmp((const char *)a->name, name) == 0 && a->children && a->children->content)
      return (const char *)a->children->content;
  return NULL;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
  for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
    if (is_elem(c, name)) return c;
  return NULL;
}

/* trimmed text of child NAME, or NULL; points into a static-free copy the caller frees */
static char *child_text(const xmlNode *n, const char *name)
{
  const xmlNode *c = child(n, name);
  if (!c) return NULL;
  xmlChar *t = xmlNodeGetContent(c);
  if (!t) return NULL;
  const char *s = (const char *)t;
  while (isspace((unsigned char)*s)) s++;
  size_t len = strlen(s);
  while (len && isspace((unsigned char)s[len - 1])) len--;
  char *out = len ? xcalloc(1, len + 1) : NULL;
  if (out) memcpy(out, s, len);
  xmlFree(t);
  return out;
}

static int64_t child_int(const xmlNode *n, const char *name)
{
  AUTOFREE char *t = child_text(n, name);
  if (!t) return -1;
  char *end;
  long long v = strtoll(t, &end, 10);
  return *end || v < 0 ? -1 : v;
}

static int64_t attr_int(const xmlNode *n, const char *name)
{
  const char *t = attr(n, name);
  if (!t) return -1;
  char *end;
  long long v = strtoll(t, &end, 10);
  return *end || v < 0 ? -1 : v;
}

static bool attr_true(const xmlNode *n, const char *name, bool dflt)
{
  const char *t = attr(n, name);
  if (!t) return dflt;
  return strcasecmp(t, "true") == 0 || strcmp(t, "1") == 0;
}

/* a section by its xsi:type suffix ("DiskSection_Type"), anywhere below n */
static const xmlNode *find_section(const xmlNode *n, const char *type)
{
  for (const xmlNode *c = n ? n->children : NULL; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    const char *t = attr(c, "type");
    if ((is_elem(c, "Section") || strstr((const char *)c->name, "Section")) && t && strstr(t, type))
      return c;
    if (strcmp(type, "DiskSection_Type") == 0 && is_elem(c, "DiskSection")) return c;
    const xmlNode *deep = find_section(c, type);
    if (deep) return deep;
  }
  return NULL;
}

void ovf_vm_free(struct ovf_vm *v)
{
  if (!v) return;
  for (size_t i = 0; i < v->ndisks; i++) {
    free(v->disks[i].href);
    free(v->disks[i].disk_id);
    free(v->disks[i].volume_id);
    free(v->disks[i].alias);
    free(v->disks[i].description);
    free(v->disks[i].interface);
  }
  free(v->disks);
  free(v->name);
  free(v->description);
  free(v->os_type);
  free(v->cluster_id);
  free(v);
}

/* the hardware Item (ResourceType 17) of a disk, matched by InstanceId or HostResource */
static const xmlNode *disk_item(const xmlNode *hw, const char *disk_id, const char *href)
{
  for (const xmlNode *it = hw ? hw->children : NULL; it; it = it->next) {
    if (!is_elem(it, "Item")) continue;
    if (child_int(it, "ResourceType") != 17) continue;
    AUTOFREE char *inst = child_text(it, "InstanceId");
    AUTOFREE char *res = child_text(it, "HostResource");
    if ((inst && disk_id && strcmp(inst, disk_id) == 0) || (res && href && strstr(res, href)))
      return it;
  }
  return NULL;
}

struct ovf_vm *ovf_parse(const char *xml, size_t len)
{
  if (len > INT32_MAX) return error(ERR_INVALID, "invalid OVF: too large"), NULL;
  AUTOPTR(xmlDoc) doc = xml_read_untrusted(xml, len, "the OVF");
  if (!doc) return error_prefix("invalid OVF: "), NULL;
  xmlNode *root = xmlDocGetRootElement(doc);
  if (!root) return error(ERR_INVALID, "invalid OVF: it is not well-formed XML"), NULL;
  if (!is_elem(root, "Envelope"))
    return error(ERR_INVALID, "invalid OVF: the root element is <%s>, not <Envelope>", root->name), NULL;
  struct ovf_vm *v = xcalloc(1, sizeof *v);
  v->memory = v->sockets = v->cores = v->threads = -1;
  const xmlNode *refs = child(root, "References");
  const xmlNode *content = child(root, "Content");
  if (!content) content = child(root, "VirtualSystem");
  if (!content) {
    ovf_vm_free(v);
    return error(ERR_INVALID, "invalid OVF: it describes no virtual system: no <Content> element"), NULL;
  }
  v->name = child_text(content, "Name");
  v->description = child_text(content, "Description");
  v->cluster_id = child_text(content, "ClusterId");
  const xmlNode *os = find_section(content, "OperatingSystemSection_Type");
  if (os) v->os_type = child_text(os, "Description");
  const xmlNode *hw = find_section(content, "VirtualHardwareSection_Type");
  for (const xmlNode *it = hw ? hw->children : NULL; it; it = it->next) {
    if (!is_elem(it, "Item")) continue;
    int64_t type = child_int(it, "ResourceType");
    if (type == 3) {
      v->sockets = child_int(it, "num_of_sockets");
      v->cores = child_int(it, "cpu_per_socket");
      v->threads = child_int(it, "threads_per_cpu");
      if (v->sockets < 0 && v->cores < 0) {
        int64_t q = child_int(it, "VirtualQuantity");
        if (q > 0) { v->sockets = 1; v->cores = q; }
      }
    } else if (type == 4) {
      int64_t mb = child_int(it, "VirtualQuantity");
      if (mb > 0 && mb <= (INT64_MAX >> 20)) v->memory = mb << 20;
    }
  }
  const xmlNode *ds = find_section(root, "DiskSection_Type");
  size_t cap = 0;
  for (const xmlNode *d = ds ? ds->children : NULL; d; d = d->next) {
    if (!is_elem(d, "Disk")) continue;
    const char *ref = attr(d, "fileRef");
    const char *href = NULL;
    for (const xmlNode *f = refs ? refs->children : NULL; ref && f; f = f->next) {
      if (!is_elem(f, "File")) continue;
      const char *fid = attr(f, "id"), *fh = attr(f, "href");
      if ((fid && strcmp(fid, ref) == 0) || (fh && strcmp(fh, ref) == 0)) { href = fh; break; }
    }
    if (!href) {
      ovf_vm_free(v);
      return error(ERR_INVALID, "invalid OVF: disk '%s' refers to file '%s', which <References> "
                   "does not list", attr(d, "diskId") ? attr(d, "diskId") : "?", ref ? ref : ""), NULL;
    }
    if (v->ndisks == cap) {
      cap = cap ? cap * 2 : 4;
      v->disks = xrealloc(v->disks, cap * sizeof *v->disks);
    }
    struct ovf_disk *od = &v->disks[v->ndisks++];
    *od = (struct ovf_disk){.href = xstrdup(href), .active = true};
    const char *slash = strchr(href, '/');
    od->disk_id = slash ? xasprintf("%.*s", (int)(slash - href), href) : xstrdup(href);
    od->volume_id = xstrdup(attr(d, "diskId"));
    od->alias = xstrdup(attr(d, "disk-alias"));
    od->description = xstrdup(attr(d, "disk-description"));
    od->provisioned_size = attr_int(d, "provisioned-size");
    if (od->provisioned_size < 0) {
      int64_t cap_b = attr_int(d, "capacity"), gib = attr_int(d, "size");
      od->provisioned_size = cap_b > 0 ? cap_b : gib > 0 && gib <= (INT64_MAX >> 30) ? gib << 30 : 0;
    }
    const char *iface = attr(d, "disk-interface");
    od->interface = xstrdup(iface && *iface ? iface : "virtio");
    od->bootable = attr_true(d, "boot", false);
    od->shareable = attr_true(d, "shareable", false);
    const xmlNode *item = disk_item(hw, attr(d, "diskId"), href);
    if (item) {
      AUTOFREE char *ro = child_text(item, "IsReadOnly");
      AUTOFREE char *plugged = child_text(item, "IsPlugged");
      od->read_only = ro && strcasecmp(ro, "true") == 0;
      od->active = !plugged || strcasecmp(plugged, "false") != 0;
    }
  }
  return v;
}

const struct ovf_disk *ovf_find_disk(const struct ovf_vm *v, const char *disk_id)
{
  for (size_t i = 0; i < v->ndisks; i++)
    if (v->disks[i].disk_id && strcmp(v->disks[i].disk_id, disk_id) == 0) return &v->disks[i];
  return NULL;
}
