/* res_net.c: /networks, /vnicprofiles, a cluster's and a data center's
 * networks, and /vms/{vm}/nics (cmd/vm/nic.c). One vNIC profile per network,
 * with the network's id and name. */
#include "api/resources.h"
#include "cmd/commands.h"
#include "cmd/nic.h"
#include "util/err.h"
#include <string.h>

static struct node *render_network(struct api_call *c, const struct network *n)
{
  struct node *x = node_new("network");
  AUTOFREE char *href = render_href(&c->r, "/networks/%s", n->id);
  node_set_attr(x, "href", href);
  node_set_attr(x, "id", n->id);
  render_links(x, "/networks/{}", href);
  node_add_text(x, "name", n->name);
  node_add_text(x, "description", n->description);
  node_add_int(x, "mtu", 0);
  node_add_bool(x, "stp", false);
  node_add_bool(x, "required", false);
  node_add_text(node_add_list(x, "usages"), "usage", "vm");
  node_add_text(x, "status", "operational");
  /* snapback's: what the network is on the host */
  if (n->bridge) node_add_text(x, "bridge", n->bridge);
  else node_add_text(x, "libvirt_network", n->libvirt_network);
  if (n->datacenter_id) {
    AUTOFREE char *dh = render_href(&c->r, "/datacenters/%s", n->datacenter_id);
    node_add_ref(x, "data_center", n->datacenter_id, dh);
  }
  return x;
}

static struct node *render_vnic_profile(struct api_call *c, const struct network *n)
{
  struct node *x = node_new("vnic_profile");
  AUTOFREE char *href = render_href(&c->r, "/vnicprofiles/%s", n->id);
  node_set_attr(x, "href", href);
  node_set_attr(x, "id", n->id);
  node_add_text(x, "name", n->name);
  node_add_text(node_add(x, "pass_through"), "mode", "disabled");
  node_add_bool(x, "port_mirroring", false);
  AUTOFREE char *nh = render_href(&c->r, "/networks/%s", n->id);
  node_add_ref(x, "network", n->id, nh);
  return x;
}

/* the networks of data center DC_ID (NULL: every network), or their vNIC profiles */
static int list_networks_where(struct api_call *c, const char *dc_id, bool profiles)
{
  AUTOLIST(network) l = dc_id ? network_list_by_datacenter(c->st, dc_id) : network_list_all(c->st);
  if (!l) return -1;
  struct node *n = node_new(profiles ? "vnic_profiles" : "networks");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, profiles ? render_vnic_profile(c, l[i]) : render_network(c, l[i]));
  return reply(c, 200, n);
}

int list_networks(struct api_call *c) { return list_networks_where(c, NULL, false); }
int list_vnic_profiles(struct api_call *c) { return list_networks_where(c, NULL, true); }

int get_network(struct api_call *c)
{
  AUTOPTR(network) n = network_get(c->st, c->p[0]);
  return n ? reply(c, 200, render_network(c, n)) : -1;
}

int get_vnic_profile(struct api_call *c)
{
  AUTOPTR(network) n = network_get(c->st, c->p[0]);
  if (!n) return error(ERR_NOT_FOUND, "vNIC profile '%s' does not exist", c->p[0]);
  return reply(c, 200, render_vnic_profile(c, n));
}

int list_datacenter_networks(struct api_call *c)
{
  AUTOPTR(datacenter) dc = datacenter_get(c->st, c->p[0]);
  return dc ? list_networks_where(c, dc->id, false) : -1;
}

/* a cluster has the networks of its data center */
int list_cluster_networks(struct api_call *c)
{
  AUTOPTR(cluster) cl = cluster_get(c->st, c->p[0]);
  if (!cl) return -1;
  return list_networks_where(c, cl->datacenter_id ? cl->datacenter_id : "", false);
}

/* <network><name/><description/><data_center id/><libvirt_network>|<bridge></network>;
 * the data center defaults to Default */
int add_network(struct api_call *c)
{
  const struct node *b = c->req->body;
  if (!b) return error(ERR_INVALID, "missing request body: send a <network> element");
  struct network n = {.name = (char *)node_text(b, "name"), .description = (char *)node_text(b, "description"),
                      .libvirt_network = (char *)node_text(b, "libvirt_network"),
                      .bridge = (char *)node_text(b, "bridge")};
  if (!n.name) return error(ERR_INVALID, "missing required field 'network.name': add <name>...</name>");
  const struct node *dc = node_child(b, "data_center");
  AUTOLIST(datacenter) dcs = NULL;
  if (dc && !(n.datacenter_id = (char *)node_attr(dc, "id")))
    return error(ERR_INVALID, "missing data center id: give <data_center id=\"...\"/>");
  if (!dc) {
    if (!(dcs = datacenter_list_by_name(c->st, "Default"))) return -1;
    n.datacenter_id = dcs[0] ? dcs[0]->id : NULL;
  }
  AUTOFREE char *id = NULL;
  if (cmd_network_add(c->eng, c->req->user, &n, &id) < 0) return -1;
  AUTOPTR(network) made = network_get(c->st, id);
  if (!made) return -1;
  struct node *x = render_network(c, made);
  c->resp->location = xstrdup(node_attr(x, "href"));
  return reply(c, 201, x);
}

/* ---- NICs ---- */

