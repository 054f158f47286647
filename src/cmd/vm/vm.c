/* vm.c: VM commands: add, update, remove, start, stop, shutdown, and the
 * VM's configuration as OVF. */
#include "cmd/internal.h"
#include "cmd/perm.h"
#include "cmd/nic.h"
#include "cmd/cdrom.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <ctype.h>
#include <string.h>
#include <unistd.h>

struct vm_args {
  struct vm *in;         /* add/update input (borrowed) */
  const char *vm_id;
  bool detach_only;
  char id[UUID_STRLEN + 1];
  struct vm *vm;         /* loaded by validate; owned */
  struct strvec removed_files; /* remove: volume files to delete after commit */
  bool clone;            /* add: copy the template's disks instead of overlays */
  struct template_disks *tdisks; /* add: the disks made from the template */
  char *boot_files[2];   /* add/update: kernel and initrd after realpath() */
  char *host_id;         /* start: the host chosen to run it */
};

static void vm_args_clear(struct vm_args *a)
{
  template_disks_free(a->tdisks, false);
  vm_free(a->vm);
  strvec_free(&a->removed_files);
  free(a->boot_files[0]);
  free(a->boot_files[1]);
  free(a->host_id);
}

/* a pinned host (<placement_policy><hosts>) must exist */
static int vm_placement_check(struct store *st, const struct vm *in)
{
  if (!in->placement_host_id) return 0;
  AUTOPTR(host) h = host_get(st, in->placement_host_id);
  return h ? 0 : error_prefix("invalid 'placement_policy.hosts': ");
}

/* the kernel and initrd of IN must resolve under the allowed host roots
 * (hostpath.c); IN then points at the resolved paths, which A owns */
static int vm_boot_files_resolve(struct engine *eng, struct vm_args *a, struct vm *in)
{
  char **files[] = {&in->kernel, &in->initrd};
  static const char *const what[] = {"kernel", "initrd"};
  for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
    if (!*files[i]) continue;
    if (!(a->boot_files[i] = host_path_resolve(eng, *files[i], what[i]))) return -1;
    *files[i] = a->boot_files[i];
  }
  return 0;
}

static int vm_name_check(const char *name)
{
  size_t n = strlen(name);
  if (n == 0 || n > 64)
    return error(ERR_INVALID, "invalid VM name '%s': use 1 to 64 characters", name);
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
      return error(ERR_INVALID,
                   "invalid VM name '%s': use only letters, digits, '-', '_' and '.'", name);
  return 0;
}

static int vm_name_free(struct store *st, const char *name, const char *except_id)
{
  int64_t n = vm_count_by_name_other(st, name, except_id ? except_id : "");
  if (n < 0) return -1;
  if (n > 0)
    return error(ERR_CONFLICT, "cannot use VM name '%s': a VM with that name already exists; "
                 "choose another name", name);
  return 0;
}

static int vm_hw_check(const struct vm *v)
{
  if (v->memory >= 0 && (v->memory < 16 << 20 || v->memory > ((int64_t)4 << 40)))
    return error(ERR_INVALID, "invalid memory %lld: give bytes between 16 MiB and 4 TiB",
                 (long long)v->memory);
  if ((v->sockets >= 0 && (v->sockets < 1 || v->sockets > 16)) ||
      (v->cores >= 0 && (v->cores < 1 || v->cores > 64)) ||
      (v->threads >= 0 && (v->threads < 1 || v->threads > 4)))
    return error(ERR_INVALID, "invalid CPU topology: sockets 1-16, cores 1-64, threads 1-4");
  return v->boot_devices ? boot_devices_check(v->boot_devices) : 0;
}

/* ---- add ---- */

