/* hyper_lv.h: what the pieces of the libvirt backend share; private to
 * src/hyper. hyper_libvirt.c holds the connection, the event thread, the
 * domains and the ops table; hyper_lvvolume.c the volumes on a host's local
 * storage; hyper_lvstats.c the statistics; hyper_lvguest.c the consoles, the
 * CD-ROM and the guest's addresses. The locking rules are those at the top of
 * hyper_libvirt.c. */
#ifndef SNAPBACK_HYPER_LV_H
#define SNAPBACK_HYPER_LV_H

#include "hyper/hyper.h"
#include "util/buf.h"
#include "util/err.h"
#include <pthread.h>
#include <stdbool.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

DEFINE_AUTOPTR(virDomain, struct _virDomain, virDomainFree)
DEFINE_AUTOPTR(virConnect, struct _virConnect, virConnectClose)

/* a disk_detach waiting for its DEVICE_REMOVED event */
struct detach_waiter {
  const char *vm_id, *alias;
  bool removed;
  struct detach_waiter *next;
};

/* a block_commit watching the block job events of one disk; the events only
 * wake it up, the job info and the live XML decide */
struct job_waiter {
  const char *vm_id, *target;
  bool ready;                      /* a READY event came */
  unsigned events;                 /* events seen, to notice a wake-up */
  struct job_waiter *next;
};

struct hyper {
  char *uri;
  int domain_type;                 /* resolved: KVM or QEMU */
  int detach_timeout_ms;
  char *console_listen;            /* where VNC consoles listen */
  int spice;                       /* QEMU offers SPICE: 1 yes, 0 no, -1 not asked yet */
  struct hyper_callbacks cb;       /* copy; members may be NULL */
  void *opaque;

  pthread_mutex_t conn_lock;
  virConnectPtr conn;              /* NULL when disconnected */
  int lifecycle_id, removed_id, job_id; /* callback ids on conn, -1 when none */
  bool was_connected;              /* a connection existed before: the next one is a reconnect */
  bool conn_announced;             /* conn was reported (reconnected callback) already */

  pthread_mutex_t attach_lock;

  pthread_mutex_t wait_lock;
  pthread_cond_t wait_cond;        /* CLOCK_MONOTONIC */
  struct detach_waiter *waiters;
  struct job_waiter *job_waiters;
  int callbacks_held;              /* registrations libvirt has not freed yet */
};

/* ---- errors (hyper_libvirt.c) ---- */

/* error(code of libvirt's last error, "<what>: <libvirt's message>"); -1 */
int hyper_lv_virt_error_at(const char *func, int line, const char *fmt, ...) PRINTF(3, 4);
#define virt_error(...) hyper_lv_virt_error_at(__func__, __LINE__, __VA_ARGS__)

/* the thread's last libvirt error has this VIR_ERR_* code */
bool hyper_lv_last_error_is(int code);

/* ---- connection and domains (hyper_libvirt.c) ---- */

/* a reference to a live connection, reconnecting when it dropped; the
 * caller closes it (AUTOPTR(virConnect)); NULL with the error recorded */
virConnectPtr hyper_lv_get_conn(struct hyper *h);

/* the domain vm_id; ERR_NOT_FOUND "VM '...' is not running" when absent */
virDomainPtr hyper_lv_lookup(virConnectPtr c, const char *vm_id);
/* the same on h's connection (made if needed); NULL with the error */
virDomainPtr hyper_lv_domain(struct hyper *h, const char *vm_id);

/* live XML of d, as a malloc'ed string; NULL with the error recorded */
char *hyper_lv_live_xml(virDomainPtr d, const char *vm_id);

/* the disks of d's live XML (hyper_live_disks_free) */
int hyper_lv_live_disks(virDomainPtr d, const char *vm_id, struct hyper_live_disk **out, size_t *n);

/* *ts = now + ms on CLOCK_MONOTONIC, the clock of the waiters' pthread_cond_timedwait */
void hyper_lv_deadline_after(struct timespec *ts, int ms);

/* ---- ops defined in the other pieces (contracts in hyper.h) ---- */

/* hyper_lvstats.c */
int hyper_lv_domain_stats(struct hyper *h, const char *vm_id, struct hyper_domain_stats *out);
int hyper_lv_host_stats(struct hyper *h, struct hyper_host_stats *out);

/* hyper_lvvolume.c */
int hyper_lv_local_volume_create(struct hyper *h, const char *dir, const char *name, int64_t size,
                                 const char *backing, int backing_format, char **path);
int hyper_lv_local_volume_delete(struct hyper *h, const char *path);
int hyper_lv_local_volume_list(struct hyper *h, const char *dir, struct strvec *names);
int hyper_lv_local_dir_make(struct hyper *h, const char *dir);

/* hyper_lvguest.c */
int hyper_lv_graphics_supported(struct hyper *h, const char *type);
int hyper_lv_graphics_list(struct hyper *h, const char *vm_id, struct hyper_graphics *out, size_t max, size_t *n);
int hyper_lv_graphics_ticket(struct hyper *h, const char *vm_id, const char *type, const char *password,
                             int64_t valid_until);
int hyper_lv_cdrom_change(struct hyper *h, const char *vm_id, const char *path);
int hyper_lv_guest_addresses(struct hyper *h, const char *vm_id, struct hyper_guest_iface **out, size_t *n,
                             const char **from);

/* hyper_lvbackup.c: pull backups */
int hyper_lv_backup_begin(struct hyper *h, const char *vm_id, const struct hyper_backup_disk *disks, size_t n,
                          const struct hyper_nbd_server *server, const char *from_checkpoint,
                          const char *new_checkpoint, bool quiesce, char **nbd_url);
int hyper_lv_backup_end(struct hyper *h, const char *vm_id);
int hyper_lv_backup_job_alive(struct hyper *h, const char *vm_id, char **why);

/* hyper_lvcommit.c: live merges */
int hyper_lv_block_commit(struct hyper *h, const char *vm_id, const char *disk_id, const char *top_path,
                          const char *base_path, int timeout_ms);
int hyper_lv_block_job_progress(struct hyper *h, const char *vm_id, const char *disk_id, uint64_t *done,
                                uint64_t *total);

/* hyper_lvmigrate.c: migration; and the host part of a libvirt URI, NULL for
 * a local URI (caller frees) */
int hyper_lv_domain_migrate(struct hyper *h, struct hyper *dst, const char *vm_id);
char *hyper_lv_uri_host(const char *uri);

#endif
