/* store.h: snapback's persistent state, the single source of truth.
 *
 * Entities are plain C structs. Each is described once by a field table
 * (struct entity_desc in store.c: column name, type, offset), and generic
 * code maps them to and from SQL, so adding a column is one line and a new
 * backend (PostgreSQL) implements only db.h. Everything here is thread-safe:
 * the store serialises access with one recursive mutex.
 *
 * Ownership: getters return a freshly allocated struct the caller frees with
 * the type's *_free (AUTOPTR(vm) etc.). Lists are NULL-terminated arrays
 * freed with the list's *_list_free. Ids are 36-char UUID strings.
 *
 * Errors: a missing row is ERR_NOT_FOUND with a message naming the kind and
 * id ("VM '1234...' does not exist"); backend failures are ERR_INTERNAL. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "util/cleanup.h"
#include "util/enumstr.h"

/* unknown: its host does not answer, so it may still run there (never shown down) */
enum vm_status { VM_DOWN, VM_POWERING_UP, VM_UP, VM_POWERING_DOWN, VM_PAUSED, VM_UNKNOWN, VM_STATUS_LAST };
ENUM_DECL(vm_status);  /* "down","powering_up","up","powering_down","paused","unknown" */
enum disk_format { DISK_FORMAT_COW, DISK_FORMAT_RAW, DISK_FORMAT_LAST };
ENUM_DECL(disk_format); /* "cow","raw" */
enum disk_status { DISK_OK, DISK_LOCKED, DISK_ILLEGAL, DISK_STATUS_LAST };
ENUM_DECL(disk_status); /* "ok","locked","illegal" */
enum disk_iface { IFACE_VIRTIO, IFACE_VIRTIO_SCSI, IFACE_SATA, IFACE_IDE, IFACE_LAST };
ENUM_DECL(disk_iface); /* "virtio","virtio_scsi","sata","ide" */
enum disk_content { DISK_CONTENT_DATA, DISK_CONTENT_ISO, DISK_CONTENT_LAST };
ENUM_DECL(disk_content); /* "data","iso" (oVirt's disk content_type) */
enum nic_iface { NIC_VIRTIO, NIC_E1000, NIC_RTL8139, NIC_IFACE_LAST };
ENUM_DECL(nic_iface); /* "virtio","e1000","rtl8139" (libvirt's models) */
enum snapshot_type { SNAPSHOT_ACTIVE, SNAPSHOT_REGULAR, SNAPSHOT_TYPE_LAST };
ENUM_DECL(snapshot_type); /* "active","regular" */
enum snapshot_status { SNAPSHOT_OK, SNAPSHOT_LOCKED, SNAPSHOT_IN_PREVIEW, SNAPSHOT_STATUS_LAST };
ENUM_DECL(snapshot_status); /* "ok","locked","in_preview" */
/* installing: added, its libvirt not reached yet */
enum host_status { HOST_UP, HOST_MAINTENANCE, HOST_NON_RESPONSIVE, HOST_INSTALLING, HOST_STATUS_LAST };
ENUM_DECL(host_status); /* "up","maintenance","non_responsive","installing" */
enum job_status { JOB_STARTED, JOB_FINISHED, JOB_FAILED, JOB_STATUS_LAST };
ENUM_DECL(job_status); /* "started","finished","failed" */
enum event_severity { SEVERITY_NORMAL, SEVERITY_WARNING, SEVERITY_ERROR, SEVERITY_ALERT, SEVERITY_LAST };
ENUM_DECL(event_severity); /* "normal","warning","error","alert" */
enum transfer_direction { TRANSFER_UPLOAD, TRANSFER_DOWNLOAD, TRANSFER_DIRECTION_LAST };
ENUM_DECL(transfer_direction); /* "upload","download" */
enum transfer_phase { TRANSFER_INITIALIZING, TRANSFER_TRANSFERRING, TRANSFER_FINISHED_SUCCESS,
                      TRANSFER_FINISHED_FAILURE, TRANSFER_CANCELLED, TRANSFER_PHASE_LAST };