static int vm_add_validate(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  struct store *st = c->eng->st;
  if (vm_name_check(a->in->name) < 0 || vm_hw_check(a->in) < 0 ||
      vm_boot_files_resolve(c->eng, a, a->in) < 0)
    return -1;
  AUTOPTR(cluster) cl = cluster_get(st, a->in->cluster_id);
  if (!cl) return -1;
  AUTOPTR(template) t = template_get(st, a->in->template_id);
  if (!t) return -1;
  if (vm_placement_check(st, a->in) < 0) return -1;
  return vm_name_free(st, a->in->name, NULL);
}

static int vm_add_execute(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  struct store *st = c->eng->st;
  if (uuid_generate_str(a->id) < 0) return -1;
  struct vm v = *a->in;
  v.id = a->id;
  v.status = VM_DOWN;
  v.host_id = NULL;
  v.creation_ms = now_ms();
  if (v.memory < 0) v.memory = (int64_t)1 << 30;
  if (v.sockets < 0) v.sockets = 1;
  if (v.cores < 0) v.cores = 1;
  if (v.threads < 0) v.threads = 1;
  if (!v.os_type) v.os_type = (char *)"other";
  char snap_id[UUID_STRLEN + 1];
  if (uuid_generate_str(snap_id) < 0) return -1;
  struct snapshot active = {
    .id = snap_id, .vm_id = a->id, .description = (char *)"Active VM",
    .type = SNAPSHOT_ACTIVE, .status = SNAPSHOT_OK, .date_ms = v.creation_ms,
  };
  if (template_disks_prepare(c->eng, v.template_id, a->clone, &a->tdisks) < 0) return -1;
  if (store_begin(st) < 0) return -1;
  if (vm_name_free(st, v.name, NULL) < 0 || vm_insert(st, &v) < 0 ||
      snapshot_insert(st, &active) < 0 || template_disks_insert(st, a->tdisks, a->id, snap_id) < 0) {
    store_rollback(st);
    return -1;
  }
  c->vm_id = a->id;
  return store_commit(st);
}

static char *vm_add_describe(struct cmd_ctx *c, bool ok)
{
  struct vm_args *a = c->data;
  return ok ? xasprintf("VM %s was created by %s", a->in->name, c->user->name)
            : xasprintf("adding VM %s", a->in->name);
}

/* the template's disks made for the VM go when it was not created */
static void vm_add_compensate(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  template_disks_free(a->tdisks, true);
  a->tdisks = NULL;
}

static const struct cmd_def vm_add_def = {
  "AddVm", EV_VM_ADDED, vm_add_validate, vm_add_execute, vm_add_compensate, vm_add_describe,
};

int cmd_vm_add(struct engine *eng, const struct user *u, const struct vm *in, char **out_id)
{
  return cmd_vm_add_from_template(eng, u, in, false, out_id);
}

int cmd_vm_add_from_template(struct engine *eng, const struct user *u, const struct vm *in, bool clone,
                             char **out_id)
{
  struct vm_args a = {.in = (struct vm *)in, .clone = clone};
  AUTOFREE char *lock = xasprintf("vm-name:%s", in->name ? in->name : "");
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {lock}, .data = &a,
                      .needs = {{PERMIT_CREATE_VM, OBJ_CLUSTER, in->cluster_id}}};
  int rc = cmd_run(&vm_add_def, &c);
  if (rc == 0 && out_id) *out_id = xstrdup(a.id);
  vm_args_clear(&a);
  return rc;
}

/* ---- update ---- */

static int vm_load(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  a->vm = vm_get(c->eng->st, a->vm_id);
  return a->vm ? 0 : -1;
}

static int vm_update_validate(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  if (vm_load(c) < 0) return -1;
  if (a->in->name && (vm_name_check(a->in->name) < 0 ||
                      vm_name_free(c->eng->st, a->in->name, a->vm_id) < 0))
    return -1;
  if (a->in->name && strcmp(a->in->name, a->vm->name) != 0 && a->vm->status != VM_DOWN)
    return error(ERR_CONFLICT, "cannot rename VM '%s' while it is %s: stop it first",
                 a->vm->name, vm_status_to_str(a->vm->status));
  if (a->in->cluster_id) {
    AUTOPTR(cluster) cl = cluster_get(c->eng->st, a->in->cluster_id);
    if (!cl) return -1;
  }
  if (vm_boot_files_resolve(c->eng, a, a->in) < 0) return -1;
  if (vm_placement_check(c->eng->st, a->in) < 0) return -1;
  return vm_hw_check(a->in);
}

