/* export.c: VMs to OVA files, as oVirt's "export to path on host"; the import
 * is import.c, the recovery after a crash ova_recover.c, what they share
 * ova_job.c.
 *
 * Export: the command checks everything it can at once (directory, file,
 * free space, disk states), records its intent (a job row, and a setting
 * "ova-job:JOB" naming the .part file and the temporary snapshot), creates
 * DIR/FILE.part exclusively, and answers. A background job writes the OVA:
 * the OVF first (member vm.ovf), then each disk as a qcow2 written by
 * qemu-img straight into the archive at its offset (a qcow2 over a raw
 * layer with an offset), the tar header being fixed up once the member's
 * size is known. fsync, then rename to FILE: nothing half-written ever has
 * the final name. A running VM is read from a temporary snapshot, which is
 * removed afterwards.
 *
 * Disk-snapshot attachments (other VMs' disks attached for backup) are not
 * part of the VM: vm_ovf() leaves them out, and the job and events say so. */
#include "cmd/ova_job.h"
#include "cmd/ova.h"
#include "repr/ovf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_WAIT_MS (30 * 60 * 1000)

struct user *user_dup(const struct user *u)
{
  struct user *c = xcalloc(1, sizeof *c);
  c->id = xstrdup(u ? u->id : NULL);
  c->name = xstrdup(u ? u->name : "engine");
  return c;
}

char *snapshot_attachments_text(struct store *st, const char *vm_id)
{
  AUTOLIST(attachment) l = attachment_list_snapshots_of_vm(st, vm_id);
  if (!l || !l[0]) { error_clear(); return NULL; }
  struct buf b = BUF_INIT;
  for (size_t i = 0; l[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, l[i]->disk_id);
    AUTOPTR(snapshot) s = snapshot_get(st, l[i]->snapshot_id);
    AUTOPTR(vm) owner = s ? vm_get(st, s->vm_id) : NULL;
    error_clear();
    buf_printf(&b, "%sdisk '%s' (snapshot '%s' of VM '%s')", i ? ", " : "",
               d ? d->alias : l[i]->disk_id, s ? s->description : l[i]->snapshot_id,
               owner ? owner->name : "?");
  }
  return buf_detach(&b);
}

