/* cdrom.c: CD-ROMs and boot devices (see cdrom.h).
 *
 * Nothing here outlives a crash half-done: a persistent change is one row
 * update, a live one is one libvirt call and no row. */
#include "cmd/cdrom.h"
#include "cmd/internal.h"
#include "cmd/perm.h"
#include "hyper/hyper.h"
#include "hyper/domxml.h"
#include "util/err.h"
#include <string.h>

/* oVirt's USER_CHANGE_DISK_VM ("CD ... was inserted to VM ...") */
enum { EV_VM_CD_CHANGED = 38 };

int boot_devices_check(const char *devices)
{
  static const char *const known[] = {"cdrom", "hd", "network"};
  bool seen[ARRAY_SIZE(known)] = {false};
  if (!devices || !*devices) return error(ERR_INVALID, "no boot device given: use cdrom, hd or network");
  for (const char *p = devices; *p;) {
    size_t len = strcspn(p, ","), k = 0;
    while (k < ARRAY_SIZE(known) && !(strlen(known[k]) == len && strncmp(p, known[k], len) == 0)) k++;
    if (k == ARRAY_SIZE(known))
      return error(ERR_INVALID, "invalid boot device '%.*s': use cdrom, hd or network", (int)len, p);
    if (seen[k]) return error(ERR_INVALID, "boot device '%s' is given twice", known[k]);
    seen[k] = true;
    p += len;
    if (*p == ',') p++;
  }
  return 0;
}

/* the ISO disk iso_disk_id, checked usable (content iso, status ok) */
static struct disk *iso_get(struct store *st, const char *iso_disk_id)
{
  AUTOPTR(disk) d = disk_get(st, iso_disk_id);
  if (!d) return NULL;
  if (d->content_type != DISK_CONTENT_ISO)
    return error(ERR_INVALID, "disk '%s' is not an ISO: create it with <content_type>iso</content_type>",
                 d->alias), NULL;
  if (d->status != DISK_OK)
    return error(ERR_CONFLICT, "ISO '%s' is %s: wait until its upload finished", d->alias,
                 disk_status_to_str(d->status)), NULL;
  return steal_pointer(&d);
}

char *cdrom_iso_path(struct engine *eng, const char *iso_disk_id)
{
  AUTOPTR(disk) d = iso_get(eng->st, iso_disk_id);
  if (!d) return NULL;
  AUTOPTR(volume) v = disk_active_volume(eng->st, d->id);
  return v ? xstrdup(v->path) : NULL;
}

int cdrom_check_unused(struct store *st, const char *disk_id, const char *alias, const char *what)
{
  AUTOLIST(vm) users = vm_list_by_cdrom(st, disk_id);
  if (!users) return -1;
  if (users[0])
    return error(ERR_CONFLICT, "cannot %s disk '%s': it is the CD of VM '%s'; eject it first", what, alias,
                 users[0]->name);
  return 0;
}

int vm_cdrom_current(struct engine *eng, const char *vm_id, char **iso_disk_id)
{
  *iso_disk_id = NULL;
  AUTOPTR(vm) vm = vm_get(eng->st, vm_id);
  if (!vm) return -1;
  if (vm->status == VM_DOWN || !vm->host_id)
    return error(ERR_CONFLICT, "VM '%s' is not running: it has no current CD (ask without current=true)",
                 vm->name);
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
  if (!h) return -1;
  struct hyper_live_disk *live = NULL;
  size_t n = 0;
  if (ops->domain_disks(h, vm_id, &live, &n) < 0) return -1;
  AUTOFREE char *path = NULL;
  for (size_t i = 0; i < n && !path; i++)
    if (live[i].alias && strcmp(live[i].alias, DOMXML_CDROM_ALIAS) == 0 && live[i].source)
      path = xstrdup(live[i].source);
  hyper_live_disks_free(live, n);
  if (!path) return 0;
  AUTOLIST(volume) vols = volume_list_by_path(eng->st, path);
  if (!vols) return -1;
  if (vols[0]) *iso_disk_id = xstrdup(vols[0]->disk_id);
  return 0;
}

struct cdrom_args {
  const char *vm_id, *iso_disk_id;  /* iso_disk_id NULL: eject */
  bool current;
  struct vm *vm;
  struct disk *iso;
  char *path;
};

static int cdrom_validate(struct cmd_ctx *c)
{
  struct cdrom_args *a = c->data;
  if (!(a->vm = vm_get(c->eng->st, a->vm_id))) return -1;
  if (a->iso_disk_id && !(a->iso = iso_get(c->eng->st, a->iso_disk_id)))
    return error_prefix("cannot change the CD of VM '%s': ", a->vm->name);
  if (a->current && (a->vm->status == VM_DOWN || !a->vm->host_id))
    return error(ERR_CONFLICT, "cannot change the current CD of VM '%s': it is not running; leave out "
                 "current=true to change the CD it starts with", a->vm->name);
  if (a->current && a->iso) {
    AUTOPTR(volume) v = disk_active_volume(c->eng->st, a->iso->id);
    if (!v) return -1;
    a->path = xstrdup(v->path);
  }
  return 0;
}

static int cdrom_execute(struct cmd_ctx *c)
{
  struct cdrom_args *a = c->data;
  if (!a->current) {
    free(a->vm->cdrom_disk_id);
    a->vm->cdrom_disk_id = a->iso ? xstrdup(a->iso->id) : NULL;
    return vm_update(c->eng->st, a->vm);
  }
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(c->eng, a->vm->host_id, &ops);
  if (!h) return -1;
  if (!ops->cdrom_change) return error(ERR_UNSUPPORTED, "the host's hypervisor cannot change CDs");
  if (ops->cdrom_change(h, a->vm->id, a->path) < 0)
    return error_prefix("cannot change the current CD of VM '%s': ", a->vm->name);
  return 0;
}

static char *cdrom_describe(struct cmd_ctx *c, bool ok)
{
  struct cdrom_args *a = c->data;
  const char *vm = a->vm ? a->vm->name : a->vm_id;
  if (!ok) return xasprintf("changing the CD of VM %s", vm);
  if (!a->iso) return xasprintf("CD was ejected from VM %s by %s", vm, c->user->name);
  return xasprintf("CD %s was inserted to VM %s%s by %s", a->iso->alias, vm, a->current ? " (now)" : "",
                   c->user->name);
}

static const struct cmd_def cdrom_def = {
  "ChangeDisk", EV_VM_CD_CHANGED, cdrom_validate, cdrom_execute, NULL, cdrom_describe,
};

int cmd_vm_cdrom_change(struct engine *eng, const struct user *u, const char *vm_id, const char *iso_disk_id,
                        bool current)
{
  struct cdrom_args a = {.vm_id = vm_id, .iso_disk_id = iso_disk_id && *iso_disk_id ? iso_disk_id : NULL,
                         .current = current};
  /* the ISO is read by whoever may see it, as oVirt's ISO domains */
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id, a.iso_disk_id}, .data = &a,
                      .needs = {{PERMIT_VIEW, OBJ_DISK, a.iso_disk_id}}};
  int rc = cmd_run(&cdrom_def, &c);
  vm_free(a.vm);
  disk_free(a.iso);
  free(a.path);
  return rc;
}