static void set_str(char **dst, const char *src)
{
  if (!src) return;
  free(*dst);
  *dst = xstrdup(src);
}

static int vm_update_execute(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  struct vm *v = a->vm, *in = a->in;
  set_str(&v->name, in->name);
  set_str(&v->description, in->description);
  set_str(&v->cluster_id, in->cluster_id);
  set_str(&v->os_type, in->os_type);
  set_str(&v->kernel, in->kernel);
  set_str(&v->initrd, in->initrd);
  set_str(&v->cmdline, in->cmdline);
  set_str(&v->placement_host_id, in->placement_host_id);
  set_str(&v->boot_devices, in->boot_devices);
  if (in->memory >= 0) v->memory = in->memory;
  if (in->sockets >= 0) v->sockets = in->sockets;
  if (in->cores >= 0) v->cores = in->cores;
  if (in->threads >= 0) v->threads = in->threads;
  return vm_update(c->eng->st, v);
}

static char *vm_describe_named(struct cmd_ctx *c, bool ok, const char *did, const char *doing)
{
  struct vm_args *a = c->data;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("VM %s was %s by %s", name, did, c->user->name)
            : xasprintf("%s VM %s", doing, name);
}

static char *vm_update_describe(struct cmd_ctx *c, bool ok)
{
  return vm_describe_named(c, ok, "updated", "updating");
}

static const struct cmd_def vm_update_def = {
  "UpdateVm", EV_VM_UPDATED, vm_update_validate, vm_update_execute, NULL, vm_update_describe,
};

int cmd_vm_update(struct engine *eng, const struct user *u, const struct vm *in)
{
  struct vm_args a = {.in = (struct vm *)in, .vm_id = in->id};
  AUTOFREE char *lock = xasprintf("vm-name:%s", in->name ? in->name : "");
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = in->id, .locks = {in->id, in->name ? lock : NULL}, .data = &a};
  int rc = cmd_run(&vm_update_def, &c);
  vm_args_clear(&a);
  return rc;
}

/* ---- remove ---- */

static int vm_remove_validate(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  if (vm_load(c) < 0) return -1;
  if (a->vm->status != VM_DOWN)
    return error(ERR_CONFLICT, "cannot remove VM '%s': it is %s; stop it first",
                 a->vm->name, vm_status_to_str(a->vm->status));
  if (transfer_check_vm(c->eng->st, a->vm_id, false, "remove VM", a->vm->name) < 0) return -1;
  if (backup_check_vm(c->eng->st, a->vm_id, "remove VM", a->vm->name) < 0) return -1;
  /* its disks' snapshots attached to other VMs (Backup API) block removal */
  AUTOLIST(attachment) used = attachment_list_snapshots_of_disks_elsewhere(c->eng->st, a->vm_id);
  if (!used) return -1;
  if (used[0]) {
    AUTOPTR(vm) agent = vm_get(c->eng->st, used[0]->vm_id);
    return error(ERR_CONFLICT,
                 "cannot remove VM '%s': the following VM's disks snapshots are attached to other "
                 "VMs: disk '%s' snapshot '%s' attached to VM '%s'; please detach them from those "
                 "VMs and try again",
                 a->vm->name, used[0]->disk_id, used[0]->snapshot_id,
                 agent ? agent->name : used[0]->vm_id);
  }
  return 0;
}