static int write_at(int fd, const void *p, size_t len, int64_t off, const char *path)
{
  size_t done = 0;
  while (done < len) {
    ssize_t w = pwrite(fd, (const char *)p + done, len - done, (off_t)(off + (int64_t)done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0)
      return error(errno == ENOSPC || errno == EDQUOT ? ERR_CONFLICT : ERR_INTERNAL,
                   "cannot write '%s': %s", path, strerror(errno));
    done += (size_t)w;
  }
  return 0;
}

static int64_t round_block(int64_t n) { return (n + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK; }

/* a disk to write: the OVF's File href and the volume it reads */
struct export_disk { char *href; char *path; int format; };

struct export_args {
  char *vm_id, *host_id, *dir, *filename;
  char *path, *part;           /* DIR/FILE and DIR/FILE.part */
  char *path_lock;             /* "ova-file:DIR/FILE" */
  struct vm *vm;
  bool live;                   /* the VM runs: read a temporary snapshot */
  bool part_created;
  char *left_out;              /* disk-snapshot attachments left out, or NULL */
  char *job_id, *snap_id;
  struct user *user;
};

static void export_args_free(struct export_args *a)
{
  if (!a) return;
  free(a->vm_id); free(a->host_id); free(a->dir); free(a->filename);
  free(a->path); free(a->part); free(a->path_lock);
  vm_free(a->vm);
  free(a->left_out); free(a->job_id); free(a->snap_id);
  user_free(a->user);
  free(a);
}

static int filename_check(const char *f)
{
  if (!f[0] || strlen(f) > 250 || strchr(f, '/') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0)
    return error(ERR_INVALID, "invalid file name '%s': give a plain file name (no '/'), up to 250 "
                 "characters", f);
  return 0;
}

static int export_validate(struct cmd_ctx *c)
{
  struct export_args *a = c->data;
  struct store *st = c->eng->st;
  if (!(a->vm = vm_get(st, a->vm_id))) return -1;
  AUTOPTR(host) h = host_get(st, a->host_id);
  if (!h) return -1;
  if (h->status != HOST_UP)
    return error(ERR_CONFLICT, "cannot export VM '%s' on host '%s': the host is %s", a->vm->name,
                 h->name, host_status_to_str(h->status));
  /* a running VM's export takes and removes a snapshot, which a backup forbids */
  if (a->vm->status != VM_DOWN && backup_check_vm(st, a->vm_id, "export VM", a->vm->name) < 0) return -1;
  if (a->vm->status == VM_UP || a->vm->status == VM_PAUSED) a->live = true;
  else if (a->vm->status != VM_DOWN)
    return error(ERR_CONFLICT, "cannot export VM '%s': it is %s; wait until it is up or down",
                 a->vm->name, vm_status_to_str(a->vm->status));
  if (filename_check(a->filename) < 0) return -1;
  /* from here on the real directory: no symlink or ".." leads elsewhere */
  AUTOFREE char *real = host_path_resolve(c->eng, a->dir, "OVA directory");
  if (!real) return -1;
  free(a->dir);
  a->dir = steal_pointer(&real);
  free(a->path);
  free(a->part);
  a->path = xasprintf("%s%s%s", a->dir, strcmp(a->dir, "/") ? "/" : "", a->filename);
  a->part = xasprintf("%s.part", a->path);
  struct stat sb;
  if (stat(a->dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
    return error(ERR_INVALID, "cannot export VM '%s': directory '%s' does not exist on host '%s'",
                 a->vm->name, a->dir, h->name);
  if (access(a->dir, W_OK) < 0)
    return error(ERR_INVALID, "cannot export VM '%s': directory '%s' is not writable", a->vm->name, a->dir);
  if (lstat(a->path, &sb) == 0)
    return error(ERR_CONFLICT, "cannot export VM '%s': file '%s' already exists; choose another "
                 "file name or remove it", a->vm->name, a->path);
  if (lstat(a->part, &sb) == 0)
    return error(ERR_CONFLICT, "cannot export VM '%s': '%s' exists: another export to '%s' is running "
                 "or was interrupted", a->vm->name, a->part, a->path);
  AUTOLIST(snapshot) busy = snapshot_list_locked_of_vm(st, a->vm_id);
  if (!busy) return -1;
  if (busy[0])
    return error(ERR_CONFLICT, "cannot export VM '%s': snapshot '%s' is being changed; wait until it "
                 "has finished", a->vm->name, busy[0]->description);
  if (a->live) {
    /* the temporary snapshot must be removable afterwards */
    AUTOLIST(attachment) used = attachment_list_snapshots_of_own_disks_elsewhere(st, a->vm_id);
    if (!used) return -1;
    if (used[0])
      return error(ERR_CONFLICT, "cannot export running VM '%s': a snapshot of its disk '%s' is "
                   "attached to another VM, so the temporary export snapshot could not be removed; "
                   "detach it or stop the VM first", a->vm->name, used[0]->disk_id);
  }
  AUTOLIST(attachment) own = attachment_list_own_of_vm(st, a->vm_id);
  if (!own) return -1;
  int64_t need = 4 * TAR_BLOCK + (1 << 20);
  for (size_t i = 0; own[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, own[i]->disk_id);
    AUTOPTR(volume) v = d ? disk_active_volume(st, d->id) : NULL;
    if (!v) return -1;
    if (d->status != DISK_OK || v->status != DISK_OK)
      return error(ERR_CONFLICT, "cannot export VM '%s': disk '%s' is %s", a->vm->name, d->alias,
                   disk_status_to_str(d->status != DISK_OK ? d->status : v->status));
    int64_t m = volume_measure(v->path, v->format);
    if (m < 0) return -1;
    need += m + 2 * TAR_BLOCK + (256 << 10);
  }
  int64_t avail = free_bytes(a->dir);
  if (avail < 0) return -1;
  if (avail < need)
    return error(ERR_CONFLICT, "cannot export VM '%s': not enough space in '%s': the OVA needs about "
                 "%lld bytes and %lld are free", a->vm->name, a->dir, (long long)need, (long long)avail);
  a->left_out = snapshot_attachments_text(st, a->vm_id);
  return 0;
}

/* the intent record recovery reads: JSON, so that no byte of a user's file
 * name or directory can split it into other fields */
static char *export_record(const struct export_args *a)
{
  AUTOPTR(json) j = json_pack("{s:s, s:s, s:s, s:s?}", "kind", "export", "part", a->part,
                              "vm", a->vm_id, "snapshot", a->snap_id);
  return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

static int export_execute(struct cmd_ctx *c)
{
  struct export_args *a = c->data;
  AUTOFREE char *desc = xasprintf(
      "Exporting VM %s as OVA to '%s'%s%s%s", a->vm->name, a->path,
      a->left_out ? "; left out disk-snapshot attachment(s): " : "", a->left_out ? a->left_out : "",
      a->left_out ? " (other VMs' disks attached for backup, not part of this VM)" : "");
  AUTOFREE char *rec = export_record(a);
  if (!rec) return error(ERR_INTERNAL, "cannot record the export to '%s'", a->path);
  /* intent first: recovery finds the .part by the job's record */
  if (!(a->job_id = ova_job_begin(c->eng, c->user, desc, rec))) return -1;
  int fd = open(a->part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return error(errno == EEXIST ? ERR_CONFLICT : ERR_INVALID, "cannot export VM '%s': cannot create '%s': %s",
                 a->vm->name, a->part, strerror(errno));
  a->part_created = true;
  close(fd);
  c->keep_locks = true;
  return 0;
}

static void export_compensate(struct cmd_ctx *c)
{
  struct export_args *a = c->data;
  if (a->part_created) unlink(a->part);
  ova_job_end(c->eng, a->job_id, false);
}

static char *export_describe(struct cmd_ctx *c, bool ok)
{
  struct export_args *a = c->data;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("export of VM %s as OVA to '%s' was initiated by %s%s%s%s", name, a->path,
                        c->user->name, a->left_out ? "; disk-snapshot attachment(s) left out: " : "",
                        a->left_out ? a->left_out : "",
                        a->left_out ? " (other VMs' disks attached for backup)" : "")
            : xasprintf("exporting VM %s as OVA to '%s'", name, a->path);
}

static const struct cmd_def export_def = {
  "ExportVmToOva", 0, export_validate, export_execute, export_compensate, export_describe,
};

/* an empty qcow2 of vsize bytes, as the bytes of its file. It is made
 * beside the OVA's .part file, as PART.empty, which recovery removes with
 * the .part when the engine dies in between (ova_recover.c): a file in a
 * shared temporary directory would be left there for good */
static int empty_qcow2(const char *part, int64_t vsize, struct buf *out)
{
  AUTOFREE char *tmp = xasprintf("%s.empty", part);
  int rc = volume_create(tmp, DISK_FORMAT_COW, vsize, NULL, 0);
  if (rc == 0) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) rc = error(ERR_INTERNAL, "cannot open '%s': %s", tmp, strerror(errno));
    char chunk[65536];
    ssize_t r;
    while (rc == 0 && (r = read(fd, chunk, sizeof chunk)) != 0) {
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) { rc = error(ERR_INTERNAL, "cannot read '%s': %s", tmp, strerror(errno)); break; }
      buf_add(out, chunk, (size_t)r);
    }
    if (fd >= 0) close(fd);
  }
  unlink(tmp);
  return rc;
}

/* writes one disk member at *off: placeholder header, an empty qcow2 of the
 * source's virtual size, qemu-img convert into it in place, then the real
 * header once the size is known, and padding */
static int write_disk_member(int fd, const char *part, int64_t *off, const struct export_disk *d)
{
  unsigned char hdr[TAR_BLOCK];
  int64_t h = *off, data = h + TAR_BLOCK;
  int64_t mtime = time(NULL);
  if (tar_header_encode(hdr, d->href, 0, mtime) < 0 || write_at(fd, hdr, TAR_BLOCK, h, part) < 0) return -1;
  struct volume_info info;
  if (volume_info(d->path, d->format, &info) < 0) return error_prefix("cannot read volume '%s': ", d->path);
  int64_t vsize = info.virtual_size;
  AUTOBUF struct buf empty = BUF_INIT;
  if (empty_qcow2(part, vsize, &empty) < 0 || write_at(fd, empty.data, empty.len, data, part) < 0) return -1;
  if (fdatasync(fd) < 0) return error(ERR_INTERNAL, "cannot sync '%s': %s", part, strerror(errno));
  AUTOFREE char *target = volume_range_image(part, data, -1, true);
  if (volume_copy_image(d->path, d->format, target, DISK_FORMAT_COW, true) < 0) {
    if (is_enospc(error_message())) {
      struct err_saved s;
      error_save(&s);
      error(ERR_CONFLICT, "not enough space left in the export directory: %s", s.msg);
      free(s.msg);
    }
    return error_prefix("cannot copy disk image '%s' into the OVA: ", d->path);
  }
  struct stat sb;
  if (fstat(fd, &sb) < 0) return error(ERR_INTERNAL, "cannot stat '%s': %s", part, strerror(errno));
  int64_t size = (int64_t)sb.st_size - data;
  if (tar_header_encode(hdr, d->href, size, mtime) < 0 || write_at(fd, hdr, TAR_BLOCK, h, part) < 0) return -1;
  static const unsigned char zeros[TAR_BLOCK];
  int64_t pad = round_block(size) - size;
  if (pad && write_at(fd, zeros, (size_t)pad, data + size, part) < 0) return -1;
  *off = data + round_block(size);
  return 0;
}

/* writes the whole OVA into a->part and renames it; progress from 5 to 95 */
static int ova_write(struct engine *eng, struct export_args *a, const char *ovf,
                     const struct export_disk *disks, size_t n)
{
  int fd = open(a->part, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return error(ERR_INTERNAL, "cannot open '%s': %s", a->part, strerror(errno));
  unsigned char hdr[TAR_BLOCK];
  static const unsigned char zeros[2 * TAR_BLOCK];
  size_t len = strlen(ovf);
  int64_t off = 0;
  int rc = -1;
  if (ftruncate(fd, 0) < 0) { error(ERR_INTERNAL, "cannot truncate '%s': %s", a->part, strerror(errno)); goto out; }
  if (tar_header_encode(hdr, OVF_MEMBER, (int64_t)len, time(NULL)) < 0 ||
      write_at(fd, hdr, TAR_BLOCK, 0, a->part) < 0 || write_at(fd, ovf, len, TAR_BLOCK, a->part) < 0 ||
      write_at(fd, zeros, (size_t)(round_block((int64_t)len) - (int64_t)len), TAR_BLOCK + (int64_t)len, a->part) < 0)
    goto out;
  off = TAR_BLOCK + round_block((int64_t)len);
  engine_job_progress(eng, a->job_id, 5);
  for (size_t i = 0; i < n; i++) {
    if (write_disk_member(fd, a->part, &off, &disks[i]) < 0) goto out;
    engine_job_progress(eng, a->job_id, 5 + (int64_t)(90 * (i + 1) / n));
  }
  if (write_at(fd, zeros, sizeof zeros, off, a->part) < 0) goto out;
  if (fsync(fd) < 0) {
    error(errno == ENOSPC ? ERR_CONFLICT : ERR_INTERNAL, "cannot sync '%s': %s", a->part, strerror(errno));
    goto out;
  }
  rc = 0;
out:
  close(fd);
  if (rc < 0) return -1;
  /* never over a file that appeared meanwhile */
  int r = renameat2(AT_FDCWD, a->part, AT_FDCWD, a->path, RENAME_NOREPLACE);
  if (r < 0 && (errno == EINVAL || errno == ENOSYS)) r = rename(a->part, a->path);
  if (r < 0)
    return error(errno == EEXIST ? ERR_CONFLICT : ERR_INTERNAL, "cannot rename '%s' to '%s': %s",
                 a->part, a->path, strerror(errno));
  int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) { fsync(dfd); close(dfd); }
  return 0;
}

/* the disks the OVF names: File href "DISK_ID/VOLUME_ID" -> that volume */
static int export_disks(struct store *st, const struct ovf_vm *o, struct export_disk **out)
{
  struct export_disk *d = xcalloc(o->ndisks + 1, sizeof *d);
  for (size_t i = 0; i < o->ndisks; i++) {
    const char *slash = strrchr(o->disks[i].href, '/');
    AUTOPTR(volume) v = volume_get(st, slash ? slash + 1 : o->disks[i].href);
    if (!v) {
      for (size_t j = 0; j < i; j++) { free(d[j].href); free(d[j].path); }
      free(d);
      return -1;
    }
    d[i] = (struct export_disk){xstrdup(o->disks[i].href), xstrdup(v->path), v->format};
  }
  *out = d;
  return 0;
}

/* waits until the VM lock is ours (the snapshot job holds it until it ends) */
static int lock_vm_waiting(struct engine *eng, const char *vm_id)
{
  const char *locks[] = {vm_id, NULL};
  for (int waited = 0;; waited += 100) {
    if (locks_acquire(eng, locks, "ExportVmToOva", NULL) == 0) return 0;
    if (waited > LOCK_WAIT_MS) return -1;
    usleep(100 * 1000);
  }
}

/* removes the temporary snapshot and waits until the merge is done */
static int drop_export_snapshot(struct engine *eng, struct export_args *a)
{
  if (cmd_snapshot_remove(eng, a->user, a->vm_id, a->snap_id) < 0) return -1;
  for (int waited = 0; waited < LOCK_WAIT_MS; waited += 200) {
    AUTOPTR(snapshot) s = snapshot_get(eng->st, a->snap_id);
    if (!s) { error_clear(); return 0; }
    if (s->status == SNAPSHOT_OK)
      return error(ERR_INTERNAL, "the removal of snapshot '%s' failed; see the events", s->description);
    usleep(200 * 1000);
  }
  return error(ERR_INTERNAL, "the removal of the temporary snapshot did not finish in time");
}

static void export_job(struct engine *eng, void *arg)
{
  struct export_args *a = arg;
  struct store *st = eng->st;
  const char *vm_lock[] = {a->vm_id, NULL};
  const char *path_lock[] = {a->path_lock, NULL};
  bool vm_locked = !a->live, ok = false;
  AUTOFREE char *ovf = NULL;
  AUTOPTR(ovf_vm) parsed = NULL;
  struct export_disk *disks = NULL;
  if (a->live) {
    if (lock_vm_waiting(eng, a->vm_id) < 0) goto done;
    vm_locked = true;
    AUTOPTR(snapshot) s = snapshot_get(st, a->snap_id);
    if (!s) { error_prefix("the temporary snapshot failed: "); goto done; }
    if (s->status != SNAPSHOT_OK || !s->ovf) {
      error(ERR_INTERNAL, "the temporary snapshot '%s' is %s", s->description,
            snapshot_status_to_str(s->status));
      goto done;
    }
    ovf = xstrdup(s->ovf);  /* hrefs name the volumes the snapshot froze */
  } else {
    AUTOPTR(vm) vm = vm_get(st, a->vm_id);
    if (!vm) goto done;
    ovf = vm_ovf(eng, vm);
  }
  if (!(parsed = ovf_parse(ovf, strlen(ovf)))) goto done;
  if (export_disks(st, parsed, &disks) < 0) goto done;
  ok = ova_write(eng, a, ovf, disks, parsed->ndisks) == 0;
done:;
  struct err_saved s;
  error_save(&s);
  if (!ok) unlink(a->part);
  AUTOFREE char *snap_problem = NULL;
  if (a->live && a->snap_id) {
    if (vm_locked) engine_unlock(eng, vm_lock);
    vm_locked = false;
    if (drop_export_snapshot(eng, a) < 0)
      snap_problem = xasprintf("; the temporary snapshot could not be removed: %s; remove it by hand",
                               error_message());
    error_clear();
  }
  if (ok)
    engine_event(eng, snap_problem ? SEVERITY_WARNING : SEVERITY_NORMAL, EV_VM_EXPORTED, a->user, a->vm_id,
                 "VM %s was exported as OVA to '%s' (%zu disk(s))%s%s%s%s", a->vm->name, a->path,
                 parsed ? parsed->ndisks : 0,
                 a->left_out ? "; disk-snapshot attachment(s) left out, being other VMs' disks "
                               "attached for backup: " : "",
                 a->left_out ? a->left_out : "", a->live ? "; read from a temporary snapshot" : "",
                 snap_problem ? snap_problem : "");
  else
    engine_event(eng, SEVERITY_ERROR, EV_VM_EXPORT_FAILED, a->user, a->vm_id,
                 "failed to export VM %s as OVA to '%s': %s; no file was left behind%s", a->vm->name,
                 a->path, s.msg ? s.msg : "unknown error", snap_problem ? snap_problem : "");
  free(s.msg);
  ova_job_end(eng, a->job_id, ok);
  if (vm_locked) engine_unlock(eng, vm_lock);
  engine_unlock(eng, path_lock);
  for (size_t i = 0; disks && disks[i].href; i++) { free(disks[i].href); free(disks[i].path); }
  free(disks);
  export_args_free(a);
}

int cmd_vm_export_ova(struct engine *eng, const struct user *u, const char *vm_id, const char *host_id,
                      const char *directory, const char *filename, char **out_job_id)
{
  struct export_args *a = xcalloc(1, sizeof *a);
  a->vm_id = xstrdup(vm_id);
  a->host_id = xstrdup(host_id);
  a->dir = xstrdup(directory);
  size_t dl = strlen(a->dir);
  while (dl > 1 && a->dir[dl - 1] == '/') a->dir[--dl] = 0;
  a->filename = xstrdup(filename);
  a->path = xasprintf("%s%s%s", a->dir, dl > 1 ? "/" : "", filename);
  a->part = xasprintf("%s.part", a->path);
  a->path_lock = xasprintf("ova-file:%s", a->path);
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {a->vm_id, a->path_lock}, .data = a};
  if (cmd_run(&export_def, &c) < 0) {
    export_args_free(a);
    return -1;
  }
  a->user = user_dup(u);
  if (a->live) {
    /* the snapshot command takes the VM lock itself; the job waits for it */
    const char *vm_lock[] = {a->vm_id, NULL};
    engine_unlock(eng, vm_lock);
    AUTOFREE char *desc = xasprintf("temporary snapshot for the export to OVA '%s'", a->path);
    if (cmd_snapshot_create(eng, u, vm_id, desc, false, NULL, &a->snap_id) < 0) {
      struct err_saved s;
      error_save(&s);
      unlink(a->part);
      ova_job_end(eng, a->job_id, false);
      const char *path_lock[] = {a->path_lock, NULL};
      engine_unlock(eng, path_lock);
      export_args_free(a);
      return error_restore(&s);
    }
    AUTOFREE char *rec = export_record(a);
    if (rec) ova_job_record(eng, a->job_id, rec);
  }
  if (out_job_id) *out_job_id = xstrdup(a->job_id);
  engine_background(eng, export_job, a);
  return 0;
}
