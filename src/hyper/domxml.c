/* domxml.c: libvirt domain XML from a struct hyper_vm_spec, and the disk
 * part of a live domain XML back into struct hyper_live_disk.
 *
 * The domain is q35 with 16 explicit PCIe root ports (MACHINE-NOTES: libvirt
 * adds only one spare port, so a second concurrent hot-plug would fail), one
 * virtio-scsi controller, a pty serial console and no graphics at all
 * (<graphics type='none'> is invalid). Disks carry alias "ua-<disk id>" and
 * serial = first 20 characters of the disk id. */
#include "hyper/domxml.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/uuid.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

ENUM_IMPL(domain_type, DOMAIN_TYPE_LAST, "auto", "kvm", "qemu");

DEFINE_AUTOPTR(xmlDoc, xmlDoc, xmlFreeDoc)

/* libvirt's words for our enums, indexed by enum disk_iface / disk_format */
static const char *const iface_bus[IFACE_LAST] = {"virtio", "scsi", "sata", "ide"};
static const char *const iface_prefix[IFACE_LAST] = {"vd", "sd", "sd", "hd"};
static const char *const format_driver[DISK_FORMAT_LAST] = {"qcow2", "raw"};

/* a disk serial is at most 20 bytes for virtio-blk */
#define DISK_SERIAL_MAX 20

int domain_type_resolve(int domain_type)
{
  if (domain_type != DOMAIN_TYPE_AUTO) return domain_type;
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return DOMAIN_TYPE_QEMU;
  close(fd);
  return DOMAIN_TYPE_KVM;
}

const char *domxml_iface_bus(int iface)
{
  return iface >= 0 && iface < IFACE_LAST ? iface_bus[iface] : NULL;
}

/* the name libvirt's virDiskNameFromIndex would give: a..z, aa..az, ba.. */
char *domxml_target_name(int iface, unsigned idx)
{
  char letters[16];
  size_t pos = sizeof letters;
  letters[--pos] = '\0';
  for (unsigned i = idx + 1; i > 0; i = (i - 1) / 26) letters[--pos] = (char)('a' + (i - 1) % 26);
  const char *prefix = iface >= 0 && iface < IFACE_LAST ? iface_prefix[iface] : "vd";
  return xasprintf("%s%s", prefix, letters + pos);
}

static int check_disk(const struct hyper_disk *d)
{
  if (!d->disk_id || !*d->disk_id || !d->path)
    return error(ERR_INVALID, "disk without id or path");
  if (!domxml_iface_bus(d->iface))
    return error(ERR_INVALID, "disk '%s' has an unknown interface %d", d->disk_id, d->iface);
  if (d->format < 0 || d->format >= DISK_FORMAT_LAST)
    return error(ERR_INVALID, "disk '%s' has an unknown format %d", d->disk_id, d->format);
  return 0;
}

/* appends <disk> for d, indented by `indent` spaces */
static void put_disk(struct buf *b, const struct hyper_disk *d, const char *target, int indent, int boot_order)
{
  int in = indent;
  char serial[DISK_SERIAL_MAX + 1];
  snprintf(serial, sizeof serial, "%s", d->disk_id);

  buf_printf(b, "%*s<disk type='file' device='disk'>\n", in, "");
  /* cache='none' as oVirt does: no host page cache between the guest and
   * shared or backed-up images (O_DIRECT; the storage must support it) */
  buf_printf(b, "%*s  <driver name='qemu' type='%s' cache='none'/>\n", in, "", format_driver[d->format]);
  buf_printf(b, "%*s  <source file='", in, "");
  buf_put_xml_escaped(b, d->path);
  buf_puts(b, "'/>\n");
  buf_printf(b, "%*s  <target dev='", in, "");
  buf_put_xml_escaped(b, target);
  buf_printf(b, "' bus='%s'/>\n", iface_bus[d->iface]);
  buf_printf(b, "%*s  <serial>", in, "");
  buf_put_xml_escaped(b, serial);
  buf_puts(b, "</serial>\n");
  buf_printf(b, "%*s  <alias name='ua-", in, "");
  buf_put_xml_escaped(b, d->disk_id);
  buf_puts(b, "'/>\n");
  if (d->read_only) buf_printf(b, "%*s  <readonly/>\n", in, "");
  if (d->shareable) buf_printf(b, "%*s  <shareable/>\n", in, "");
  if (boot_order > 0) buf_printf(b, "%*s  <boot order='%d'/>\n", in, "", boot_order);
  buf_printf(b, "%*s</disk>\n", in, "");
}

