/* res_ova.c: OVA export of a VM and external VM import from an OVA
 * (cmd/ova/export.c, cmd/ova/import.c). Its routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* <action><host/><directory>/abs</directory><filename>x.ova</filename></action> */
int vm_export_ova(struct api_call *c)
{
  const struct node *b = body_required(c, "action");
  if (!b) return -1;
  const char *dir, *file;
  if (need_text(b, "directory", "action", &dir) < 0 || need_text(b, "filename", "action", &file) < 0)
    return -1;
  const struct node *href = node_child(b, "host");
  if (!href) return error(ERR_INVALID, "missing required field 'action.host': name the host that writes the file");
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  AUTOPTR(host) h = vm ? resolve_host(c, href, "host") : NULL;
  if (!h) return -1;
  AUTOFREE char *job = NULL;
  if (cmd_vm_export_ova(c->eng, c->req->user, vm->id, h->id, dir, file, &job) < 0) return -1;
  struct node *n = node_new("action");
  AUTOFREE char *jhref = render_href(&c->r, "/jobs/%s", job);
  node_add_ref(n, "job", job, jhref);
  node_add_text(n, "status", "complete");
  return reply(c, 200, n);
}

int add_external_vm_import(struct api_call *c)
{
  const struct node *b = body_required(c, "external_vm_import");
  if (!b) return -1;
  const char *provider, *url;
  if (need_text(b, "provider", "external_vm_import", &provider) < 0 ||
      need_text(b, "url", "external_vm_import", &url) < 0)
    return -1;
  if (strcmp(provider, "ova") != 0)
    return error(ERR_INVALID, "unsupported provider '%s': only 'ova' is supported", provider);
  if (!node_child(b, "cluster") || !node_child(b, "storage_domain"))
    return error(ERR_INVALID, "missing required field: give <cluster> and <storage_domain>");
  AUTOPTR(cluster) cl = resolve_cluster(c, node_child(b, "cluster"), "cluster");
  AUTOPTR(storage_domain) sd = cl ? resolve_storage_domain(c, node_child(b, "storage_domain"), "storage_domain") : NULL;
  if (!sd) return -1;
  AUTOFREE char *vm_id = NULL, *job = NULL;
  if (cmd_vm_import_ova(c->eng, c->req->user, url, node_text(b, "name"), cl->id, sd->id, &vm_id, &job) < 0)
    return -1;
  struct node *n = node_new("external_vm_import");
  node_add_text(n, "provider", "ova");
  node_add_text(n, "url", url);
  node_add_text(n, "name", node_text(b, "name"));
  AUTOFREE char *vhref = render_href(&c->r, "/vms/%s", vm_id);
  AUTOFREE char *jhref = render_href(&c->r, "/jobs/%s", job);
  node_add_ref(n, "vm", vm_id, vhref);
  node_add_ref(n, "job", job, jhref);
  return reply(c, 202, n);
}
