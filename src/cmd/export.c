/* export.c: VMs to OVA files and back, as oVirt's "export to path on host"
 * and "external VM import" with provider OVA.
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
 * Import: the OVA is indexed and its OVF parsed at once (a damaged one is a
 * 400), then a job copies each disk image into a new volume file and only
 * then, in one transaction, creates the VM, its disks, volumes and
 * attachments. A crash before that leaves volume files no row names, which
 * engine_sweep_orphans() removes at the next start.
 *
 * Disk-snapshot attachments (other VMs' disks attached for backup) are not
 * part of the VM: vm_ovf() leaves them out, and the job and events say so. */
#include "cmd/internal.h"
#include "cmd/ova.h"
#include "repr/ovf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/spawn.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

#define OVF_MEMBER "vm.ovf"
#define OVF_MAX_BYTES (16 << 20)
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
  const char *params[] = {vm_id};
  AUTOLIST(attachment) l = attachment_list(st, "vm_id = ? AND snapshot_id IS NOT NULL", params, 1,
                                           "position", 0);
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

/* ---- jobs with progress, and the intent record ---- */

static char *job_key(const char *job_id) { return xasprintf("ova-job:%s", job_id); }

/* a job row of our own (the dispatcher's ends with the command; ours lives
 * as long as the background work) and the record recovery reads */
static char *ova_job_begin(struct engine *eng, const struct user *u, const char *desc, const char *record)
{
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return NULL;
  struct job j = {.id = id, .description = (char *)desc, .status = JOB_STARTED, .start_ms = now_ms(),
                  .user_id = u ? u->id : NULL, .progress = 0};
  AUTOFREE char *key = job_key(id);
  if (store_begin(eng->st) < 0) return NULL;
  if (job_insert(eng->st, &j) < 0 || store_setting_set(eng->st, key, record) < 0) {
    store_rollback(eng->st);
    return NULL;
  }
  if (store_commit(eng->st) < 0) return NULL;
  return xstrdup(id);
}

static void ova_job_record(struct engine *eng, const char *job_id, const char *record)
{
  AUTOFREE char *key = job_key(job_id);
  if (store_setting_set(eng->st, key, record) < 0) log_err("%s", error_message());
}

static void ova_job_progress(struct engine *eng, const char *job_id, int64_t pct)
{
  struct err_saved s;
  error_save(&s);
  AUTOPTR(job) j = job_get(eng->st, job_id);
  if (j && j->progress != pct) {
    j->progress = pct;
    if (job_update(eng->st, j) < 0) log_err("%s", error_message());
  }
  if (s.code != ERR_NONE) error_restore(&s);
  else { free(s.msg); error_clear(); }
}

static void ova_job_end(struct engine *eng, const char *job_id, bool ok)
{
  if (!job_id) return;
  struct err_saved s;
  error_save(&s);
  AUTOPTR(job) j = job_get(eng->st, job_id);
  if (j) {
    j->status = ok ? JOB_FINISHED : JOB_FAILED;
    j->end_ms = now_ms();
    j->progress = 100;
    if (job_update(eng->st, j) < 0) log_err("%s", error_message());
  }
  ova_job_record(eng, job_id, "");
  if (s.code != ERR_NONE) error_restore(&s);
  else { free(s.msg); error_clear(); }
}

/* ---- qemu-img on parts of a file ---- */

/* json:{...} naming the byte range [offset, offset+size) of PATH as an image
 * of format qcow2 (backing files never followed) or raw; size < 0: to EOF.
 * QEMU's raw layer takes only sizes in whole 512-byte sectors: a qcow2 member
 * of another size is read through its tar padding (zeros, which qcow2
 * ignores past its last cluster); a raw member's size is its disk's size and
 * stays exact. */
static char *range_image(const char *path, int64_t offset, int64_t size, bool qcow2)
{
  if (qcow2 && size >= 0) size = (size + 511) / 512 * 512;
  json_t *file = json_pack("{s:s,s:s}", "driver", "file", "filename", path);
  json_t *raw = json_pack("{s:s,s:I,s:o}", "driver", "raw", "offset", (json_int_t)offset, "file", file);
  if (size >= 0) json_object_set_new(raw, "size", json_integer(size));
  AUTOPTR(json) top = qcow2 ? json_pack("{s:s,s:n,s:o}", "driver", "qcow2", "backing", "file", raw) : raw;
  AUTOFREE char *s = json_dumps(top, JSON_COMPACT);
  return xasprintf("json:%s", s);
}