char *domxml_disk(const struct hyper_disk *d, const char *target)
{
  if (check_disk(d) < 0) return NULL;
  AUTOBUF struct buf b = BUF_INIT;
  /* no <boot order>: a running guest boots no more, the next start writes the
   * whole domain again, and an order taken already (the CD-ROM's, another
   * bootable disk's) would make libvirt refuse the hot-plug */
  put_disk(&b, d, target, 0, 0);
  return buf_detach(&b);
}

/* which name-space counter a bus uses: vd, sd (scsi and sata share it), hd */
static int prefix_slot(int iface)
{
  return iface == IFACE_VIRTIO ? 0 : iface == IFACE_IDE ? 2 : 1;
}

char *domxml_free_target(int iface, const struct hyper_live_disk *live, size_t n)
{
  for (unsigned idx = 0;; idx++) {
    char *name = domxml_target_name(iface, idx);
    bool used = false;
    for (size_t i = 0; i < n && !used; i++)
      used = live[i].target && strcmp(live[i].target, name) == 0;
    if (!used) return name;
    free(name);
  }
}

static void put_text_element(struct buf *b, const char *indent, const char *tag, const char *text)
{
  buf_printf(b, "%s<%s>", indent, tag);
  buf_put_xml_escaped(b, text);
  buf_printf(b, "</%s>\n", tag);
}

/* the first <boot order> of each kind of boot device; 0: that kind does not boot */
struct boot_orders {
  int cdrom, hd, network;
  bool per_device;   /* some device carries a <boot order> (then no <os><boot>) */
};

/* Numbers the boot devices in the order DEVICES lists them ("cdrom,hd",
 * oVirt's os/boot/devices; NULL: "hd"): the CD-ROM one number, hd one per
 * bootable disk (the first disk when none is), network one per NIC. libvirt
 * wants every number once. ERR_INVALID on an unknown or repeated device. */
static int boot_orders_assign(const char *devices, const struct hyper_vm_spec *spec, size_t nbootable,
                              struct boot_orders *bo)
{
  *bo = (struct boot_orders){0};
  if (!devices) {
    /* as before boot devices existed: bootable disks first, else the BIOS's hd */
    bo->hd = nbootable ? 1 : 0;
    bo->per_device = nbootable > 0;
    return 0;
  }
  int order = 1;
  for (const char *p = devices; *p;) {
    size_t len = strcspn(p, ",");
    int *slot = NULL, count = 0;
    if (len == 5 && strncmp(p, "cdrom", 5) == 0) slot = &bo->cdrom, count = 1;
    else if (len == 2 && strncmp(p, "hd", 2) == 0) slot = &bo->hd, count = spec->ndisks ? (nbootable ? (int)nbootable : 1) : 0;
    else if (len == 7 && strncmp(p, "network", 7) == 0) slot = &bo->network, count = (int)spec->nnics;
    else return error(ERR_INVALID, "unknown boot device '%.*s': use cdrom, hd or network", (int)len, p);
    if (*slot) return error(ERR_INVALID, "boot device '%.*s' is listed twice", (int)len, p);
    if (count > 0) {
      *slot = order;
      order += count;
      bo->per_device = true;
    }
    p += len;
    if (*p == ',') p++;
  }
  return 0;
}

char *domxml_cdrom(const char *path, const char *target, int boot_order)
{
  struct buf b = BUF_INIT;
  buf_puts(&b, "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n");
  if (path) {
    buf_puts(&b, "      <source file='");
    buf_put_xml_escaped(&b, path);
    buf_puts(&b, "'/>\n");
  }
  buf_puts(&b, "      <target dev='");
  buf_put_xml_escaped(&b, target);
  buf_puts(&b, "' bus='sata'/>\n      <readonly/>\n      <alias name='" DOMXML_CDROM_ALIAS "'/>\n");
  if (boot_order > 0) buf_printf(&b, "      <boot order='%d'/>\n", boot_order);
  buf_puts(&b, "    </disk>\n");
  return buf_detach(&b);
}

