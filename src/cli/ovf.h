/* ovf.h: the parts of a VM's OVF (as the engine writes it for a snapshot)
 * that a restore needs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ovf_disk {
  char *disk_id, *volume_id, *alias, *interface;
  bool bootable;
  int64_t provisioned_size;
};

struct ovf_vm {
  char *name, *description, *os_type, *cluster_id;
  int64_t memory;               /* bytes */
  int sockets, cores, threads;
  struct ovf_disk *disks;
  size_t ndisks;
};

/* parses xml into out; -1 with ERR_INVALID when it is not an OVF envelope */
int ovf_parse(const char *xml, struct ovf_vm *out);
void ovf_vm_clear(struct ovf_vm *v);
const struct ovf_disk *ovf_find_disk(const struct ovf_vm *v, const char *disk_id);