static struct node *render_nic(struct api_call *c, const struct nic *n)
{
  struct node *x = node_new("nic");
  AUTOFREE char *href = render_href(&c->r, "/vms/%s/nics/%s", n->vm_id, n->id);
  node_set_attr(x, "href", href);
  node_set_attr(x, "id", n->id);
  render_links(x, "/vms/{}/nics/{}", href);
  node_add_text(x, "name", n->name);
  node_add_text(x, "interface", nic_iface_to_str(n->iface));
  node_add_bool(x, "linked", true);
  node_add_text(node_add(x, "mac"), "address", n->mac);
  node_add_bool(x, "plugged", n->plugged);
  if (n->network_id) {
    AUTOFREE char *ph = render_href(&c->r, "/vnicprofiles/%s", n->network_id);
    node_add_ref(x, "vnic_profile", n->network_id, ph);
  }
  AUTOFREE char *vh = render_href(&c->r, "/vms/%s", n->vm_id);
  node_add_ref(x, "vm", n->vm_id, vh);
  return x;
}

/* <nic><name/><interface/><vnic_profile id=".."/><plugged/></nic>; a
 * profile given by name is resolved into *owned (caller frees) */
static int nic_spec_from(struct api_call *c, const struct node *b, struct nic_spec *s, char **owned)
{
  *s = (struct nic_spec){.iface = -1, .plugged = -1};
  s->name = node_text(b, "name");
  const char *iface = node_text(b, "interface");
  if (iface && (s->iface = nic_iface_from_str(iface)) < 0)
    return error(ERR_INVALID, "invalid NIC interface '%s': use virtio, e1000 or rtl8139", iface);
  const struct node *prof = node_child(b, "vnic_profile");
  if (prof && !(s->network_id = node_attr(prof, "id"))) {
    const char *name = node_text(prof, "name");
    if (name) {
      AUTOLIST(network) l = network_list_by_name(c->st, name);
      if (!l) return -1;
      if (!l[0]) return error(ERR_NOT_FOUND, "vNIC profile named '%s' does not exist", name);
      s->network_id = *owned = xstrdup(l[0]->id);
    } else {
      s->clear_network = true;
    }
  }
  bool plugged;
  int r = node_get_bool(b, "plugged", &plugged);
  if (r < 0) return -1;
  if (r == 1) s->plugged = plugged;
  return 0;
}

static struct nic *vm_nic(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return NULL;
  struct nic *n = nic_get(c->st, c->p[1]);
  if (n && strcmp(n->vm_id, vm->id) != 0) {
    nic_free(n);
    return error(ERR_NOT_FOUND, "NIC '%s' does not belong to VM '%s'", c->p[1], vm->name), NULL;
  }
  return n;
}

int list_vm_nics(struct api_call *c)
{
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOLIST(nic) l = nic_list_by_vm(c->st, vm->id);
  if (!l) return -1;
  struct node *n = node_new("nics");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, render_nic(c, l[i]));
  return reply(c, 200, n);
}

int get_vm_nic(struct api_call *c)
{
  AUTOPTR(nic) n = vm_nic(c);
  return n ? reply(c, 200, render_nic(c, n)) : -1;
}

int add_vm_nic(struct api_call *c)
{
  const struct node *b = c->req->body;
  if (!b) return error(ERR_INVALID, "missing request body: send a <nic> element");
  struct nic_spec spec;
  AUTOFREE char *owned = NULL, *id = NULL;
  if (nic_spec_from(c, b, &spec, &owned) < 0) return -1;
  if (cmd_nic_add(c->eng, c->req->user, c->p[0], &spec, &id) < 0) return -1;
  AUTOPTR(nic) n = nic_get(c->st, id);
  if (!n) return -1;
  struct node *x = render_nic(c, n);
  c->resp->location = xstrdup(node_attr(x, "href"));
  return reply(c, 201, x);
}

int update_vm_nic(struct api_call *c)
{
  const struct node *b = c->req->body;
  if (!b) return error(ERR_INVALID, "missing request body: send a <nic> element");
  struct nic_spec spec;
  AUTOFREE char *owned = NULL;
  if (nic_spec_from(c, b, &spec, &owned) < 0) return -1;
  if (cmd_nic_update(c->eng, c->req->user, c->p[0], c->p[1], &spec) < 0) return -1;
  AUTOPTR(nic) n = vm_nic(c);
  return n ? reply(c, 200, render_nic(c, n)) : -1;
}

int remove_vm_nic(struct api_call *c)
{
  if (cmd_nic_remove(c->eng, c->req->user, c->p[0], c->p[1]) < 0) return -1;
  return reply(c, 200, NULL);
}

/* ---- the MAC pool: one, oVirt's Default, with the engine's range ---- */

#define DEFAULT_MAC_POOL_ID "00000000-0000-0000-0000-000000000000"

static struct node *render_mac_pool(struct api_call *c)
{
  struct node *x = node_new("mac_pool");
  AUTOFREE char *href = render_href(&c->r, "/macpools/%s", DEFAULT_MAC_POOL_ID);
  node_set_attr(x, "href", href);
  node_set_attr(x, "id", DEFAULT_MAC_POOL_ID);
  node_add_text(x, "name", "Default");
  node_add_text(x, "description", "Default MAC pool");
  node_add_bool(x, "allow_duplicates", false);
  node_add_bool(x, "default_pool", true);
  AUTOFREE char *range = mac_pool_range(c->eng);
  char *dash = range ? strchr(range, '-') : NULL;
  if (dash) {
    *dash = 0;
    struct node *r = node_add(node_add_list(x, "ranges"), "range");
    node_add_text(r, "from", range);
    node_add_text(r, "to", dash + 1);
  }
  return x;
}

int list_mac_pools(struct api_call *c)
{
  struct node *n = node_new("mac_pools");
  n->is_list = true;
  node_append(n, render_mac_pool(c));
  return reply(c, 200, n);
}

int get_mac_pool(struct api_call *c)
{
  if (strcmp(c->p[0], DEFAULT_MAC_POOL_ID) != 0)
    return error(ERR_NOT_FOUND, "MAC pool '%s' does not exist", c->p[0]);
  return reply(c, 200, render_mac_pool(c));
}
