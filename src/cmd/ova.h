/* ova.h: the OVA file format, as oVirt writes it: a tar (ustar) archive
 * whose first member is the OVF (vm.ovf) and whose other members are the
 * disk images (qcow2), named by the OVF's File hrefs.
 *
 * Only the format lives here (no store, no engine): the tar header codec and
 * the member index of an existing archive; the OVF is read by repr/ovf.h.
 * export.c drives them. */
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
