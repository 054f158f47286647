/* transfer.c: image transfers, the data path of the Backup API.
 *
 * A transfer exports one volume of a disk over NBD: the host runs a qemu-nbd
 * (hyper/volume.c: volume_nbd_serve, argv only) on STATE/transfers/ID.sock, read-only for a
 * download (a disk snapshot's volume is opened as qcow2, so the export is the
 * chain up to that volume, as the VM saw the disk at the snapshot), read and
 * write for an upload. Clients reach it as transfer_url (nbd+unix://) or
 * through the engine's HTTP data URL /images/TICKET (http/imageio.c), which
 * calls transfer_by_ticket() and transfer_touch() here.
 *
 * A backup opens its transfers through transfer_spec.source: a volume or
 * file served by our qemu-nbd, with a persistent bitmap exported as the meta
 * context qemu:dirty-bitmap:NAME (the row's dirty_context, which the data
 * path's extents?context=dirty reads), or an NBD server libvirt's backup job
 * already runs (external_server: never started or stopped here). Such a
 * transfer leaves the disk's lock to the backup (chosen_source).
 *
 * Rules: a disk plugged into a running VM is never exported (its active
 * volume changes under the reader): snapshot it and download the disk
 * snapshot, whose volume the VM only reads. A transfer of a disk's active
 * volume marks the disk locked until it ends (no start, attach, snapshot or
 * removal meanwhile); any transfer on a VM's disks refuses removing or
 * restoring that VM's snapshots and removing the disk (transfer_check_*).
 *
 * Crash safety: the row is written (phase initializing, disk locked) before
 * qemu-nbd starts, and its pid right after. At start, transfer_recover()
 * cancels every transfer still open: it kills the qemu-nbd serving its
 * socket (checking /proc/PID/cmdline first: a pid may be reused), removes the
 * socket and unlocks the disk. A reaper thread cancels transfers idle longer
 * than their inactivity_timeout and notices a qemu-nbd that died. While an
 * upload fills a volume, the same thread starts that volume's writeback every
 * WRITEBACK_PERIOD_MS (volume_writeback_start). Left to the kernel, a host
 * with much memory holds gigabytes of dirty pages until the client's final
 * flush and only then writes them; started early, the writes overlap the
 * copy. Writing 2 GiB into a new qcow2 through qemu-nbd took 2.7-3.5 s
 * against 3.5-4.1 s without it here (200 ms period, alternating runs). Where
 * the volume's file system takes O_DIRECT, qemu-nbd writes uploads with it
 * (volume_nbd_serve) and leaves nothing to write back: the writeback then
 * serves the others. */
#include "cmd/internal.h"
#include "cmd/perm.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/spawn.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TRANSFER_DEFAULT_TIMEOUT_S 60
#define TRANSFER_MAX_TIMEOUT_S (7 * 24 * 3600)
#define NBD_READY_TIMEOUT_MS 20000
#define NBD_STOP_TIMEOUT_MS 10000
#define REAPER_PERIOD_MS 1000
/* how often the reaper tells the volumes of uploads in progress to start
 * writing back (reaper_main) */
#define WRITEBACK_PERIOD_MS 200

DEFINE_AUTOPTR(nbd_handle, struct nbd_handle, nbd_close)

static void reaper_wake(struct engine *eng);

/* ---- checks other commands make ---- */

static int transfer_conflict(struct store *st, struct image_transfer **l, const char *what,
                             const char *name)
{
  if (!l) return -1;
  if (!l[0]) return 0;
  AUTOPTR(disk) d = disk_get(st, l[0]->disk_id);
  error_clear();
  return error(ERR_CONFLICT, "cannot %s '%s': an image transfer is in progress (%s of disk '%s', "
               "transfer '%s'); finalize or cancel it first", what, name,
               transfer_direction_to_str(l[0]->direction), d ? d->alias : l[0]->disk_id, l[0]->id);
}

int transfer_check_disk(struct store *st, const char *disk_id, const char *what, const char *name)
{
  AUTOLIST(image_transfer) l = image_transfer_list_open_of_disk(st, disk_id, 1);
  return transfer_conflict(st, l, what, name);
}

int transfer_check_vm(struct store *st, const char *vm_id, bool active_only, const char *what,
                      const char *name)
{
  AUTOLIST(image_transfer) l = image_transfer_list_open_of_vm_disks(st, vm_id, active_only);
  return transfer_conflict(st, l, what, name);
}

/* ---- the data path's view ---- */

struct image_transfer *transfer_by_ticket(struct engine *eng, const char *ticket)
{
  AUTOFREE char *digest = secret_digest(ticket);
  AUTOLIST(image_transfer) l = image_transfer_list_transferring_by_ticket(eng->st, digest);
  if (!l) return NULL;
  if (!l[0] || !secret_equal(l[0]->ticket, digest)) {
    error(ERR_NOT_FOUND, "no image transfer in progress has this ticket: it is unknown, "
          "finished or cancelled");
    return NULL;
  }
  return steal_pointer(&l[0]);
}

