/* migrate.c: live migration of a running VM to another host of its cluster,
 * and the evacuation of a host before maintenance.
 *
 * The disks stay where they are: a storage domain is a path every host of
 * the data center sees (shared storage, as NFS gives), so only memory and
 * device state move, through libvirt (hyper_ops->domain_migrate).
 *
 * The seed's rules come first, as in oVirt: a VM with a disk snapshot
 * plugged cannot migrate (its transient overlay lives on its host's local
 * storage), and so its host cannot enter maintenance.
 *
 * Crash safety: the store records the new host only after libvirt reports
 * the domain running there. An engine that dies in between finds the VM on
 * the destination at start: the reconcile adopts a VM that runs on another
 * host than recorded (engine.c, reconcile_host), so nothing is lost and no
 * domain is left unknown. */
#include "cmd/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include <string.h>

struct migrate_args {
  const char *vm_id;
  const char *want_host;    /* the host asked for, or NULL: placement picks */
  struct vm *vm;            /* loaded by validate */
  char *dst;                /* the destination host's id */
  struct host *src_host, *dst_host;
  int64_t took_ms;
};

static int vm_check_no_pinned(struct store *st, const struct vm *vm)
{
  AUTOLIST(attachment) pinned = attachment_list_plugged_snapshots_of_vm(st, vm->id);
  if (!pinned) return -1;
  if (pinned[0])
    return error(ERR_CONFLICT, "cannot migrate VM '%s': snapshot '%s' of disk '%s' is plugged into "
                 "it; detach it first", vm->name, pinned[0]->snapshot_id, pinned[0]->disk_id);
  return 0;
}

static int migrate_validate(struct cmd_ctx *c)
{
  struct migrate_args *a = c->data;
  struct store *st = c->eng->st;
  a->vm = vm_get(st, a->vm_id);
  if (!a->vm) return -1;
  /* the snapshot rule comes before any other, as in oVirt */
  if (vm_check_no_pinned(st, a->vm) < 0) return -1;
  if (backup_check_vm(st, a->vm->id, "migrate VM", a->vm->name) < 0) return -1;
  if (a->vm->status == VM_DOWN)
    return error(ERR_CONFLICT, "cannot migrate VM '%s': it is not running", a->vm->name);
  if (a->vm->status != VM_UP && a->vm->status != VM_PAUSED)
    return error(ERR_CONFLICT, "cannot migrate VM '%s': it is %s", a->vm->name, vm_status_to_str(a->vm->status));
  if (!a->vm->host_id) return error(ERR_INTERNAL, "VM '%s' runs on no recorded host", a->vm->name);
  a->src_host = host_get(st, a->vm->host_id);
  if (!a->src_host) return -1;
  if (a->want_host) {
    a->dst_host = host_get(st, a->want_host);
    if (!a->dst_host) return error_prefix("cannot migrate VM '%s': ", a->vm->name);
    if (strcmp(a->dst_host->id, a->vm->host_id) == 0)
      return error(ERR_CONFLICT, "cannot migrate VM '%s': it already runs on host '%s'", a->vm->name,
                   a->dst_host->name);
    if (!a->dst_host->cluster_id || strcmp(a->dst_host->cluster_id, a->vm->cluster_id) != 0)
      return error(ERR_CONFLICT, "cannot migrate VM '%s': host '%s' is not in the VM's cluster",
                   a->vm->name, a->dst_host->name);
    if (a->dst_host->status != HOST_UP)
      return error(ERR_CONFLICT, "cannot migrate VM '%s': host '%s' is %s", a->vm->name, a->dst_host->name,
                   host_status_to_str(a->dst_host->status));
    a->dst = xstrdup(a->dst_host->id);
    return 0;
  }
  a->dst = host_pick(c->eng, a->vm->cluster_id, a->vm->host_id);
  if (!a->dst)
    return error(ERR_CONFLICT, "cannot migrate VM '%s': there is no other host in cluster to migrate to",
                 a->vm->name);
  a->dst_host = host_get(st, a->dst);
  return a->dst_host ? 0 : -1;
}

static int migrate_execute(struct cmd_ctx *c)
{
  struct migrate_args *a = c->data;
  struct engine *eng = c->eng;
  const struct hyper_ops *ops;
  struct hyper *src = engine_hyper(eng, a->vm->host_id, &ops);
  if (!src) return -1;
  struct hyper *dst = engine_hyper(eng, a->dst, NULL);
  if (!dst) return -1;
  if (!ops->domain_migrate) return error(ERR_UNSUPPORTED, "the hypervisor cannot migrate VMs");
  int64_t t0 = mono_ms();
  if (ops->domain_migrate(src, dst, a->vm->id) < 0) return error_prefix("cannot migrate VM '%s': ", a->vm->name);
  a->took_ms = mono_ms() - t0;
  /* what the destination runs now (the migration's own events were left alone) */
  int status = VM_UP;
  if (ops->domain_state(dst, a->vm->id, &status) < 0 || status == VM_DOWN) {
    log_warn("VM '%s' migrated, but host '%s' cannot say its state: %s", a->vm->name, a->dst_host->name,
             error_message());
    error_clear();
    status = VM_UP;
  }
  return vm_set_status(eng->st, a->vm->id, status, a->dst);
}

static char *migrate_describe(struct cmd_ctx *c, bool ok)
{
  struct migrate_args *a = c->data;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  if (!ok) return xasprintf("migrating VM %s", name);
  return xasprintf("VM %s migrated from host %s to host %s by %s in %.1f s", name, a->src_host->name,
                   a->dst_host->name, c->user->name, (double)a->took_ms / 1000.0);
}

static const struct cmd_def migrate_def = {
  "MigrateVm", EV_VM_MIGRATED, migrate_validate, migrate_execute, NULL, migrate_describe,
};

int cmd_vm_migrate(struct engine *eng, const struct user *u, const char *vm_id, const char *host_id)
{
  struct migrate_args a = {.vm_id = vm_id, .want_host = host_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id}, .data = &a};
  int rc = cmd_run(&migrate_def, &c);
  vm_free(a.vm);
  free(a.dst);
  host_free(a.src_host);
  host_free(a.dst_host);
  return rc;
}

int host_evacuate(struct engine *eng, const struct user *u, const char *host_id)
{
  AUTOPTR(host) h = host_get(eng->st, host_id);
  if (!h) return -1;
  if (host_check_no_pinned(eng, h) < 0) return -1;
  AUTOLIST(vm) vms = vm_list_not_down_on_host(eng->st, host_id);
  if (!vms) return -1;
  for (size_t i = 0; vms[i]; i++)
    if (cmd_vm_migrate(eng, u, vms[i]->id, NULL) < 0)
      return error_prefix("cannot switch host '%s' to maintenance: ", h->name);
  return 0;
}
