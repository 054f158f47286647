/* backup.c: `snapback backup VM` (docs/snapback.md).
 *
 * With the engine's backup API (vmbackup.c): the newest backup of the VM in
 * the repository that names a checkpoint is the base; POST /vms/{vm}/backups
 * from that checkpoint, live (use_active), or full through a snapshot (no
 * base, --full, or the engine does not know the checkpoint any more) ->
 * ready -> per disk: an image transfer of the backup; a disk the engine
 * backs up incrementally is read only where its dirty bitmap (the NBD
 * export's, else extents?context=dirty) says it changed and is written as patches over the
 * base's layout (increment.c), any other disk in full -> finalize the
 * transfers and the backup, wait until succeeded -> manifest naming the new
 * checkpoint. Data goes over NBD when an NBD URL is reachable (the
 * transfer's own, or the unix_socket imageio's OPTIONS offers on the same
 * host), else over HTTP GET with Range (a remote engine).
 *
 * An engine without the backup API (404): the snapshot flow below, always
 * full, said as the fallback's reason.
 *
 * event "started" -> snapshot (wait ok) -> OVF and disks of the snapshot ->
 * per disk: download transfer of the snapshot's volume, NBD into the
 * repository, finalize -> manifest (the backup is now complete) -> remove the
 * snapshot -> event "completed". On failure the transfer is cancelled and the
 * snapshot removed; no manifest is written, so nothing lists as complete.
 *
 * The repository's shared lock is held for the whole run: gc (exclusive)
 * waits, so chunks this backup reuses cannot vanish before its manifest
 * names them.
 *
 * A run killed with SIGKILL cannot clean up. Its snapshot's description
 * names the process ("snapback backup ID pid=N host=H"); the next backup of
 * the VM on the same host finds it, cancels the transfers still open on its
 * volumes and removes it. */
#include "cli/cli.h"
#include "cli/engine.h"
#include "cli/imageio.h"
#include "repr/ovf.h"
#include "cli/progress.h"
#include "cli/transfer.h"
#include "cli/vmbackup.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <jansson.h>
#include <libnbd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

#define SNAP_PREFIX "snapback backup"
#define BACKUP_WRITERS 2 /* threads writing chunk files (repo_writers_start) */

struct backup_run {
  struct cli *c;
  struct client *api;
  struct repo *r;
  char *vm_id;
  const char *vm_name;
  char *snap_id;
  struct transfer t;
  struct vm_backup vb;    /* the engine's backup (backup API flow) */
  /* the last incremental disk's chunks still being stored (see
   * finish_pending): its manifest_disk is not complete until then */
  struct patch_writer *pending;
};

static void hostname_of(char out[256])
{
  if (gethostname(out, 256) < 0) snprintf(out, 256, "localhost");
  out[255] = '\0';
}

