/* ovf.h: the one OVF reader, for the engine (OVA import, snapshot preview)
 * and the CLI (backup, restore). An OVF as oVirt and this engine write it:
 * <References> lists the image files, the DiskSection's Disks name them by
 * fileRef, the Content holds the VM's name, OS and hardware Items.
 *
 * Only the format lives here (libxml2, no store): strings are copied as
 * written (a disk's interface "VirtIO_SCSI" or "virtio_scsi"); a caller maps
 * them to its own enums. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/cleanup.h"

/* a disk of the OVF's DiskSection, joined with its File and hardware Item */
struct ovf_disk {
  char *href;                 /* the File's href ("IMAGE/VOLUME"): an OVA member holding the image */
  char *disk_id;              /* the disk (image group): href up to its '/', or all of it */
  char *volume_id;            /* the Disk's diskId, or NULL */
  char *alias, *description;
  char *interface;            /* disk-interface as written; "virtio" when absent */
  int64_t provisioned_size;   /* bytes; 0 when the OVF does not say */
  bool bootable, shareable, read_only, active;
};

/* the VM an OVF describes; numbers are -1 when absent */
struct ovf_vm {
  char *name, *description, *os_type, *cluster_id;
  int64_t memory;             /* bytes */
  int64_t sockets, cores, threads;
  struct ovf_disk *disks;
  size_t ndisks;
};

/* Parses OVF text (no network, no entity expansion). -1/NULL with
 * ERR_INVALID when it is not XML or not an OVF envelope, or a Disk names a
 * file the References do not list. */
struct ovf_vm *ovf_parse(const char *xml, size_t len);
void ovf_vm_free(struct ovf_vm *v);
DEFINE_AUTOPTR(ovf_vm, struct ovf_vm, ovf_vm_free)
/* the disk whose disk_id is disk_id, or NULL */
const struct ovf_disk *ovf_find_disk(const struct ovf_vm *v, const char *disk_id);