static int vm_remove_execute(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  struct store *st = c->eng->st;
  AUTOLIST(attachment) atts = NULL;
  AUTOLIST(snapshot) snaps = NULL;
  if (store_begin(st) < 0) return -1;
  atts = attachment_list_by_vm(st, a->vm_id);
  if (!atts) goto rollback;
  for (size_t i = 0; atts[i]; i++) {
    struct attachment *at = atts[i];
    if (attachment_delete(st, at->vm_id, at->disk_id) < 0) goto rollback;
    if (a->detach_only || at->snapshot_id) continue;
    AUTOPTR(disk) d = disk_get(st, at->disk_id);
    if (!d) goto rollback;
    int64_t others = attachment_count_by_disk(st, d->id);
    if (others < 0) goto rollback;
    if (d->shareable && others > 0) continue;
    if (disk_rows_delete(st, d->id, &a->removed_files) < 0) goto rollback;
  }
  snaps = snapshot_list_by_vm(st, a->vm_id);
  if (!snaps) goto rollback;
  for (size_t i = 0; snaps[i]; i++)
    if (snapshot_delete(st, snaps[i]->id) < 0) goto rollback;
  {
    AUTOLIST(nic) nics = nic_list_by_vm(st, a->vm_id); /* their MACs go back to the pool */
    if (!nics) goto rollback;
    for (size_t i = 0; nics[i]; i++)
      if (nic_delete(st, nics[i]->id) < 0) goto rollback;
  }
  if (vm_delete(st, a->vm_id) < 0) goto rollback;
  if (store_commit(st) < 0) return -1;
  {
    AUTOFREE char *console = xasprintf("%s/console/%s.log", c->eng->state_dir, a->vm_id);
    unlink(console);
  }
  /* files go only once the store no longer names them */
  volume_files_remove(c->eng, c->user, &a->removed_files);
  return 0;
rollback:
  store_rollback(st);
  return -1;
}

static char *vm_remove_describe(struct cmd_ctx *c, bool ok)
{
  return vm_describe_named(c, ok, "removed", "removing");
}

static const struct cmd_def vm_remove_def = {
  "RemoveVm", EV_VM_REMOVED, vm_remove_validate, vm_remove_execute, NULL, vm_remove_describe,
};

int cmd_vm_remove(struct engine *eng, const struct user *u, const char *vm_id, bool detach_only)
{
  struct vm_args a = {.vm_id = vm_id, .detach_only = detach_only};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id}, .data = &a};
  int rc = cmd_run(&vm_remove_def, &c);
  vm_args_clear(&a);
  return rc;
}

/* ---- start ---- */

int vm_start_disks(struct engine *eng, const char *vm_id, struct hyper_disk **out, size_t *n,
                   struct strvec *paths)
{
  AUTOLIST(attachment) atts = attachment_list_active_of_vm(eng->st, vm_id);
  if (!atts) return -1;
  size_t count = 0;
  while (atts[count]) count++;
  struct hyper_disk *disks = xcalloc(count, sizeof *disks);
  for (size_t i = 0; i < count; i++) {
    struct attachment *at = atts[i];
    AUTOPTR(disk) d = disk_get(eng->st, at->disk_id);
    if (!d) { free(disks); return -1; }
    char *path = NULL;
    int format = DISK_FORMAT_COW;
    if (at->snapshot_id) {
      /* a disk snapshot runs on a fresh transient overlay, recorded at once
       * so that a failed start or a crash never leaves it unowned */
      if (transient_overlay_create(eng, at, d->provisioned_size, &path) < 0) { free(disks); return -1; }
      free(at->overlay_path);
      at->overlay_path = xstrdup(path);
      if (attachment_update(eng->st, at) < 0) {
        transient_overlay_remove(eng, vm_id, path);
        free(path);
        free(disks);
        return -1;
      }
    } else {
      AUTOPTR(volume) vol = disk_active_volume(eng->st, at->disk_id);
      if (!vol) { free(disks); return -1; }
      path = xstrdup(vol->path);
      format = vol->format;
    }
    vec_push(paths, xstrdup(at->disk_id));
    vec_push(paths, path);
    disks[i] = (struct hyper_disk){
      .disk_id = paths->ptr[paths->len - 2], .path = paths->ptr[paths->len - 1],
      .format = format, .iface = at->iface, .read_only = at->read_only,
      .bootable = at->bootable, .shareable = d->shareable && !at->snapshot_id,
    };
  }
  *out = disks;
  *n = count;
  return 0;
}

