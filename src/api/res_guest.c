/* res_guest.c: /vms/{vm}/reporteddevices (cmd/guestinfo.c): one
 * <reported_device> of type network per guest interface, with its MAC and
 * addresses, as oVirt reports what its guest agent saw. The id is derived
 * from the VM and the MAC, so it stays the same while the guest runs. */
#include "api/resources.h"
#include "cmd/guestinfo.h"
#include "hyper/hyper.h"
#include "util/err.h"
#include "util/uuid.h"
#include <stdio.h>
#include <string.h>

/* a stable id: the VM id with its last 12 hex digits replaced by the MAC's */
static void device_id(const char *vm_id, const char *mac, char out[UUID_STRLEN + 1])
{
  snprintf(out, UUID_STRLEN + 1, "%s", vm_id);
  char *tail = out + 24;
  for (const char *p = mac ? mac : ""; *p && tail < out + UUID_STRLEN; p++)
    if (*p != ':') *tail++ = *p;
}

static struct node *render_reported(struct api_call *c, const struct hyper_guest_iface *f)
{
  char id[UUID_STRLEN + 1];
  device_id(c->p[0], f->mac, id);
  struct node *n = node_new("reported_device");
  AUTOFREE char *href = render_href(&c->r, "/vms/%s/reporteddevices/%s", c->p[0], id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", id);
  node_add_text(n, "name", f->name);
  node_add_text(n, "description", "guest reported data");
  node_add_text(n, "type", "network");
  if (f->mac) node_add_text(node_add(n, "mac"), "address", f->mac);
  struct node *ips = node_add_list(n, "ips");
  for (size_t i = 0; i < f->nips; i++) {
    struct node *ip = node_add(ips, "ip");
    node_add_text(ip, "address", f->ips[i].address);
    node_add_text(ip, "version", f->ips[i].v6 ? "v6" : "v4");
  }
  AUTOFREE char *vhref = render_href(&c->r, "/vms/%s", c->p[0]);
  node_add_ref(n, "vm", c->p[0], vhref);
  return n;
}

/* <reported_devices> of the VM c->p[0]; NULL on error */
static struct node *reported_devices(struct api_call *c)
{
  struct hyper_guest_iface *ifs = NULL;
  size_t n = 0;
  const char *from = NULL;
  if (vm_guest_addresses(c->eng, c->p[0], &ifs, &n, &from) < 0) return NULL;
  struct node *list = node_new("reported_devices");
  list->is_list = true;
  for (size_t i = 0; i < n; i++) node_append(list, render_reported(c, &ifs[i]));
  hyper_guest_ifaces_free(ifs, n);
  return list;
}

int list_vm_reported_devices(struct api_call *c)
{
  struct node *list = reported_devices(c);
  return list ? reply(c, 200, list) : -1;
}

int add_vm_reported_devices(struct api_call *c, struct node *vm)
{
  struct node *list = reported_devices(c);
  if (!list) return -1;
  node_append(vm, list);
  return 0;
}

int get_vm_reported_device(struct api_call *c)
{
  struct hyper_guest_iface *ifs = NULL;
  size_t n = 0;
  const char *from = NULL;
  if (vm_guest_addresses(c->eng, c->p[0], &ifs, &n, &from) < 0) return -1;
  struct node *found = NULL;
  for (size_t i = 0; i < n && !found; i++) {
    char id[UUID_STRLEN + 1];
    device_id(c->p[0], ifs[i].mac, id);
    if (strcmp(id, c->p[1]) == 0) found = render_reported(c, &ifs[i]);
  }
  hyper_guest_ifaces_free(ifs, n);
  if (!found) return error(ERR_NOT_FOUND, "reported device '%s' of VM '%s' does not exist", c->p[1], c->p[0]);
  return reply(c, 200, found);
}
