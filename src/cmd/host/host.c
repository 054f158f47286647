/* host.c: the hosts the engine drives, one libvirt connection each.
 *
 * A host row names its libvirt URI (libvirt_uri, or address for the local
 * host an older store made). engine_hyper() opens a host's connection on
 * first use, outside the table's lock, since an unreachable address can
 * take long to refuse; a host being connected answers ERR_UNAVAILABLE to
 * other callers meanwhile. Connections live until the engine closes: a
 * removed host's stays unused (another thread may still hold its struct
 * hyper), so no op ever runs on a closed one.
 *
 * The watcher (hosts_watch, on the housekeeping thread) pings each host. One
 * that stops answering becomes non_responsive with an event and its running
 * VMs unknown -- never down, they may still run there. When it answers
 * again it is up (unless an admin put it in maintenance) and the engine
 * reconciles, as after a libvirtd restart.
 *
 * Lifecycle events come with the host that sent them: an event about a VM
 * the store places on another host is stale or part of a migration (the
 * source's "stopped, migrated", the destination's "started") and is dropped;
 * the migration command records where the VM runs. */
#include "cmd/internal.h"
#include "cmd/perm.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <string.h>

struct host_conn {
  struct engine *eng;
  char *host_id;
  struct hyper *hyper;      /* NULL until connected */
  bool connecting;          /* an open runs outside hyper_mu */
  bool failed;              /* the last attempt or ping failed */
};

const char *host_uri(const struct host *h)
{
  return h->libvirt_uri ? h->libvirt_uri : h->address;
}

static void conn_on_lifecycle(void *opaque, const char *vm_id, int status, const char *reason)
{
  struct host_conn *hc = opaque;
  if (strcmp(reason, "migrated") == 0) return; /* the migration records the move */
  AUTOPTR(vm) vm = vm_get(hc->eng->st, vm_id);
  if (!vm) { error_clear(); return; } /* not one of ours */
  if (vm->host_id && strcmp(vm->host_id, hc->host_id) != 0) return; /* runs elsewhere */
  engine_on_lifecycle(hc->eng, vm_id, status, reason);
}

static void conn_on_device_removed(void *opaque, const char *vm_id, const char *alias)
{
  (void)opaque;
  log_debug("device '%s' removed from VM '%s'", alias, vm_id);
}

/* libvirtd restarted: what happened meanwhile sent no events. The
 * housekeeping thread reconciles (not this thread, which may be in the
 * middle of a command that holds object locks). */
static void conn_on_reconnected(void *opaque)
{
  struct host_conn *hc = opaque;
  log_warn("connection to host '%s' re-established: reconciling the VMs' state with libvirt", hc->host_id);
  __atomic_store_n(&hc->eng->reconcile_needed, true, __ATOMIC_RELEASE);
  housekeeping_wake(hc->eng);
}

/* the connection closed (libvirtd stopped or restarted): the housekeeping
 * thread pings every second for a minute, so the reconcile after a restart
 * comes about a second after libvirtd is back, not at the next 10 s round */
static void conn_on_disconnected(void *opaque)
{
  struct host_conn *hc = opaque;
  __atomic_store_n(&hc->eng->retry_until_ms, mono_ms() + 60 * 1000, __ATOMIC_RELEASE);
  housekeeping_wake(hc->eng);
}

const struct hyper_callbacks engine_callbacks = {
  .lifecycle = conn_on_lifecycle,
  .device_removed = conn_on_device_removed,
  .reconnected = conn_on_reconnected,
  .disconnected = conn_on_disconnected,
};

/* the VMs host HOST_ID runs become unknown (it stopped answering) */
static void host_vms_unknown(struct engine *eng, const char *host_id)
{
  AUTOLIST(vm) vms = vm_list_not_down_on_host(eng->st, host_id);
  if (!vms) { log_err("%s", error_message()); error_clear(); return; }
  for (size_t i = 0; vms[i]; i++)
    if (vms[i]->status != VM_UNKNOWN && vm_set_status(eng->st, vms[i]->id, VM_UNKNOWN, host_id) < 0) {
      log_err("%s", error_message());
      error_clear();
    }
}

/* records whether host HOST_ID answers: the status (maintenance stays an
 * admin's choice) and, on a change, an event; a host that stopped
 * answering leaves its VMs unknown */
