/* hyper.h: the hypervisor interface (ops table), one connection per host.
 *
 * A host is addressed by its libvirt URI and nothing here assumes localhost:
 * several hosts will each get their own struct hyper. The libvirt backend
 * (hyper_libvirt.c) is the only one today; a test double may implement the
 * same ops inside unit tests.
 *
 * VMs are transient libvirt domains whose UUID is the VM id and whose XML the
 * engine generates from the store at every start (the store is the truth).
 * Disks carry the user alias "ua-<disk id>" and serial = first 20 characters
 * of the disk id, so both the engine and a guest can find them.
 *
 * Errors: every op returns 0/-1 (or pointer/NULL) and reports libvirt's
 * message once through error(); a domain that does not exist is ERR_NOT_FOUND,
 * libvirt being unreachable is ERR_UNAVAILABLE.
 *
 * Threading: ops may be called from any thread. Callbacks run on the hyper's
 * own event thread and must not block for long. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include "store/store.h"
#include "util/vec.h"

enum domain_type { DOMAIN_TYPE_AUTO, DOMAIN_TYPE_KVM, DOMAIN_TYPE_QEMU, DOMAIN_TYPE_LAST };
ENUM_DECL(domain_type); /* "auto","kvm","qemu" */

/* a disk as the hypervisor sees it */
struct hyper_disk {
  const char *disk_id;     /* serial and alias derive from it */
  const char *path;        /* file the VM opens (active volume or transient overlay) */
  int format;              /* enum disk_format of path */
  int iface;               /* enum disk_iface */
  bool read_only, bootable, shareable;
};

/* a network interface as the hypervisor sees it (alias "ua-<nic id>") */
struct hyper_nic {
  const char *nic_id;
  const char *mac;
  int iface;                 /* enum nic_iface */
  const char *network;       /* libvirt network name, or NULL when bridge */
  const char *bridge;        /* host bridge, or NULL */
  int boot_order;            /* <boot order>; 0: none (set by the domain's boot devices) */
};

/* one network interface of a running guest and its addresses (virDomainInterfaceAddresses) */
struct hyper_guest_iface {
  char *name;                /* as the guest names it ("eth0"), or libvirt's host-side name */
  char *mac;                 /* "56:6f:..." */
  struct hyper_guest_ip { char *address; int prefix; bool v6; } *ips;
  size_t nips;
};
void hyper_guest_ifaces_free(struct hyper_guest_iface *v, size_t n);

/* everything needed to start a VM */
struct hyper_vm_spec {
  const struct vm *vm;
  const struct hyper_disk *disks;
  size_t ndisks;
  const char *console_log;  /* serial console written to this file (appended), or NULL for a pty */
  const char *graphics_listen; /* a VNC console on this address, locked until a ticket is set; NULL: none */
  const struct hyper_nic *nics;
  size_t nnics;
  const char *cdrom_path;   /* the ISO in the CD-ROM drive (every domain has one), NULL: empty */
  bool spice;               /* with graphics_listen: a SPICE console too, locked the same way */
};

/* a graphics console of a running domain, from the live XML */
struct hyper_graphics {
  char type[16];            /* "vnc", "spice" */
  int port;                 /* -1 while not allocated */
  char listen[64];          /* the address it listens on */
};

/* a disk present in a running domain, from the live XML */
struct hyper_live_disk {
  char *alias;    /* "ua-<disk id>" for ours */
  char *target;   /* "vda", "sda" ... */
  char *bus;      /* "virtio", "scsi", "sata" */
  char *source;   /* file path */
  char *serial;
};
void hyper_live_disks_free(struct hyper_live_disk *d, size_t n);

/* one disk of a live external snapshot (domain_snapshot) */
struct hyper_snap_disk {
  const char *disk_id;    /* device alias ua-<disk_id> in the running domain */
  const char *new_path;   /* overlay already created by the caller, backing = the disk's current file */
  int new_format;         /* enum disk_format of new_path (qcow2 in practice) */
};

