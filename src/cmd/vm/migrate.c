/* migrate.c: live migration of a VM to another host of its cluster.
 *
 * The refusals come in oVirt's order: a disk snapshot of another VM plugged
 * into this one first, then a running backup, then a VM that is not
 * running. With one host there is never a target, so a migration that passes
 * every check is refused too (409, nothing changed). */
#include "cmd/internal.h"
#include "util/err.h"

int cmd_vm_migrate(struct engine *eng, const struct user *u, const char *vm_id)
{
  (void)u;
  AUTOPTR(vm) vm = vm_get(eng->st, vm_id);
  if (!vm) return -1;
  /* the snapshot rule comes before any other, as in oVirt */
  const char *params[] = {vm->id};
  AUTOLIST(attachment) pinned = attachment_list(eng->st, "vm_id = ? AND plugged = 1 AND snapshot_id IS NOT NULL",
                                                params, 1, NULL, 1);
  if (!pinned) return -1;
  if (pinned[0])
    return error(ERR_CONFLICT, "cannot migrate VM '%s': snapshot '%s' of disk '%s' is plugged into "
                 "it; detach it first", vm->name, pinned[0]->snapshot_id, pinned[0]->disk_id);
  if (backup_check_vm(eng->st, vm->id, "migrate VM", vm->name) < 0) return -1;
  if (vm->status == VM_DOWN)
    return error(ERR_CONFLICT, "cannot migrate VM '%s': it is not running", vm->name);
  return error(ERR_CONFLICT, "cannot migrate VM '%s': there is no other host in cluster to migrate to",
               vm->name);
}
