/* res_cdrom.c: /vms/{vm}/cdroms (cmd/cdrom.c), the ISO disks of a storage
 * domain as oVirt's /storagedomains/{sd}/files, and os/boot/devices.
 *
 * oVirt gives a VM one CD-ROM device with id 00000000-0000-0000-0000-000000000000;
 * its <file id> is an ISO disk (content_type iso) of a data domain, or absent
 * when the drive is empty. PUT with <file id=""/> ejects. */
#include "api/resources.h"
#include "cmd/cdrom.h"
#include "util/buf.h"
#include "util/err.h"
#include <string.h>

static struct node *render_cdrom(struct api_call *c, const char *vm_id, const char *iso_disk_id)
{
  struct node *n = node_new("cdrom");
  AUTOFREE char *href = render_href(&c->r, "/vms/%s/cdroms/%s", vm_id, CDROM_ID);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", CDROM_ID);
  if (iso_disk_id) node_add_ref(n, "file", iso_disk_id, NULL);
  AUTOFREE char *vhref = render_href(&c->r, "/vms/%s", vm_id);
  node_add_ref(n, "vm", vm_id, vhref);
  return n;
}

/* the ISO in the drive: the VM's configured one, or with current=true the
 * running domain's (*iso NULL: empty) */
static int cdrom_file(struct api_call *c, char **iso)
{
  *iso = NULL;
  bool current;
  if (query_bool(c, "current", false, &current) < 0) return -1;
  if (current) return vm_cdrom_current(c->eng, c->p[0], iso);
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  if (vm->cdrom_disk_id) *iso = xstrdup(vm->cdrom_disk_id);
  return 0;
}

int list_vm_cdroms(struct api_call *c)
{
  AUTOFREE char *iso = NULL;
  if (cdrom_file(c, &iso) < 0) return -1;
  struct node *list = node_new("cdroms");
  list->is_list = true;
  node_append(list, render_cdrom(c, c->p[0], iso));
  return reply(c, 200, list);
}

static int cdrom_id_check(struct api_call *c)
{
  if (strcmp(c->p[1], CDROM_ID) != 0)
    return error(ERR_NOT_FOUND, "CD-ROM '%s' of VM '%s' does not exist: a VM has one, '" CDROM_ID "'",
                 c->p[1], c->p[0]);
  return 0;
}

int get_vm_cdrom(struct api_call *c)
{
  AUTOFREE char *iso = NULL;
  if (cdrom_id_check(c) < 0 || cdrom_file(c, &iso) < 0) return -1;
  return reply(c, 200, render_cdrom(c, c->p[0], iso));
}

/* PUT <cdrom><file id="ISO"/></cdrom>; id "" ejects; ?current=true: the
 * running domain only */
int update_vm_cdrom(struct api_call *c)
{
  if (cdrom_id_check(c) < 0) return -1;
  const struct node *b = body_required(c, "cdrom");
  if (!b) return -1;
  const struct node *file = node_child(b, "file");
  if (!file)
    return error(ERR_INVALID, "missing required field 'cdrom.file': give <file id=\"ISO disk id\"/>, "
                 "or <file id=\"\"/> to eject");
  const char *id = node_attr(file, "id");
  if (!id) id = node_text(file, "id");
  bool current;
  if (query_bool(c, "current", false, &current) < 0) return -1;
  if (cmd_vm_cdrom_change(c->eng, c->req->user, c->p[0], id ? id : "", current) < 0) return -1;
  AUTOFREE char *iso = NULL;
  if (current ? vm_cdrom_current(c->eng, c->p[0], &iso) < 0 : cdrom_file(c, &iso) < 0) return -1;
  return reply(c, 200, render_cdrom(c, c->p[0], iso));
}

/* an ISO disk as oVirt's <file> of a storage domain */
static struct node *render_file(struct api_call *c, const struct disk *d)
{
  struct node *n = node_new("file");
  AUTOFREE char *href = render_href(&c->r, "/storagedomains/%s/files/%s", d->storage_domain_id, d->id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", d->id);
  node_add_text(n, "name", d->alias);
  node_add_text(n, "type", "iso");
  AUTOFREE char *shref = render_href(&c->r, "/storagedomains/%s", d->storage_domain_id);
  node_add_ref(n, "storage_domain", d->storage_domain_id, shref);
  return n;
}

int list_storage_domain_files(struct api_call *c)
{
  AUTOPTR(storage_domain) sd = storage_domain_get(c->st, c->p[0]);
  if (!sd) return -1;
  AUTOLIST(disk) l = disk_list_isos_of_storage_domain(c->st, sd->id);
  if (!l) return -1;
  struct node *n = node_new("files");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++)
    if (api_visible(c, OBJ_DISK, l[i]->id)) node_append(n, render_file(c, l[i]));
  return reply(c, 200, n);
}

int get_storage_domain_file(struct api_call *c)
{
  AUTOPTR(disk) d = disk_get(c->st, c->p[1]);
  if (d && (d->content_type != DISK_CONTENT_ISO || strcmp(d->storage_domain_id, c->p[0]) != 0 ||
            !api_visible(c, OBJ_DISK, d->id))) {
    disk_free(steal_pointer(&d));
    error(ERR_NOT_FOUND, "file '%s' does not exist in storage domain '%s'", c->p[1], c->p[0]);
  }
  if (!d) return -1;
  return reply(c, 200, render_file(c, d));
}

int boot_devices_from_node(const struct node *vm, char **out)
{
  *out = NULL;
  const struct node *devs = node_child(node_child(node_child(vm, "os"), "boot"), "devices");
  if (!devs) return 0;
  AUTOBUF struct buf b = BUF_INIT;
  for (size_t i = 0; i < devs->nkids; i++) {
    const struct node *d = devs->kids[i];
    if (strcmp(d->name, "device") != 0) continue;
    if (!d->text || !*d->text) return error(ERR_INVALID, "invalid boot device '': use cdrom, hd or network");
    buf_printf(&b, "%s%s", b.len ? "," : "", d->text);
  }
  if (b.len == 0)
    return error(ERR_INVALID, "no boot device in 'vm.os.boot.devices': give <device>hd</device> and others");
  if (boot_devices_check(b.data) < 0) return -1;
  *out = buf_detach(&b);
  return 0;
}
