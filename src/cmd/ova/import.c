/* import.c: "external VM import" of an OVA (provider ova), as oVirt has it.
 *
 * The OVA is indexed and its OVF parsed at once (a damaged one is a
 * 400), then a job copies each disk image into a new volume file and only
 * then, in one transaction, creates the VM, its disks, volumes and
 * attachments. A crash before that leaves volume files no row names, which
 * engine_sweep_orphans() removes at the next start.
 *
 * The archive format is ova.c; the OVF reader is repr/ovf.c. */
#include "cmd/ova_job.h"
#include "cmd/ova.h"
#include "repr/ovf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
  int64_t n = vm_count_by_name(st, name);
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
  AUTOFREE char *img = volume_range_image(a->path, d->m->offset, d->m->size, d->qcow2);
  struct volume_info info;
  if (volume_info(img, -1, &info) < 0)
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' is not a readable image: %s", a->path,
                 d->m->name, error_message());
  if (info.has_backing)
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' refers to a backing file; an OVA disk must "
                 "be self-contained", a->path, d->m->name);
  if (info.has_data_file)
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' uses an external data file", a->path, d->m->name);
  if (d->qcow2 && info.corrupt)
    return error(ERR_INVALID, "invalid OVA '%s': disk '%s' is a corrupt qcow2 image", a->path, d->m->name);
  d->vsize = info.virtual_size;
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
    AUTOFREE char *src = volume_range_image(a->path, d->m->offset, d->m->size, d->qcow2);
    AUTOFREE char *dir = xstrdup(d->path);
    *strrchr(dir, '/') = 0;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
      error(ERR_INTERNAL, "cannot create '%s': %s", dir, strerror(errno));
      goto done;
    }
    if (volume_copy_image(src, -1, d->path, DISK_FORMAT_COW, false) < 0) {
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
    engine_job_progress(eng, a->job_id, (int64_t)(95 * (made + 1) / (a->ndisks + 1)));
  }
  ok = import_commit(eng, a) == 0;
done:;
  struct err_saved s;
  error_save(&s);
  if (!ok)
    for (size_t i = 0; i < made; i++) remove_file_and_dir(a->disks[i].path);
  if (ok)
    engine_event(eng, SEVERITY_NORMAL, EV_VM_IMPORTED, a->user, a->vm_id,
                 "VM %s was imported from OVA '%s' with %zu disk(s); it has no checkpoints (an OVA "
                 "carries no bitmaps): the first backup of its disks is full", a->name, a->path, a->ndisks);
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