/* percent-encodes what RFC 3986 does not leave unreserved */
static void url_escape(struct buf *b, const char *s)
{
  for (; s && *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        strchr("-._~/", ch))
      buf_putc(b, (char)ch);
    else
      buf_printf(b, "%%%02X", ch);
  }
}

char *transfer_nbd_url(const struct image_transfer *t)
{
  struct buf b = BUF_INIT;
  if (t->nbd_server) {
    buf_puts(&b, t->nbd_server);
    buf_putc(&b, '/');
    url_escape(&b, t->export_name);
    return buf_detach(&b);
  }
  buf_puts(&b, "nbd+unix:///");
  url_escape(&b, t->export_name);
  buf_puts(&b, "?socket=");
  url_escape(&b, t->socket_path);
  return buf_detach(&b);
}

int transfer_nbd_connect(const struct image_transfer *t, struct nbd_handle *h)
{
  if (!t->nbd_server) {
    if (t->export_name && nbd_set_export_name(h, t->export_name) < 0) return -1;
    return nbd_connect_unix(h, t->socket_path);
  }
  /* the URL names the export; nbds:// requires TLS */
  AUTOFREE char *url = transfer_nbd_url(t);
  return nbd_connect_uri(h, url);
}

/* one transaction: activity now and BYTES more, for a transfer still in progress */
static int transfer_touch_row(struct store *st, const char *id, int64_t bytes)
{
  if (store_begin(st) < 0) return -1;
  AUTOPTR(image_transfer) t = image_transfer_get(st, id);
  if (!t) { store_rollback(st); return -1; }
  if (t->phase != TRANSFER_TRANSFERRING) { store_rollback(st); return 0; }
  t->last_activity_ms = now_ms();
  t->bytes_transferred += bytes;
  if (image_transfer_update(st, t) < 0) { store_rollback(st); return -1; }
  return store_commit(st);
}

void transfer_touch(struct engine *eng, const char *id, int64_t bytes)
{
  metrics_counter_add("snapback_transfer_bytes_total", "bytes read or written through image transfers",
                      "", (double)bytes);
  struct err_saved saved;
  error_save(&saved);
  if (transfer_touch_row(eng->st, id, bytes) < 0 && error_code() != ERR_NOT_FOUND)
    log_warn("cannot record activity of image transfer '%s': %s", id, error_message());
  if (saved.code != ERR_NONE) error_restore(&saved);
  else { free(saved.msg); error_clear(); }
}

/* ---- qemu-nbd ---- */

#define DIRTY_CONTEXT_PREFIX "qemu:dirty-bitmap:"

/* starts qemu-nbd for t on t->socket_path, serving the file at path in
 * format (enum disk_format); a dirty_context qemu:dirty-bitmap:NAME exports
 * the file's persistent bitmap NAME under that meta context */
static int nbd_server_start(struct engine *eng, const struct image_transfer *t, const char *path,
                            int format, pid_t *pid)
{
  AUTOFREE char *log = xasprintf("%s/transfers/%s.log", eng->state_dir, t->id);
  size_t plen = strlen(DIRTY_CONTEXT_PREFIX);
  struct volume_nbd o = {
      .path = path,
      .format = format,
      .socket = t->socket_path,
      .log = log,
      .read_only = t->direction == TRANSFER_DOWNLOAD,
      .bitmap = t->dirty_context && strncmp(t->dirty_context, DIRTY_CONTEXT_PREFIX, plen) == 0
                    ? t->dirty_context + plen : NULL,
  };
  return volume_nbd_serve(&o, pid);
}

/* the last lines qemu-nbd wrote, for an error message; caller frees */
static char *nbd_server_log(struct engine *eng, const char *id)
{
  AUTOFREE char *path = xasprintf("%s/transfers/%s.log", eng->state_dir, id);
  FILE *f = fopen(path, "re");
  struct buf b = BUF_INIT;
  if (f) {
    char line[512];
    while (fgets(line, sizeof line, f)) {
      buf_reset(&b);
      buf_puts(&b, line);
    }
    fclose(f);
  }
  while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r')) b.data[--b.len] = 0;
  if (!b.len) buf_puts(&b, "no message");
  return buf_detach(&b);
}

/* qemu-nbd's log is kept only for a transfer that failed */
static void nbd_server_log_remove(struct engine *eng, const char *id)
{
  AUTOFREE char *path = xasprintf("%s/transfers/%s.log", eng->state_dir, id);
  unlink(path);
}

/* waits until the export answers an NBD handshake; returns its size. A
 * qemu-nbd that exits meanwhile (image locked, missing...) fails with its
 * own message. */