char *domxml_domain(const struct hyper_vm_spec *spec, int domain_type)
{
  const struct vm *vm = spec->vm;
  if (!vm || !vm->id || !vm->name || !*vm->name)
    return error(ERR_INVALID, "cannot make a domain: VM without id or name"), NULL;
  if (domain_type != DOMAIN_TYPE_KVM && domain_type != DOMAIN_TYPE_QEMU)
    return error(ERR_INVALID, "cannot make a domain for VM '%s': domain type %d is not kvm or qemu",
                 vm->name, domain_type), NULL;
  int64_t sockets = vm->sockets > 0 ? vm->sockets : 1;
  int64_t cores = vm->cores > 0 ? vm->cores : 1;
  int64_t threads = vm->threads > 0 ? vm->threads : 1;
  if (vm->memory < 1024 * 1024)
    return error(ERR_INVALID, "cannot make a domain for VM '%s': memory %lld bytes is below 1 MiB",
                 vm->name, (long long)vm->memory), NULL;
  size_t nbootable = 0;
  for (size_t i = 0; i < spec->ndisks; i++) {
    const struct hyper_disk *d = &spec->disks[i];
    if (check_disk(d) < 0) return error_prefix("cannot make a domain for VM '%s': ", vm->name), NULL;
    if (d->iface == IFACE_IDE)
      return error(ERR_UNSUPPORTED, "cannot make a domain for VM '%s': disk interface '%s' of disk '%s' "
                   "does not exist on q35 machines; use virtio, virtio_scsi or sata",
                   vm->name, disk_iface_to_str(d->iface), d->disk_id), NULL;
    nbootable += d->bootable;
  }
  struct boot_orders bo;
  if (boot_orders_assign(vm->boot_devices, spec, nbootable, &bo) < 0)
    return error_prefix("cannot make a domain for VM '%s': ", vm->name), NULL;

  AUTOBUF struct buf b = BUF_INIT;
  buf_printf(&b, "<domain type='%s'>\n", domain_type_to_str(domain_type));
  put_text_element(&b, "  ", "name", vm->name);
  put_text_element(&b, "  ", "uuid", vm->id);
  buf_printf(&b, "  <memory unit='KiB'>%lld</memory>\n", (long long)(vm->memory / 1024));
  buf_printf(&b, "  <vcpu>%lld</vcpu>\n", (long long)(sockets * cores * threads));
  /* no mode: QEMU's default CPU model. host-passthrough is wrong for TCG
   * and fails on nested KVM here (MACHINE-NOTES) */
  buf_printf(&b, "  <cpu>\n    <topology sockets='%lld' cores='%lld' threads='%lld'/>\n  </cpu>\n",
             (long long)sockets, (long long)cores, (long long)threads);
  buf_puts(&b, "  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n");
  if (vm->kernel) {
    put_text_element(&b, "    ", "kernel", vm->kernel);
    if (vm->initrd) put_text_element(&b, "    ", "initrd", vm->initrd);
    if (vm->cmdline) put_text_element(&b, "    ", "cmdline", vm->cmdline);
  } else if (!bo.per_device) {
    /* libvirt refuses <os><boot> together with per-device <boot order> */
    buf_puts(&b, "    <boot dev='hd'/>\n");
  }
  buf_puts(&b, "  </os>\n");
  /* ACPI: q35 hot-plug on the root ports goes through ACPI in QEMU 7.2 */
  buf_puts(&b, "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
  buf_puts(&b, "  <on_poweroff>destroy</on_poweroff>\n"
               "  <on_reboot>restart</on_reboot>\n"
               "  <on_crash>destroy</on_crash>\n");
  buf_puts(&b, "  <devices>\n");
  buf_puts(&b, "    <controller type='pci' index='0' model='pcie-root'/>\n");
  for (int i = 1; i <= DOMXML_ROOT_PORTS; i++)
    buf_printf(&b, "    <controller type='pci' index='%d' model='pcie-root-port'/>\n", i);
  /* conventional PCI devices (e1000, rtl8139 NICs) hot-plug behind this bridge */
  buf_printf(&b, "    <controller type='pci' index='%d' model='pcie-to-pci-bridge'/>\n", DOMXML_ROOT_PORTS + 1);
  buf_puts(&b, "    <controller type='scsi' index='0' model='virtio-scsi'/>\n");
  buf_puts(&b, "    <controller type='usb' model='none'/>\n");
  unsigned next[3] = {0, 0, 0};
  for (size_t i = 0, k = 0; i < spec->ndisks; i++) {
    const struct hyper_disk *d = &spec->disks[i];
    AUTOFREE char *target = domxml_target_name(d->iface, next[prefix_slot(d->iface)]++);
    bool hd = nbootable ? d->bootable : i == 0;
    put_disk(&b, d, target, 4, hd && bo.hd ? bo.hd + (int)k++ : 0);
  }
  {
    AUTOFREE char *target = domxml_target_name(IFACE_SATA, next[prefix_slot(IFACE_SATA)]++);
    AUTOFREE char *cd = domxml_cdrom(spec->cdrom_path, target, bo.cdrom);
    buf_puts(&b, cd);
  }
  for (size_t i = 0; i < spec->nnics; i++) {
    struct hyper_nic nic = spec->nics[i];
    nic.boot_order = bo.network ? bo.network + (int)i : 0;
    AUTOFREE char *x = domxml_nic(&nic);
    if (!x) return buf_free(&b), NULL;
    buf_puts(&b, x);
  }
  if (spec->console_log) {
    /* a file the host keeps: what the guest printed survives the guest */
    buf_puts(&b, "    <serial type='file'>\n      <source path='");
    buf_put_xml_escaped(&b, spec->console_log);
    buf_puts(&b, "' append='on'/>\n      <target port='0'/>\n    </serial>\n");
  } else {
    buf_puts(&b, "    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n");
    buf_puts(&b, "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n");
  }
  /* the guest agent's channel: with qemu-guest-agent in the guest, live
   * snapshots freeze its file systems (QUIESCE); without one they fall back
   * to crash-consistent */
  buf_puts(&b, "    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n"
               "    </channel>\n");
  if (spec->graphics_listen) {
    /* locked from the start: a random password that expired at once, until
     * a ticket (graphics_ticket) sets one */
    AUTOFREE char *secret = random_hex(4); /* VNC takes at most 8 characters */
    if (!secret) return buf_free(&b), NULL;
    AUTOFREE char *g = domxml_graphics("vnc", spec->graphics_listen, secret, 1);
    buf_puts(&b, g);
    if (spec->spice) {
      AUTOFREE char *ssecret = random_hex(12);
      if (!ssecret) return buf_free(&b), NULL;
      AUTOFREE char *sg = domxml_graphics("spice", spec->graphics_listen, ssecret, 1);
      buf_puts(&b, sg);
    }
    buf_puts(&b, "    <video>\n      <model type='vga'/>\n    </video>\n");
  }
  buf_puts(&b, "    <memballoon model='none'/>\n");
  buf_puts(&b, "  </devices>\n</domain>\n");
  return buf_detach(&b);
}

/* the attribute as a malloc'ed string, or NULL */
static char *attr_dup(xmlNode *n, const char *name)
{
  xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
  if (!v) return NULL;
  char *s = xstrdup((const char *)v);
  xmlFree(v);
  return s;
}

static xmlNode *child(xmlNode *n, const char *name)
{
  for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0) return c;
  return NULL;
}

