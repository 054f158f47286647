/* ovf.c: reads the OVF envelope through the node tree (libxml2 without
 * entity expansion); element and attribute names arrive without their
 * namespace prefixes (ovf:diskId -> diskId, rasd:ResourceType -> ResourceType). */
#include "cli/ovf.h"
#include "repr/node.h"
#include "util/buf.h"
#include "util/err.h"
#include <stdlib.h>
#include <string.h>

void ovf_vm_clear(struct ovf_vm *v)
{
  for (size_t i = 0; i < v->ndisks; i++) {
    free(v->disks[i].disk_id);
    free(v->disks[i].volume_id);
    free(v->disks[i].alias);
    free(v->disks[i].interface);
  }
  free(v->disks);
  free(v->name);
  free(v->description);
  free(v->os_type);
  free(v->cluster_id);
  memset(v, 0, sizeof *v);
}

static int64_t to_int(const char *s, int64_t dflt)
{
  if (!s || !*s) return dflt;
  char *end;
  long long v = strtoll(s, &end, 10);
  return *end ? dflt : v;
}

static void parse_disk(struct ovf_vm *out, const struct node *d)
{
  const char *file = node_attr(d, "fileRef");
  out->disks = xrealloc(out->disks, (out->ndisks + 1) * sizeof *out->disks);
  struct ovf_disk *x = &out->disks[out->ndisks++];
  memset(x, 0, sizeof *x);
  const char *slash = file ? strchr(file, '/') : NULL;
  x->disk_id = slash ? xasprintf("%.*s", (int)(slash - file), file) : xstrdup(file);
  x->volume_id = xstrdup(node_attr(d, "diskId"));
  x->alias = xstrdup(node_attr(d, "disk-alias"));
  const char *iface = node_attr(d, "disk-interface");
  x->interface = xstrdup(iface && *iface ? iface : "virtio");
  const char *boot = node_attr(d, "boot");
  x->bootable = boot && strcmp(boot, "true") == 0;
  x->provisioned_size = to_int(node_attr(d, "provisioned-size"), -1);
  if (x->provisioned_size < 0) {
    int64_t gib = to_int(node_attr(d, "size"), 0);
    x->provisioned_size = gib > 0 && gib <= (INT64_MAX >> 30) ? gib << 30 : 0;
  }
}

static void parse_hardware(struct ovf_vm *out, const struct node *sec)
{
  for (size_t i = 0; i < sec->nkids; i++) {
    const struct node *it = sec->kids[i];
    if (strcmp(it->name, "Item") != 0) continue;
    int64_t type = to_int(node_text(it, "ResourceType"), -1);
    if (type == 3) {
      out->sockets = (int)to_int(node_text(it, "num_of_sockets"), 1);
      out->cores = (int)to_int(node_text(it, "cpu_per_socket"), 1);
      out->threads = (int)to_int(node_text(it, "threads_per_cpu"), 1);
    } else if (type == 4) {
      int64_t mb = to_int(node_text(it, "VirtualQuantity"), 0);
      out->memory = mb > 0 && mb <= (INT64_MAX >> 20) ? mb << 20 : 0;
    }
  }
}

int ovf_parse(const char *xml, struct ovf_vm *out)
{
  memset(out, 0, sizeof *out);
  if (!xml) return error(ERR_INVALID, "the backup holds no OVF");
  AUTOPTR(node) root = node_from_xml(xml, strlen(xml));
  if (!root) return error_prefix("cannot read the OVF: ");
  if (strcmp(root->name, "Envelope") != 0) return error(ERR_INVALID, "cannot read the OVF: the root is <%s>", root->name);
  out->sockets = out->cores = out->threads = 1;
  for (size_t i = 0; i < root->nkids; i++) {
    const struct node *k = root->kids[i];
    if (strcmp(k->name, "Section") == 0) {
      for (size_t j = 0; j < k->nkids; j++)
        if (strcmp(k->kids[j]->name, "Disk") == 0) parse_disk(out, k->kids[j]);
    } else if (strcmp(k->name, "Content") == 0) {
      out->name = xstrdup(node_text(k, "Name"));
      out->description = xstrdup(node_text(k, "Description"));
      out->cluster_id = xstrdup(node_text(k, "ClusterId"));
      for (size_t j = 0; j < k->nkids; j++) {
        const struct node *s = k->kids[j];
        if (strcmp(s->name, "Section") != 0) continue;
        const char *type = node_attr(s, "type");
        if (type && strstr(type, "OperatingSystemSection")) out->os_type = xstrdup(node_text(s, "Description"));
        else if (type && strstr(type, "VirtualHardwareSection")) parse_hardware(out, s);
      }
    }
  }
  if (!out->name) {
    ovf_vm_clear(out);
    return error(ERR_INVALID, "cannot read the OVF: it names no VM");
  }
  return 0;
}

const struct ovf_disk *ovf_find_disk(const struct ovf_vm *v, const char *disk_id)
{
  for (size_t i = 0; i < v->ndisks; i++)
    if (v->disks[i].disk_id && strcmp(v->disks[i].disk_id, disk_id) == 0) return &v->disks[i];
  return NULL;
}