static void host_set_answering(struct engine *eng, const char *host_id, bool answers)
{
  AUTOPTR(host) h = host_get(eng->st, host_id);
  if (!h) { error_clear(); return; }
  bool was_silent = h->status == HOST_NON_RESPONSIVE || h->status == HOST_INSTALLING;
  if (answers && !was_silent) return;
  if (!answers) host_vms_unknown(eng, host_id);
  if (!answers && h->status == HOST_MAINTENANCE) return; /* the admin's choice stays */
  if (!answers && h->status == HOST_NON_RESPONSIVE) return;
  if (answers) {
    int was = h->status;
    h->status = HOST_UP;
    if (host_update(eng->st, h) < 0) { log_err("cannot update host status: %s", error_message()); return; }
    if (was == HOST_NON_RESPONSIVE) /* installing -> up is the expected course: no event */
      engine_event(eng, SEVERITY_NORMAL, EV_HOST_ACTIVATED, NULL, NULL,
                   "host %s answers again; reconciling its VMs", h->name);
    return;
  }
  int was = h->status;
  h->status = HOST_NON_RESPONSIVE;
  if (host_update(eng->st, h) < 0) { log_err("cannot update host status: %s", error_message()); return; }
  if (was != HOST_NON_RESPONSIVE)
    engine_event(eng, SEVERITY_ERROR, EV_HOST_NON_RESPONSIVE, NULL, NULL,
                 "host %s is non responsive: %s; its VMs are unknown", h->name, error_message());
}

/* the connection entry of HOST_ID; hyper_mu held */
static struct host_conn *conn_find_locked(struct engine *eng, const char *host_id)
{
  for (size_t i = 0; i < eng->nconns; i++)
    if (strcmp(eng->conns[i]->host_id, host_id) == 0) return eng->conns[i];
  struct host_conn *hc = xcalloc(1, sizeof *hc);
  hc->eng = eng;
  hc->host_id = xstrdup(host_id);
  eng->conns = xrealloc(eng->conns, (eng->nconns + 1) * sizeof *eng->conns);
  eng->conns[eng->nconns++] = hc;
  return hc;
}

static int unavailable(void)
{
  if (error_code() != ERR_UNAVAILABLE) {
    struct err_saved s;
    error_save(&s);
    s.code = ERR_UNAVAILABLE;
    error_restore(&s);
  }
  return -1;
}

struct hyper *engine_hyper(struct engine *eng, const char *host_id, const struct hyper_ops **ops)
{
  if (!host_id) host_id = eng->host_id;
  pthread_mutex_lock(&eng->hyper_mu);
  struct host_conn *hc = conn_find_locked(eng, host_id);
  struct hyper *h = hc->hyper;
  bool busy = !h && hc->connecting;
  if (!h && !busy) hc->connecting = true;
  pthread_mutex_unlock(&eng->hyper_mu);
  if (ops) *ops = eng->hyper_ops;
  if (h) return h;
  if (busy) {
    error(ERR_UNAVAILABLE, "host '%s' is being connected; try again", host_id);
    return NULL;
  }
  AUTOPTR(host) row = host_get(eng->st, host_id);
  if (row) {
    struct hyper_options o = {
      .uri = host_uri(row), .domain_type = eng->domain_type,
      .detach_timeout_ms = eng->detach_timeout_ms, .cb = &engine_callbacks, .opaque = hc,
      .console_listen = eng->console_listen,
    };
    h = eng->hyper_ops->open(&o);
    if (!h) error_prefix("host '%s' does not answer: ", row->name);
  }
  bool was_failed;
  pthread_mutex_lock(&eng->hyper_mu);
  hc->connecting = false;
  hc->hyper = h;
  was_failed = hc->failed;
  hc->failed = !h;
  pthread_mutex_unlock(&eng->hyper_mu);
  if (!row) return NULL;
  struct err_saved s;
  error_save(&s);
  host_set_answering(eng, host_id, h != NULL);
  error_restore(&s);
  if (!h) {
    unavailable();
    return NULL;
  }
  if (was_failed) { /* up after it was not: what ran meanwhile is unknown */
    __atomic_store_n(&eng->reconcile_needed, true, __ATOMIC_RELEASE);
    housekeeping_wake(eng);
  }
  return h;
}

bool hosts_watch(struct engine *eng)
{
  AUTOLIST(host) hosts = host_list_all(eng->st);
  if (!hosts) { log_err("%s", error_message()); error_clear(); return false; }
  bool all = true;
  for (size_t i = 0; hosts[i]; i++) {
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(eng, hosts[i]->id, &ops);
    if (!h) { error_clear(); all = false; continue; } /* engine_hyper recorded it */
    bool ok = ops->ping(h) == 0;
    all &= ok;
    pthread_mutex_lock(&eng->hyper_mu);
    struct host_conn *hc = conn_find_locked(eng, hosts[i]->id);
    bool was_failed = hc->failed;
    hc->failed = !ok;
    pthread_mutex_unlock(&eng->hyper_mu);
    if (ok != !was_failed || !ok) host_set_answering(eng, hosts[i]->id, ok);
    if (ok && was_failed) __atomic_store_n(&eng->reconcile_needed, true, __ATOMIC_RELEASE);
    error_clear();
  }
  return all;
}