void hyper_live_disks_free(struct hyper_live_disk *d, size_t n)
{
  if (!d) return;
  for (size_t i = 0; i < n; i++) {
    free(d[i].alias);
    free(d[i].target);
    free(d[i].bus);
    free(d[i].source);
    free(d[i].serial);
  }
  free(d);
}

int domxml_parse_disks(const char *xml, struct hyper_live_disk **out, size_t *n)
{
  *out = NULL;
  *n = 0;
  AUTOPTR(xmlDoc) doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (!root || strcmp((const char *)root->name, "domain") != 0)
    return error(ERR_INTERNAL, "cannot parse the domain XML from libvirt");
  struct hyper_live_disk *v = NULL;
  size_t len = 0;
  for (xmlNode *c = child(root, "devices") ? child(root, "devices")->children : NULL; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "disk") != 0) continue;
    v = xrealloc(v, (len + 1) * sizeof *v);
    struct hyper_live_disk *d = &v[len++];
    memset(d, 0, sizeof *d);
    xmlNode *e;
    if ((e = child(c, "alias"))) d->alias = attr_dup(e, "name");
    if ((e = child(c, "target"))) {
      d->target = attr_dup(e, "dev");
      d->bus = attr_dup(e, "bus");
    }
    if ((e = child(c, "source"))) d->source = attr_dup(e, "file");
    if ((e = child(c, "serial"))) {
      xmlChar *t = xmlNodeGetContent(e);
      d->serial = t ? xstrdup((const char *)t) : NULL;
      xmlFree(t);
    }
  }
  *out = v;
  *n = len;
  return 0;
}