static int vm_start_validate(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  if (vm_load(c) < 0) return -1;
  if (a->vm->status != VM_DOWN)
    return error(ERR_CONFLICT, "cannot start VM '%s': it is already %s", a->vm->name,
                 vm_status_to_str(a->vm->status));
  AUTOLIST(disk) bad = disk_list_illegal_active_of_vm(c->eng->st, a->vm_id);
  if (!bad) return -1;
  if (bad[0])
    return error(ERR_CONFLICT, "cannot start VM '%s': disk '%s' is illegal (an interrupted snapshot "
                 "merge left it); see the events, and check the disk before using it", a->vm->name,
                 bad[0]->alias);
  /* the roots may have changed since the VM was configured */
  const char *boot[] = {a->vm->kernel, a->vm->initrd};
  for (size_t i = 0; i < ARRAY_SIZE(boot); i++) {
    AUTOFREE char *real = boot[i] ? host_path_resolve(c->eng, boot[i], i ? "initrd" : "kernel") : NULL;
    if (boot[i] && !real) return error_prefix("cannot start VM '%s': ", a->vm->name);
  }
  if (transfer_check_vm(c->eng->st, a->vm_id, true, "start VM", a->vm->name) < 0) return -1;
  /* the host it names, or the one of its cluster with the most free memory */
  if (a->vm->placement_host_id) {
    AUTOPTR(host) h = host_get(c->eng->st, a->vm->placement_host_id);
    if (!h) return error_prefix("cannot start VM '%s': ", a->vm->name);
    if (h->status != HOST_UP)
      return error(ERR_CONFLICT, "cannot start VM '%s': host '%s' is %s; %s", a->vm->name, h->name,
                   host_status_to_str(h->status),
                   h->status == HOST_MAINTENANCE ? "activate it first" : "it does not answer");
    a->host_id = xstrdup(h->id);
    return 0;
  }
  a->host_id = host_pick(c->eng, a->vm->cluster_id, NULL);
  if (!a->host_id) return error_prefix("cannot start VM '%s': ", a->vm->name);
  return 0;
}

static int vm_start_execute(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  struct engine *eng = c->eng;
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, a->host_id, &ops);
  if (!h) return -1;
  AUTOSTRVEC struct strvec paths = VEC_INIT;
  AUTOFREE struct hyper_disk *disks = NULL;
  size_t n = 0, nn = 0;
  struct hyper_nic *nics = NULL;
  AUTOFREE char *console = NULL, *cdrom = NULL;
  AUTOPTR(vm) cur = NULL;
  AUTOLIST(attachment) atts = NULL;
  struct store *st = eng->st;
  /* powering_up before libvirt starts it: a guest that dies at once then
   * has its stop event recorded (the VM goes down, its overlays go), and the
   * end of this command sees that instead of marking a dead guest up */
  if (vm_start_nics(eng, a->vm_id, &nics, &nn) < 0) return error_prefix("cannot start VM '%s': ", a->vm->name);
  if (vm_set_status(eng->st, a->vm_id, VM_POWERING_UP, a->host_id) < 0) {
    vm_nics_free(nics, nn);
    return -1;
  }
  if (vm_start_disks(eng, a->vm_id, &disks, &n, &paths) < 0) {
    vm_nics_free(nics, nn);
    goto down;
  }
  console = xasprintf("%s/console/%s.log", eng->state_dir, a->vm_id);
  cdrom = a->vm->cdrom_disk_id ? cdrom_iso_path(eng, a->vm->cdrom_disk_id) : NULL;
  if (a->vm->cdrom_disk_id && !cdrom) {
    vm_nics_free(nics, nn);
    error_prefix("cannot start VM '%s': ", a->vm->name);
    goto down;
  }
  struct hyper_vm_spec spec = {.vm = a->vm, .disks = disks, .ndisks = n, .console_log = console,
                               .nics = nics, .nnics = nn, .cdrom_path = cdrom};
  int started = ops->domain_start(h, &spec);
  vm_nics_free(nics, nn);
  if (started < 0) {
    error_prefix("cannot start VM '%s': ", a->vm->name);
    goto down;
  }
  if (store_begin(st) < 0) goto undo;
  cur = vm_get(st, a->vm_id);
  if (!cur) goto rollback;
  if (cur->status == VM_DOWN) {
    /* its stop event came first: the guest died at once, and that was
     * recorded (VM down, overlays removed, an event). The start was done. */
    store_rollback(st);
    error_clear();
    return 0;
  }
  if (cur->status == VM_POWERING_UP) cur->status = VM_UP;
  if (vm_set_status(st, a->vm_id, cur->status, a->host_id) < 0) goto rollback;
  atts = attachment_list_active_of_vm(st, a->vm_id);
  if (!atts) goto rollback;
  for (size_t i = 0; atts[i]; i++) {
    atts[i]->plugged = true;
    if (attachment_update(st, atts[i]) < 0) goto rollback;
  }
  if (store_commit(st) < 0) goto undo;
  return 0;