static int nbd_server_wait(struct engine *eng, const struct image_transfer *t, pid_t pid,
                           int64_t *size)
{
  int64_t deadline = mono_ms() + NBD_READY_TIMEOUT_MS;
  AUTOFREE char *why = NULL; /* the last failed connection's, for a TCP server */
  /* qemu-nbd serves after 40-90 ms here: look every 2 ms at first (a
   * transfer's start waited up to 20 ms more), then every 20 ms */
  struct backoff wait;
  backoff_start(&wait, 2000, 20000, 0);
  for (;;) {
    int status = 0;
    if (!t->external_server && !spawn_alive(pid, &status)) {
      AUTOFREE char *msg = nbd_server_log(eng, t->id);
      return error(ERR_INTERNAL, "qemu-nbd exited before serving the volume (status %d): %s",
                   status, msg);
    }
    struct stat sb;
    if (t->nbd_server || stat(t->socket_path, &sb) == 0) {
      AUTOPTR(nbd_handle) h = nbd_create();
      if (!h) return error(ERR_INTERNAL, "cannot create an NBD handle: %s", nbd_get_error());
      if (transfer_nbd_connect(t, h) == 0) {
        *size = nbd_get_size(h);
        nbd_shutdown(h, 0);
        if (*size < 0) return error(ERR_INTERNAL, "cannot read the export size: %s", nbd_get_error());
        return 0;
      }
      free(why);
      why = xstrdup(nbd_get_error());
    }
    if (mono_ms() > deadline)
      return error(ERR_UNAVAILABLE, "%s did not serve '%s' within %d s%s%s",
                   t->external_server ? "the NBD server" : "qemu-nbd",
                   t->nbd_server ? t->nbd_server : t->socket_path, NBD_READY_TIMEOUT_MS / 1000,
                   why ? ": " : "", why ? why : "");
    backoff_sleep(&wait);
  }
}

/* flushes what clients wrote through the export (an upload's data is on
 * disk before qemu-nbd goes) */
static int nbd_server_flush(const struct image_transfer *t)
{
  AUTOPTR(nbd_handle) h = nbd_create();
  if (!h) return error(ERR_INTERNAL, "cannot create an NBD handle: %s", nbd_get_error());
  if (transfer_nbd_connect(t, h) < 0 || nbd_flush(h, 0) < 0)
    return error(ERR_INTERNAL, "cannot flush image transfer '%s': %s", t->id, nbd_get_error());
  nbd_shutdown(h, 0);
  return 0;
}

/* stops the qemu-nbd of t, if it still runs and is ours, and any other one a
 * crash left on its socket; removes the socket. An external server (libvirt's
 * backup job) is left alone: its owner stops it. */
static int nbd_server_stop(const struct image_transfer *t)
{
  if (t->external_server) return 0;
  int rc = 0;
  if (t->pid > 0 && process_matches((pid_t)t->pid, "qemu-nbd", t->socket_path))
    rc = spawn_stop((pid_t)t->pid, NBD_STOP_TIMEOUT_MS);
  else if (t->pid > 0)
    spawn_alive((pid_t)t->pid, NULL); /* reap it if it was our child and has exited */
  size_t n = 0;
  AUTOFREE pid_t *left = process_find("qemu-nbd", t->socket_path, &n);
  for (size_t i = 0; i < n; i++)
    if (spawn_stop(left[i], NBD_STOP_TIMEOUT_MS) < 0) rc = -1;
  if (unlink(t->socket_path) < 0 && errno != ENOENT)
    log_warn("cannot remove NBD socket '%s': %s", t->socket_path, strerror(errno));
  return rc;
}

/* how many clients are connected to the unix socket at path, from
 * /proc/net/unix (accepted connections carry the listener's path, state 03) */
static int nbd_clients(const char *path)
{
  FILE *f = fopen("/proc/net/unix", "re");
  if (!f) return 0;
  char line[1024];
  int n = 0;
  size_t plen = strlen(path);
  while (fgets(line, sizeof line, f)) {
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == ' ')) line[--len] = 0;
    if (len < plen || strcmp(line + len - plen, path) != 0 || line[len - plen - 1] != ' ') continue;
    unsigned st = 0;
    if (sscanf(line, "%*s %*s %*s %*s %*s %x", &st) == 1 && st == 3) n++;
  }
  fclose(f);
  return n;
}

/* the disk goes back to ok when a transfer of its active volume ends */
static int disk_unlock(struct store *st, const struct image_transfer *t)
{
  if (t->snapshot_id || t->chosen_source) return 0;
  AUTOPTR(disk) d = disk_get(st, t->disk_id);
  if (!d) { error_clear(); return 0; } /* removed meanwhile: nothing to unlock */
  if (d->status != DISK_LOCKED) return 0;
  d->status = DISK_OK;
  return disk_update(st, d);
}

/* ---- create ---- */

struct transfer_create {
  const struct transfer_spec *spec;
  struct disk *disk;
  struct volume *vol;
  struct snapshot *snap;        /* of a disk snapshot's volume, else NULL */
  char *vm_id;                  /* the VM owning the disk, or NULL */
  char id[UUID_STRLEN + 1];
  char *ticket, *socket_path;
  char *dirty_context;          /* of a source's bitmap, or NULL */
  const char *serve_path;       /* the file qemu-nbd serves, and its format */
  int serve_format;
  pid_t pid;
  bool inserted;
};

static void transfer_create_clear(struct transfer_create *a)
{
  disk_free(a->disk);
  volume_free(a->vol);
  snapshot_free(a->snap);
  free(a->vm_id);
  free(a->ticket);
  free(a->socket_path);
  free(a->dirty_context);
}

/* the VMs the disk belongs to (not the ones a snapshot of it is attached to) */
static struct attachment **disk_owners(struct store *st, const char *disk_id)
{
  return attachment_list_own_of_disk(st, disk_id);
}

