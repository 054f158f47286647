/* cdrom.h: VMs' CD-ROM drives, the ISO disks they hold, and boot devices
 * (oVirt's /vms/{id}/cdroms and os/boot/devices).
 *
 * An ISO is a disk of content_type iso (raw) in a data domain, filled by an
 * image transfer like any disk. Every domain has one CD-ROM drive; the VM's
 * row names the ISO disk it holds (vms.cdrom_disk_id), which the drive gets
 * at start. A change with current=true goes to the running domain only
 * (libvirt change-media), as in oVirt: the next start uses the row again. */
#pragma once
#include <stdbool.h>

struct engine;
struct user;
struct store;

/* oVirt's id of a VM's one CD-ROM device */
#define CDROM_ID "00000000-0000-0000-0000-000000000000"

/* puts ISO disk ISO_DISK_ID ("" or NULL ejects) into VM vm_id's CD-ROM:
 * persistently (the row, used at every start) or, with current, into the
 * running domain only. ERR_INVALID for a disk that is not an ISO,
 * ERR_CONFLICT for current on a VM that does not run or an ISO that is
 * locked; an audit event either way. */
int cmd_vm_cdrom_change(struct engine *eng, const struct user *u, const char *vm_id, const char *iso_disk_id,
                        bool current);

/* the ISO disk in the running domain's drive now (*iso_disk_id NULL: empty
 * or a file that is no disk of ours); ERR_CONFLICT when the VM does not run.
 * Caller frees. */
int vm_cdrom_current(struct engine *eng, const char *vm_id, char **iso_disk_id);

/* the file of ISO disk iso_disk_id to open at start (caller frees);
 * ERR_CONFLICT when it is not an ISO or not ok */
char *cdrom_iso_path(struct engine *eng, const char *iso_disk_id);

/* ERR_INVALID unless DEVICES (comma-separated) lists cdrom, hd and network
 * each at most once, and at least one */
int boot_devices_check(const char *devices);

/* ERR_CONFLICT when disk disk_id is an ISO in some VM's CD-ROM (WHAT: "remove") */
int cdrom_check_unused(struct store *st, const char *disk_id, const char *alias, const char *what);
