/* res_host.c: hosts: maintenance on/off, adding and removing, and a VM's
 * placement policy (cmd/host/host.c). Its routes are in ROUTES (routes.c).
 *
 *   POST /hosts  <host><name>h2</name><address>ADDR</address></host>
 *                connects to qemu+ssh://root@ADDR/system as oVirt reaches
 *                its hosts; snapback's <libvirt_uri> (qemu+ssh, qemu+tls or
 *                qemu+tcp) overrides it. <cluster> defaults to the local
 *                host's.
 *   DELETE /hosts/{id}   refused while VMs run there */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int host_deactivate(struct api_call *c)
{
  if (cmd_host_deactivate(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

int host_activate(struct api_call *c)
{
  if (cmd_host_activate(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

int add_host(struct api_call *c)
{
  const struct node *b = body_required(c, "host");
  if (!b) return -1;
  const char *name, *address;
  if (need_text(b, "name", "host", &name) < 0) return -1;
  if (!(address = node_text(b, "address")))
    return error(ERR_INVALID, "missing required field 'host.address': the host's name or IP address");
  AUTOPTR(cluster) cl = NULL;
  const struct node *cref = node_child(b, "cluster");
  if (cref && !(cl = resolve_cluster(c, cref, "cluster"))) return -1;
  /* the command fills in id, URI, cluster and status */
  AUTOPTR(host) h = xcalloc(1, sizeof *h);
  h->name = xstrdup(name);
  h->address = xstrdup(address);
  h->libvirt_uri = xstrdup(node_text(b, "libvirt_uri"));
  h->cluster_id = cl ? xstrdup(cl->id) : NULL;
  if (cmd_host_add(c->eng, c->req->user, h) < 0) return -1;
  AUTOPTR(host) now = host_get(c->st, h->id);
  if (!now) return -1;
  return reply_created(c, render_host(&c->r, now));
}

int remove_host(struct api_call *c)
{
  if (cmd_host_remove(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply(c, 200, NULL);
}

int vm_placement_from_node(struct api_call *c, const struct node *vm, char **host_id)
{
  *host_id = NULL;
  const struct node *ref = node_child(node_child(node_child(vm, "placement_policy"), "hosts"), "host");
  if (!ref) return 0;
  AUTOPTR(host) h = resolve_host(c, ref, "placement_policy.hosts.host");
  if (!h) return -1;
  *host_id = xstrdup(h->id);
  return 0;
}