static const char *direction_verb(int direction)
{
  return direction == TRANSFER_UPLOAD ? "upload into" : "download";
}

/* a NAME for qemu-nbd --bitmap and a meta context: printable, no spaces */
static bool bitmap_name_valid(const char *name)
{
  if (!*name || strlen(name) > 1023) return false;
  for (const char *p = name; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f) return false;
  return true;
}

/* a transfer whose data another command chose (spec->source, a backup) */
static int transfer_source_validate(struct transfer_create *a, struct store *st)
{
  const struct transfer_spec *s = a->spec;
  const struct transfer_source *src = s->source;
  if (s->direction != TRANSFER_DOWNLOAD)
    return error(ERR_INVALID, "cannot upload into a backup: its image transfers are downloads");
  if (!!src->volume_id + !!src->path + !!src->socket_path + !!src->nbd_server != 1)
    return error(ERR_INTERNAL, "an image transfer source needs one of a volume, a file, an NBD "
                 "socket or an NBD server");
  if ((src->socket_path || src->nbd_server) && src->bitmap)
    return error(ERR_INTERNAL, "an external NBD server exports its own bitmaps: give its dirty_context");
  if (src->bitmap && !bitmap_name_valid(src->bitmap))
    return error(ERR_INVALID, "invalid bitmap name '%s'", src->bitmap);
  if (src->dirty_context && !bitmap_name_valid(src->dirty_context))
    return error(ERR_INVALID, "invalid NBD meta context '%s'", src->dirty_context);
  if (!s->disk_id) return error(ERR_INVALID, "an image transfer of a backup needs a disk");
  if (!(a->disk = disk_get(st, s->disk_id))) return -1;
  if (src->volume_id) {
    if (!(a->vol = volume_get(st, src->volume_id))) return -1;
    if (strcmp(a->vol->disk_id, a->disk->id) != 0)
      return error(ERR_INTERNAL, "volume '%s' is not a volume of disk '%s'", a->vol->id, a->disk->alias);
    a->serve_path = a->vol->path;
    a->serve_format = a->vol->format;
  } else {
    if (!(a->vol = disk_active_volume(st, a->disk->id))) return -1;
    a->serve_path = src->path;
    a->serve_format = src->format;
  }
  if (src->bitmap) a->dirty_context = xasprintf(DIRTY_CONTEXT_PREFIX "%s", src->bitmap);
  else a->dirty_context = xstrdup(src->dirty_context);
  return 0;
}

static int transfer_create_validate(struct cmd_ctx *c)
{
  struct transfer_create *a = c->data;
  const struct transfer_spec *s = a->spec;
  struct store *st = c->eng->st;
  if (s->format != DISK_FORMAT_RAW)
    return error(ERR_UNSUPPORTED, "image transfers with format '%s' are not supported: use "
                 "<format>raw</format> (the guest's bytes)", disk_format_to_str(s->format));
  if (s->inactivity_timeout > TRANSFER_MAX_TIMEOUT_S)
    return error(ERR_INVALID, "invalid inactivity_timeout %lld: give 1 to %d seconds",
                 (long long)s->inactivity_timeout, TRANSFER_MAX_TIMEOUT_S);
  if (s->source) return transfer_source_validate(a, st);
  if (!s->volume_id && !s->disk_id)
    return error(ERR_INVALID, "an image transfer needs a disk or a disk snapshot");
  if (s->volume_id) {
    if (!(a->vol = volume_get(st, s->volume_id)))
      return error_code() == ERR_NOT_FOUND
                 ? store_id_not_found(st, s->volume_id, "disk snapshot", "GET /disks/DISK/disksnapshots",
                                      perm_user_is_admin(c->eng, c->user))
                 : -1;
    if (s->disk_id && strcmp(s->disk_id, a->vol->disk_id) != 0)
      return error(ERR_INVALID, "disk snapshot '%s' is not a snapshot of disk '%s'", s->volume_id,
                   s->disk_id);
  }
  if (!(a->disk = disk_get(st, s->disk_id ? s->disk_id : a->vol->disk_id))) return -1;
  const struct disk *d = a->disk;
  const char *verb = direction_verb(s->direction);
  if (a->vol && !a->vol->active) {
    if (s->direction == TRANSFER_UPLOAD)
      return error(ERR_INVALID, "cannot upload into disk snapshot '%s' of disk '%s': a snapshot "
                   "never changes; upload into a disk", a->vol->id, d->alias);
    if (a->vol->status != DISK_OK)
      return error(ERR_CONFLICT, "cannot download disk snapshot '%s' of disk '%s': its volume is %s",
                   a->vol->id, d->alias, disk_status_to_str(a->vol->status));
    if (!a->vol->snapshot_id || !(a->snap = snapshot_get(st, a->vol->snapshot_id)))
      return error(ERR_CONFLICT, "cannot download disk snapshot '%s' of disk '%s': it belongs to no "
                   "snapshot", a->vol->id, d->alias);
    if (a->snap->status != SNAPSHOT_OK)
      return error(ERR_CONFLICT, "cannot download disk snapshot '%s' of disk '%s': snapshot '%s' is "
                   "%s; wait until it is ok", a->vol->id, d->alias, a->snap->description,
                   snapshot_status_to_str(a->snap->status));
    if (d->status == DISK_ILLEGAL)
      return error(ERR_CONFLICT, "cannot download disk snapshot '%s': disk '%s' is illegal",
                   a->vol->id, d->alias);
  } else {
    if (!a->vol && !(a->vol = disk_active_volume(st, d->id))) return -1;
    if (d->status != DISK_OK || a->vol->status != DISK_OK)
      return error(ERR_CONFLICT, "cannot %s disk '%s': it is %s%s", verb, d->alias,
                   disk_status_to_str(d->status != DISK_OK ? d->status : a->vol->status),
                   d->status == DISK_LOCKED ? " (by another image transfer or operation)" : "");
    AUTOLIST(attachment) owners = disk_owners(st, d->id);
    if (!owners) return -1;
    for (size_t i = 0; owners[i]; i++) {
      AUTOPTR(vm) vm = vm_get(st, owners[i]->vm_id);
      if (!vm) return -1;
      if (vm->status != VM_DOWN || owners[i]->plugged)
        return error(ERR_CONFLICT, "cannot %s disk '%s': it is in use by VM '%s', which is %s; "
                     "take a snapshot of the VM and download the disk snapshot instead, or stop "
                     "the VM", verb, d->alias, vm->name, vm_status_to_str(vm->status));
    }
  }
  a->serve_path = a->vol->path;
  a->serve_format = a->vol->format;
  return 0;
}