/* one disk of a live pull backup (backup_begin) */
struct hyper_backup_disk {
  const char *disk_id;      /* device alias ua-<disk_id>; also the NBD export name */
  const char *scratch_path; /* host-local file libvirt creates for copy-before-write */
  bool incremental;         /* changed blocks since the backup's checkpoint (else full) */
  bool checkpoint;          /* the new checkpoint starts a bitmap on this disk */
};

/* where the NBD server of a pull backup listens: a unix socket on the
 * host, or TCP on the host's address as its libvirt URI names it (another
 * host than the engine's), with TLS when that URI is qemu+tls (the host's
 * qemu.conf then needs backup_tls_x509_cert_dir) */
struct hyper_nbd_server {
  const char *socket_path;  /* a unix socket; NULL: TCP */
  int port_min, port_max;   /* TCP: the ports it may take... */
  int port_first;           /* ...tried in turn from this one, wrapping around */
};

/* one disk's I/O counters since the domain started (libvirt block stats) */
struct hyper_block_stats {
  char *alias;                     /* "ua-<disk id>" */
  int64_t rd_bytes, wr_bytes, rd_reqs, wr_reqs, fl_reqs;
  int64_t rd_time_ns, wr_time_ns, fl_time_ns;  /* total time spent */
};

/* a running domain's counters at one instant (virDomainListGetStats) */
struct hyper_domain_stats {
  int64_t sampled_ns;              /* CLOCK_MONOTONIC when read */
  int64_t cpu_time_ns, cpu_user_ns, cpu_system_ns;  /* the QEMU process */
  int64_t vcpu_time_ns;            /* time the guest's vCPUs ran, summed */
  int vcpus;
  int64_t balloon_current, balloon_rss, balloon_unused, balloon_available; /* bytes; -1 unknown */
  int64_t net_rx_bytes, net_tx_bytes;
  struct hyper_block_stats *blocks;
  size_t nblocks;
};
void hyper_domain_stats_clear(struct hyper_domain_stats *s);

/* the host's counters at one instant (virNodeGetCPUStats/MemoryStats) */
struct hyper_host_stats {
  int64_t sampled_ns;
  int64_t cpu_user_ns, cpu_kernel_ns, cpu_idle_ns, cpu_iowait_ns; /* all CPUs together */
  int64_t mem_total, mem_free, mem_buffers, mem_cached;           /* bytes */
  int cpus;
};

struct hyper_callbacks {
  /* the domain vm_id changed state (VM_DOWN when it stopped or crashed);
   * reason is libvirt's, e.g. "shutdown", "destroyed", "crashed" */
  void (*lifecycle)(void *opaque, const char *vm_id, int vm_status, const char *reason);
  /* libvirt reported a device removed (alias "ua-<disk id>") */
  void (*device_removed)(void *opaque, const char *vm_id, const char *alias);
  /* the connection came back after it had dropped (libvirtd restarted):
   * events sent meanwhile are lost, so the caller reconciles. Called on the
   * thread whose call reconnected, with no lock of the hyper held. */
  void (*reconnected)(void *opaque);
  /* the connection closed under us (libvirtd stopped or restarted): the
   * next call reconnects, so the caller tries one soon instead of waiting
   * for its next chore. Called on the event thread; may be NULL. */
  void (*disconnected)(void *opaque);
};

struct hyper_options {
  const char *uri;               /* e.g. qemu:///system, qemu+ssh://host/system */
  int domain_type;               /* enum domain_type; AUTO picks kvm when /dev/kvm is usable */
  int detach_timeout_ms;         /* how long disk_detach waits for the guest; 0 = default 10 s */
  const struct hyper_callbacks *cb;
  void *opaque;
  const char *console_listen;    /* where domains' VNC consoles listen; NULL: 127.0.0.1 */
};

