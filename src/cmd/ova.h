/* ova.h: the OVA file format, as oVirt writes it: a tar (ustar) archive
 * whose first member is the OVF (vm.ovf) and whose other members are the
 * disk images (qcow2), named by the OVF's File hrefs.
 *
 * Only the format lives here (no store, no engine): the tar header codec,
 * the member index of an existing archive, and an OVF reader that extracts
 * what an import needs. export.c drives them. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "util/vec.h"

#define TAR_BLOCK 512

/* Fills hdr with a ustar header of a regular file member NAME of SIZE bytes.
 * Sizes of 8 GiB and more use the GNU base-256 size field (GNU tar, bsdtar
 * and Python's tarfile read it). A name longer than 100 bytes is split into
 * ustar's prefix/name at a '/'. -1 with ERR_INVALID when the name cannot be
 * stored or the size is negative. */
int tar_header_encode(unsigned char hdr[TAR_BLOCK], const char *name, int64_t size, int64_t mtime_s);

/* one member of an archive: its data starts at offset and is size bytes long */
struct tar_member {
  char *name;
  int64_t offset, size;
};
DEFINE_VEC(tar_members, struct tar_member);
void tar_members_free(struct tar_members *m);

/* Reads the member index of the archive open at fd (file_size bytes). Checks
 * every header's checksum, that each member lies inside the file, and
 * honours pax ('x') path/size records and GNU long names ('L'). Only regular
 * files are listed. -1 with ERR_INVALID naming the problem ("bad header
 * checksum at offset N") for a damaged or non-tar file; what is the file,
 * for messages. */
int tar_index(int fd, int64_t file_size, const char *what, struct tar_members *out);
/* the member called name, or NULL */
const struct tar_member *tar_find(const struct tar_members *m, const char *name);

/* a disk of the OVF's DiskSection, joined with its File and hardware Item */
struct ovf_disk {
  char *href;                 /* the File's href: the member holding the image */
  char *alias, *description;
  int64_t provisioned_size;   /* bytes; 0 when the OVF does not say */
  int iface;                  /* enum disk_iface (virtio when unknown) */
  bool bootable, shareable, read_only, active;
};

/* the VM an OVF describes; numbers are -1 when absent */
struct ovf_vm {
  char *name, *description, *os_type;
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