/* true when desc is a snapshot of a snapback process on this host that is gone */
static bool snapshot_is_stale(const char *desc, long *pid_out)
{
  if (!desc || strncmp(desc, SNAP_PREFIX " ", strlen(SNAP_PREFIX) + 1) != 0) return false;
  const char *p = strstr(desc, " pid="), *h = strstr(desc, " host=");
  if (!p || !h) return false;
  long pid = strtol(p + 5, NULL, 10);
  char host[256];
  hostname_of(host);
  size_t hl = strcspn(h + 6, " ");
  if (hl != strlen(host) || strncmp(h + 6, host, hl) != 0) return false;
  *pid_out = pid;
  if (pid <= 0 || pid == (long)getpid()) return false;
  return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static bool ref_in(const struct node *n, const char *child, char **ids, size_t nids)
{
  const char *id = node_attr(node_child(n, child), "id");
  for (size_t i = 0; id && i < nids; i++)
    if (strcmp(ids[i], id) == 0) return true;
  return false;
}

/* cancels the open transfers of the snapshot's volumes, then removes it */
static int remove_stale_snapshot(struct backup_run *b, const char *snap_id)
{
  AUTOFREE char *dpath = xasprintf("/vms/%s/snapshots/%s/disks", b->vm_id, snap_id);
  AUTOPTR(node) disks = NULL;
  if (client_call(b->api, "GET", dpath, NULL, &disks) < 0) return -1;
  char *vols[64];
  size_t nv = 0;
  for (size_t i = 0; disks && i < disks->nkids && nv < 64; i++) {
    const char *img = node_text(disks->kids[i], "image_id");
    if (img) vols[nv++] = (char *)img;
  }
  AUTOPTR(node) ts = NULL;
  if (client_call(b->api, "GET", "/imagetransfers", NULL, &ts) < 0) {
    error_clear(); /* an engine without the list: the remove below says what blocks */
  }
  for (size_t i = 0; ts && i < ts->nkids; i++) {
    const struct node *t = ts->kids[i];
    const char *phase = node_text(t, "phase"), *id = node_attr(t, "id");
    if (!id || (phase && (strncmp(phase, "finished", 8) == 0 || strncmp(phase, "cancelled", 9) == 0))) continue;
    if (!ref_in(t, "snapshot", vols, nv) && !ref_in(t, "image", vols, nv)) continue;
    struct transfer tr = {.id = xstrdup(id)};
    transfer_cancel(b->api, &tr);
    cli_note(b->c, "cancelled transfer '%s' left by an interrupted backup", id);
  }
  return engine_snapshot_remove(b->api, b->vm_id, snap_id);
}

/* removes the snapshots an interrupted backup through a snapshot of its own
 * left (backup_by_snapshot: an engine without the backup API) */
static void remove_stale_snapshots(struct backup_run *b)
{
  AUTOFREE char *path = xasprintf("/vms/%s/snapshots", b->vm_id);
  AUTOPTR(node) n = NULL;
  if (client_call(b->api, "GET", path, NULL, &n) < 0) {
    error_clear();
    return;
  }
  for (size_t i = 0; n && i < n->nkids; i++) {
    const char *id = node_attr(n->kids[i], "id");
    long pid = 0;
    if (!id || !snapshot_is_stale(node_text(n->kids[i], "description"), &pid)) continue;
    if (remove_stale_snapshot(b, id) < 0) {
      cli_note(b->c, "warning: cannot remove snapshot '%s' left by interrupted backup (pid %ld): %s", id, pid,
               error_message());
      error_clear();
    } else {
      cli_note(b->c, "removed snapshot '%s' left by an interrupted backup (pid %ld)", id, pid);
    }
  }
}

/* ends the engine's backups of the VM that a killed run left running; the
 * number ended */
static size_t end_stale_backups(struct backup_run *b)
{
  AUTOFREE char *bpath = xasprintf("/vms/%s/backups", b->vm_id);
  AUTOPTR(node) bs = NULL;
  if (client_call(b->api, "GET", bpath, NULL, &bs) < 0) {
    error_clear();
    return 0;
  }
  size_t ended = 0;
  for (size_t i = 0; bs && i < bs->nkids; i++) {
    const char *id = node_attr(bs->kids[i], "id"), *phase = node_text(bs->kids[i], "phase");
    long pid = 0;
    if (!id || (phase && (strcmp(phase, "succeeded") == 0 || strcmp(phase, "failed") == 0)) ||
        !snapshot_is_stale(node_text(bs->kids[i], "description"), &pid))
      continue;
    if (vm_backup_end_stale(b->api, b->vm_id, id) < 0) {
      cli_note(b->c, "warning: cannot end backup '%s' left by an interrupted run (pid %ld): %s", id, pid,
               error_message());
      error_clear();
    } else {
      cli_note(b->c, "ended backup '%s' left by an interrupted backup (pid %ld)", id, pid);
      ended++;
    }
  }
  return ended;
}

/* vm_backup_start; when the engine refuses it with a conflict, the backups
 * a killed run left are ended and the start is tried once more. Looked for
 * only then: the list holds every backup the VM ever had (10-30 ms to read
 * with 60-70 of them) */
static int backup_start(struct backup_run *b, char **ids, size_t nd, const char *from, bool live, const char *desc)
{
  int rc = vm_backup_start(b->api, b->vm_id, ids, nd, from, live, desc, &b->vb);
  if (rc == 0 || error_code() != ERR_CONFLICT) return rc;
  struct err_saved saved;
  error_save(&saved);
  if (end_stale_backups(b) == 0) return error_restore(&saved);
  free(saved.msg);
  error_clear();
  return vm_backup_start(b->api, b->vm_id, ids, nd, from, live, desc, &b->vb);
}

/* undoes what the run created; keeps the current error */
static void backup_cleanup(struct backup_run *b)
{
  patch_writer_free(steal_pointer(&b->pending));
  struct err_saved saved;
  error_save(&saved);
  if (b->t.id) {
    AUTOFREE char *tid = xstrdup(b->t.id);
    transfer_cancel(b->api, &b->t);
    cli_note(b->c, "cancelled transfer '%s'", tid);
  }
  if (b->vb.id) {
    vm_backup_abort(b->api, &b->vb);
    cli_note(b->c, "finalized the engine's backup '%s'", b->vb.id);
  }
  if (b->snap_id) {
    if (engine_snapshot_remove(b->api, b->vm_id, b->snap_id) < 0)
      cli_note(b->c, "warning: cannot remove snapshot '%s': %s (the next backup of this VM retries)",
               b->snap_id, error_message());
    else
      cli_note(b->c, "removed snapshot '%s'", b->snap_id);
    free(b->snap_id);
    b->snap_id = NULL;
  }
  error_restore(&saved);
}

DEFINE_AUTOPTR(nbd_handle, struct nbd_handle, nbd_close)

/* reads the whole disk of the open transfer into m (a new disk, *idx) */
static int read_full(struct backup_run *b, struct manifest *m, const char *nbd_url, struct imageio *io,
                     struct copy_stats *st, struct progress *p, size_t *idx)
{
  if (!nbd_url) return http_to_repo(b->r, io, m, idx, st, progress_cb, p);
  /* twice the CPUs: a worker waiting for its chunk's fsync leaves its CPU to another */
  int workers = b->c->workers ? b->c->workers : 2 * (int)sysconf(_SC_NPROCESSORS_ONLN);
  return nbd_to_repo(b->r, nbd_url, m, idx, workers, st, progress_cb, p);
}

static int backup_disks(struct backup_run *b, struct manifest *m, const struct ovf_vm *ovf, struct copy_stats *st,
                        uint64_t *total)
{
  AUTOFREE char *dpath = xasprintf("/vms/%s/snapshots/%s/disks", b->vm_id, b->snap_id);
  AUTOPTR(node) disks = NULL;
  if (client_call(b->api, "GET", dpath, NULL, &disks) < 0) return error_prefix("cannot list the snapshot's disks: ");
  size_t nd = disks ? disks->nkids : 0;
  for (size_t i = 0; i < nd; i++) {
    const struct node *dn = disks->kids[i];
    const char *disk_id = node_attr(dn, "id"), *alias = node_text(dn, "alias"), *image = node_text(dn, "image_id");
    if (!disk_id || !image) return error(ERR_INTERNAL, "the snapshot's disk %zu has no id or image_id", i);
    AUTOFREE char *label = xasprintf("%s (%zu/%zu)", alias ? alias : disk_id, i + 1, nd);
    int64_t psize = 0;
    if (node_get_int64(dn, "provisioned_size", &psize) < 0) return -1;
    if (transfer_start(b->api, false, image, NULL, &b->t) < 0) return -1;
    AUTOFREE char *nbd_url = NULL;
    AUTOPTR(imageio) io = NULL;
    if (transfer_data_open(b->c, &b->t, alias ? alias : disk_id, "reading", &nbd_url, &io) < 0) return -1;
    struct progress p;
    progress_start(&p, !b->c->json, label, (uint64_t)psize);
    size_t idx;
    if (read_full(b, m, nbd_url, io, st, &p, &idx) < 0)
      return error_prefix("cannot back up disk '%s': ", alias ? alias : disk_id);
    struct manifest_disk *d = &m->disks[idx];
    progress_end(&p, d->size);
    if (transfer_finalize(b->api, &b->t) < 0) return -1;
    transfer_clear(&b->t);
    d->id = xstrdup(disk_id);
    d->alias = xstrdup(alias);
    d->image_id = xstrdup(image);
    const struct ovf_disk *od = ovf_find_disk(ovf, disk_id);
    d->interface = xstrdup(od ? od->interface : "virtio");
    d->bootable = od && od->bootable;
    d->why = xstrdup("the engine offers no VM backup API: read through a snapshot");
    *total += d->size;
  }
  return 0;
}

/* the newest backup of vm_id in the repository that names a checkpoint: the
 * base of an incremental backup (NULL when there is none; an unreadable
 * manifest is skipped with a note) */
static struct manifest *find_base(struct backup_run *b)
{
  size_t n;
  char **names = manifest_list(b->r, &n);
  if (!names) {
    error_clear();
    return NULL;
  }
  /* names sort by the second only: compare start times; the newest second
   * holds every candidate that can be the newest */
  struct manifest *base = NULL;
  char second[17] = "";
  for (size_t i = n; i-- > 0;) {
    if (base && strncmp(names[i], second, 16) != 0) break;
    struct manifest *m = manifest_read(b->r, names[i]);
    if (!m) {
      cli_note(b->c, "warning: skipping unreadable backup: %s", error_message());
      error_clear();
      continue;
    }
    if (m->vm_id && strcmp(m->vm_id, b->vm_id) == 0 && m->checkpoint_id && (!base || m->start_ms > base->start_ms)) {
      manifest_free(base);
      base = m;
      snprintf(second, sizeof second, "%.16s", names[i]);
    } else {
      manifest_free(m);
    }
  }
  for (size_t i = 0; names[i]; i++) free(names[i]);
  free(names);
  return base;
}

static const struct manifest_disk *base_disk(const struct manifest *base, const char *disk_id)
{
  for (size_t i = 0; base && i < base->ndisks; i++)
    if (base->disks[i].id && strcmp(base->disks[i].id, disk_id) == 0) return &base->disks[i];
  return NULL;
}

/* waits until the chunks of the last incremental disk are stored and its
 * manifest_disk is complete. Before the next disk is added to the manifest
 * (which moves the disks), and once the engine was asked to finalize: the
 * last disk's chunks are hashed and stored while the engine ends the backup. */
static int finish_pending(struct backup_run *b, struct copy_stats *st)
{
  return b->pending ? incremental_finish(steal_pointer(&b->pending), st) : 0;
}

/* backs up one disk of the engine's backup into m */
static int backup_api_disk(struct backup_run *b, struct manifest *m, const struct node *att,
                           const struct manifest *base, const char *why_full, struct copy_stats *st, uint64_t *total,
                           size_t i, size_t nd)
{
  if (finish_pending(b, st) < 0) return -1;
  const char *disk_id = node_attr(node_child(att, "disk"), "id");
  if (!disk_id) disk_id = node_attr(att, "id");
  AUTOFREE char *dpath = xasprintf("/disks/%s", disk_id);
  AUTOPTR(node) dn = NULL;
  if (client_call(b->api, "GET", dpath, NULL, &dn) < 0) return -1;
  const char *alias = node_text(dn, "alias");
  int64_t psize = 0;
  if (node_get_int64(dn, "provisioned_size", &psize) < 0) return -1;
  AUTOFREE char *engine_why = NULL;
  AUTOFREE char *mode = vm_backup_disk_mode(b->api, &b->vb, disk_id, &engine_why);
  const struct manifest_disk *prev = b->vb.from_checkpoint ? base_disk(base, disk_id) : NULL;
  AUTOFREE char *why = why_full ? xstrdup(why_full) : NULL;
  bool incremental = strcmp(mode, "incremental") == 0;
  if (b->vb.from_checkpoint && !incremental && !why)
    why = engine_why ? xasprintf("the engine backs disk '%s' up in full: %s", alias ? alias : disk_id, engine_why)
                     : xasprintf("the engine backs disk '%s' up in full (backup_mode=full)", alias ? alias : disk_id);
  if (incremental && !prev) {
    incremental = false;
    why = xasprintf("backup '%s' in the repository holds no disk '%s'", base->name, alias ? alias : disk_id);
  } else if (incremental && prev->size != (uint64_t)psize) {
    incremental = false;
    why = xasprintf("disk '%s' changed size from %llu to %lld bytes", alias ? alias : disk_id,
                    (unsigned long long)prev->size, (long long)psize);
  }

  if (transfer_start_backup(b->api, b->vb.id, disk_id, &b->t) < 0) return -1;
  AUTOPTR(imageio) io = NULL;
  AUTOFREE char *nbd_url = NULL, *nbd_why = NULL;
  if (transfer_data_open(b->c, &b->t, alias ? alias : disk_id, "reading", &nbd_url, &io) < 0) return -1;
  /* the dirty extents: from the NBD export's dirty bitmap when this host
   * reaches it (one block status walk of the bitmap alone: a few ms, where
   * the imageio answer, combined with the allocation map, took 20-400 ms
   * for the bench's fragmented disk), else from the imageio API */
  struct extentlist dirty = VEC_INIT;
  if (incremental) {
    AUTOFREE char *src_why = NULL;
    int drc = -1;
    if (nbd_url) {
      AUTOFREE char *context = NULL;
      drc = nbd_dirty_extents(nbd_url, &dirty, &context);
      if (drc < 0) {
        src_why = xstrdup(error_message());
        error_clear();
        dirty.len = 0;
      }
    }
    if (drc < 0 && io) {
      drc = imageio_extents(io, "dirty", &dirty);
      if (drc < 0) {
        free(src_why);
        src_why = xstrdup(error_message());
        error_clear();
        dirty.len = 0;
      }
    }
    if (drc < 0) {
      incremental = false;
      why = xasprintf("cannot read the dirty extents: %s", src_why ? src_why : "the transfer offers none");
    }
  }
  AUTOFREE char *label = xasprintf("%s (%zu/%zu)", alias ? alias : disk_id, i + 1, nd);
  struct progress p;
  progress_start(&p, !b->c->json, label, (uint64_t)psize);
  int rc;
  size_t idx = m->ndisks;
  if (incremental) {
    struct manifest_disk *d = manifest_add_disk(m, prev->size);
    d->id = xstrdup(disk_id);
    AUTOPTR(nbd_handle) h = nbd_url ? transfer_nbd_try(nbd_url, &nbd_why) : NULL;
    struct disk_source src = {.what = h ? nbd_url : b->t.url, .nbd = h, .http = io};
    rc = source_to_repo_incremental(b->r, &src, dirty.ptr, dirty.len, prev, d, st, &b->pending, progress_cb, &p);
  } else {
    rc = read_full(b, m, nbd_url, io, st, &p, &idx);
  }
  free(dirty.ptr);
  if (rc < 0) return error_prefix("cannot back up disk '%s': ", alias ? alias : disk_id);
  struct manifest_disk *d = &m->disks[idx];
  progress_end(&p, d->size);
  if (transfer_finalize(b->api, &b->t) < 0) return -1;
  transfer_clear(&b->t);
  free(d->id);
  d->id = xstrdup(disk_id);
  d->alias = xstrdup(alias);
  d->interface = xstrdup(node_text(att, "interface") ? node_text(att, "interface") : "virtio");
  const char *boot = node_text(att, "bootable");
  d->bootable = boot && strcmp(boot, "true") == 0;
  free(d->mode);
  d->mode = xstrdup(incremental ? "incremental" : "full");
  free(d->why);
  d->why = incremental ? NULL : steal_pointer(&why);
  if (d->why) cli_note(b->c, "disk '%s': full backup: %s", alias ? alias : disk_id, d->why);
  *total += d->size;
  return 0;
}

/* true when each disk (ids, n) keeps bitmaps (disk.backup=incremental); an
 * answer that does not say counts as no */
static bool all_incremental(struct backup_run *b, char **ids, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    AUTOFREE char *path = xasprintf("/disks/%s", ids[i]);
    AUTOPTR(node) dn = NULL;
    if (client_call(b->api, "GET", path, NULL, &dn) < 0) {
      error_clear();
      return false;
    }
    const char *mode = node_text(dn, "backup");
    if (!mode || strcmp(mode, "incremental") != 0) return false;
  }
  return true;
}

