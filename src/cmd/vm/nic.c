/* nic.c: networks, the MAC pool and VMs' NICs (see nic.h).
 *
 * Hot-plug: a NIC added to, or plugged into, a running VM goes into the
 * domain first and into the store after; when the store write fails it is
 * unplugged again (compensate). Unplug goes the other way round: the device
 * leaves the domain, then the row changes. A crash between the two leaves a
 * row whose plugged flag the next start of the VM makes true again. */
#include "cmd/nic.h"
#include "cmd/internal.h"
#include "hyper/hyper.h"
#include "util/err.h"
#include "util/log.h"
#include "util/uuid.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int network_setup(struct engine *eng)
{
  AUTOFREE char *done = store_setting_get(eng->st, "networks_initialized");
  if (done) return 0;
  AUTOLIST(datacenter) dcs = datacenter_list_by_name(eng->st, "Default");
  if (!dcs) return -1;
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  AUTOFREE char *pool = random_hex(2);
  if (!pool) return -1;
  AUTOFREE char *range = xasprintf("56:6f:%.2s:%.2s", pool, pool + 2);
  struct network n = {.id = id, .name = (char *)"ovirtmgmt", .description = (char *)"Management Network",
                      .datacenter_id = dcs[0] ? dcs[0]->id : NULL, .libvirt_network = (char *)"default"};
  if (store_begin(eng->st) < 0) return -1;
  if (network_insert(eng->st, &n) < 0 || store_setting_set(eng->st, "mac_pool_prefix", range) < 0 ||
      store_setting_set(eng->st, "networks_initialized", "1") < 0) {
    store_rollback(eng->st);
    return -1;
  }
  if (store_commit(eng->st) < 0) return -1;
  log_info("first start: created network 'ovirtmgmt' (libvirt network 'default'), MAC pool %s:00:00-%s:ff:ff",
           range, range);
  return 0;
}

char *mac_pool_range(struct engine *eng)
{
  AUTOFREE char *p = store_setting_get(eng->st, "mac_pool_prefix");
  return p ? xasprintf("%s:00:00-%s:ff:ff", p, p) : NULL;
}

/* the lowest free MAC of the pool; ERR_CONFLICT when all 65536 are taken */
static char *mac_allocate(struct engine *eng)
{
  AUTOFREE char *prefix = store_setting_get(eng->st, "mac_pool_prefix");
  if (!prefix) return error(ERR_INTERNAL, "the store has no MAC pool"), NULL;
  AUTOLIST(nic) used = nic_list_all(eng->st);
  if (!used) return NULL;
  unsigned char *taken = calloc(65536, 1);
  if (!taken) return error(ERR_INTERNAL, "out of memory"), NULL;
  size_t plen = strlen(prefix);
  for (size_t i = 0; used[i]; i++) {
    unsigned a, b;
    if (used[i]->mac && strncmp(used[i]->mac, prefix, plen) == 0 &&
        sscanf(used[i]->mac + plen, ":%2x:%2x", &a, &b) == 2)
      taken[(a << 8) | b] = 1;
  }
  char *mac = NULL;
  for (unsigned i = 1; i < 65536 && !mac; i++)
    if (!taken[i]) mac = xasprintf("%s:%02x:%02x", prefix, i >> 8, i & 0xff);
  free(taken);
  if (!mac) error(ERR_CONFLICT, "cannot add a NIC: the MAC pool %s:00:00-%s:ff:ff is exhausted", prefix, prefix);
  return mac;
}

/* a hyper_nic for n (strings copied); network may be NULL for an unconnected NIC */
static void hyper_nic_fill(struct hyper_nic *h, const struct nic *n, const struct network *net)
{
  h->nic_id = xstrdup(n->id);
  h->mac = xstrdup(n->mac);
  h->iface = n->iface;
  h->network = net && net->libvirt_network ? xstrdup(net->libvirt_network) : NULL;
  h->bridge = net && net->bridge ? xstrdup(net->bridge) : NULL;
}

static void hyper_nic_clear(struct hyper_nic *h)
{
  free((char *)h->nic_id);
  free((char *)h->mac);
  free((char *)h->network);
  free((char *)h->bridge);
  *h = (struct hyper_nic){0};
}

void vm_nics_free(struct hyper_nic *nics, size_t n)
{
  for (size_t i = 0; nics && i < n; i++) hyper_nic_clear(&nics[i]);
  free(nics);
}