struct hyper;
struct hyper_ops {
  const char *name;
  /* connects (and reconnects lazily later); NULL + ERR_UNAVAILABLE when the host does not answer */
  struct hyper *(*open)(const struct hyper_options *opts);
  /* stops the event thread and disconnects; NULL-safe */
  void (*close)(struct hyper *h);
  /* 0 when the host answers now */
  int (*ping)(struct hyper *h);
  /* the host's hostname, CPU count and memory in bytes */
  int (*host_info)(struct hyper *h, char **hostname, int *cpus, int64_t *memory);
  /* generates the domain XML (exposed for tests and diagnostics); caller frees */
  char *(*domain_xml_for)(struct hyper *h, const struct hyper_vm_spec *spec);
  /* starts a transient domain from spec; ERR_CONFLICT when already running */
  int (*domain_start)(struct hyper *h, const struct hyper_vm_spec *spec);
  /* hard stop; a domain that is not running is not an error */
  int (*domain_destroy)(struct hyper *h, const char *vm_id);
  /* ACPI shutdown request; returns at once */
  int (*domain_shutdown)(struct hyper *h, const char *vm_id);
  /* *vm_status = VM_DOWN when no such domain runs */
  int (*domain_state)(struct hyper *h, const char *vm_id, int *vm_status);
  /* UUIDs of every running domain of this host */
  int (*domain_list)(struct hyper *h, struct strvec *ids);
  /* live domain XML; caller frees */
  char *(*domain_live_xml)(struct hyper *h, const char *vm_id);
  /* disks of the running domain */
  int (*domain_disks)(struct hyper *h, const char *vm_id, struct hyper_live_disk **out, size_t *n);
  /* hot-plugs a disk into a running domain (live only) */
  int (*disk_attach)(struct hyper *h, const char *vm_id, const struct hyper_disk *d);
  /* hot-unplugs and returns only when libvirt reported the device removed;
   * ERR_CONFLICT "guest did not release disk ..." after the timeout, the disk
   * still being in place */
  int (*disk_detach)(struct hyper *h, const char *vm_id, const char *disk_id);
  /* Switches every listed disk of the running domain to its overlay in one
   * atomic step (a disk-only external snapshot without libvirt metadata that
   * reuses the given files; the other disks are left alone). With quiesce
   * the guest agent freezes the file systems first; when no agent answers
   * the snapshot is taken crash-consistent instead. *quiesced tells which;
   * with quiesced NULL a quiesced snapshot is required (no fallback: the
   * missing agent is the error). ERR_NOT_FOUND for a VM that does not run or a disk it does
   * not have; libvirt's message otherwise, nothing changed. */
  int (*domain_snapshot)(struct hyper *h, const char *vm_id, const struct hyper_snap_disk *disks, size_t n,
                         bool quiesce, bool *quiesced);
  /* Merges top_path into base_path (its backing file, or one further down)
   * in the chain of disk disk_id of the running domain and drops the layers
   * from top_path down to just above base_path from the chain. When
   * top_path is the active layer the VM writes base_path afterwards (active
   * commit + pivot). Returns when the merge finished. After timeout_ms (<= 0:
   * 10 minutes) the job is cancelled and ERR_INTERNAL "merge of ... did not
   * finish within N s"; on any failure the chain is unchanged and usable:
   * the guest sees the same data, but base_path may already hold part of
   * top_path's (a commit copies as it goes), so it is no longer the
   * point-in-time image it was. Retrying the same merge is the way on.
   * ERR_NOT_FOUND when top_path is not in the disk's chain or base_path is
   * not below it. The files stay: the caller deletes the merged layers. */
  int (*block_commit)(struct hyper *h, const char *vm_id, const char *disk_id, const char *top_path,
                      const char *base_path, int timeout_ms);
  /* How far the block job on disk disk_id of the running domain (a merge
   * that block_commit runs, asked from another thread) has come: 1 with
   * *done of *total bytes, 0 when no job runs, -1 + error. NULL: the backend
   * cannot tell. */
  int (*block_job_progress)(struct hyper *h, const char *vm_id, const char *disk_id, uint64_t *done,
                            uint64_t *total);
  /* Starts a pull backup of the running domain's active layers (libvirt's
   * backup API): an NBD server (a unix socket, or TCP on a port of the
   * range that is free on the host: *nbd_url, caller frees, is then
   * "nbd://ADDR:PORT", nbds:// with TLS) exports each
   * listed disk as it is now, under the name of its disk id, with scratch
   * files for copy-before-write (libvirt makes them in their directory,
   * which must exist, and deletes them when the job ends). With from_checkpoint, the incremental disks
   * also export the union of bitmap from_checkpoint over their chains as
   * meta context qemu:dirty-bitmap:<from_checkpoint>. In the same instant,
   * bitmap new_checkpoint starts in the active layer of every disk marked
   * checkpoint. Of the domain's checkpoints, libvirt keeps only the metadata
   * of new_checkpoint afterwards, which spares the next backup from it a
   * REDEFINE (the engine holds the truth; bitmaps are named after checkpoint
   * ids). With quiesce
   * the guest agent must freeze the file systems around the start. A
   * missing or unusable bitmap fails it with libvirt's message; nothing is
   * left running then. */
  int (*backup_begin)(struct hyper *h, const char *vm_id, const struct hyper_backup_disk *disks, size_t n,
                      const struct hyper_nbd_server *server, const char *from_checkpoint,
                      const char *new_checkpoint, bool quiesce, char **nbd_url);
  /* ends the domain's backup job (the NBD server goes, libvirt deletes the
   * scratch files); no job, or no such domain, is not an error */
  int (*backup_end)(struct hyper *h, const char *vm_id);
  /* whether the domain's backup job still runs: 1; 0 when it ended without
   * backup_end (aborted from outside, failed, the domain stopped), with
   * *why (caller frees) saying how; -1 + error when libvirt cannot tell */
  int (*backup_job_alive)(struct hyper *h, const char *vm_id, char **why);
  /* counters of the running domain vm_id; ERR_NOT_FOUND when it does not
   * run. Block stats carry the device alias of each disk. Caller clears *out */
  int (*domain_stats)(struct hyper *h, const char *vm_id, struct hyper_domain_stats *out);
  /* the host's CPU and memory counters */
  int (*host_stats)(struct hyper *h, struct hyper_host_stats *out);
  /* hot-plugs / hot-unplugs a network interface of the running domain */
  int (*nic_attach)(struct hyper *h, const char *vm_id, const struct hyper_nic *nic);
  int (*nic_detach)(struct hyper *h, const char *vm_id, const struct hyper_nic *nic);
  /* the graphics consoles of the running domain (at most max) */
  int (*graphics_list)(struct hyper *h, const char *vm_id, struct hyper_graphics *out, size_t max, size_t *n);
  /* sets the password of console TYPE of the running domain, valid until
   * valid_until (seconds since the epoch); ERR_NOT_FOUND when it has none */
  int (*graphics_ticket)(struct hyper *h, const char *vm_id, const char *type, const char *password,
                         int64_t valid_until);
  /* Live-migrates the running domain vm_id from host h to host dst (both
   * opened by this backend) over shared storage: the disks stay where they
   * are, only memory and device state move. The migration stream goes to
   * dst's address in its URI, or, for a local dst (qemu:///system), to this
   * machine's address on the route toward h. Returns when the domain runs
   * on dst; on failure it still runs on h, with libvirt's message. */
  int (*domain_migrate)(struct hyper *h, struct hyper *dst, const char *vm_id);
  /* Volumes on the host's own local storage, made by its libvirt (the
   * storage-volume API: libvirt runs qemu-img there; the engine never gets
   * a shell on a host). Creates qcow2 file NAME of size bytes in directory
   * DIR of host h (DIR made when missing, 0700) above BACKING (a path the
   * host sees, e.g. on a shared storage domain); *path gets the file's path
   * (caller frees). */
  int (*local_volume_create)(struct hyper *h, const char *dir, const char *name, int64_t size,
                             const char *backing, int backing_format, char **path);
  /* deletes file PATH made by local_volume_create; a missing one is not an error */
  int (*local_volume_delete)(struct hyper *h, const char *path);
  /* the names of the files in directory DIR of host h (none when DIR is missing) */
  int (*local_volume_list)(struct hyper *h, const char *dir, struct strvec *names);
  /* makes directory DIR of host h (0700) when missing, for files its libvirt
   * makes there itself (a backup's scratch files) */
  int (*local_dir_make)(struct hyper *h, const char *dir);
  /* puts ISO file PATH into the CD-ROM drive of the running domain (live
   * only; NULL ejects); ERR_NOT_FOUND when it does not run */
  int (*cdrom_change)(struct hyper *h, const char *vm_id, const char *path);
  /* the guest's interfaces and addresses as its guest agent reports them;
   * when no agent answers, the leases of libvirt networks' DHCP servers.
   * *from says which ("agent", "lease"). ERR_NOT_FOUND when it does not
   * run; no source answering is an empty list, not an error. Caller frees
   * with hyper_guest_ifaces_free. */
  int (*guest_addresses)(struct hyper *h, const char *vm_id, struct hyper_guest_iface **out, size_t *n,
                         const char **from);
  /* 1 when the host's QEMU offers graphics TYPE ("spice"; libvirt's domain
   * capabilities, asked once), 0 when not; a started domain gets a SPICE
   * console beside VNC exactly when this says 1 */
  int (*graphics_supported)(struct hyper *h, const char *type);
};

