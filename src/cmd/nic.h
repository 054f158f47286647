/* nic.h: logical networks and VMs' network interfaces (oVirt's networks,
 * vnicprofiles and /vms/{id}/nics).
 *
 * A logical network maps to a libvirt network (libvirt's NAT network
 * "default" for ovirtmgmt, made at first start) or to a host bridge. Each
 * network has one vNIC profile with the network's id. A NIC's MAC comes from
 * the engine's MAC pool: oVirt's default range, 56:6f:XX:YY:00:00 to
 * 56:6f:XX:YY:ff:ff with XX:YY chosen at random once, unique engine-wide (a
 * unique index backs it). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "store/store.h"

struct engine;
struct user;
struct hyper_nic;

/* at start: creates ovirtmgmt and the MAC pool range once */
int network_setup(struct engine *eng);
/* "56:6f:xx:yy:00:00-56:6f:xx:yy:ff:ff"; caller frees */
char *mac_pool_range(struct engine *eng);

/* adds a logical network: n->name, description, datacenter_id, and exactly
 * one of libvirt_network or bridge (the host side) */
int cmd_network_add(struct engine *eng, const struct user *u, const struct network *n, char **id_out);

/* what a client may set on a NIC; NULL / -1: not given */
struct nic_spec {
  const char *name;
  int iface;                 /* enum nic_iface, -1 */
  const char *network_id;    /* the vNIC profile (= network) id */
  bool clear_network;        /* <vnic_profile/> without id: disconnect */
  int plugged;               /* 1/0, -1 */
};

int cmd_nic_add(struct engine *eng, const struct user *u, const char *vm_id, const struct nic_spec *s,
                char **id_out);
int cmd_nic_update(struct engine *eng, const struct user *u, const char *vm_id, const char *nic_id,
                   const struct nic_spec *s);
int cmd_nic_remove(struct engine *eng, const struct user *u, const char *vm_id, const char *nic_id);

/* the plugged NICs of a VM about to start, for hyper_vm_spec; free with vm_nics_free */
int vm_start_nics(struct engine *eng, const char *vm_id, struct hyper_nic **out, size_t *n);
void vm_nics_free(struct hyper_nic *nics, size_t n);