/* the backup through the engine's backup API; 1 when the engine has none */
static int backup_by_api(struct backup_run *b, struct manifest *m, struct copy_stats *st, uint64_t *total)
{
  AUTOFREE char *apath = xasprintf("/vms/%s/diskattachments", b->vm_id);
  AUTOPTR(node) atts = NULL;
  if (client_call(b->api, "GET", apath, NULL, &atts) < 0) return error_prefix("cannot list the VM's disks: ");
  size_t nd = atts ? atts->nkids : 0;
  if (!nd) return error(ERR_INVALID, "VM '%s' has no disks to back up", b->vm_name);
  char **ids = xcalloc(nd + 1, sizeof *ids);
  for (size_t i = 0; i < nd; i++) {
    const char *id = node_attr(node_child(atts->kids[i], "disk"), "id");
    ids[i] = (char *)(id ? id : node_attr(atts->kids[i], "id"));
  }
  AUTOPTR(manifest) base = b->c->full ? NULL : find_base(b);
  AUTOFREE char *why_full = b->c->full ? xstrdup("--full was given")
                            : !base   ? xstrdup("no earlier backup of this VM in the repository names a checkpoint")
                                      : NULL;
  char host[256];
  hostname_of(host);
  AUTOFREE char *desc = xasprintf(SNAP_PREFIX " %s pid=%ld host=%s", m->id, (long)getpid(), host);
  /* an incremental backup reads a running VM live through libvirt's pull
   * backup (use_active): no snapshot to take and merge again, no qemu-nbd to
   * start; measured on the bench, 0.4-0.7 s against 0.65-1.1 s through a
   * snapshot. A full backup reads the snapshot's frozen volume through
   * qemu-nbd, which serves a whole disk faster than the guest's QEMU does
   * (11.7-13.3 s against 14.8-15.6 s for the bench's 2 GiB): so does a
   * backup with a disk that is always read in full (backup=none). */
  bool live = base && all_incremental(b, ids, nd);
  int rc = backup_start(b, ids, nd, base ? base->checkpoint_id : NULL, live, desc);
  if (rc < 0 && error_code() == ERR_UNSUPPORTED) {
    error_clear();
    free(ids);
    return 1;
  }
  if (rc < 0 && base && error_code() != ERR_AUTH && error_code() != ERR_UNAVAILABLE &&
      error_code() != ERR_CONFLICT) {
    /* the checkpoint is gone or invalid: a full backup, said so */
    free(why_full);
    why_full = xasprintf("the engine refused an incremental backup from checkpoint '%s': %s", base->checkpoint_id,
                         error_message());
    error_clear();
    engine_event(b->api, b->vm_id, "warning", "snapback: backup of VM '%s' falls back to full: %s", b->vm_name,
                 why_full);
    rc = backup_start(b, ids, nd, NULL, false, desc);
  }
  free(ids);
  if (rc < 0) return -1;
  /* the VM's configuration: the backup's snapshot (hybrid), else the VM now */
  AUTOFREE char *opath = b->vb.snapshot_id
                             ? xasprintf("/vms/%s/snapshots/%s?all_content=true", b->vm_id, b->vb.snapshot_id)
                             : xasprintf("/vms/%s?all_content=true", b->vm_id);
  AUTOPTR(node) on = NULL;
  if (client_call(b->api, "GET", opath, NULL, &on) < 0) return -1;
  m->ovf = xstrdup(node_text(on, "initialization/configuration/data"));
  if (!m->ovf) return error(ERR_INTERNAL, "the engine gives no OVF for VM '%s'", b->vm_name);
  m->snapshot_id = xstrdup(b->vb.snapshot_id);
  for (size_t i = 0; i < nd; i++)
    if (backup_api_disk(b, m, atts->kids[i], base, why_full, st, total, i, nd) < 0) return -1;
  /* while the engine finalizes (it ends the export, removes the hybrid
   * backup's snapshot), the last chunks are stored and made durable: the
   * manifest is written once the engine says succeeded, and then has little
   * left to sync */
  if (vm_backup_finalize_send(b->api, &b->vb) < 0 || finish_pending(b, st) < 0 || repo_sync(b->r) < 0 ||
      vm_backup_finalized(b->api, &b->vb) < 0)
    return -1;
  m->checkpoint_id = xstrdup(b->vb.to_checkpoint);
  vm_backup_clear(&b->vb);
  return 0;
}

