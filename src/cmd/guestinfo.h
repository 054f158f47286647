/* guestinfo.h: what a running guest reports about itself (oVirt's
 * reported_devices): its network interfaces and their addresses, from the
 * guest agent or, without one, from the DHCP leases of libvirt's networks. */
#pragma once
#include <stddef.h>

struct engine;
struct hyper_guest_iface;

/* the interfaces of VM vm_id: none while it is down or when nothing answers;
 * *from "agent" or "lease" (NULL when none). ERR_NOT_FOUND for no such VM.
 * Caller frees with hyper_guest_ifaces_free. */
int vm_guest_addresses(struct engine *eng, const char *vm_id, struct hyper_guest_iface **out, size_t *n,
                       const char **from);