void hosts_close(struct engine *eng)
{
  for (size_t i = 0; i < eng->nconns; i++) {
    if (eng->conns[i]->hyper) eng->hyper_ops->close(eng->conns[i]->hyper);
    free(eng->conns[i]->host_id);
    free(eng->conns[i]);
  }
  free(eng->conns);
  eng->conns = NULL;
  eng->nconns = 0;
}

char *host_pick(struct engine *eng, const char *cluster_id, const char *except)
{
  AUTOLIST(host) hosts = host_list_by_cluster_status(eng->st, cluster_id, HOST_UP);
  if (!hosts) return NULL;
  const char *best = NULL;
  int64_t best_free = -1;
  for (size_t i = 0; hosts[i]; i++) {
    if (except && strcmp(hosts[i]->id, except) == 0) continue;
    const struct hyper_ops *ops;
    struct hyper *h = engine_hyper(eng, hosts[i]->id, &ops);
    struct hyper_host_stats hs;
    if (!h || ops->host_stats(h, &hs) < 0) {
      log_warn("placement skips host '%s': %s", hosts[i]->name, error_message());
      error_clear();
      continue;
    }
    int64_t avail = hs.mem_free + hs.mem_buffers + hs.mem_cached;
    if (avail > best_free) {
      best_free = avail;
      best = hosts[i]->id;
    }
  }
  if (!best) {
    /* say what the others are, so the admin knows which to look at */
    AUTOLIST(host) all = host_list_by_cluster(eng->st, cluster_id);
    AUTOBUF struct buf why = BUF_INIT;
    for (size_t i = 0; all && all[i]; i++)
      if (!except || strcmp(all[i]->id, except) != 0)
        buf_printf(&why, "%s%s %s", why.len ? ", " : " (", all[i]->name, host_status_to_str(all[i]->status));
    if (why.len) buf_printf(&why, ")");
    AUTOPTR(cluster) cl = cluster_get(eng->st, cluster_id);
    error(ERR_CONFLICT, "there is no %shost up in cluster '%s'%s", except ? "other " : "",
          cl ? cl->name : cluster_id, buf_str(&why));
    return NULL;
  }
  return xstrdup(best);
}

int host_check_no_pinned(struct engine *eng, const struct host *host)
{
  /* a VM with a disk snapshot plugged cannot migrate, so its host cannot be emptied */
  AUTOLIST(attachment) pinned = attachment_list_plugged_snapshots_on_host(eng->st, host->id);
  if (!pinned) return -1;
  if (!pinned[0]) return 0;
  AUTOPTR(vm) vm = vm_get(eng->st, pinned[0]->vm_id);
  return error(ERR_CONFLICT, "cannot switch host '%s' to maintenance: VM '%s' has snapshot '%s' "
               "of disk '%s' plugged and cannot migrate; detach it first", host->name,
               vm ? vm->name : pinned[0]->vm_id, pinned[0]->snapshot_id, pinned[0]->disk_id);
}

/* ---- add and remove ---- */

struct host_add_args { struct host *host; };

/* the URI schemes a remote host may be reached by (never a local socket of
 * this machine by another name) */
static bool uri_scheme_allowed(const char *uri)
{
  static const char *const schemes[] = {"qemu+ssh://", "qemu+tls://", "qemu+tcp://"};
  for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
    if (strncmp(uri, schemes[i], strlen(schemes[i])) == 0) return true;
  return false;
}

static bool address_valid(const char *a)
{
  if (!a[0] || strlen(a) > 253) return false;
  for (const char *p = a; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
          *p == '-' || *p == ':' || *p == '_'))
      return false;
  return true;
}

static int host_add_validate(struct cmd_ctx *c)
{
  struct host *h = ((struct host_add_args *)c->data)->host;
  if (!h->name || !h->name[0]) return error(ERR_INVALID, "missing required field 'host.name'");
  if (!h->address || !h->address[0])
    return error(ERR_INVALID, "missing required field 'host.address': the host's name or IP address");
  if (!address_valid(h->address))
    return error(ERR_INVALID, "invalid 'host.address' '%s': give a host name or an IP address", h->address);
  if (h->libvirt_uri && !uri_scheme_allowed(h->libvirt_uri))
    return error(ERR_INVALID, "invalid 'host.libvirt_uri' '%s': use qemu+ssh://, qemu+tls:// or qemu+tcp://",
                 h->libvirt_uri);
  int64_t same = host_count_by_name(c->eng->st, h->name);
  if (same < 0) return -1;
  if (same) return error(ERR_CONFLICT, "cannot add host '%s': a host of that name exists", h->name);
  AUTOPTR(cluster) cl = cluster_get(c->eng->st, h->cluster_id);
  if (!cl) return error_prefix("cannot add host '%s': ", h->name);
  return 0;
}

