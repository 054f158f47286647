/* hyper_lvvolume.c: volumes on another host's local storage through its
 * libvirt (storage pools and volumes), for the work the engine cannot do
 * with qemu-img on its own host (volume.c). Part of the libvirt backend
 * (hyper_lv.h). */
#include "hyper/hyper_lv.h"
#include <string.h>

DEFINE_AUTOPTR(virStoragePool, struct _virStoragePool, virStoragePoolFree)
DEFINE_AUTOPTR(virStorageVol, struct _virStorageVol, virStorageVolFree)

/* the active dir pool of directory DIR on the host, refreshed; a transient
 * one named after DIR is made (and DIR built) when libvirt has none, as
 * after a libvirtd restart. NULL with libvirt's error. */
static virStoragePoolPtr local_pool(virConnectPtr c, const char *dir, bool create)
{
  virStoragePoolPtr p = virStoragePoolLookupByTargetPath(c, dir);
  if (p) {
    if (virStoragePoolIsActive(p) != 1 && virStoragePoolCreate(p, VIR_STORAGE_POOL_CREATE_WITH_BUILD) < 0) {
      virt_error("cannot start the storage pool of '%s'", dir);
      virStoragePoolFree(p);
      return NULL;
    }
    if (virStoragePoolRefresh(p, 0) < 0) virResetLastError();
    return p;
  }
  if (!hyper_lv_last_error_is(VIR_ERR_NO_STORAGE_POOL)) return virt_error("cannot look up the storage pool of '%s'", dir), NULL;
  virResetLastError();
  if (!create) return error(ERR_NOT_FOUND, "no directory '%s' on the host", dir), NULL;
  AUTOBUF struct buf xml = BUF_INIT;
  buf_printf(&xml, "<pool type='dir'><name>snapback");
  for (const char *q = dir; *q; q++) buf_printf(&xml, "%c", *q == '/' ? '-' : *q);
  buf_printf(&xml, "</name><target><path>");
  buf_put_xml_escaped(&xml, dir);
  buf_printf(&xml, "</path><permissions><mode>0700</mode></permissions></target></pool>");
  p = virStoragePoolCreateXML(c, buf_str(&xml), VIR_STORAGE_POOL_CREATE_WITH_BUILD);
  if (!p) virt_error("cannot make directory '%s' a storage pool", dir);
  return p;
}

int hyper_lv_local_volume_create(struct hyper *h, const char *dir, const char *name, int64_t size,
                                  const char *backing, int backing_format, char **path)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOPTR(virStoragePool) p = local_pool(c, dir, true);
  if (!p) return -1;
  AUTOBUF struct buf xml = BUF_INIT;
  buf_printf(&xml, "<volume><name>");
  buf_put_xml_escaped(&xml, name);
  buf_printf(&xml, "</name><capacity unit='bytes'>%lld</capacity><target><format type='qcow2'/>"
             "<permissions><mode>0600</mode></permissions></target>", (long long)size);
  if (backing) {
    buf_printf(&xml, "<backingStore><path>");
    buf_put_xml_escaped(&xml, backing);
    buf_printf(&xml, "</path><format type='%s'/></backingStore>", backing_format == DISK_FORMAT_RAW ? "raw" : "qcow2");
  }
  buf_printf(&xml, "</volume>");
  AUTOPTR(virStorageVol) v = virStorageVolCreateXML(p, buf_str(&xml), 0);
  if (!v) return virt_error("cannot create volume '%s' in '%s' on host '%s'", name, dir, h->uri);
  char *got = virStorageVolGetPath(v);
  if (!got) return virt_error("cannot read the path of volume '%s' on host '%s'", name, h->uri);
  *path = xstrdup(got);
  free(got);
  return 0;
}

int hyper_lv_local_volume_delete(struct hyper *h, const char *path)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path) return error(ERR_INVALID, "'%s' is not a file in a directory", path);
  AUTOFREE char *dir = xasprintf("%.*s", (int)(slash - path), path);
  AUTOPTR(virStoragePool) p = local_pool(c, dir, false);
  if (!p) {
    if (error_code() != ERR_NOT_FOUND) return -1;
    error_clear();
    return 0;
  }
  AUTOPTR(virStorageVol) v = virStorageVolLookupByName(p, slash + 1);
  if (!v) {
    if (hyper_lv_last_error_is(VIR_ERR_NO_STORAGE_VOL)) { virResetLastError(); return 0; }
    return virt_error("cannot look up '%s' on host '%s'", path, h->uri);
  }
  if (virStorageVolDelete(v, 0) < 0) return virt_error("cannot delete '%s' on host '%s'", path, h->uri);
  return 0;
}

int hyper_lv_local_volume_list(struct hyper *h, const char *dir, struct strvec *names)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOPTR(virStoragePool) p = local_pool(c, dir, false);
  if (!p) {
    if (error_code() != ERR_NOT_FOUND) return -1;
    error_clear();
    return 0;
  }
  virStorageVolPtr *vols = NULL;
  int n = virStoragePoolListAllVolumes(p, &vols, 0);
  if (n < 0) return virt_error("cannot list '%s' on host '%s'", dir, h->uri);
  for (int i = 0; i < n; i++) {
    const char *name = virStorageVolGetName(vols[i]);
    if (name) vec_push(names, xstrdup(name));
    virStorageVolFree(vols[i]);
  }
  free(vols);
  return 0;
}

int hyper_lv_local_dir_make(struct hyper *h, const char *dir)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOPTR(virStoragePool) p = local_pool(c, dir, true);
  return p ? 0 : -1;
}