/* the backup through a snapshot of its own (an engine without the backup API) */
static int backup_by_snapshot(struct backup_run *b, struct manifest *m, struct copy_stats *st, uint64_t *total)
{
  remove_stale_snapshots(b);
  char host[256];
  hostname_of(host);
  AUTOPTR(ovf_vm) ovf = NULL;
  AUTOFREE char *desc = xasprintf(SNAP_PREFIX " %s pid=%ld host=%s", m->id, (long)getpid(), host);
  int rc = engine_snapshot_create(b->api, b->vm_id, desc, &b->snap_id);
  if (rc == 0) {
    m->snapshot_id = xstrdup(b->snap_id);
    AUTOFREE char *spath = xasprintf("/vms/%s/snapshots/%s?all_content=true", b->vm_id, b->snap_id);
    AUTOPTR(node) sn = NULL;
    rc = client_call(b->api, "GET", spath, NULL, &sn);
    if (rc == 0) {
      m->ovf = xstrdup(node_text(sn, "initialization/configuration/data"));
      if (!m->ovf) rc = error(ERR_INTERNAL, "snapshot '%s' carries no OVF", b->snap_id);
    }
  }
  if (rc == 0 && !(ovf = ovf_parse(m->ovf, strlen(m->ovf)))) rc = -1;
  if (rc == 0) rc = backup_disks(b, m, ovf, st, total);
  return rc;
}