int vm_start_nics(struct engine *eng, const char *vm_id, struct hyper_nic **out, size_t *n)
{
  *out = NULL;
  *n = 0;
  AUTOLIST(nic) l = nic_list_plugged_networked(eng->st, vm_id);
  if (!l) return -1;
  size_t cnt = 0;
  while (l[cnt]) cnt++;
  *out = xcalloc(cnt ? cnt : 1, sizeof **out);
  for (size_t i = 0; i < cnt; i++) {
    AUTOPTR(network) net = network_get(eng->st, l[i]->network_id);
    if (!net) {
      vm_nics_free(*out, *n);
      *out = NULL;
      *n = 0;
      return error_prefix("NIC '%s': ", l[i]->name);
    }
    hyper_nic_fill(&(*out)[(*n)++], l[i], net);
  }
  return 0;
}

/* ---- commands ---- */

struct nic_args {
  const char *vm_id, *nic_id;
  const struct nic_spec *spec;
  struct vm *vm;
  struct nic *nic;             /* update/remove: the row; add: the new row */
  struct network *net;         /* the network the NIC ends on, or NULL */
  bool running, hot;           /* hot: the domain changed and compensate must undo it */
  bool hot_unplug;             /* the change was an unplug */
  char id[UUID_STRLEN + 1];
};

static void nic_args_clear(struct nic_args *a)
{
  vm_free(a->vm);
  nic_free(a->nic);
  network_free(a->net);
}

static int nic_common_validate(struct cmd_ctx *c)
{
  struct nic_args *a = c->data;
  if (!(a->vm = vm_get(c->eng->st, a->vm_id))) return -1;
  a->running = a->vm->status != VM_DOWN && a->vm->host_id;
  if (a->nic_id) {
    if (!(a->nic = nic_get(c->eng->st, a->nic_id))) return -1;
    if (strcmp(a->nic->vm_id, a->vm->id) != 0)
      return error(ERR_NOT_FOUND, "NIC '%s' does not belong to VM '%s'", a->nic_id, a->vm->name);
  }
  const struct nic_spec *s = a->spec;
  if (!s) return 0;
  if (s->name) {
    if (!*s->name || strlen(s->name) > 64)
      return error(ERR_INVALID, "invalid NIC name '%s': give 1 to 64 characters", s->name);
    AUTOLIST(nic) same = nic_list_by_vm_name(c->eng->st, a->vm->id, s->name);
    if (!same) return -1;
    if (same[0] && (!a->nic || strcmp(same[0]->id, a->nic->id) != 0))
      return error(ERR_CONFLICT, "cannot add NIC '%s' to VM '%s': the VM has a NIC of that name",
                   s->name, a->vm->name);
  }
  const char *net_id = s->network_id ? s->network_id : (a->nic && !s->clear_network ? a->nic->network_id : NULL);
  if (net_id && !(a->net = network_get(c->eng->st, net_id)))
    return error_prefix("vNIC profile '%s': ", net_id);
  if (a->nic && a->running && a->nic->plugged) {
    bool changes_device = (s->iface >= 0 && s->iface != a->nic->iface) ||
                          (s->network_id && (!a->nic->network_id || strcmp(s->network_id, a->nic->network_id) != 0)) ||
                          s->clear_network;
    if (changes_device && s->plugged != 0)
      return error(ERR_CONFLICT, "cannot change the interface or network of NIC '%s' while it is plugged into "
                   "running VM '%s': unplug it first (<plugged>false</plugged>)", a->nic->name, a->vm->name);
  }
  return 0;
}

