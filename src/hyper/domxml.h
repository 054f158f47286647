/* domxml.h: libvirt domain XML for snapback's VMs (internal to src/hyper,
 * also used by tests/unit/test_hyper.c).
 *
 * Generation only: nothing here talks to libvirt, so the output can be
 * checked against golden files. Every text that comes from a user (names,
 * paths, kernel command lines) is XML-escaped. */
#pragma once
#include "hyper/hyper.h"

/* number of pcie-root-port controllers declared in every domain, so that
 * concurrent hot-plugs each find a free slot (libvirt adds only one spare) */
#define DOMXML_ROOT_PORTS 16

/* DOMAIN_TYPE_AUTO -> DOMAIN_TYPE_KVM when /dev/kvm opens read/write, else
 * DOMAIN_TYPE_QEMU; KVM and QEMU are returned as they are */
int domain_type_resolve(int domain_type);

/* libvirt's <target bus=...> for an enum disk_iface; NULL when out of range */
const char *domxml_iface_bus(int iface);

/* the device name of target index idx on the bus of iface: IFACE_VIRTIO
 * -> "vda", "vdb" ... "vdz", "vdaa"; VIRTIO_SCSI and SATA share "sd"; IDE
 * "hd". Caller frees. */
char *domxml_target_name(int iface, unsigned idx);

/* the whole <domain> document for spec; domain_type must be KVM or QEMU
 * (resolve AUTO first). NULL with ERR_INVALID when the spec is unusable
 * (no VM, no name, bad enum). Caller frees. */
char *domxml_domain(const struct hyper_vm_spec *spec, int domain_type);

/* one <disk> element for d with the given target device name (hot-plug:
 * without <boot order>, which only a start uses).
 * NULL with ERR_INVALID on a bad enum. Caller frees. */
char *domxml_disk(const struct hyper_disk *d, const char *target);

/* the lowest target name on iface's bus not used by any of live[0..n) */
char *domxml_free_target(int iface, const struct hyper_live_disk *live, size_t n);

/* parses the <disk> devices of a (live) domain XML; disks without a field
 * get NULL there. ERR_INTERNAL when the XML does not parse. */
int domxml_parse_disks(const char *xml, struct hyper_live_disk **out, size_t *n);

/* the <domainsnapshot> of a disk-only external snapshot: each disk of
 * snap[0..n) (found in live[0..nlive) by alias "ua-<disk_id>" and named by
 * its target) gets snapshot='external' with its new file, every other disk
 * of live snapshot='no'. NULL with ERR_NOT_FOUND when a disk is not in live,
 * ERR_INVALID on a bad format or a disk listed twice. Caller frees. */
char *domxml_snapshot(const struct hyper_snap_disk *snap, size_t n, const struct hyper_live_disk *live,
                      size_t nlive);

/* the disk with alias `alias` in a live domain XML: its target device name
 * (may be NULL) and its backing chain as file paths, the active layer first,
 * then each <backingStore> source down to the bottom. ERR_NOT_FOUND when no
 * disk has that alias, ERR_INTERNAL when the XML does not parse. */
int domxml_disk_chain(const char *xml, const char *alias, char **target, struct strvec *chain);

/* <domainbackup mode='pull'> for backup_begin with its NBD server, and the
 * <domaincheckpoint> that starts new_checkpoint (hyper.h); every live disk
 * is named once; caller frees */
struct domxml_backup_server {
  const char *socket_path;  /* a unix socket, or NULL: TCP on... */
  const char *address;      /* ...this address */
  int port;
  bool tls;
};
char *domxml_backup(const struct hyper_backup_disk *disks, size_t n, const struct hyper_live_disk *live,
                    size_t nlive, const struct domxml_backup_server *server, const char *from_checkpoint);
/* use_bitmap_name: the XML redefines an existing checkpoint (its bitmaps are
 * named NAME on the incremental disks), made at creation_time (seconds) */
char *domxml_checkpoint(const struct hyper_backup_disk *disks, size_t n, const struct hyper_live_disk *live,
                        size_t nlive, const char *name, bool use_bitmap_name, long long creation_time);
/* whether checkpoint XML (libvirt's description of a checkpoint it knows)
 * gives bitmap NAME on every live disk that disks back up incrementally:
 * then a backup from NAME needs no REDEFINE */
bool domxml_checkpoint_serves(const char *xml, const struct hyper_backup_disk *disks, size_t n,
                              const struct hyper_live_disk *live, size_t nlive, const char *name);
/* the CD-ROM drive every domain has: alias DOMXML_CDROM_ALIAS, on the SATA
 * bus as TARGET, holding ISO file PATH (NULL: empty), with <boot order>
 * BOOT_ORDER (0: none). Caller frees. */
#define DOMXML_CDROM_ALIAS "ua-cdrom"
char *domxml_cdrom(const char *path, const char *target, int boot_order);

/* one <interface> element for nic (hot-plug and start); NULL + ERR_INVALID on a bad enum */
char *domxml_nic(const struct hyper_nic *nic);

/* the <graphics> devices of a (live) domain XML, at most max */
int domxml_parse_graphics(const char *xml, struct hyper_graphics *out, size_t max, size_t *n);

/* a <graphics> element of TYPE listening on LISTEN (autoport) whose
 * password is PASSWORD, valid until VALID_UNTIL (seconds since the epoch;
 * 0: for ever). Caller frees. */
char *domxml_graphics(const char *type, const char *listen, const char *password, int64_t valid_until);