/* qemu-img info -U of FILENAME (a path or json:); NULL with the error */
static json_t *image_info(const char *filename, const char *format)
{
  const char *argv[8];
  size_t n = 0;
  argv[n++] = "qemu-img";
  argv[n++] = "info";
  argv[n++] = "-U";
  argv[n++] = "--output=json";
  if (format) { argv[n++] = "-f"; argv[n++] = format; }
  argv[n++] = filename;
  argv[n] = NULL;
  AUTOBUF struct buf out = BUF_INIT;
  if (spawn_run(argv, &out, NULL) < 0) return NULL;
  json_error_t jerr;
  json_t *info = json_loads(buf_str(&out), 0, &jerr);
  if (!json_is_object(info)) {
    json_decref(info);
    return error(ERR_INTERNAL, "qemu-img info printed no JSON: %s", jerr.text), NULL;
  }
  return info;
}

/* the bytes a qcow2 copy of PATH (chain flattened) needs at most */
static int64_t image_measure(const char *path, int format)
{
  const char *argv[] = {"qemu-img", "measure", "-U", "--output=json", "-O", "qcow2", "-f",
                        format == DISK_FORMAT_RAW ? "raw" : "qcow2", path, NULL};
  AUTOBUF struct buf out = BUF_INIT;
  if (spawn_run(argv, &out, NULL) < 0) return error_prefix("cannot measure volume '%s': ", path);
  AUTOPTR(json) m = json_loads(buf_str(&out), 0, NULL);
  json_t *req = json_object_get(m, "required");
  if (!json_is_integer(req)) return error(ERR_INTERNAL, "cannot measure volume '%s': no size", path);
  return (int64_t)json_integer_value(req);
}