static int nic_add_execute(struct cmd_ctx *c)
{
  struct nic_args *a = c->data;
  const struct nic_spec *s = a->spec;
  if (uuid_generate_str(a->id) < 0) return -1;
  AUTOFREE char *mac = mac_allocate(c->eng);
  if (!mac) return -1;
  int64_t pos = nic_count_all(c->eng->st);
  struct nic n = {.id = a->id, .vm_id = a->vm->id, .name = (char *)s->name, .mac = mac,
                  .network_id = a->net ? a->net->id : NULL, .iface = s->iface >= 0 ? s->iface : NIC_VIRTIO,
                  .plugged = s->plugged != 0, .position = pos < 0 ? 0 : pos + 1};
  if (a->running && n.plugged && a->net) {
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(c->eng, a->vm->host_id, &ops);
    if (!h) return -1;
    struct hyper_nic hn = {0};
    hyper_nic_fill(&hn, &n, a->net);
    int rc = ops->nic_attach ? ops->nic_attach(h, a->vm->id, &hn)
                             : error(ERR_UNSUPPORTED, "the host cannot hot-plug NICs");
    if (rc == 0) {
      a->hot = true;
      a->nic = xcalloc(1, sizeof *a->nic);
      a->nic->id = xstrdup(n.id);
      a->nic->mac = xstrdup(n.mac);
      a->nic->iface = n.iface;
    }
    hyper_nic_clear(&hn);
    if (rc < 0) return -1;
  }
  return nic_insert(c->eng->st, &n);
}

/* undoes a hot-plug (or hot-unplug) whose store write failed */
static void nic_compensate(struct cmd_ctx *c)
{
  struct nic_args *a = c->data;
  if (!a->hot || !a->nic) return;
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(c->eng, a->vm->host_id, &ops);
  if (!h) { error_clear(); return; }
  struct hyper_nic hn = {0};
  hyper_nic_fill(&hn, a->nic, a->net);
  int rc = a->hot_unplug ? ops->nic_attach(h, a->vm->id, &hn) : ops->nic_detach(h, a->vm->id, &hn);
  if (rc < 0) { log_err("cannot undo the hot-plug of NIC %s: %s", a->nic->mac, error_message()); error_clear(); }
  hyper_nic_clear(&hn);
}

static int nic_update_execute(struct cmd_ctx *c)
{
  struct nic_args *a = c->data;
  const struct nic_spec *s = a->spec;
  struct nic *n = a->nic;
  bool plug = s->plugged == 1 && !n->plugged, unplug = s->plugged == 0 && n->plugged;
  if (s->name) { free(n->name); n->name = xstrdup(s->name); }
  if (s->iface >= 0) n->iface = s->iface;
  if (s->network_id || s->clear_network) {
    free(n->network_id);
    n->network_id = a->net && !s->clear_network ? xstrdup(a->net->id) : NULL;
  }
  if (a->running && (plug || unplug) && (a->net || unplug)) {
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(c->eng, a->vm->host_id, &ops);
    if (!h) return -1;
    struct hyper_nic hn = {0};
    hyper_nic_fill(&hn, n, a->net);
    int rc = plug ? ops->nic_attach(h, a->vm->id, &hn) : ops->nic_detach(h, a->vm->id, &hn);
    hyper_nic_clear(&hn);
    if (rc < 0) return -1;
    a->hot = true;
    a->hot_unplug = unplug;
  }
  if (plug) n->plugged = true;
  if (unplug) n->plugged = false;
  return nic_update(c->eng->st, n);
}

static int nic_remove_execute(struct cmd_ctx *c)
{
  struct nic_args *a = c->data;
  if (a->running && a->nic->plugged && a->nic->network_id) {
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(c->eng, a->vm->host_id, &ops);
    if (!h) return -1;
    AUTOPTR(network) net = network_get(c->eng->st, a->nic->network_id);
    if (!net) error_clear();
    struct hyper_nic hn = {0};
    hyper_nic_fill(&hn, a->nic, net);
    int rc = ops->nic_detach(h, a->vm->id, &hn);
    hyper_nic_clear(&hn);
    if (rc < 0) return -1;
  }
  return nic_delete(c->eng->st, a->nic->id);
}

static char *nic_describe(struct cmd_ctx *c, bool ok, const char *done, const char *doing)
{
  struct nic_args *a = c->data;
  const char *vm = a->vm ? a->vm->name : a->vm_id;
  const char *nic = a->spec && a->spec->name ? a->spec->name : a->nic ? a->nic->name : "?";
  return ok ? xasprintf("Network interface %s (%s) was %s VM %s", nic, a->nic && a->nic->mac ? a->nic->mac : "", done, vm)
            : xasprintf("Failed %s network interface %s of VM %s", doing, nic, vm);
}
static char *nic_add_describe(struct cmd_ctx *c, bool ok) { return nic_describe(c, ok, "added to", "adding"); }
static char *nic_update_describe(struct cmd_ctx *c, bool ok) { return nic_describe(c, ok, "updated on", "updating"); }
static char *nic_remove_describe(struct cmd_ctx *c, bool ok) { return nic_describe(c, ok, "removed from", "removing"); }