ENUM_DECL(transfer_phase); /* "initializing","transferring","finished_success","finished_failure","cancelled" */
enum disk_backup { DISK_BACKUP_NONE, DISK_BACKUP_INCREMENTAL, DISK_BACKUP_LAST };
ENUM_DECL(disk_backup); /* "none","incremental" */
enum backup_phase { BACKUP_INITIALIZING, BACKUP_STARTING, BACKUP_READY, BACKUP_FINALIZING,
                    BACKUP_SUCCEEDED, BACKUP_FAILED, BACKUP_PHASE_LAST };
ENUM_DECL(backup_phase); /* "initializing","starting","ready","finalizing","succeeded","failed" */
enum backup_mode { BACKUP_MODE_FULL, BACKUP_MODE_INCREMENTAL, BACKUP_MODE_LAST };
ENUM_DECL(backup_mode); /* "full","incremental" */
/* pending: made by a backup still running, not listed; it becomes created
 * when that backup succeeds and goes away when it fails */
enum checkpoint_state { CHECKPOINT_CREATED, CHECKPOINT_INVALID, CHECKPOINT_PENDING, CHECKPOINT_STATE_LAST };
ENUM_DECL(checkpoint_state); /* "created","invalid","pending" */

struct user {
  char *id, *name;       /* name: "admin@internal" */
  char *password_hash;   /* argon2id encoded string */
};

struct token {
  char *token;           /* the opaque bearer token (random hex) */
  char *user_id;
  int64_t expires_ms;    /* wall clock */
};

struct host {
  char *id, *name;
  char *address;         /* what the admin gave: an address, or the local host's libvirt URI */
  char *cluster_id;
  int status;            /* enum host_status */
  char *libvirt_uri;     /* how the engine reaches it; NULL: address is the URI (older stores) */
};

struct datacenter { char *id, *name, *description; };
struct cluster { char *id, *name, *description, *datacenter_id; };
struct template { char *id, *name, *description, *cluster_id; };

struct storage_domain {
  char *id, *name;
  char *path;            /* directory; volumes live in PATH/SD_ID/images/DISK_ID/VOL_ID */
  char *datacenter_id;
  char *type;            /* "data" */
};

struct vm {
  char *id, *name, *description;
  char *cluster_id, *template_id;
  char *host_id;         /* where it runs; NULL when down */
  int64_t memory;        /* bytes */
  int64_t sockets, cores, threads;
  char *os_type;         /* "other", "rhel_8x64" ... */
  int status;            /* enum vm_status */
  char *kernel, *initrd, *cmdline; /* direct kernel boot; NULL when unset */
  int64_t creation_ms;
  char *placement_host_id; /* <placement_policy><hosts>: start only there; NULL: any host of the cluster */
  char *cdrom_disk_id;       /* the ISO disk in the CD-ROM (content_type iso), NULL: empty */
  char *boot_devices;        /* oVirt's os/boot/devices in order, comma-separated
                                ("cdrom,hd"); NULL: hd */
};

/* a logical network: libvirt's network NAME (libvirt_network) or a host bridge */
struct network {
  char *id, *name, *description, *datacenter_id;
  char *libvirt_network;     /* e.g. "default" (libvirt's NAT network); NULL when bridge is set */
  char *bridge;              /* a host bridge; NULL when libvirt_network is set */
};

/* a VM's network interface; its vNIC profile is its network's (one per network) */
struct nic {
  char *id, *vm_id, *name;
  char *network_id;          /* NULL: not connected */
  char *mac;                 /* "56:6f:xx:xx:xx:xx", unique engine-wide */
  int iface;                 /* enum nic_iface */
  bool plugged;              /* in the running domain (or plugged at start) */
  int64_t position;
};

struct disk {
  char *id, *alias, *description;
  int64_t provisioned_size;  /* bytes */
  int format;                /* enum disk_format */
  bool sparse, shareable;
  char *storage_domain_id;
  int status;                /* enum disk_status */
  int backup;                /* enum disk_backup: incremental keeps dirty bitmaps (qcow2 only) */
  int content_type;          /* enum disk_content: iso disks go into CD-ROMs, never attached */
};

/* one file of a disk's chain: the active volume has snapshot_id of the VM's
 * active snapshot (or NULL for a floating disk); parent_id is its backing volume */