rollback:
  store_rollback(st);
undo:
  {
    struct err_saved s;
    error_save(&s);
    ops->domain_destroy(h, a->vm_id);
    error_restore(&s);
  }
down:
  {
    struct err_saved s;
    error_save(&s);
    engine_vm_went_down(eng, a->vm_id); /* overlays made so far go */
    if (vm_set_status(eng->st, a->vm_id, VM_DOWN, NULL) < 0) log_err("%s", error_message());
    error_restore(&s);
  }
  return -1;
}

static char *vm_start_describe(struct cmd_ctx *c, bool ok)
{
  struct vm_args *a = c->data;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  AUTOPTR(host) h = ok && a->host_id ? host_get(c->eng->st, a->host_id) : NULL;
  error_clear();
  return ok ? xasprintf("VM %s started by %s (Host: %s)", name, c->user->name, h ? h->name : "?")
            : xasprintf("starting VM %s", name);
}

static const struct cmd_def vm_start_def = {
  "RunVm", EV_VM_STARTED, vm_start_validate, vm_start_execute, NULL, vm_start_describe,
};

/* ---- stop / shutdown ---- */

static int vm_running_validate(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  if (vm_load(c) < 0) return -1;
  if (a->vm->status == VM_DOWN)
    return error(ERR_CONFLICT, "cannot stop VM '%s': it is not running", a->vm->name);
  return 0;
}

static int vm_stop_execute(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(c->eng, a->vm->host_id, &ops);
  if (!h) return -1;
  if (ops->domain_destroy(h, a->vm_id) < 0) return error_prefix("cannot stop VM '%s': ", a->vm->name);
  /* the lifecycle event usually got here first; this makes it certain */
  AUTOPTR(vm) cur = vm_get(c->eng->st, a->vm_id);
  if (!cur) return -1;
  if (cur->status != VM_DOWN) {
    cur->status = VM_POWERING_DOWN; /* so the handler below records no "unexpected" event */
    if (vm_update(c->eng->st, cur) < 0) return -1;
    engine_on_lifecycle(c->eng, a->vm_id, VM_DOWN, "stopped");
  } else {
    engine_vm_went_down(c->eng, a->vm_id);
  }
  return 0;
}

static char *vm_stop_describe(struct cmd_ctx *c, bool ok)
{
  return vm_describe_named(c, ok, "powered off", "stopping");
}

static const struct cmd_def vm_stop_def = {
  "StopVm", EV_VM_STOPPED, vm_running_validate, vm_stop_execute, NULL, vm_stop_describe,
};