extern const struct hyper_ops hyper_libvirt_ops;

/* the backing chain of disk disk_id in the running domain as file paths, the
 * active layer first (from the live XML); ERR_NOT_FOUND when not plugged */
int hyper_disk_chain(const struct hyper_ops *ops, struct hyper *h, const char *vm_id,
                     const char *disk_id, struct strvec *chain);

/* volumes: files on the host, made with qemu-img through posix_spawn.
 * (Local today; a remote host will do these through libvirt's storage API.) */
/* creates PATH (and its parent directories) of `size` bytes; backing may be NULL */
int volume_create(const char *path, int format, int64_t size, const char *backing, int backing_format);
/* bytes allocated on disk for PATH, -1 with error when unreadable */
int64_t volume_actual_size(const char *path);
/* allocates every byte of a raw volume (sparse=false); ENOSPC is ERR_CONFLICT */
int volume_preallocate(const char *path, int64_t size);
/* grows PATH (the top of a chain) to size bytes; offline only */
int volume_resize(const char *path, int format, int64_t size);
/* removes PATH; a missing file is not an error */
int volume_remove(const char *path);
/* merges TOP into BASE (TOP's backing file or one further down) with
 * `qemu-img commit -b`; neither may be open for writing by a VM. TOP stays
 * in place (emptied): the caller deletes it and the layers in between. */