struct volume {
  char *id, *disk_id, *parent_id, *snapshot_id;
  int format;                /* enum disk_format */
  int status;                /* enum disk_status */
  char *path;                /* absolute path of the file */
  bool active;               /* true for the top (writable) volume */
};

/* a disk attached to a VM; id == disk_id as in oVirt */
struct attachment {
  char *vm_id, *disk_id;
  char *snapshot_id;         /* non-NULL: a disk snapshot of another VM (Backup API) */
  int iface;                 /* enum disk_iface */
  bool bootable, active, read_only;
  bool plugged;              /* runtime: present in the running domain */
  char *logical_name;        /* as the guest reports it, or NULL */
  char *overlay_path;        /* transient overlay of a plugged snapshot attachment */
  int64_t position;          /* attach order, for stable listing and device order */
};

struct snapshot {
  char *id, *vm_id, *description;
  int type;                  /* enum snapshot_type */
  int status;                /* enum snapshot_status */
  int64_t date_ms;
  bool persist_memorystate;
  char *ovf;                 /* VM configuration at that instant, or NULL */
  char *operation;           /* while locked: "create" or "remove"; for crash recovery */
};

struct event {
  int64_t id;                /* increasing */
  int64_t time_ms;
  int severity;              /* enum event_severity */
  int64_t code;
  char *description, *origin;
  int64_t custom_id;         /* -1 when unset */
  char *user_id, *user_name, *vm_id, *correlation_id;
};

struct job {
  char *id, *description;
  int status;                /* enum job_status */
  int64_t start_ms, end_ms;  /* end 0 while running */
  char *user_id;
  int64_t progress;          /* 0..100 */
  char *vm_id;               /* the VM the job acts on, or NULL */
};

/* an image transfer: one volume exported over NBD by a qemu-nbd the engine
 * started, reached through transfer_url (NBD) or proxy_url (HTTP, /images/TICKET) */
struct image_transfer {
  char *id;
  int direction;             /* enum transfer_direction */
  int phase;                 /* enum transfer_phase */
  int format;                /* enum disk_format of the data moved: raw = guest bytes */
  char *disk_id, *volume_id; /* the exported volume (download: with its backing chain) */
  char *snapshot_id;         /* for a disk snapshot, the snapshot owning volume_id; NULL
                                when the transfer is of the disk's active volume */
  char *vm_id;               /* the VM owning the disk at creation, or NULL (floating) */
  char *socket_path;         /* qemu-nbd's unix socket */
  char *ticket;              /* the secret of the HTTP data URL */
  int64_t pid;               /* qemu-nbd; 0 when none runs */
  int64_t size;              /* virtual size of the export, bytes */
  int64_t created_ms, last_activity_ms; /* wall clock */
  int64_t bytes_transferred; /* through the HTTP data URL */
  int64_t inactivity_timeout;/* seconds without a client before it is cancelled */
  char *user_id;
  char *message;             /* why it failed or was cancelled, or NULL */
  char *dirty_context;       /* the NBD meta context of the changed blocks (e.g.
                                qemu:dirty-bitmap:NAME) for extents?context=dirty;
                                NULL: not an incremental backup's transfer */
  char *export_name;         /* the NBD export on socket_path; NULL: the default */
  int64_t external_server;   /* 1: socket_path is served by someone else (libvirt's
                                backup job): never started, stopped or removed here */
  int64_t chosen_source;     /* 1: another command (a backup) chose the data and holds
                                the disk: the transfer neither locks nor unlocks it */
  char *nbd_server;          /* an external server on TCP, "nbd://ADDR:PORT" (nbds:// with
                                TLS), exporting export_name; NULL: socket_path */
};

/* ---- users, groups, roles, permissions (cmd/core/perm.c holds the rules) ---- */

/* a group of users; membership is group_member rows */
struct usergroup { char *id, *name, *domain; };
struct group_member { char *id, *group_id, *user_id; };
/* a custom role (the predefined ones live in cmd/core/perm.c and never change) */
struct role {
  char *id, *name, *description;
  bool administrative;
};
/* one permit (oVirt action group id, e.g. 1101 ATTACH_DISK) of a custom role */
struct role_permit { char *id, *role_id; int64_t permit; };
/* a role granted to a user or a group (exactly one set) on an object;
 * object_type is "system", "datacenter", "cluster", "storage_domain", "host",
 * "vm", "template" or "disk" */