static int64_t free_bytes(const char *dir)
{
  struct statvfs vfs;
  if (statvfs(dir, &vfs) < 0)
    return error(ERR_INTERNAL, "cannot read the free space of '%s': %s", dir, strerror(errno));
  return (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
}

static bool is_enospc(const char *msg)
{
  return strstr(msg, "No space left") || strstr(msg, "ENOSPC") || strstr(msg, "Disk quota exceeded");
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

/* ======================================================================== export */

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
  const char *params[] = {a->vm_id};
  AUTOLIST(snapshot) busy = snapshot_list(st, "vm_id = ? AND status = 'locked'", params, 1, NULL, 1);
  if (!busy) return -1;
  if (busy[0])
    return error(ERR_CONFLICT, "cannot export VM '%s': snapshot '%s' is being changed; wait until it "
                 "has finished", a->vm->name, busy[0]->description);
  if (a->live) {
    /* the temporary snapshot must be removable afterwards */
    const char *pp[] = {a->vm_id, a->vm_id};
    AUTOLIST(attachment) used = attachment_list(
        st, "snapshot_id IS NOT NULL AND vm_id <> ? AND disk_id IN "
            "(SELECT disk_id FROM attachments WHERE vm_id = ? AND snapshot_id IS NULL)", pp, 2, NULL, 1);
    if (!used) return -1;
    if (used[0])
      return error(ERR_CONFLICT, "cannot export running VM '%s': a snapshot of its disk '%s' is "
                   "attached to another VM, so the temporary export snapshot could not be removed; "
                   "detach it or stop the VM first", a->vm->name, used[0]->disk_id);
  }
  AUTOLIST(attachment) own = attachment_list(st, "vm_id = ? AND snapshot_id IS NULL", params, 1,
                                             "position", 0);
  if (!own) return -1;
  int64_t need = 4 * TAR_BLOCK + (1 << 20);
  for (size_t i = 0; own[i]; i++) {
    AUTOPTR(disk) d = disk_get(st, own[i]->disk_id);
    AUTOPTR(volume) v = d ? disk_active_volume(st, d->id) : NULL;
    if (!v) return -1;
    if (d->status != DISK_OK || v->status != DISK_OK)
      return error(ERR_CONFLICT, "cannot export VM '%s': disk '%s' is %s", a->vm->name, d->alias,
                   disk_status_to_str(d->status != DISK_OK ? d->status : v->status));
    int64_t m = image_measure(v->path, v->format);
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

/* an empty qcow2 of vsize bytes, as the bytes of its file */
static int empty_qcow2(int64_t vsize, struct buf *out)
{
  char tmp[] = "/var/tmp/snapback-ova-XXXXXX";
  int fd = mkstemp(tmp);
  if (fd < 0) return error(ERR_INTERNAL, "cannot create a temporary file: %s", strerror(errno));
  close(fd);
  int rc = volume_create(tmp, DISK_FORMAT_COW, vsize, NULL, 0);
  if (rc == 0) {
    fd = open(tmp, O_RDONLY | O_CLOEXEC);
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
  AUTOPTR(json) info = image_info(d->path, d->format == DISK_FORMAT_RAW ? "raw" : "qcow2");
  if (!info) return error_prefix("cannot read volume '%s': ", d->path);
  int64_t vsize = (int64_t)json_integer_value(json_object_get(info, "virtual-size"));
  AUTOBUF struct buf empty = BUF_INIT;
  if (empty_qcow2(vsize, &empty) < 0 || write_at(fd, empty.data, empty.len, data, part) < 0) return -1;
  if (fdatasync(fd) < 0) return error(ERR_INTERNAL, "cannot sync '%s': %s", part, strerror(errno));
  /* -O qcow2 matters: without it qemu-img opens the json: target as raw */
  AUTOFREE char *target = range_image(part, data, -1, true);
  const char *argv[] = {"qemu-img", "convert", "-q", "-n", "--target-is-zero", "-U", "-f",
                        d->format == DISK_FORMAT_RAW ? "raw" : "qcow2", "-O", "qcow2", d->path, target,
                        NULL};
  if (spawn_run(argv, NULL, NULL) < 0) {
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
  ova_job_progress(eng, a->job_id, 5);
  for (size_t i = 0; i < n; i++) {
    if (write_disk_member(fd, a->part, &off, &disks[i]) < 0) goto out;
    ova_job_progress(eng, a->job_id, 5 + (int64_t)(90 * (i + 1) / n));
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

/* ======================================================================== import */

struct import_disk {
  const struct ovf_disk *od;
  const struct tar_member *m;
  bool qcow2;
  int64_t vsize;
  char id[UUID_STRLEN + 1], vol_id[UUID_STRLEN + 1];
  char *path;                 /* the new volume file */
};

struct import_args {
  char *path, *name, *cluster_id, *sd_id, *name_lock;
  struct ovf_vm *ovf;
  struct tar_members members;
  struct storage_domain *sd;
  struct import_disk *disks;
  size_t ndisks;
  char vm_id[UUID_STRLEN + 1];
  char *job_id;
  struct user *user;
};

static void import_args_free(struct import_args *a)
{
  if (!a) return;
  for (size_t i = 0; i < a->ndisks; i++) free(a->disks[i].path);
  free(a->disks);
  ovf_vm_free(a->ovf);
  tar_members_free(&a->members);
  storage_domain_free(a->sd);
  free(a->path); free(a->name); free(a->cluster_id); free(a->sd_id); free(a->name_lock);
  free(a->job_id);
  user_free(a->user);
  free(a);
}

static int name_check(const char *name)
{
  size_t n = strlen(name);
  if (n == 0 || n > 64)
    return error(ERR_INVALID, "invalid VM name '%s': use 1 to 64 characters", name);
  for (const char *p = name; *p; p++)
    if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
        *p != '-' && *p != '_' && *p != '.')
      return error(ERR_INVALID, "invalid VM name '%s': use only letters, digits, '-', '_' and '.'", name);
  return 0;
}

static int vm_name_unused(struct store *st, const char *name)
{
  const char *params[] = {name};
  int64_t n = vm_count(st, "name = ?", params, 1);
  if (n < 0) return -1;
  if (n) return error(ERR_CONFLICT, "cannot import VM '%s': a VM with that name already exists; "
                      "choose another name", name);
  return 0;
}

/* reads the OVF member: the first *.ovf of the archive */
static char *read_ovf(int fd, const struct import_args *a)
{
  const struct tar_member *m = NULL;
  for (size_t i = 0; i < a->members.len && !m; i++) {
    size_t l = strlen(a->members.ptr[i].name);
    if (l > 4 && strcasecmp(a->members.ptr[i].name + l - 4, ".ovf") == 0) m = &a->members.ptr[i];
  }
  if (!m) return error(ERR_INVALID, "invalid OVA '%s': it holds no OVF (*.ovf) file", a->path), NULL;
  if (m->size > OVF_MAX_BYTES)
    return error(ERR_INVALID, "invalid OVA '%s': its OVF is larger than 16 MiB", a->path), NULL;
  char *text = xcalloc(1, (size_t)m->size + 1);
  size_t got = 0;
  while (got < (size_t)m->size) {
    ssize_t r = pread(fd, text + got, (size_t)m->size - got, (off_t)(m->offset + (int64_t)got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      free(text);
      return error(ERR_INVALID, "invalid OVA '%s': cannot read its OVF", a->path), NULL;
    }
    got += (size_t)r;
  }
  return text;
}

/* what a disk member holds: qcow2 (by its magic) or raw; checks qemu-img
 * opens it, and refuses images that would read other files */
static int probe_member(int fd, struct import_args *a, struct import_disk *d)
{
  unsigned char magic[4] = {0};
  if (d->m->size >= 4 && pread(fd, magic, 4, (off_t)d->m->offset) != 4)
    return error(ERR_INVALID, "invalid OVA '%s': cannot read disk '%s'", a->path, d->m->name);
  d->qcow2 = memcmp(magic, "QFI\xfb", 4) == 0;
  AUTOFREE char *img = range_image(a->path, d->m->offset, d->m->size, d->qcow2);
  AUTOPTR(json) info = image_info(img, NULL);
  if (!info)
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' is not a readable image: %s", a->path,
                 d->m->name, error_message());
  if (json_object_get(info, "backing-filename"))
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' refers to a backing file; an OVA disk must "
                 "be self-contained", a->path, d->m->name);
  json_t *fs = json_object_get(json_object_get(info, "format-specific"), "data");
  if (json_object_get(fs, "data-file"))
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' uses an external data file", a->path, d->m->name);
  if (d->qcow2 && json_is_true(json_object_get(fs, "corrupt")))
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' is a corrupt qcow2 image", a->path, d->m->name);
  d->vsize = (int64_t)json_integer_value(json_object_get(info, "virtual-size"));
  if (d->vsize <= 0)
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' is empty", a->path, d->m->name);
  return 0;
}

static int import_validate(struct cmd_ctx *c)
{
  struct import_args *a = c->data;
  struct store *st = c->eng->st;
  AUTOFREE char *real = host_path_resolve(c->eng, a->path, "OVA file");
  if (!real) return -1;
  free(a->path);
  a->path = steal_pointer(&real);
  AUTOPTR(cluster) cl = cluster_get(st, a->cluster_id);
  if (!cl) return -1;
  if (!(a->sd = storage_domain_get(st, a->sd_id))) return -1;
  int fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);  /* a FIFO must not block us */
  if (fd < 0)
    return error(ERR_INVALID, "cannot import OVA '%s': %s", a->path, strerror(errno));
  int rc = -1;
  AUTOFREE char *ovf_text = NULL;
  struct stat sb;
  if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
    error(ERR_INVALID, "cannot import OVA '%s': not a regular file", a->path);
    goto out;
  }
  if (tar_index(fd, (int64_t)sb.st_size, a->path, &a->members) < 0) goto out;
  if (!(ovf_text = read_ovf(fd, a))) goto out;
  if (!(a->ovf = ovf_parse(ovf_text, strlen(ovf_text)))) {
    error_prefix("invalid OVA '%s': ", a->path);
    goto out;
  }
  if (!a->name) {
    if (!a->ovf->name) {
      error(ERR_INVALID, "cannot import OVA '%s': its OVF names no VM; give <name>", a->path);
      goto out;
    }
    a->name = xstrdup(a->ovf->name);
  }
  if (name_check(a->name) < 0 || vm_name_unused(st, a->name) < 0) goto out;
  a->disks = xcalloc(a->ovf->ndisks + 1, sizeof *a->disks);
  int64_t need = 0;
  for (size_t i = 0; i < a->ovf->ndisks; i++) {
    struct import_disk *d = &a->disks[a->ndisks++];
    d->od = &a->ovf->disks[i];
    if (!(d->m = tar_find(&a->members, d->od->href))) {
      error(ERR_INVALID, "invalid OVA '%s': it is missing disk '%s' (file '%s' named by its OVF)",
            a->path, d->od->alias ? d->od->alias : d->od->href, d->od->href);
      goto out;
    }
    if (probe_member(fd, a, d) < 0) goto out;
    need += d->m->size + (1 << 20);
  }
  int64_t avail = free_bytes(a->sd->path);
  if (avail < 0) goto out;
  if (avail < need) {
    error(ERR_CONFLICT, "cannot import OVA '%s': not enough space on storage domain '%s': %lld bytes "
          "needed, %lld free", a->path, a->sd->name, (long long)need, (long long)avail);
    goto out;
  }
  rc = 0;
out:
  close(fd);
  return rc;
}

static int import_execute(struct cmd_ctx *c)
{
  struct import_args *a = c->data;
  if (uuid_generate_str(a->vm_id) < 0) return -1;
  for (size_t i = 0; i < a->ndisks; i++) {
    struct import_disk *d = &a->disks[i];
    if (uuid_generate_str(d->id) < 0 || uuid_generate_str(d->vol_id) < 0) return -1;
    d->path = volume_path_for(a->sd, d->id, d->vol_id);
  }
  AUTOFREE char *desc = xasprintf("Importing VM %s from OVA '%s'", a->name, a->path);
  AUTOPTR(json) jrec = json_pack("{s:s, s:s, s:s}", "kind", "import", "path", a->path, "name", a->name);
  AUTOFREE char *rec = jrec ? json_dumps(jrec, JSON_COMPACT) : NULL;
  if (!rec) return error(ERR_INTERNAL, "cannot record the import of OVA '%s'", a->path);
  if (!(a->job_id = ova_job_begin(c->eng, c->user, desc, rec))) return -1;
  c->keep_locks = true;
  return 0;
}

static char *import_describe(struct cmd_ctx *c, bool ok)
{
  struct import_args *a = c->data;
  const char *name = a->name ? a->name : "?";
  return ok ? xasprintf("import of VM %s from OVA '%s' was initiated by %s", name, a->path, c->user->name)
            : xasprintf("importing VM %s from OVA '%s'", name, a->path);
}

static const struct cmd_def import_def = {
  "ImportVmFromOva", 0, import_validate, import_execute, NULL, import_describe,
};

static void remove_file_and_dir(const char *path)
{
  volume_remove(path);
  AUTOFREE char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash) { *slash = 0; rmdir(dir); }
  error_clear();
}

/* every row of the new VM, in one transaction */
/* the OVF's disk-interface ("VirtIO_SCSI" as oVirt writes it, "virtio_scsi"
 * as we do, "IDE" ...) as an enum disk_iface; virtio when unknown */
static int ovf_disk_iface(const struct ovf_disk *od)
{
  char low[32];
  size_t i = 0;
  for (; od->interface[i] && i < sizeof low - 1; i++) low[i] = (char)tolower((unsigned char)od->interface[i]);
  low[i] = 0;
  int v = disk_iface_from_str(low);
  return v < 0 ? IFACE_VIRTIO : v;
}

static int import_commit(struct engine *eng, struct import_args *a)
{
  struct store *st = eng->st;
  const struct ovf_vm *o = a->ovf;
  char snap_id[UUID_STRLEN + 1];
  if (uuid_generate_str(snap_id) < 0) return -1;
  struct vm v = {
    .id = a->vm_id, .name = a->name, .description = o->description,
    .cluster_id = a->cluster_id, .template_id = (char *)"00000000-0000-0000-0000-000000000000",
    .memory = o->memory >= (16 << 20) ? o->memory : (int64_t)1 << 30,
    .sockets = o->sockets > 0 ? o->sockets : 1, .cores = o->cores > 0 ? o->cores : 1,
    .threads = o->threads > 0 ? o->threads : 1, .os_type = o->os_type ? o->os_type : (char *)"other",
    .status = VM_DOWN, .creation_ms = now_ms(),
  };
  struct snapshot active = {
    .id = snap_id, .vm_id = a->vm_id, .description = (char *)"Active VM", .type = SNAPSHOT_ACTIVE,
    .status = SNAPSHOT_OK, .date_ms = v.creation_ms,
  };
  if (store_begin(st) < 0) return -1;
  if (vm_name_unused(st, a->name) < 0 || vm_insert(st, &v) < 0 || snapshot_insert(st, &active) < 0)
    goto rollback;
  for (size_t i = 0; i < a->ndisks; i++) {
    struct import_disk *d = &a->disks[i];
    AUTOFREE char *alias = d->od->alias ? NULL : xasprintf("%s_Disk%zu", a->name, i + 1);
    struct disk nd = {
      .id = d->id, .alias = d->od->alias ? d->od->alias : alias, .description = d->od->description,
      .provisioned_size = d->vsize, .format = DISK_FORMAT_COW, .sparse = true,
      .shareable = false, .storage_domain_id = a->sd->id, .status = DISK_OK,
    };
    struct volume nv = {.id = d->vol_id, .disk_id = d->id, .snapshot_id = snap_id, .format = DISK_FORMAT_COW,
                        .status = DISK_OK, .path = d->path, .active = true};
    struct attachment at = {.vm_id = a->vm_id, .disk_id = d->id, .iface = ovf_disk_iface(d->od),
                            .bootable = d->od->bootable, .active = d->od->active,
                            .read_only = d->od->read_only, .position = (int64_t)i};
    if (disk_insert(st, &nd) < 0 || volume_insert(st, &nv) < 0 || attachment_insert(st, &at) < 0)
      goto rollback;
  }
  return store_commit(st);
rollback:
  store_rollback(st);
  return -1;
}

static void import_job(struct engine *eng, void *arg)
{
  struct import_args *a = arg;
  const char *locks[] = {a->name_lock, NULL};
  bool ok = false;
  size_t made = 0;
  for (; made < a->ndisks; made++) {
    struct import_disk *d = &a->disks[made];
    AUTOFREE char *src = range_image(a->path, d->m->offset, d->m->size, d->qcow2);
    AUTOFREE char *dir = xstrdup(d->path);
    *strrchr(dir, '/') = 0;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
      error(ERR_INTERNAL, "cannot create '%s': %s", dir, strerror(errno));
      goto done;
    }
    const char *argv[] = {"qemu-img", "convert", "-q", "-O", "qcow2", src, d->path, NULL};
    if (spawn_run(argv, NULL, NULL) < 0) {
      if (is_enospc(error_message())) {
        struct err_saved s;
        error_save(&s);
        error(ERR_CONFLICT, "not enough space on storage domain '%s': %s", a->sd->name, s.msg);
        free(s.msg);
      }
      error_prefix("cannot copy disk '%s' of the OVA: ", d->m->name);
      made++;  /* a partial file may exist */
      goto done;
    }
    ova_job_progress(eng, a->job_id, (int64_t)(95 * (made + 1) / (a->ndisks + 1)));
  }
  ok = import_commit(eng, a) == 0;
done:;
  struct err_saved s;
  error_save(&s);
  if (!ok)
    for (size_t i = 0; i < made; i++) remove_file_and_dir(a->disks[i].path);
  if (ok)
    engine_event(eng, SEVERITY_NORMAL, EV_VM_IMPORTED, a->user, a->vm_id,
                 "VM %s was imported from OVA '%s' with %zu disk(s)", a->name, a->path, a->ndisks);
  else
    engine_event(eng, SEVERITY_ERROR, EV_VM_IMPORT_FAILED, a->user, NULL,
                 "failed to import VM %s from OVA '%s': %s; nothing was left behind", a->name, a->path,
                 s.msg ? s.msg : "unknown error");
  free(s.msg);
  ova_job_end(eng, a->job_id, ok);
  engine_unlock(eng, locks);
  import_args_free(a);
}

int cmd_vm_import_ova(struct engine *eng, const struct user *u, const char *path, const char *name,
                      const char *cluster_id, const char *sd_id, char **out_vm_id, char **out_job_id)
{
  struct import_args *a = xcalloc(1, sizeof *a);
  a->path = xstrdup(path);
  a->name = xstrdup(name);
  a->cluster_id = xstrdup(cluster_id);
  a->sd_id = xstrdup(sd_id);
  /* the name is known only after reading the OVF when not given: lock it then */
  struct cmd_ctx c = {.eng = eng, .user = u, .data = a};
  if (name) a->name_lock = xasprintf("vm-name:%s", name);
  c.locks[0] = a->name_lock;
  if (cmd_run(&import_def, &c) < 0) {
    import_args_free(a);
    return -1;
  }
  if (!a->name_lock) {
    a->name_lock = xasprintf("vm-name:%s", a->name);
    const char *locks[] = {a->name_lock, NULL};
    if (locks_acquire(eng, locks, "ImportVmFromOva", u) < 0) {
      ova_job_end(eng, a->job_id, false);
      free(a->name_lock);
      a->name_lock = NULL;
      import_args_free(a);
      return -1;
    }
  }
  a->user = user_dup(u);
  if (out_vm_id) *out_vm_id = xstrdup(a->vm_id);
  if (out_job_id) *out_job_id = xstrdup(a->job_id);
  engine_background(eng, import_job, a);
  return 0;
}

/* ======================================================================== recovery */

/* an export's partial file, from its record: only an absolute path that ends
 * in ".part" is ever removed */
static bool part_path_ok(const char *p)
{
  size_t n = p ? strlen(p) : 0;
  return n > 5 && p[0] == '/' && strcmp(p + n - 5, ".part") == 0;
}

static void recover_export(struct engine *eng, const char *part, const char *vm_id, const char *snap_id)
{
  static const struct user engine_user = {.id = NULL, .name = (char *)"engine"};
  struct store *st = eng->st;
  bool removed = part_path_ok(part) && unlink(part) == 0;
  AUTOFREE char *snap_note = NULL;
  AUTOPTR(snapshot) s = vm_id && snap_id ? snapshot_get(st, snap_id) : NULL;
  error_clear();
  if (s && s->status == SNAPSHOT_OK && strcmp(s->vm_id, vm_id) == 0) {
    if (cmd_snapshot_remove(eng, &engine_user, vm_id, snap_id) == 0)
      snap_note = xstrdup("; its temporary snapshot is being removed");
    else
      snap_note = xasprintf("; its temporary snapshot '%s' could not be removed: %s", s->description,
                            error_message());
    error_clear();
  }
  engine_event(eng, SEVERITY_WARNING, EV_VM_EXPORT_FAILED, NULL, vm_id,
               "an export to OVA was interrupted by an engine restart; %s '%s'%s",
               removed ? "removed the partial file" : "no partial file was left at", part ? part : "?",
               snap_note ? snap_note : "");
}

void ova_recover(struct engine *eng)
{
  struct store *st = eng->st;
  AUTOLIST(job) jobs = job_list(st, "status = 'started'", NULL, 0, NULL, 0);
  if (!jobs) { log_err("%s", error_message()); error_clear(); return; }
  for (size_t i = 0; jobs[i]; i++) {
    AUTOFREE char *key = job_key(jobs[i]->id);
    AUTOFREE char *rec = store_setting_get(st, key);
    if (!rec || !rec[0]) continue;
    /* {"kind":"export","part":P,"vm":V,"snapshot":S} or {"kind":"import","path":P,"name":N};
     * an older engine's newline-joined record is not trusted with a file name */
    AUTOPTR(json) j = json_loads(rec, 0, NULL);
    const char *kind = json_string_value(json_object_get(j, "kind"));
    if (kind && strcmp(kind, "export") == 0) {
      recover_export(eng, json_string_value(json_object_get(j, "part")),
                     json_string_value(json_object_get(j, "vm")),
                     json_string_value(json_object_get(j, "snapshot")));
    } else if (kind && strcmp(kind, "import") == 0) {
      const char *name = json_string_value(json_object_get(j, "name"));
      const char *path = json_string_value(json_object_get(j, "path"));
      engine_event(eng, SEVERITY_WARNING, EV_VM_IMPORT_FAILED, NULL, NULL,
                   "the import of VM %s from OVA '%s' was interrupted by an engine restart; no VM was "
                   "created and its partial volume files are removed", name ? name : "?", path ? path : "?");
    } else {
      engine_event(eng, SEVERITY_WARNING, EV_VM_EXPORT_FAILED, NULL, NULL,
                   "an OVA export or import (job %s) was interrupted by an engine restart; its record "
                   "is from an older engine, so no file was removed: remove any .part file by hand",
                   jobs[i]->id);
    }
    ova_job_end(eng, jobs[i]->id, false);
  }
  error_clear();
}