static const struct cmd_def nic_add_def = {
  "AddVmInterface", EV_NIC_ADDED, nic_common_validate, nic_add_execute, nic_compensate, nic_add_describe,
};
static const struct cmd_def nic_update_def = {
  "UpdateVmInterface", EV_NIC_UPDATED, nic_common_validate, nic_update_execute, nic_compensate, nic_update_describe,
};
static const struct cmd_def nic_remove_def = {
  "RemoveVmInterface", EV_NIC_REMOVED, nic_common_validate, nic_remove_execute, NULL, nic_remove_describe,
};

static int nic_run(const struct cmd_def *def, struct engine *eng, const struct user *u, const char *vm_id,
                   const char *nic_id, const struct nic_spec *s, char **id_out)
{
  struct nic_args a = {.vm_id = vm_id, .nic_id = nic_id, .spec = s};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .locks = {vm_id}, .data = &a};
  int rc = cmd_run(def, &c);
  if (rc == 0 && id_out) *id_out = xstrdup(a.id);
  nic_args_clear(&a);
  return rc;
}

int cmd_nic_add(struct engine *eng, const struct user *u, const char *vm_id, const struct nic_spec *s, char **id_out)
{
  if (!s->name) return error(ERR_INVALID, "missing required field 'nic.name': add <name>nic1</name>");
  return nic_run(&nic_add_def, eng, u, vm_id, NULL, s, id_out);
}

int cmd_nic_update(struct engine *eng, const struct user *u, const char *vm_id, const char *nic_id,
                   const struct nic_spec *s)
{
  return nic_run(&nic_update_def, eng, u, vm_id, nic_id, s, NULL);
}

int cmd_nic_remove(struct engine *eng, const struct user *u, const char *vm_id, const char *nic_id)
{
  return nic_run(&nic_remove_def, eng, u, vm_id, nic_id, NULL, NULL);
}

/* ---- networks ---- */

struct network_args {
  struct network in;
  char id[UUID_STRLEN + 1];
};

static int network_add_validate(struct cmd_ctx *c)
{
  struct network_args *a = c->data;
  struct network *n = &a->in;
  if (!n->name || !*n->name || strlen(n->name) > 50)
    return error(ERR_INVALID, "invalid network name: give 1 to 50 characters");
  if ((n->bridge != NULL) == (n->libvirt_network != NULL))
    return error(ERR_INVALID, "network '%s': give exactly one of <bridge> (a host bridge) or "
                 "<libvirt_network> (a libvirt network of the host)", n->name);
  const char *host_name = n->bridge ? n->bridge : n->libvirt_network;
  if (!*host_name || strlen(host_name) > 64 || strpbrk(host_name, "/'\"<>&"))
    return error(ERR_INVALID, "invalid host network name '%s'", host_name);
  int64_t same = network_count_by_name(c->eng->st, n->name);
  if (same < 0) return -1;
  if (same > 0) return error(ERR_CONFLICT, "cannot add network '%s': the name is in use", n->name);
  if (n->datacenter_id) {
    AUTOPTR(datacenter) dc = datacenter_get(c->eng->st, n->datacenter_id);
    if (!dc) return -1;
  }
  return 0;
}

static int network_add_execute(struct cmd_ctx *c)
{
  struct network_args *a = c->data;
  if (uuid_generate_str(a->id) < 0) return -1;
  a->in.id = a->id;
  return network_insert(c->eng->st, &a->in);
}

static char *network_add_describe(struct cmd_ctx *c, bool ok)
{
  struct network_args *a = c->data;
  return ok ? xasprintf("Network %s was added", a->in.name)
            : xasprintf("Failed to add network %s", a->in.name ? a->in.name : "");
}

static const struct cmd_def network_add_def = {
  "AddNetwork", EV_NETWORK_ADDED, network_add_validate, network_add_execute, NULL, network_add_describe,
};

int cmd_network_add(struct engine *eng, const struct user *u, const struct network *n, char **id_out)
{
  struct network_args a = {.in = *n};
  struct cmd_ctx c = {.eng = eng, .user = u, .data = &a};
  if (cmd_run(&network_add_def, &c) < 0) return -1;
  *id_out = xstrdup(a.id);
  return 0;
}