int cli_backup(struct cli *c, const char *vm)
{
  int64_t t0 = mono_ms();
  AUTOPTR(repo) r = cli_repo_open(c, true, REPO_LOCK_SHARED);
  /* chunk files are written behind the hashing (repo/writer.c): measured on
   * the bench's 2 GiB, the workers otherwise waited ~0.5 s for the disk */
  if (!r || repo_writers_start(r, BACKUP_WRITERS) < 0) return cli_report_error(c, "cannot back up");
  AUTOPTR(client) api = client_open(&c->conf);
  if (!api) return cli_report_error(c, "cannot back up");
  struct backup_run b = {.c = c, .api = api, .r = r, .vm_name = vm};
  b.vm_id = engine_vm_id(api, vm);
  if (!b.vm_id) return cli_report_error(c, "cannot back up");

  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return cli_report_error(c, "cannot back up");
  AUTOPTR(manifest) m = xcalloc(1, sizeof *m);
  m->id = xstrdup(id);
  m->vm_id = xstrdup(b.vm_id);
  m->vm_name = xstrdup(vm);
  m->start_ms = now_ms();
  engine_event(api, b.vm_id, "normal", "backup of VM '%s' started (snapback %s, repository %s)", vm, id, c->repo);

  struct copy_stats st = {0};
  uint64_t total = 0;
  int rc = backup_by_api(&b, m, &st, &total);
  if (rc == 1) {
    cli_note(c, "the engine offers no VM backup API: a full backup through a snapshot");
    rc = backup_by_snapshot(&b, m, &st, &total);
  }
  if (rc == 0) {
    m->end_ms = now_ms();
    m->chunks_new = st.chunks_new;
    m->chunks_reused = st.chunks_reused;
    m->chunks_zero = st.chunks_zero;
    m->bytes_read = st.bytes_read;
    m->bytes_stored = st.bytes_stored;
    rc = manifest_write(r, m);
  }
  if (rc < 0) {
    error_prefix("backup of VM '%s' failed: ", vm);
    backup_cleanup(&b);
    engine_event(api, b.vm_id, "error", "%s", error_message());
    free(b.vm_id);
    vm_backup_clear(&b.vb);
    return cli_report_error(c, NULL);
  }
  /* the backup is complete; the snapshot's removal is the last step */
  int snap_rc = b.snap_id ? engine_snapshot_remove(api, b.vm_id, b.snap_id) : 0;
  if (snap_rc < 0) {
    error_prefix("backup %s is complete, but ", m->name);
    engine_event(api, b.vm_id, "warning", "%s", error_message());
    cli_report_error(c, NULL);
  } else {
    free(b.snap_id);
    b.snap_id = NULL;
  }
  double secs = (double)(mono_ms() - t0) / 1000.0;
  char tb[32], rb[32], sb[32];
  human_bytes(total, tb);
  human_bytes(st.bytes_read, rb);
  human_bytes(st.bytes_stored, sb);
  engine_event(api, b.vm_id, "normal",
               "backup of VM '%s' completed: %s (%zu disks, %s read, %llu chunks new, %llu reused, %llu zero) in %.1f s",
               vm, m->name, m->ndisks, rb, (unsigned long long)st.chunks_new, (unsigned long long)st.chunks_reused,
               (unsigned long long)st.chunks_zero, secs);
  if (c->json) {
    json_t *disks = json_array();
    for (size_t i = 0; i < m->ndisks; i++)
      json_array_append_new(disks, json_pack("{s:s, s:s?, s:I, s:s, s:s, s:s?}", "id", m->disks[i].id, "alias",
                                             m->disks[i].alias, "size", (json_int_t)m->disks[i].size, "digest",
                                             m->disks[i].digest, "mode", m->disks[i].mode, "why", m->disks[i].why));
    AUTOPTR(json) j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:b}", "backup",
                                m->name, "id", m->id, "vm", vm, "vm_id", b.vm_id, "disks", disks, "size",
                                (json_int_t)total, "bytes_read", (json_int_t)st.bytes_read, "bytes_stored",
                                (json_int_t)st.bytes_stored, "chunks_new", (json_int_t)st.chunks_new,
                                "chunks_reused", (json_int_t)st.chunks_reused, "chunks_zero",
                                (json_int_t)st.chunks_zero, "seconds", secs, "snapshot_removed", snap_rc == 0);
    json_object_set_new(j, "checkpoint_id", m->checkpoint_id ? json_string(m->checkpoint_id) : json_null());
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
  } else {
    printf("backup %s complete: VM '%s', %zu disk%s, %s; read %s, stored %s; chunks: %llu new, %llu reused, "
           "%llu zero; %.1f s (%.0f MiB/s)\n",
           m->name, vm, m->ndisks, m->ndisks == 1 ? "" : "s", tb, rb, sb, (unsigned long long)st.chunks_new,
           (unsigned long long)st.chunks_reused, (unsigned long long)st.chunks_zero, secs,
           secs > 0 ? (double)total / secs / 1048576.0 : 0.0);
    for (size_t i = 0; i < m->ndisks; i++)
      printf("  disk %s: %s%s%s\n", m->disks[i].alias ? m->disks[i].alias : m->disks[i].id, m->disks[i].mode,
             m->disks[i].why ? ": " : "", m->disks[i].why ? m->disks[i].why : "");
  }
  free(b.vm_id);
  free(b.snap_id);
  return snap_rc < 0 ? CLI_FAILED : CLI_OK;
}