static int transfer_create_execute(struct cmd_ctx *c)
{
  struct transfer_create *a = c->data;
  struct engine *eng = c->eng;
  struct store *st = eng->st;
  if (uuid_generate_str(a->id) < 0 || !(a->ticket = random_hex(16))) return -1;
  AUTOFREE char *ticket_digest = secret_digest(a->ticket);
  AUTOFREE char *dir = xasprintf("%s/transfers", eng->state_dir);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return error(ERR_INTERNAL, "cannot create '%s': %s", dir, strerror(errno));
  const struct transfer_source *src = a->spec->source;
  bool external = src && (src->socket_path || src->nbd_server);
  /* a server on TCP has no socket here */
  a->socket_path = src && src->nbd_server ? NULL
                   : src && src->socket_path ? xstrdup(src->socket_path) : xasprintf("%s/%s.sock", dir, a->id);
  if (a->socket_path && strlen(a->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return error(ERR_INTERNAL, "the NBD socket path '%s' is too long for a unix socket: use a "
                 "shorter --state-dir", a->socket_path);
  AUTOLIST(attachment) owners = disk_owners(st, a->disk->id);
  if (!owners) return -1;
  if (owners[0]) a->vm_id = xstrdup(owners[0]->vm_id);
  int64_t now = now_ms();
  struct image_transfer t = {
    .id = a->id, .direction = a->spec->direction, .phase = TRANSFER_INITIALIZING,
    .format = a->spec->format, .disk_id = a->disk->id, .volume_id = a->vol->id,
    .snapshot_id = a->snap ? a->snap->id : NULL, .vm_id = a->vm_id,
    .socket_path = a->socket_path, .ticket = ticket_digest, .size = a->disk->provisioned_size,
    .created_ms = now, .last_activity_ms = now,
    .inactivity_timeout = a->spec->inactivity_timeout > 0 ? a->spec->inactivity_timeout
                                                          : TRANSFER_DEFAULT_TIMEOUT_S,
    .user_id = c->user ? c->user->id : NULL,
    .dirty_context = a->dirty_context, .export_name = src ? (char *)src->export_name : NULL,
    .external_server = external, .chosen_source = src != NULL,
    .nbd_server = src ? (char *)src->nbd_server : NULL,
  };
  /* the intent first: the row, and the disk locked while its active volume is out */
  if (store_begin(st) < 0) return -1;
  if (image_transfer_insert(st, &t) < 0) goto rollback;
  if (!a->snap && !src) {
    a->disk->status = DISK_LOCKED;
    if (disk_update(st, a->disk) < 0) goto rollback;
  }
  if (store_commit(st) < 0) return -1;
  a->inserted = true;
  if (!external) {
    if (nbd_server_start(eng, &t, a->serve_path, a->serve_format, &a->pid) < 0) return -1;
    t.pid = a->pid;
    if (image_transfer_update(st, &t) < 0) return -1;
  }
  int64_t size = 0;
  if (nbd_server_wait(eng, &t, a->pid, &size) < 0) return -1;
  t.size = size;
  t.phase = TRANSFER_TRANSFERRING;
  t.last_activity_ms = now_ms();
  transfer_ticket_remember(eng, a->id, a->ticket);
  if (image_transfer_update(st, &t) < 0) return -1;
  /* an upload's writeback starts now, not at the reaper's next check */
  if (t.direction == TRANSFER_UPLOAD) reaper_wake(eng);
  return 0;
rollback:
  store_rollback(st);
  return -1;
}

/* nothing of a failed creation stays: no qemu-nbd, no socket, no row, the disk unlocked */
static void transfer_create_compensate(struct cmd_ctx *c)
{
  struct transfer_create *a = c->data;
  struct store *st = c->eng->st;
  if (!a->inserted) return;
  struct image_transfer t = {.id = a->id, .pid = a->pid, .socket_path = a->socket_path,
                             .disk_id = a->disk->id, .snapshot_id = a->snap ? a->snap->id : NULL,
                             .external_server = a->spec->source && (a->spec->source->socket_path ||
                                                                    a->spec->source->nbd_server),
                             .chosen_source = a->spec->source != NULL};
  nbd_server_stop(&t);
  if (store_begin(st) < 0) { log_err("%s", error_message()); return; }
  if (image_transfer_delete(st, a->id) < 0 || disk_unlock(st, &t) < 0) {
    log_err("cannot undo image transfer '%s': %s", a->id, error_message());
    store_rollback(st);
    return;
  }
  if (store_commit(st) < 0) log_err("%s", error_message());
}

static char *transfer_create_describe(struct cmd_ctx *c, bool ok)
{
  struct transfer_create *a = c->data;
  const char *dir = a->spec->direction == TRANSFER_UPLOAD ? "upload" : "download";
  const char *alias = a->disk ? a->disk->alias : a->spec->disk_id ? a->spec->disk_id : "";
  AUTOFREE char *what = a->snap ? xasprintf("image %s of disk %s (snapshot '%s')", dir, alias,
                                            a->snap->description)
                                : xasprintf("image %s of disk %s", dir, alias);
  if (!ok) return steal_pointer(&what);
  return xasprintf("%s was initiated by %s (transfer %s)", what, c->user ? c->user->name : "engine",
                   a->id);
}

static const struct cmd_def transfer_create_def = {
  "TransferImage", EV_TRANSFER_STARTED, transfer_create_validate, transfer_create_execute,
  transfer_create_compensate, transfer_create_describe,
};

int cmd_transfer_create(struct engine *eng, const struct user *u, const struct transfer_spec *spec,
                        char **out_id)
{
  struct transfer_create a = {.spec = spec};
  struct cmd_ctx c = {.eng = eng, .user = u, .data = &a};
  /* locks: the disk and the VMs owning it, so that no start, snapshot or
   * merge of theirs runs while the transfer is being set up; a command that
   * chose the source (a backup) holds them itself */
  AUTOFREE char *disk_id = xstrdup(spec->disk_id);
  if (!disk_id && spec->volume_id) {
    AUTOPTR(volume) v = volume_get(eng->st, spec->volume_id);
    error_clear(); /* validate reports it */
    if (v) disk_id = xstrdup(v->disk_id);
  }
  AUTOLIST(attachment) owners = disk_id ? disk_owners(eng->st, disk_id) : NULL;
  error_clear();
  size_t nl = 0;
  if (disk_id && !spec->source) c.locks[nl++] = disk_id;
  for (size_t i = 0; owners && owners[i] && nl < CMD_MAX_LOCKS - 1; i++) {
    if (!spec->source) c.locks[nl++] = owners[i]->vm_id;
    if (!c.vm_id) c.vm_id = owners[i]->vm_id;
  }
  /* reading a disk out is a backup; writing one in edits it */
  if (disk_id)
    c.needs[0] = (struct cmd_need){spec->direction == TRANSFER_DOWNLOAD ? PERMIT_BACKUP_DISK
                                                                        : PERMIT_EDIT_DISK_PROPERTIES,
                                   OBJ_DISK, disk_id};
  int rc = cmd_run(&transfer_create_def, &c);
  if (rc == 0 && out_id) *out_id = xstrdup(a.id);
  transfer_create_clear(&a);
  return rc;
}

/* ---- finalize, cancel, fail ---- */

struct transfer_end {
  const char *id;
  int phase;                    /* the phase it ends in */
  const char *reason;           /* why (cancel by the engine, failure), or NULL */
  struct image_transfer *t;
  struct disk *disk;
};

static int transfer_end_validate(struct cmd_ctx *c)
{
  struct transfer_end *a = c->data;
  if (!(a->t = image_transfer_get(c->eng->st, a->id))) return -1;
  a->disk = disk_get(c->eng->st, a->t->disk_id);
  error_clear();
  if (a->t->phase != TRANSFER_TRANSFERRING && a->t->phase != TRANSFER_INITIALIZING)
    return error(ERR_CONFLICT, "cannot %s image transfer '%s': it is already %s",
                 a->phase == TRANSFER_FINISHED_SUCCESS ? "finalize" : "cancel", a->id,
                 transfer_phase_to_str(a->t->phase));
  if (a->phase == TRANSFER_FINISHED_SUCCESS && a->t->phase != TRANSFER_TRANSFERRING)
    return error(ERR_CONFLICT, "cannot finalize image transfer '%s': it is %s", a->id,
                 transfer_phase_to_str(a->t->phase));
  return 0;
}

/* the transfer's row ends in PHASE with MESSAGE; the disk is unlocked */
static int transfer_end_row(struct store *st, const char *id, int phase, const char *message)
{
  if (store_begin(st) < 0) return -1;
  AUTOPTR(image_transfer) cur = image_transfer_get(st, id);
  if (!cur) { store_rollback(st); return -1; }
  cur->phase = phase;
  cur->pid = 0;
  free(cur->message);
  cur->message = xstrdup(message);
  if (image_transfer_update(st, cur) < 0 || disk_unlock(st, cur) < 0) {
    store_rollback(st);
    return -1;
  }
  return store_commit(st);
}

/* an upload is flushed before its qemu-nbd stops; a failed flush or stop
 * ends the transfer as finished_failure, never as a success */
static int transfer_end_execute(struct cmd_ctx *c)
{
  struct transfer_end *a = c->data;
  struct err_saved failed = {0};
  if (a->phase == TRANSFER_FINISHED_SUCCESS && a->t->direction == TRANSFER_UPLOAD &&
      nbd_server_flush(a->t) < 0)
    error_save(&failed);
  if (nbd_server_stop(a->t) < 0 && !failed.code) error_save(&failed);
  if (failed.code) a->phase = TRANSFER_FINISHED_FAILURE;
  if (transfer_end_row(c->eng->st, a->id, a->phase, failed.code ? failed.msg : a->reason) < 0) {
    free(failed.msg);
    return -1;
  }
  if (failed.code) return error_restore(&failed);
  if (a->phase != TRANSFER_FINISHED_FAILURE) nbd_server_log_remove(c->eng, a->id);
  return 0;
}

static char *transfer_end_describe(struct cmd_ctx *c, bool ok)
{
  struct transfer_end *a = c->data;
  const char *alias = a->disk ? a->disk->alias : a->t ? a->t->disk_id : "";
  const char *dir = a->t && a->t->direction == TRANSFER_UPLOAD ? "upload" : "download";
  if (!ok) return xasprintf("ending image %s %s of disk %s", dir, a->id, alias);
  const char *who = c->user ? c->user->name : "the engine";
  AUTOFREE char *of = backup_transfer_note(c->eng->st, a->t);
  switch (a->phase) {
  case TRANSFER_FINISHED_SUCCESS:
    return xasprintf("image %s of disk %s was finalized by %s (transfer %s)%s", dir, alias, who, a->id, of);
  case TRANSFER_CANCELLED:
    return xasprintf("image %s of disk %s was cancelled by %s (transfer %s)%s%s%s", dir, alias, who,
                     a->id, of, a->reason ? ": " : "", a->reason ? a->reason : "");
  default:
    return xasprintf("image %s of disk %s failed (transfer %s)%s%s%s", dir, alias, a->id, of,
                     a->reason ? ": " : "", a->reason ? a->reason : "");
  }
}

static const struct cmd_def transfer_finalize_def = {
  "TransferImageFinalize", EV_TRANSFER_SUCCEEDED, transfer_end_validate, transfer_end_execute, NULL,
  transfer_end_describe,
};
static const struct cmd_def transfer_cancel_def = {
  "TransferImageCancel", EV_TRANSFER_CANCELLED, transfer_end_validate, transfer_end_execute, NULL,
  transfer_end_describe,
};
static const struct cmd_def transfer_fail_def = {
  "TransferImageFailed", EV_TRANSFER_FAILED, transfer_end_validate, transfer_end_execute, NULL,
  transfer_end_describe,
};

static int transfer_end(struct engine *eng, const struct user *u, const struct cmd_def *def,
                        const char *id, int phase, const char *reason)
{
  struct transfer_end a = {.id = id, .phase = phase, .reason = reason};
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {id}, .data = &a};
  int rc = cmd_run(def, &c);
  image_transfer_free(a.t);
  disk_free(a.disk);
  return rc;
}

int cmd_transfer_finalize(struct engine *eng, const struct user *u, const char *id)
{
  return transfer_end(eng, u, &transfer_finalize_def, id, TRANSFER_FINISHED_SUCCESS, NULL);
}

int cmd_transfer_cancel(struct engine *eng, const struct user *u, const char *id)
{
  return transfer_end(eng, u, &transfer_cancel_def, id, TRANSFER_CANCELLED, NULL);
}

/* ---- recovery ---- */

void transfer_recover(struct engine *eng)
{
  struct store *st = eng->st;
  AUTOLIST(image_transfer) open = image_transfer_list_open(st);
  if (!open) { log_err("%s", error_message()); return; }
  for (size_t i = 0; open[i]; i++) {
    struct image_transfer *t = open[i];
    bool stopped = nbd_server_stop(t) == 0;
    t->phase = TRANSFER_CANCELLED;
    t->pid = 0;
    free(t->message);
    t->message = xstrdup("the engine restarted while the transfer was open");
    if (store_begin(st) < 0) { log_err("%s", error_message()); continue; }
    if (image_transfer_update(st, t) < 0 || disk_unlock(st, t) < 0) {
      log_err("cannot cancel image transfer '%s': %s", t->id, error_message());
      store_rollback(st);
      continue;
    }
    if (store_commit(st) < 0) { log_err("%s", error_message()); continue; }
    if (stopped) nbd_server_log_remove(eng, t->id);
    AUTOPTR(disk) d = disk_get(st, t->disk_id);
    error_clear();
    engine_event(eng, stopped ? SEVERITY_WARNING : SEVERITY_ERROR, EV_TRANSFER_CANCELLED, NULL,
                 t->vm_id, "image %s of disk %s (transfer %s) was cancelled: the engine restarted "
                 "while it was open%s", transfer_direction_to_str(t->direction),
                 d ? d->alias : t->disk_id, t->id,
                 stopped ? "" : "; its qemu-nbd could not be stopped");
  }
  error_clear();
}

/* ---- the reaper: idle timeouts and dead NBD servers ---- */

struct transfer_reaper {
  struct engine *eng;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  bool check_now; /* a transfer started: check before the period ends */
};

/* ends the transfers that are idle or lost; *uploads becomes the volumes of
 * the uploads still in progress */
static void reaper_check(struct engine *eng, struct strvec *uploads)
{
  strvec_free(uploads);
  AUTOLIST(image_transfer) l = image_transfer_list_transferring(eng->st);
  if (!l) { log_err("%s", error_message()); error_clear(); return; }
  int64_t now = now_ms();
  for (size_t i = 0; l[i]; i++) {
    struct image_transfer *t = l[i];
    int status = 0;
    bool ended = true;
    struct stat sb;
    /* libvirt's server on another host goes with its backup job: not watched here */
    if (t->external_server && !t->nbd_server && stat(t->socket_path, &sb) < 0) {
      AUTOFREE char *why = xasprintf("its NBD server went away (socket '%s': %s)", t->socket_path,
                                     strerror(errno));
      transfer_end(eng, NULL, &transfer_fail_def, t->id, TRANSFER_FINISHED_FAILURE, why);
    } else if (!t->external_server && !spawn_alive((pid_t)t->pid, &status)) {
      AUTOFREE char *msg = nbd_server_log(eng, t->id);
      AUTOFREE char *why = xasprintf("its NBD server (qemu-nbd) exited unexpectedly (status %d): %s",
                                     status, msg);
      transfer_end(eng, NULL, &transfer_fail_def, t->id, TRANSFER_FINISHED_FAILURE, why);
    } else if (t->nbd_server ? nbd_tcp_clients(t->nbd_server) > 0 : nbd_clients(t->socket_path) > 0) {
      transfer_touch(eng, t->id, 0);
      ended = false;
    } else if (now - t->last_activity_ms > t->inactivity_timeout * 1000) {
      AUTOFREE char *why = xasprintf("no client for %lld seconds (inactivity_timeout)",
                                     (long long)t->inactivity_timeout);
      transfer_end(eng, NULL, &transfer_cancel_def, t->id, TRANSFER_CANCELLED, why);
    } else {
      ended = false;
    }
    error_clear();
    if (!ended && t->direction == TRANSFER_UPLOAD && !t->external_server && t->volume_id) {
      AUTOPTR(volume) v = volume_get(eng->st, t->volume_id);
      if (v) vec_push(uploads, xstrdup(v->path));
      error_clear();
    }
  }
}

/* checks the transfers every REAPER_PERIOD_MS; in between, while uploads
 * are in progress, starts their volumes' writeback every WRITEBACK_PERIOD_MS */
static void *reaper_main(void *p)
{
  struct transfer_reaper *r = p;
  AUTOSTRVEC struct strvec uploads = VEC_INIT;
  int64_t next_check = 0;
  pthread_mutex_lock(&r->mu);
  while (!r->stop) {
    bool now = r->check_now;
    r->check_now = false;
    pthread_mutex_unlock(&r->mu);
    if (now || mono_ms() >= next_check) {
      reaper_check(r->eng, &uploads);
      next_check = mono_ms() + REAPER_PERIOD_MS;
    }
    for (size_t i = 0; i < uploads.len; i++)
      if (volume_writeback_start(uploads.ptr[i]) < 0) {
        log_debug("%s", error_message());
        error_clear();
      }
    pthread_mutex_lock(&r->mu);
    if (r->stop) break;
    if (r->check_now) continue;
    struct timespec ts;
    cond_deadline_after(&ts, uploads.len ? WRITEBACK_PERIOD_MS : REAPER_PERIOD_MS);
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static void reaper_wake(struct engine *eng)
{
  struct transfer_reaper *r = eng->transfer_reaper;
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->check_now = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

void transfer_reaper_start(struct engine *eng)
{
  struct transfer_reaper *r = xcalloc(1, sizeof *r);
  r->eng = eng;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  if (pthread_create(&r->thread, NULL, reaper_main, r) != 0) {
    log_err("cannot start the image transfer reaper: idle transfers will not be cancelled");
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return;
  }
  eng->transfer_reaper = r;
}

/* stops the reaper and cancels the transfers still open: their qemu-nbd
 * would outlive the engine otherwise */
void transfer_reaper_stop(struct engine *eng)
{
  struct transfer_reaper *r = eng->transfer_reaper;
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stop = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
  eng->transfer_reaper = NULL;
  AUTOLIST(image_transfer) open = image_transfer_list_open(eng->st);
  for (size_t i = 0; open && open[i]; i++)
    transfer_end(eng, NULL, &transfer_cancel_def, open[i]->id, TRANSFER_CANCELLED,
                 "the engine is shutting down");
  error_clear();
}