struct permission { char *id, *role_id, *user_id, *group_id, *object_type, *object_id; };
/* a locked user: its tokens and passwords stop working at once */
struct user_lock { char *user_id; int64_t since_ms; };
/* a VM backup (oVirt's Backup API, cmd/backup/backup.c). Hybrid: a snapshot
 * (snapshot_id) freezes the disks; clients read its volumes; finalize
 * removes it. */
struct backup {
  char *id, *vm_id, *description;
  int phase;                 /* enum backup_phase */
  char *from_checkpoint_id;  /* NULL: full */
  char *to_checkpoint_id;    /* the checkpoint this backup creates */
  char *snapshot_id;         /* the backup's snapshot, NULL until taken and after removal */
  char *host_id;
  bool require_consistency, use_active;
  int64_t creation_ms, modification_ms;
  char *user_id;
  char *message;             /* why it failed, or NULL */
  char *nbd_server;          /* use_active on another host: libvirt's NBD server there,
                                "nbd://ADDR:PORT" (nbds:// with TLS); NULL: a unix socket */
};

/* one disk of a backup */
struct backup_disk {
  char *id;                  /* BACKUP_ID/DISK_ID */
  char *backup_id, *disk_id;
  int mode;                  /* enum backup_mode */
  char *volume_id;           /* the frozen volume clients read (hybrid), NULL before ready */
  char *reason;              /* why it fell back to full, or NULL */
};

/* a point in a VM's history where each of its incremental disks starts a
 * persistent qcow2 bitmap named after the checkpoint id */
struct checkpoint {
  char *id, *vm_id, *parent_id;
  int state;                 /* enum checkpoint_state */
  int64_t creation_ms;
  char *backup_id;           /* the backup that made it */
  char *message;             /* why it is invalid, or NULL */
};

/* a disk of a checkpoint: its bitmap started in volume_id */
struct checkpoint_disk {
  char *id;                  /* CHECKPOINT_ID/DISK_ID */
  char *checkpoint_id, *disk_id, *volume_id;
};

#define STORE_TYPES(X) \
  X(user) X(token) X(host) X(datacenter) X(cluster) X(template) \
  X(storage_domain) X(vm) X(disk) X(volume) X(attachment) X(snapshot) X(event) X(job) \
  X(image_transfer) \
  X(usergroup) X(group_member) X(role) X(role_permit) X(permission) X(user_lock) \
  X(backup) X(backup_disk) X(checkpoint) X(checkpoint_disk) \
  X(network) X(nic)