char *domxml_snapshot(const struct hyper_snap_disk *snap, size_t n, const struct hyper_live_disk *live,
                      size_t nlive)
{
  if (n == 0) return error(ERR_INVALID, "cannot make a snapshot of no disk"), NULL;
  /* which live disk each listed disk is, so every live disk is named once */
  AUTOFREE const struct hyper_snap_disk **by_live = xcalloc(nlive ? nlive : 1, sizeof *by_live);
  for (size_t i = 0; i < n; i++) {
    const struct hyper_snap_disk *s = &snap[i];
    if (!s->disk_id || !s->new_path)
      return error(ERR_INVALID, "cannot make a snapshot: disk without id or new file"), NULL;
    if (s->new_format < 0 || s->new_format >= DISK_FORMAT_LAST)
      return error(ERR_INVALID, "cannot make a snapshot of disk '%s': unknown format %d", s->disk_id,
                   s->new_format), NULL;
    AUTOFREE char *alias = xasprintf("ua-%s", s->disk_id);
    size_t j = 0;
    while (j < nlive && !(live[j].alias && live[j].target && strcmp(live[j].alias, alias) == 0)) j++;
    if (j == nlive)
      return error(ERR_NOT_FOUND, "cannot make a snapshot of disk '%s': the VM has no such disk", s->disk_id),
             NULL;
    if (by_live[j])
      return error(ERR_INVALID, "cannot make a snapshot of disk '%s': it is listed twice", s->disk_id), NULL;
    by_live[j] = s;
  }
  AUTOBUF struct buf b = BUF_INIT;
  buf_puts(&b, "<domainsnapshot>\n  <disks>\n");
  for (size_t j = 0; j < nlive; j++) {
    if (!live[j].target) continue;
    buf_puts(&b, "    <disk name='");
    buf_put_xml_escaped(&b, live[j].target);
    const struct hyper_snap_disk *s = by_live[j];
    if (!s) {
      buf_puts(&b, "' snapshot='no'/>\n");
      continue;
    }
    buf_printf(&b, "' snapshot='external' type='file'>\n      <driver type='%s'/>\n      <source file='",
               format_driver[s->new_format]);
    buf_put_xml_escaped(&b, s->new_path);
    buf_puts(&b, "'/>\n    </disk>\n");
  }
  buf_puts(&b, "  </disks>\n</domainsnapshot>\n");
  return buf_detach(&b);
}

int domxml_disk_chain(const char *xml, const char *alias, char **target, struct strvec *chain)
{
  *target = NULL;
  AUTOPTR(xmlDoc) doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (!root || strcmp((const char *)root->name, "domain") != 0)
    return error(ERR_INTERNAL, "cannot parse the domain XML from libvirt");
  for (xmlNode *c = child(root, "devices") ? child(root, "devices")->children : NULL; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "disk") != 0) continue;
    xmlNode *a = child(c, "alias");
    AUTOFREE char *name = a ? attr_dup(a, "name") : NULL;
    if (!name || strcmp(name, alias) != 0) continue;
    xmlNode *t = child(c, "target");
    *target = t ? attr_dup(t, "dev") : NULL;
    /* the disk's own <source>, then <backingStore><source> nested down; the
     * bottom is an empty <backingStore/> (or none at all) */
    for (xmlNode *layer = c; layer; layer = child(layer, "backingStore")) {
      xmlNode *src = child(layer, "source");
      char *file = src ? attr_dup(src, "file") : NULL;
      if (!file) break;
      vec_push(chain, file);
    }
    return 0;
  }
  return error(ERR_NOT_FOUND, "the VM has no disk '%s'", alias);
}

int hyper_disk_chain(const struct hyper_ops *ops, struct hyper *h, const char *vm_id,
                     const char *disk_id, struct strvec *chain)
{
  AUTOFREE char *xml = ops->domain_live_xml(h, vm_id);
  if (!xml) return -1;
  AUTOFREE char *alias = xasprintf("ua-%s", disk_id);
  AUTOFREE char *target = NULL;
  return domxml_disk_chain(xml, alias, &target, chain);
}