static int vm_shutdown_execute(struct cmd_ctx *c)
{
  struct vm_args *a = c->data;
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(c->eng, a->vm->host_id, &ops);
  if (!h) return -1;
  if (ops->domain_shutdown(h, a->vm_id) < 0)
    return error_prefix("cannot shut down VM '%s': ", a->vm->name);
  AUTOPTR(vm) cur = vm_get(c->eng->st, a->vm_id);
  if (!cur) return -1;
  if (cur->status == VM_UP || cur->status == VM_PAUSED) {
    cur->status = VM_POWERING_DOWN;
    if (vm_update(c->eng->st, cur) < 0) return -1;
  }
  return 0;
}

static char *vm_shutdown_describe(struct cmd_ctx *c, bool ok)
{
  return vm_describe_named(c, ok, "asked to shut down", "shutting down");
}

static const struct cmd_def vm_shutdown_def = {
  "ShutdownVm", EV_VM_SHUTDOWN, vm_running_validate, vm_shutdown_execute, NULL, vm_shutdown_describe,
};

static int vm_simple(const struct cmd_def *def, struct engine *eng, const struct user *u,
                     const char *vm_id)
{
  struct vm_args a = {.vm_id = vm_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id}, .data = &a};
  int rc = cmd_run(def, &c);
  vm_args_clear(&a);
  return rc;
}

int cmd_vm_start(struct engine *eng, const struct user *u, const char *vm_id)
{
  return vm_simple(&vm_start_def, eng, u, vm_id);
}

int cmd_vm_stop(struct engine *eng, const struct user *u, const char *vm_id)
{
  return vm_simple(&vm_stop_def, eng, u, vm_id);
}

int cmd_vm_shutdown(struct engine *eng, const struct user *u, const char *vm_id)
{
  return vm_simple(&vm_shutdown_def, eng, u, vm_id);
}

/* ---- OVF ---- */