int volume_commit(const char *top, int top_format, const char *base);
/* rewrites the backing file name recorded in the qcow2 PATH to new_backing
 * (`qemu-img rebase -u`): no data moves, so new_backing must already hold
 * the content of the old backing chain */
int volume_rebase_unsafe(const char *path, const char *new_backing, int backing_format);
/* the backing file of PATH as an openable path (relative names resolved
 * against PATH's directory), read with `qemu-img info -U` so PATH may be in
 * use. NULL with no error (error_code() == ERR_NONE) when PATH has none;
 * NULL with ERR_NOT_FOUND when PATH is missing. Caller frees. */
char *volume_backing(const char *path);
/* lowercase SHA-256 hex of the guest-visible content of PATH (the whole
 * virtual disk, backing chain included), read with -U so PATH may be in use;
 * goes through a temporary raw copy in /var/tmp. Caller frees. */
char *volume_sha256(const char *path, int format);
/* copies the guest-visible content of SRC (its backing chain flattened, read
 * with -U so SRC may be in use) into a new file DST of dst_format, making
 * DST's parent directories; a failed copy leaves no DST */
int volume_convert(const char *src, int src_format, const char *dst, int dst_format);

/* json:{...} naming the byte range [offset, offset+size) of file PATH as an
 * image of format qcow2 (backing files never followed) or raw; size < 0: to
 * EOF (an OVA's member, read or written in place). Caller frees. */