/* the listed disk (by alias ua-<disk id>) each live disk is, or NULL */
static int backup_disks_by_live(const struct hyper_backup_disk *disks, size_t n,
                                const struct hyper_live_disk *live, size_t nlive,
                                const struct hyper_backup_disk **by_live)
{
  for (size_t i = 0; i < n; i++) {
    AUTOFREE char *alias = xasprintf("ua-%s", disks[i].disk_id);
    size_t j = 0;
    while (j < nlive && !(live[j].alias && live[j].target && strcmp(live[j].alias, alias) == 0)) j++;
    if (j == nlive)
      return error(ERR_NOT_FOUND, "cannot back up disk '%s': the VM has no such disk", disks[i].disk_id);
    by_live[j] = &disks[i];
  }
  return 0;
}

char *domxml_backup(const struct hyper_backup_disk *disks, size_t n, const struct hyper_live_disk *live,
                    size_t nlive, const struct domxml_backup_server *server, const char *from_checkpoint)
{
  AUTOFREE const struct hyper_backup_disk **by_live = xcalloc(nlive ? nlive : 1, sizeof *by_live);
  if (backup_disks_by_live(disks, n, live, nlive, by_live) < 0) return NULL;
  AUTOBUF struct buf b = BUF_INIT;
  buf_puts(&b, "<domainbackup mode='pull'>\n");
  if (from_checkpoint) {
    buf_puts(&b, "  <incremental>");
    buf_put_xml_escaped(&b, from_checkpoint);
    buf_puts(&b, "</incremental>\n");
  }
  if (server->socket_path) {
    buf_puts(&b, "  <server transport='unix' socket='");
    buf_put_xml_escaped(&b, server->socket_path);
  } else {
    buf_puts(&b, "  <server transport='tcp' name='");
    buf_put_xml_escaped(&b, server->address);
    buf_printf(&b, "' port='%d", server->port);
    if (server->tls) buf_puts(&b, "' tls='yes");
  }
  buf_puts(&b, "'/>\n  <disks>\n");
  for (size_t j = 0; j < nlive; j++) {
    if (!live[j].target) continue;
    buf_puts(&b, "    <disk name='");
    buf_put_xml_escaped(&b, live[j].target);
    const struct hyper_backup_disk *d = by_live[j];
    if (!d) {
      buf_puts(&b, "' backup='no'/>\n");
      continue;
    }
    buf_puts(&b, "' backup='yes' type='file' exportname='");
    buf_put_xml_escaped(&b, d->disk_id);
    if (from_checkpoint && d->incremental) {
      buf_puts(&b, "' exportbitmap='");
      buf_put_xml_escaped(&b, from_checkpoint);
    }
    if (from_checkpoint && !d->incremental) buf_puts(&b, "' backupmode='full");
    buf_puts(&b, "'>\n      <scratch file='");
    buf_put_xml_escaped(&b, d->scratch_path);
    buf_puts(&b, "'/>\n    </disk>\n");
  }
  buf_puts(&b, "  </disks>\n</domainbackup>\n");
  return buf_detach(&b);
}

char *domxml_checkpoint(const struct hyper_backup_disk *disks, size_t n, const struct hyper_live_disk *live,
                        size_t nlive, const char *name, bool use_bitmap_name, long long creation_time)
{
  AUTOFREE const struct hyper_backup_disk **by_live = xcalloc(nlive ? nlive : 1, sizeof *by_live);
  if (backup_disks_by_live(disks, n, live, nlive, by_live) < 0) return NULL;
  AUTOBUF struct buf b = BUF_INIT;
  buf_puts(&b, "<domaincheckpoint>\n  <name>");
  buf_put_xml_escaped(&b, name);
  buf_puts(&b, "</name>\n");
  if (use_bitmap_name) buf_printf(&b, "  <creationTime>%lld</creationTime>\n", creation_time);
  buf_puts(&b, "  <disks>\n");
  for (size_t j = 0; j < nlive; j++) {
    if (!live[j].target) continue;
    const struct hyper_backup_disk *d = by_live[j];
    bool on = d && (use_bitmap_name ? d->incremental : d->checkpoint);
    buf_puts(&b, "    <disk name='");
    buf_put_xml_escaped(&b, live[j].target);
    if (!on) {
      buf_puts(&b, "' checkpoint='no'/>\n");
      continue;
    }
    buf_puts(&b, "' checkpoint='bitmap'");
    if (use_bitmap_name) {
      buf_puts(&b, " bitmap='");
      buf_put_xml_escaped(&b, name);
      buf_puts(&b, "'");
    }
    buf_puts(&b, "/>\n");
  }
  buf_puts(&b, "  </disks>\n</domaincheckpoint>\n");
  return buf_detach(&b);
}
bool domxml_checkpoint_serves(const char *xml, const struct hyper_backup_disk *disks, size_t n,
                              const struct hyper_live_disk *live, size_t nlive, const char *name)
{
  AUTOFREE const struct hyper_backup_disk **by_live = xcalloc(nlive ? nlive : 1, sizeof *by_live);
  if (backup_disks_by_live(disks, n, live, nlive, by_live) < 0) {
    error_clear();
    return false;
  }
  AUTOPTR(xmlDoc) doc = xmlReadMemory(xml, (int)strlen(xml), "checkpoint.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (!root || strcmp((const char *)root->name, "domaincheckpoint") != 0) return false;
  for (size_t j = 0; j < nlive; j++) {
    if (!live[j].target || !by_live[j] || !by_live[j]->incremental) continue;
    bool found = false;
    for (xmlNode *c = child(root, "disks") ? child(root, "disks")->children : NULL; c && !found; c = c->next) {
      if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "disk") != 0) continue;
      AUTOFREE char *target = attr_dup(c, "name");
      AUTOFREE char *kind = attr_dup(c, "checkpoint");
      AUTOFREE char *bitmap = attr_dup(c, "bitmap");
      found = target && strcmp(target, live[j].target) == 0 && kind && strcmp(kind, "bitmap") == 0 &&
              strcmp(bitmap ? bitmap : name, name) == 0;
    }
    if (!found) return false;
  }
  return true;
}