char *vm_ovf(struct engine *eng, const struct vm *vm)
{
  struct buf b = BUF_INIT;
  AUTOLIST(attachment) atts = attachment_list_own_of_vm(eng->st, vm->id);
  buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<ovf:Envelope xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1/\" "
               "xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\" "
               "xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData\" "
               "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ovf:version=\"4.4.0.0\">\n");
  buf_puts(&b, "  <References>\n");
  for (size_t i = 0; atts && atts[i]; i++) {
    AUTOPTR(volume) v = disk_active_volume(eng->st, atts[i]->disk_id);
    if (!v) { error_clear(); continue; }
    buf_printf(&b, "    <File ovf:href=\"%s/%s\" ovf:id=\"%s\"/>\n", atts[i]->disk_id, v->id, v->id);
  }
  buf_puts(&b, "  </References>\n  <Section xsi:type=\"ovf:DiskSection_Type\">\n    <Info>List of Virtual Disks</Info>\n");
  for (size_t i = 0; atts && atts[i]; i++) {
    AUTOPTR(disk) d = disk_get(eng->st, atts[i]->disk_id);
    AUTOPTR(volume) v = d ? disk_active_volume(eng->st, d->id) : NULL;
    if (!d || !v) { error_clear(); continue; }
    buf_printf(&b, "    <Disk ovf:diskId=\"%s\" ovf:fileRef=\"%s/%s\" ovf:size=\"%lld\" "
                   "ovf:format=\"%s\" ovf:volume-format=\"%s\" ovf:disk-interface=\"%s\" "
                   "ovf:boot=\"%s\" ovf:shareable=\"%s\" ovf:disk-alias=\"",
               v->id, d->id, v->id, (long long)(d->provisioned_size >> 30),
               "http://www.gnu.org/software/qemu/", d->format == DISK_FORMAT_COW ? "COW" : "RAW",
               disk_iface_to_str(atts[i]->iface), atts[i]->bootable ? "true" : "false",
               d->shareable ? "true" : "false");
    buf_put_xml_escaped(&b, d->alias ? d->alias : "");
    buf_printf(&b, "\" ovf:provisioned-size=\"%lld\"/>\n", (long long)d->provisioned_size);
  }
  buf_puts(&b, "  </Section>\n  <Content ovf:id=\"out\" xsi:type=\"ovf:VirtualSystem_Type\">\n    <Name>");
  buf_put_xml_escaped(&b, vm->name);
  buf_puts(&b, "</Name>\n    <Description>");
  buf_put_xml_escaped(&b, vm->description ? vm->description : "");
  buf_printf(&b, "</Description>\n    <TemplateId>%s</TemplateId>\n    <ClusterId>%s</ClusterId>\n",
             vm->template_id ? vm->template_id : "", vm->cluster_id ? vm->cluster_id : "");
  char created[32];
  time_format_iso(vm->creation_ms, created);
  buf_printf(&b, "    <CreationDate>%s</CreationDate>\n", created);
  buf_puts(&b, "    <Section xsi:type=\"ovf:OperatingSystemSection_Type\" ovf:id=\"");
  buf_puts(&b, vm->id);
  buf_puts(&b, "\" ovf:required=\"false\">\n      <Info>Guest Operating System</Info>\n      <Description>");
  buf_put_xml_escaped(&b, vm->os_type ? vm->os_type : "other");
  buf_puts(&b, "</Description>\n    </Section>\n    <Section xsi:type=\"ovf:VirtualHardwareSection_Type\">\n");
  buf_printf(&b, "      <Info>%lld CPU, %lld Memory</Info>\n",
             (long long)(vm->sockets * vm->cores * vm->threads), (long long)(vm->memory >> 20));
  buf_printf(&b, "      <Item>\n        <rasd:Caption>%lld virtual cpu</rasd:Caption>\n"
                 "        <rasd:ResourceType>3</rasd:ResourceType>\n"
                 "        <rasd:num_of_sockets>%lld</rasd:num_of_sockets>\n"
                 "        <rasd:cpu_per_socket>%lld</rasd:cpu_per_socket>\n"
                 "        <rasd:threads_per_cpu>%lld</rasd:threads_per_cpu>\n      </Item>\n",
             (long long)(vm->sockets * vm->cores * vm->threads), (long long)vm->sockets,
             (long long)vm->cores, (long long)vm->threads);
  buf_printf(&b, "      <Item>\n        <rasd:Caption>%lld MB of memory</rasd:Caption>\n"
                 "        <rasd:ResourceType>4</rasd:ResourceType>\n"
                 "        <rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits>\n"
                 "        <rasd:VirtualQuantity>%lld</rasd:VirtualQuantity>\n      </Item>\n",
             (long long)(vm->memory >> 20), (long long)(vm->memory >> 20));
  for (size_t i = 0; atts && atts[i]; i++) {
    AUTOPTR(volume) v = disk_active_volume(eng->st, atts[i]->disk_id);
    if (!v) { error_clear(); continue; }
    buf_printf(&b, "      <Item>\n        <rasd:ResourceType>17</rasd:ResourceType>\n"
                   "        <rasd:HostResource>%s/%s</rasd:HostResource>\n"
                   "        <rasd:InstanceId>%s</rasd:InstanceId>\n"
                   "        <rasd:StorageId>%s</rasd:StorageId>\n"
                   "        <BootOrder>%d</BootOrder>\n        <IsPlugged>%s</IsPlugged>\n"
                   "        <IsReadOnly>%s</IsReadOnly>\n      </Item>\n",
               atts[i]->disk_id, v->id, v->id, atts[i]->disk_id, atts[i]->bootable ? 1 : 0,
               atts[i]->active ? "true" : "false", atts[i]->read_only ? "true" : "false");
  }
  buf_puts(&b, "    </Section>\n  </Content>\n</ovf:Envelope>\n");
  return buf_detach(&b);
}