/* the host is recorded installing, then connected: up when it answers,
 * non_responsive (with the reason as an event) when it does not; the
 * watcher keeps trying either way */
static int host_add_execute(struct cmd_ctx *c)
{
  struct host *h = ((struct host_add_args *)c->data)->host;
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  free(h->id);
  h->id = xstrdup(id);
  if (!h->libvirt_uri) h->libvirt_uri = xasprintf("qemu+ssh://root@%s/system", h->address);
  h->status = HOST_INSTALLING;
  if (host_insert(c->eng->st, h) < 0) return -1;
  const struct hyper_ops *ops;
  if (!engine_hyper(c->eng, h->id, &ops)) error_clear(); /* the watcher keeps trying */
  AUTOPTR(host) now = host_get(c->eng->st, h->id);
  if (now) h->status = now->status;
  error_clear();
  return 0;
}

static char *host_add_describe(struct cmd_ctx *c, bool ok)
{
  struct host *h = ((struct host_add_args *)c->data)->host;
  return ok ? xasprintf("host %s (%s) was added by %s", h->name, host_uri(h), c->user->name)
            : xasprintf("adding host %s", h->name ? h->name : "");
}

static const struct cmd_def host_add_def = {
  "AddVds", EV_HOST_ADDED, host_add_validate, host_add_execute, NULL, host_add_describe,
};

int cmd_host_add(struct engine *eng, const struct user *u, struct host *h)
{
  struct host_add_args a = {.host = h};
  if (!h->cluster_id) {
    /* the cluster of the local host by default, as oVirt's Default */
    AUTOPTR(host) local = host_get(eng->st, eng->host_id);
    if (!local) return -1;
    h->cluster_id = xstrdup(local->cluster_id);
  }
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {h->name}, .data = &a};
  c.needs[0] = (struct cmd_need){PERMIT_CREATE_HOST, OBJ_CLUSTER, h->cluster_id};
  return cmd_run(&host_add_def, &c);
}

struct host_rm_args { const char *host_id; struct host *host; };

static int host_remove_validate(struct cmd_ctx *c)
{
  struct host_rm_args *a = c->data;
  a->host = host_get(c->eng->st, a->host_id);
  if (!a->host) return -1;
  if (strcmp(a->host_id, c->eng->host_id) == 0)
    return error(ERR_CONFLICT, "cannot remove host '%s': it is the engine's own host (--libvirt-uri)",
                 a->host->name);
  int64_t running = vm_count_not_down_on_host(c->eng->st, a->host_id);
  if (running < 0) return -1;
  if (running)
    return error(ERR_CONFLICT, "cannot remove host '%s': %lld VM(s) run on it; migrate or stop them first",
                 a->host->name, (long long)running);
  int64_t pinned = vm_count_by_placement_host(c->eng->st, a->host_id);
  if (pinned < 0) return -1;
  if (pinned)
    return error(ERR_CONFLICT, "cannot remove host '%s': %lld VM(s) name it in their placement policy",
                 a->host->name, (long long)pinned);
  return 0;
}

static int host_remove_execute(struct cmd_ctx *c)
{
  struct host_rm_args *a = c->data;
  return host_delete(c->eng->st, a->host_id);
}

static char *host_remove_describe(struct cmd_ctx *c, bool ok)
{
  struct host_rm_args *a = c->data;
  const char *name = a->host ? a->host->name : a->host_id;
  return ok ? xasprintf("host %s was removed by %s", name, c->user->name) : xasprintf("removing host %s", name);
}

static const struct cmd_def host_remove_def = {
  "RemoveVds", EV_HOST_REMOVED, host_remove_validate, host_remove_execute, NULL, host_remove_describe,
};

int cmd_host_remove(struct engine *eng, const struct user *u, const char *host_id)
{
  struct host_rm_args a = {.host_id = host_id};
  struct cmd_ctx c = {.eng = eng, .user = u, .locks = {host_id}, .data = &a};
  int rc = cmd_run(&host_remove_def, &c);
  host_free(a.host);
  return rc;
}