char *domxml_graphics(const char *type, const char *listen, const char *password, int64_t valid_until)
{
  struct buf b = BUF_INIT;
  buf_printf(&b, "    <graphics type='%s' autoport='yes' passwd='", type);
  buf_put_xml_escaped(&b, password);
  buf_puts(&b, "'");
  if (valid_until > 0) {
    char when[32];
    time_t t = (time_t)valid_until;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(&b, " passwdValidTo='%s'", when);
  }
  buf_puts(&b, ">\n      <listen type='address' address='");
  buf_put_xml_escaped(&b, listen);
  buf_puts(&b, "'/>\n    </graphics>\n");
  return buf_detach(&b);
}

int domxml_parse_graphics(const char *xml, struct hyper_graphics *out, size_t max, size_t *n)
{
  *n = 0;
  AUTOPTR(xmlDoc) doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (!root || strcmp((const char *)root->name, "domain") != 0)
    return error(ERR_INTERNAL, "cannot parse the domain XML");
  for (xmlNode *g = child(child(root, "devices"), "graphics"); g && *n < max; g = g->next) {
    if (g->type != XML_ELEMENT_NODE || strcmp((const char *)g->name, "graphics") != 0) continue;
    struct hyper_graphics *o = &out[(*n)++];
    *o = (struct hyper_graphics){.port = -1};
    AUTOFREE char *type = attr_dup(g, "type");
    AUTOFREE char *port = attr_dup(g, "port");
    AUTOFREE char *listen = attr_dup(g, "listen");
    snprintf(o->type, sizeof o->type, "%s", type ? type : "");
    snprintf(o->listen, sizeof o->listen, "%s", listen ? listen : "");
    if (port && atoi(port) > 0) o->port = atoi(port);
  }
  return 0;
}

char *domxml_nic(const struct hyper_nic *nic)
{
  const char *model = nic_iface_to_str(nic->iface);
  if (!model) return error(ERR_INVALID, "invalid NIC interface %d", nic->iface), NULL;
  struct buf b = BUF_INIT;
  if (nic->bridge) {
    buf_puts(&b, "    <interface type='bridge'>\n      <source bridge='");
    buf_put_xml_escaped(&b, nic->bridge);
  } else {
    buf_puts(&b, "    <interface type='network'>\n      <source network='");
    buf_put_xml_escaped(&b, nic->network ? nic->network : "default");
  }
  buf_puts(&b, "'/>\n      <mac address='");
  buf_put_xml_escaped(&b, nic->mac);
  buf_printf(&b, "'/>\n      <model type='%s'/>\n      <alias name='ua-", model);
  buf_put_xml_escaped(&b, nic->nic_id);
  buf_puts(&b, "'/>\n");
  if (nic->boot_order > 0) buf_printf(&b, "      <boot order='%d'/>\n", nic->boot_order);
  buf_puts(&b, "    </interface>\n");
  return buf_detach(&b);
}