/* per type: T_free(p) (NULL-safe), T_list_free(list) (NULL-safe), AUTOPTR(T) */
#define STORE_DECL_FREE(T)                      \
  void T##_free(struct T *p);                   \
  void T##_list_free(struct T **list);          \
  DEFINE_AUTOPTR(T, struct T, T##_free)
STORE_TYPES(STORE_DECL_FREE)
#undef STORE_DECL_FREE
/* AUTOPTR for lists: AUTOLIST(vm) vms = NULL; */
#define DEFINE_AUTOLIST(T) \
  static inline void autolist_cleanup_##T(struct T ***p) { T##_list_free(*p); }
#define STORE_DECL_LIST(T) DEFINE_AUTOLIST(T)
STORE_TYPES(STORE_DECL_LIST)
#undef STORE_DECL_LIST
#define AUTOLIST(T) __attribute__((cleanup(autolist_cleanup_##T))) struct T **

struct store;

/* opens (creating and migrating the schema when new) the store at URL; see db_open_url */
struct store *store_open(const char *url);
void store_close(struct store *st);
/* Claims the store for this process's lifetime: one engine per store. On
 * PostgreSQL a session advisory lock, dropped by the server when the process
 * dies; a second engine gets ERR_CONFLICT naming the holder. SQLite has no
 * such lock (the state directory's flock covers it): 0. */
int store_claim(struct store *st) WARN_UNUSED;
/* checks a store URL without opening it (option validation): 0 or -1 + error */
int store_check_url(const char *url) WARN_UNUSED;
/* the schema version this build writes, and the one of an open store */
int store_schema_version(void);
/* Records ERR_NOT_FOUND for an id that names no WANT ("VM snapshot", "disk
 * snapshot"...), saying which kind of id was expected, where such ids are
 * listed (LISTED_BY, may be NULL) and, when ID names an object of another
 * kind and NAME_OTHER_KIND (the caller is a system administrator: anyone else
 * must not learn that an object they cannot see exists), which. Returns -1. */
int store_id_not_found(struct store *st, const char *id, const char *want, const char *listed_by,
                       bool name_other_kind);
/* bytes the store takes on disk; -1 + error */
int64_t store_size_bytes(struct store *st) WARN_UNUSED;

/* transactions nest by counting: only the outermost commit/rollback reaches the
 * database. While a transaction is open on a thread, other threads wait. */
int store_begin(struct store *st) WARN_UNUSED;
int store_commit(struct store *st) WARN_UNUSED;
void store_rollback(struct store *st);

/* a number that changes whenever anything (this process or another) wrote
 * to the store since the last call: caches of store data compare it. Rows
 * read under an equal generation are still current. */
int64_t store_generation(struct store *st);

/* key/value settings (schema version, first-start markers) */
char *store_setting_get(struct store *st, const char *key); /* NULL when unset (no error) */
int store_setting_set(struct store *st, const char *key, const char *value);

/* ---- generic CRUD, typed per entity ----
 * T_get(st, id)           -> struct T * or NULL (ERR_NOT_FOUND)
 * T_insert(st, p)         -> 0/-1 (ERR_CONFLICT on a duplicate key)
 * T_update(st, p)         -> 0/-1 (ERR_NOT_FOUND when gone): writes every column
 * T_delete(st, id)        -> 0/-1 (ERR_NOT_FOUND when gone)
 * T_list_all(st)          -> every row, NULL-terminated, in the type's default order; NULL on error
 * T_count_all(st)         -> count or -1
 * Anything narrower is a named query with typed arguments (store/query.h, included
 * below): vm_count_by_name(st, name), attachment_list_own_of_vm(st, vm_id)...
 * For attachment the key is (vm_id, disk_id): attachment_get(st, vm_id, disk_id),
 * attachment_delete(st, vm_id, disk_id); for token it is the token text; for
 * event it is the integer id (event_insert assigns p->id). */
#define STORE_DECL_CRUD(T)                                                                   \
  int T##_update(struct store *st, const struct T *p) WARN_UNUSED;                           \
  struct T **T##_list_all(struct store *st) WARN_UNUSED;                                     \
  int64_t T##_count_all(struct store *st) WARN_UNUSED;
STORE_TYPES(STORE_DECL_CRUD)
#undef STORE_DECL_CRUD
#define STORE_DECL_INSERT(T) int T##_insert(struct store *st, const struct T *p) WARN_UNUSED;
STORE_DECL_INSERT(user) STORE_DECL_INSERT(token) STORE_DECL_INSERT(host)
STORE_DECL_INSERT(datacenter) STORE_DECL_INSERT(cluster) STORE_DECL_INSERT(template)
STORE_DECL_INSERT(storage_domain) STORE_DECL_INSERT(vm) STORE_DECL_INSERT(disk)
STORE_DECL_INSERT(volume) STORE_DECL_INSERT(attachment) STORE_DECL_INSERT(snapshot)
STORE_DECL_INSERT(job) STORE_DECL_INSERT(image_transfer)
STORE_DECL_INSERT(usergroup) STORE_DECL_INSERT(group_member) STORE_DECL_INSERT(role)
STORE_DECL_INSERT(role_permit) STORE_DECL_INSERT(permission) STORE_DECL_INSERT(user_lock)
STORE_DECL_INSERT(backup)
STORE_DECL_INSERT(backup_disk) STORE_DECL_INSERT(checkpoint) STORE_DECL_INSERT(checkpoint_disk)
STORE_DECL_INSERT(network) STORE_DECL_INSERT(nic)
#undef STORE_DECL_INSERT
/* assigns p->id (the next value of the events' sequence) and writes it back */
int event_insert(struct store *st, struct event *p) WARN_UNUSED;

struct user *user_get(struct store *st, const char *id);
struct user *user_get_by_name(struct store *st, const char *name);
int user_delete(struct store *st, const char *id);
struct token *token_get(struct store *st, const char *token);
int token_delete(struct store *st, const char *token);
struct host *host_get(struct store *st, const char *id);
int host_delete(struct store *st, const char *id);
struct datacenter *datacenter_get(struct store *st, const char *id);
int datacenter_delete(struct store *st, const char *id);
struct cluster *cluster_get(struct store *st, const char *id);
int cluster_delete(struct store *st, const char *id);
struct template *template_get(struct store *st, const char *id);
int template_delete(struct store *st, const char *id);
struct storage_domain *storage_domain_get(struct store *st, const char *id);
int storage_domain_delete(struct store *st, const char *id);
struct vm *vm_get(struct store *st, const char *id);
int vm_delete(struct store *st, const char *id);
struct disk *disk_get(struct store *st, const char *id);
int disk_delete(struct store *st, const char *id);
struct volume *volume_get(struct store *st, const char *id);
int volume_delete(struct store *st, const char *id);
struct attachment *attachment_get(struct store *st, const char *vm_id, const char *disk_id);
int attachment_delete(struct store *st, const char *vm_id, const char *disk_id);
struct snapshot *snapshot_get(struct store *st, const char *id);
int snapshot_delete(struct store *st, const char *id);
struct event *event_get(struct store *st, int64_t id);
int event_delete(struct store *st, int64_t id);
/* single-column updates for the event thread, which holds no object lock:
 * they leave every other column as a concurrent command wrote it */
int vm_set_status(struct store *st, const char *id, int status, const char *host_id) WARN_UNUSED;
int attachment_set_unplugged(struct store *st, const char *vm_id, const char *disk_id) WARN_UNUSED;
/* deletes up to LIMIT of the oldest events older than BEFORE_MS (never the
 * newest event); *deleted (may be NULL) gets the count */
int event_prune(struct store *st, int64_t before_ms, int limit, int64_t *deleted) WARN_UNUSED;
struct job *job_get(struct store *st, const char *id);
struct network *network_get(struct store *st, const char *id);
int network_delete(struct store *st, const char *id);
struct nic *nic_get(struct store *st, const char *id);
int nic_delete(struct store *st, const char *id);
int job_delete(struct store *st, const char *id);
struct image_transfer *image_transfer_get(struct store *st, const char *id);
int image_transfer_delete(struct store *st, const char *id);
struct usergroup *usergroup_get(struct store *st, const char *id);
int usergroup_delete(struct store *st, const char *id) WARN_UNUSED;
struct group_member *group_member_get(struct store *st, const char *id);
int group_member_delete(struct store *st, const char *id) WARN_UNUSED;
struct role *role_get(struct store *st, const char *id);
int role_delete(struct store *st, const char *id) WARN_UNUSED;
struct role_permit *role_permit_get(struct store *st, const char *id);
int role_permit_delete(struct store *st, const char *id) WARN_UNUSED;
struct permission *permission_get(struct store *st, const char *id);
int permission_delete(struct store *st, const char *id) WARN_UNUSED;
struct user_lock *user_lock_get(struct store *st, const char *user_id);
int user_lock_delete(struct store *st, const char *user_id) WARN_UNUSED;
struct backup *backup_get(struct store *st, const char *id);
int backup_delete(struct store *st, const char *id) WARN_UNUSED;
struct backup_disk *backup_disk_get(struct store *st, const char *id);
int backup_disk_delete(struct store *st, const char *id) WARN_UNUSED;
struct checkpoint *checkpoint_get(struct store *st, const char *id);
int checkpoint_delete(struct store *st, const char *id) WARN_UNUSED;
struct checkpoint_disk *checkpoint_disk_get(struct store *st, const char *id);
int checkpoint_disk_delete(struct store *st, const char *id) WARN_UNUSED;

#include "store/query.h"
