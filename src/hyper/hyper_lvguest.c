/* hyper_lvguest.c: what a running guest shows the outside: its graphics
 * consoles (which types QEMU offers, their tickets), its CD-ROM media and the
 * addresses its agent or libvirt's DHCP leases report. Part of the libvirt
 * backend (hyper_lv.h). */
#include "hyper/hyper_lv.h"
#include "hyper/domxml.h"
#include <string.h>

/* libvirt's domain capabilities list the graphics types QEMU was built with
 * (<graphics supported='yes'><enum name='type'><value>spice</value>...) */
int hyper_lv_graphics_supported(struct hyper *h, const char *type)
{
  if (strcmp(type, "vnc") == 0) return 1;
  if (strcmp(type, "spice") != 0) return 0;
  if (h->spice >= 0) return h->spice;
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOFREE char *caps = virConnectGetDomainCapabilities(c, NULL, "x86_64", "q35",
                                                        domain_type_to_str(h->domain_type), 0);
  if (!caps) return virt_error("cannot read the domain capabilities of host '%s'", h->uri);
  const char *g = strstr(caps, "<graphics supported='yes'>");
  const char *end = g ? strstr(g, "</graphics>") : NULL;
  const char *v = g ? strstr(g, "<value>spice</value>") : NULL;
  h->spice = v && end && v < end;
  return h->spice;
}

/* ---- graphics consoles ---- */

int hyper_lv_graphics_list(struct hyper *h, const char *vm_id, struct hyper_graphics *out, size_t max, size_t *n)
{
  *n = 0;
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  AUTOFREE char *xml = hyper_lv_live_xml(d, vm_id);
  if (!xml) return -1;
  return domxml_parse_graphics(xml, out, max, n);
}

int hyper_lv_graphics_ticket(struct hyper *h, const char *vm_id, const char *type, const char *password,
                              int64_t valid_until)
{
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  AUTOFREE char *xml = hyper_lv_live_xml(d, vm_id);
  if (!xml) return -1;
  struct hyper_graphics g[4];
  size_t n = 0;
  if (domxml_parse_graphics(xml, g, ARRAY_SIZE(g), &n) < 0) return -1;
  const struct hyper_graphics *found = NULL;
  for (size_t i = 0; i < n && !found; i++)
    if (strcmp(g[i].type, type) == 0) found = &g[i];
  if (!found) return error(ERR_NOT_FOUND, "VM '%s' has no %s console", vm_id, type);
  AUTOFREE char *dev = domxml_graphics(type, found->listen, password, valid_until);
  if (virDomainUpdateDeviceFlags(d, dev, VIR_DOMAIN_AFFECT_LIVE) < 0)
    return virt_error("cannot set the %s console ticket of VM '%s'", type, vm_id);
  return 0;
}

/* ---- CD-ROM ---- */

/* change-media: the same drive (found by its alias in the live XML, named by
 * its target) with a new source or none */
int hyper_lv_cdrom_change(struct hyper *h, const char *vm_id, const char *path)
{
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  struct hyper_live_disk *live = NULL;
  size_t n = 0;
  if (hyper_lv_live_disks(d, vm_id, &live, &n) < 0) return -1;
  AUTOFREE char *target = NULL;
  for (size_t i = 0; i < n && !target; i++)
    if (live[i].alias && live[i].target && strcmp(live[i].alias, DOMXML_CDROM_ALIAS) == 0)
      target = xstrdup(live[i].target);
  hyper_live_disks_free(live, n);
  if (!target) return error(ERR_NOT_FOUND, "VM '%s' has no CD-ROM drive (started before it had one)", vm_id);
  AUTOFREE char *dev = domxml_cdrom(path, target, 0);
  if (virDomainUpdateDeviceFlags(d, dev, VIR_DOMAIN_AFFECT_LIVE) < 0)
    return virt_error("cannot change the CD of VM '%s'", vm_id);
  return 0;
}

/* ---- guest addresses ---- */

void hyper_guest_ifaces_free(struct hyper_guest_iface *v, size_t n)
{
  if (!v) return;
  for (size_t i = 0; i < n; i++) {
    free(v[i].name);
    free(v[i].mac);
    for (size_t j = 0; j < v[i].nips; j++) free(v[i].ips[j].address);
    free(v[i].ips);
  }
  free(v);
}

int hyper_lv_guest_addresses(struct hyper *h, const char *vm_id, struct hyper_guest_iface **out, size_t *n,
                              const char **from)
{
  *out = NULL;
  *n = 0;
  *from = NULL;
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  virDomainInterfacePtr *ifs = NULL;
  int got = virDomainInterfaceAddresses(d, &ifs, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0);
  *from = "agent";
  if (got < 0) {
    /* no agent in the guest (or it does not answer): what libvirt's DHCP servers leased */
    got = virDomainInterfaceAddresses(d, &ifs, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
    *from = "lease";
  }
  if (got < 0) {
    *from = NULL;
    return 0;
  }
  struct hyper_guest_iface *v = xcalloc(got ? (size_t)got : 1, sizeof *v);
  size_t len = 0;
  for (int i = 0; i < got; i++) {
    virDomainInterfacePtr f = ifs[i];
    if (f->name && strcmp(f->name, "lo") == 0) {
      virDomainInterfaceFree(f);
      continue;
    }
    struct hyper_guest_iface *o = &v[len++];
    o->name = f->name ? xstrdup(f->name) : NULL;
    o->mac = f->hwaddr ? xstrdup(f->hwaddr) : NULL;
    o->ips = xcalloc(f->naddrs ? f->naddrs : 1, sizeof *o->ips);
    for (unsigned j = 0; j < f->naddrs; j++) {
      if (!f->addrs[j].addr) continue;
      o->ips[o->nips++] = (struct hyper_guest_ip){.address = xstrdup(f->addrs[j].addr),
                                                  .prefix = (int)f->addrs[j].prefix,
                                                  .v6 = f->addrs[j].type == VIR_IP_ADDR_TYPE_IPV6};
    }
    virDomainInterfaceFree(f);
  }
  free(ifs);
  *out = v;
  *n = len;
  return 0;
}