char *volume_range_image(const char *path, int64_t offset, int64_t size, bool qcow2);
/* what qemu-img info -U reads of an image's header */
struct volume_info {
  int64_t virtual_size;
  bool has_backing;   /* names a backing file */
  bool has_data_file; /* a qcow2 with an external data file */
  bool corrupt;       /* a qcow2 flagged corrupt */
};
/* the header of FILENAME (a path or a json: image) read as FORMAT (-1: as
 * qemu-img probes it or the json: name says) */
int volume_info(const char *filename, int format, struct volume_info *out);
/* the bytes a qcow2 copy of PATH (its chain flattened) needs at most
 * (qemu-img measure); -1 with the error */
int64_t volume_measure(const char *path, int format);
/* copies the guest-visible content of SRC (a path or a json: image, read
 * with -U; src_format -1: as the json: name says) into DST as dst_format
 * (qemu-img convert). DST is a new file, or with into_zeroed an existing
 * image (a path or json:) that reads as zeros. The error is qemu-img's own
 * message, so a caller can tell a full disk. */
int volume_copy_image(const char *src, int src_format, const char *dst, int dst_format, bool into_zeroed);
/* an NBD export of one volume by qemu-nbd on a unix socket */
struct volume_nbd {
  const char *path;    /* the volume */
  int format;          /* enum disk_format */
  const char *socket;  /* the unix socket it listens on (replaced) */
  const char *log;     /* qemu-nbd's output goes here */
  bool read_only;      /* else writes, with zeroes written as holes */
  const char *bitmap;  /* NULL, or a persistent bitmap of PATH to export as
                          the meta context qemu:dirty-bitmap:BITMAP */
};
/* starts qemu-nbd serving o (up to 8 clients, until stopped); *pid is its
 * process, which the caller waits for and stops (spawn_stop) */
int volume_nbd_serve(const struct volume_nbd *o, pid_t *pid);
/* starts writing PATH's dirty pages back to its disk and returns without
 * waiting (sync_file_range, SYNC_FILE_RANGE_WRITE). Not a flush: it makes
 * nothing durable. Done now and then while an upload fills a volume, it
 * leaves the final flush little to write. -1 with the error. */
int volume_writeback_start(const char *path);

/* persistent dirty bitmaps in qcow2 volumes (incremental backup). QEMU keeps
 * them in each layer of a chain; a bitmap flagged in-use in a file no QEMU
 * has open was not saved (a crash): its content cannot be trusted. */
struct volume_bitmap {
  char *name;
  bool in_use;          /* flags "in-use": open for writing now, or not saved by a crash */
  bool inconsistent;    /* qemu-img reports it inconsistent */
};
/* the bitmaps of qcow2 PATH (read with -U: PATH may be in use); caller
 * frees with volume_bitmaps_free */
int volume_bitmaps(const char *path, struct volume_bitmap **out, size_t *n);
void volume_bitmaps_free(struct volume_bitmap *b, size_t n);
/* adds an empty, enabled persistent bitmap NAME to PATH (not open in a VM);
 * one that exists already is left as it is */
int volume_bitmap_add(const char *path, const char *name);
/* removes bitmap NAME from PATH (not open in a VM); a missing one is not an error */
int volume_bitmap_remove(const char *path, const char *name);
/* merges bitmap SRC_NAME of qcow2 SRC_PATH into bitmap DST_NAME of DST_PATH
 * (which must exist); SRC_PATH is only read */
int volume_bitmap_merge(const char *dst_path, const char *dst_name, const char *src_path,
                        const char *src_name);
