/* hyper_libvirt.c: the hypervisor ops on top of libvirt.
 *
 * Event loop: libvirt delivers domain events only to connections opened after
 * an event loop implementation was registered. The first hyper open in a
 * process registers libvirt's default implementation (once, it cannot be
 * undone) and starts one event thread running virEventRunDefaultImpl; every
 * struct hyper shares it, and the last close stops it.
 *
 * Locks: conn_lock guards the connection (opened and re-opened lazily when
 * virConnectIsAlive says it dropped) and is held across libvirt calls only
 * while (re)connecting. wait_lock guards the detach and block job waiters and is taken by
 * the event callbacks; it is never held across a libvirt call, so the event
 * thread cannot deadlock against an op. attach_lock serialises hot-plugs so
 * two of them do not pick the same target name.
 *
 * Errors are libvirt's message, reported once with error(); libvirt's own
 * printing to stderr is switched off.
 *
 * The statistics (hyper_lvstats.c), the volumes on a host's local storage
 * (hyper_lvvolume.c), the consoles, CD-ROM and guest addresses
 * (hyper_lvguest.c), pull backups (hyper_lvbackup.c), block commits
 * (hyper_lvcommit.c) and migration (hyper_lvmigrate.c) live in files of their
 * own; hyper_lv.h is what they share. */
#include "hyper/hyper_lv.h"
#include "hyper/domxml.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define DETACH_TIMEOUT_DEFAULT_MS 10000
/* how long close waits for libvirt to release the event callbacks */
#define CALLBACK_RELEASE_MS 5000

/* ---- process-wide libvirt setup and the event thread ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;
static pthread_mutex_t event_lock = PTHREAD_MUTEX_INITIALIZER;
static int event_users;
static bool event_stop;
static pthread_t event_thread;

/* libvirt prints every error to stderr unless told otherwise; we report
 * errors ourselves through error() */
static void silent_error_func(void *opaque, virErrorPtr err) {}

static void global_init(void)
{
  if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
    global_rc = -1;
    return;
  }
  virSetErrorFunc(NULL, silent_error_func);
}

static void *event_main(void *arg)
{
  for (;;) {
    pthread_mutex_lock(&event_lock);
    bool stop = event_stop;
    pthread_mutex_unlock(&event_lock);
    if (stop) break;
    if (virEventRunDefaultImpl() < 0) {
      log_warn("libvirt event loop failed: %s", virGetLastErrorMessage());
      struct timespec ts = {0, 100 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

static void wake_timer(int timer, void *opaque)
{
  virEventRemoveTimeout(timer);
}

/* registers the default event loop once and starts the thread for the first user */
static int event_loop_acquire(void)
{
  pthread_once(&global_once, global_init);
  if (global_rc < 0)
    return error(ERR_INTERNAL, "cannot initialise libvirt: %s", virGetLastErrorMessage());
  pthread_mutex_lock(&event_lock);
  int rc = 0;
  if (event_users == 0) {
    event_stop = false;
    int e = pthread_create(&event_thread, NULL, event_main, NULL);
    if (e != 0) rc = error(ERR_INTERNAL, "cannot start the libvirt event thread: %s", strerror(e));
  }
  if (rc == 0) event_users++;
  pthread_mutex_unlock(&event_lock);
  return rc;
}

/* the last user stops the thread: a zero timeout wakes virEventRunDefaultImpl */
static void event_loop_release(void)
{
  pthread_mutex_lock(&event_lock);
  bool last = --event_users == 0;
  if (last) event_stop = true;
  pthread_mutex_unlock(&event_lock);
  if (!last) return;
  virEventAddTimeout(0, wake_timer, NULL, NULL);
  pthread_join(event_thread, NULL);
}

/* ---- errors ---- */

/* maps the thread's last libvirt error to our code */
static enum err_code virt_code(void)
{
  virErrorPtr e = virGetLastError();
  if (!e) return ERR_INTERNAL;
  switch (e->code) {
  case VIR_ERR_NO_DOMAIN:
  case VIR_ERR_DEVICE_MISSING:
    return ERR_NOT_FOUND;
  case VIR_ERR_NO_CONNECT:
  case VIR_ERR_INVALID_CONN:
  case VIR_ERR_RPC:
  case VIR_ERR_AUTH_FAILED:
  case VIR_ERR_AUTH_UNAVAILABLE:
    return ERR_UNAVAILABLE;
  case VIR_ERR_OPERATION_INVALID:
    return ERR_CONFLICT;
  case VIR_ERR_CONFIG_UNSUPPORTED:
  case VIR_ERR_NO_SUPPORT:
  case VIR_ERR_ARGUMENT_UNSUPPORTED:
    return ERR_UNSUPPORTED;
  case VIR_ERR_XML_ERROR:
  case VIR_ERR_XML_DETAIL:
  case VIR_ERR_INVALID_ARG:
    return ERR_INVALID;
  default:
    return e->domain == VIR_FROM_RPC ? ERR_UNAVAILABLE : ERR_INTERNAL;
  }
}

/* error(code of libvirt's last error, "<what>: <libvirt's message>") */
int hyper_lv_virt_error_at(const char *func, int line, const char *fmt, ...)
{
  AUTOBUF struct buf what = BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&what, fmt, ap);
  va_end(ap);
  return error_at(virt_code(), func, line, "%s: %s", buf_str(&what), virGetLastErrorMessage());
}

bool hyper_lv_last_error_is(int code)
{
  virErrorPtr e = virGetLastError();
  return e && e->code == code;
}

/* ---- events ---- */

static const char *stopped_reason(int detail)
{
  switch (detail) {
  case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: return "shutdown";
  case VIR_DOMAIN_EVENT_STOPPED_DESTROYED: return "destroyed";
  case VIR_DOMAIN_EVENT_STOPPED_CRASHED: return "crashed";
  case VIR_DOMAIN_EVENT_STOPPED_MIGRATED: return "migrated";
  case VIR_DOMAIN_EVENT_STOPPED_SAVED: return "saved";
  case VIR_DOMAIN_EVENT_STOPPED_FAILED: return "failed";
  case VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT: return "from_snapshot";
  default: return "stopped";
  }
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
  struct hyper *h = opaque;
  int status;
  const char *reason;
  switch (event) {
  /* a live migration pauses the source at the end and starts and resumes
   * the destination: "migrated", which the engine leaves to the migration */
  case VIR_DOMAIN_EVENT_STARTED:
    status = VM_UP;
    reason = detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? "migrated" : "started";
    break;
  case VIR_DOMAIN_EVENT_RESUMED:
    status = VM_UP;
    reason = detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED || detail == VIR_DOMAIN_EVENT_RESUMED_POSTCOPY
                 ? "migrated" : "resumed";
    break;
  case VIR_DOMAIN_EVENT_SUSPENDED:
    status = VM_PAUSED;
    reason = detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED || detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY
                 ? "migrated" : "paused";
    break;
  case VIR_DOMAIN_EVENT_STOPPED: status = VM_DOWN; reason = stopped_reason(detail); break;
  case VIR_DOMAIN_EVENT_CRASHED: status = VM_DOWN; reason = "crashed"; break;
  case VIR_DOMAIN_EVENT_SHUTDOWN:
    if (detail != VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED) return 0;
    status = VM_DOWN;
    reason = "shutdown";
    break;
  default: return 0;
  }
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom, uuid) < 0) return 0;
  if (h->cb.lifecycle) h->cb.lifecycle(h->opaque, uuid, status, reason);
  return 0;
}

static void on_device_removed(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
  struct hyper *h = opaque;
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom, uuid) < 0) return;
  /* the callback first, so that it has run when disk_detach returns */
  if (h->cb.device_removed) h->cb.device_removed(h->opaque, uuid, alias);
  pthread_mutex_lock(&h->wait_lock);
  for (struct detach_waiter *w = h->waiters; w; w = w->next)
    if (strcmp(w->vm_id, uuid) == 0 && strcmp(w->alias, alias) == 0) w->removed = true;
  pthread_cond_broadcast(&h->wait_cond);
  pthread_mutex_unlock(&h->wait_lock);
}

/* BLOCK_JOB_2: disk is the target name ("sda") */
static void on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type, int status,
                         void *opaque)
{
  struct hyper *h = opaque;
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom, uuid) < 0) return;
  pthread_mutex_lock(&h->wait_lock);
  for (struct job_waiter *w = h->job_waiters; w; w = w->next) {
    if (strcmp(w->vm_id, uuid) != 0 || strcmp(w->target, disk) != 0) continue;
    w->events++;
    if (status == VIR_DOMAIN_BLOCK_JOB_READY) w->ready = true;
  }
  pthread_cond_broadcast(&h->wait_cond);
  pthread_mutex_unlock(&h->wait_lock);
}

/* libvirt calls this when it no longer uses a registration's opaque */
static void on_callback_freed(void *opaque)
{
  struct hyper *h = opaque;
  pthread_mutex_lock(&h->wait_lock);
  h->callbacks_held--;
  pthread_cond_broadcast(&h->wait_cond);
  pthread_mutex_unlock(&h->wait_lock);
}

/* ---- connection ---- */

/* drops h->conn and its callbacks; conn_lock held */
static void on_close(virConnectPtr conn, int reason, void *opaque);

static void disconnect_locked(struct hyper *h)
{
  if (!h->conn) return;
  if (virConnectUnregisterCloseCallback(h->conn, on_close) < 0) virResetLastError();
  if (h->lifecycle_id >= 0) virConnectDomainEventDeregisterAny(h->conn, h->lifecycle_id);
  if (h->removed_id >= 0) virConnectDomainEventDeregisterAny(h->conn, h->removed_id);
  if (h->job_id >= 0) virConnectDomainEventDeregisterAny(h->conn, h->job_id);
  h->lifecycle_id = h->removed_id = h->job_id = -1;
  virConnectClose(h->conn);
  h->conn = NULL;
  h->conn_announced = false;
}

static int register_callback(struct hyper *h, int event_id, virConnectDomainEventGenericCallback cb)
{
  pthread_mutex_lock(&h->wait_lock);
  h->callbacks_held++;
  pthread_mutex_unlock(&h->wait_lock);
  int id = virConnectDomainEventRegisterAny(h->conn, NULL, event_id, cb, h, on_callback_freed);
  if (id < 0) {
    pthread_mutex_lock(&h->wait_lock);
    h->callbacks_held--;
    pthread_mutex_unlock(&h->wait_lock);
  }
  return id;
}

/* opens the connection and registers the events; conn_lock held */
static int connect_locked(struct hyper *h)
{
  h->conn = virConnectOpen(h->uri);
  if (!h->conn)
    return error(ERR_UNAVAILABLE, "cannot connect to host '%s': %s", h->uri, virGetLastErrorMessage());
  virConnSetErrorFunc(h->conn, NULL, silent_error_func);
  /* keepalive lets the connection notice a dead libvirtd; not every
   * driver supports it, which is fine */
  if (virConnectSetKeepAlive(h->conn, 5, 3) < 0) virResetLastError();
  /* tells the engine at once when libvirtd goes away (the test driver has
   * no close callback, which is fine) */
  if (virConnectRegisterCloseCallback(h->conn, on_close, h, NULL) < 0) virResetLastError();
  h->lifecycle_id = register_callback(h, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle));
  if (h->lifecycle_id >= 0)
    h->removed_id = register_callback(h, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                      VIR_DOMAIN_EVENT_CALLBACK(on_device_removed));
  if (h->removed_id >= 0)
    h->job_id = register_callback(h, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, VIR_DOMAIN_EVENT_CALLBACK(on_block_job));
  if (h->lifecycle_id < 0 || h->removed_id < 0 || h->job_id < 0) {
    int rc = virt_error("cannot watch the domain events of host '%s'", h->uri);
    disconnect_locked(h);
    return rc;
  }
  return 0;
}

/* libvirt's event thread: the connection closed (EOF, keepalive, error).
 * Registered on the connection only, so h outlives every call. */
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
  struct hyper *h = opaque;
  (void)conn;
  log_warn("connection to host '%s' closed (reason %d); reconnecting soon", h->uri, reason);
  if (h->cb.disconnected) h->cb.disconnected(h->opaque);
}

/* a reference to a live connection, reconnecting when it dropped; the
 * caller closes it (AUTOPTR(virConnect)) */
virConnectPtr hyper_lv_get_conn(struct hyper *h)
{
  pthread_mutex_lock(&h->conn_lock);
  if (h->conn && virConnectIsAlive(h->conn) != 1) {
    log_warn("connection to host '%s' dropped; reconnecting", h->uri);
    disconnect_locked(h);
  }
  virConnectPtr c = NULL;
  bool reconnected = false;
  if (h->conn || connect_locked(h) == 0) {
    virConnectRef(h->conn);
    c = h->conn;
    reconnected = h->was_connected && c != NULL && !h->conn_announced;
    h->was_connected = true;
    h->conn_announced = true;
  }
  pthread_mutex_unlock(&h->conn_lock);
  if (reconnected && h->cb.reconnected) h->cb.reconnected(h->opaque);
  return c;
}

/* the domain vm_id; ERR_NOT_FOUND "VM '...' is not running" when absent */
virDomainPtr hyper_lv_lookup(virConnectPtr c, const char *vm_id)
{
  virDomainPtr d = virDomainLookupByUUIDString(c, vm_id);
  if (!d) {
    if (hyper_lv_last_error_is(VIR_ERR_NO_DOMAIN))
      error(ERR_NOT_FOUND, "VM '%s' is not running", vm_id);
    else
      virt_error("cannot look up VM '%s'", vm_id);
  }
  return d;
}

virDomainPtr hyper_lv_domain(struct hyper *h, const char *vm_id)
{
  /* the domain holds its own reference to the connection */
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  return c ? hyper_lv_lookup(c, vm_id) : NULL;
}

/* ---- ops ---- */

static void lv_close(struct hyper *h);

static struct hyper *lv_open(const struct hyper_options *opts)
{
  if (!opts || !opts->uri) return error(ERR_INVALID, "no libvirt URI given"), NULL;
  if (event_loop_acquire() < 0) return NULL;
  struct hyper *h = xcalloc(1, sizeof *h);
  h->uri = xstrdup(opts->uri);
  h->domain_type = domain_type_resolve(opts->domain_type);
  h->detach_timeout_ms = opts->detach_timeout_ms > 0 ? opts->detach_timeout_ms : DETACH_TIMEOUT_DEFAULT_MS;
  h->console_listen = xstrdup(opts->console_listen ? opts->console_listen : "127.0.0.1");
  h->spice = -1;
  if (opts->cb) h->cb = *opts->cb;
  h->opaque = opts->opaque;
  h->lifecycle_id = h->removed_id = h->job_id = -1;
  pthread_mutex_init(&h->conn_lock, NULL);
  pthread_mutex_init(&h->attach_lock, NULL);
  pthread_mutex_init(&h->wait_lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->wait_cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_lock(&h->conn_lock);
  int rc = connect_locked(h);
  pthread_mutex_unlock(&h->conn_lock);
  if (rc < 0) {
    struct err_saved e;
    error_save(&e);
    lv_close(h);
    error_restore(&e);
    return NULL;
  }
  return h;
}

void hyper_lv_deadline_after(struct timespec *ts, int ms)
{
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Deregisters, disconnects, waits until libvirt released our callbacks (so
 * no event can reach a freed struct hyper), then stops the event thread if
 * this was its last user. Ops must not run concurrently with close. */
static void lv_close(struct hyper *h)
{
  if (!h) return;
  pthread_mutex_lock(&h->conn_lock);
  disconnect_locked(h);
  pthread_mutex_unlock(&h->conn_lock);
  struct timespec deadline;
  hyper_lv_deadline_after(&deadline, CALLBACK_RELEASE_MS);
  pthread_mutex_lock(&h->wait_lock);
  while (h->callbacks_held > 0)
    if (pthread_cond_timedwait(&h->wait_cond, &h->wait_lock, &deadline) == ETIMEDOUT) break;
  bool released = h->callbacks_held == 0;
  pthread_mutex_unlock(&h->wait_lock);
  event_loop_release();
  if (!released) {
    /* libvirt still holds h as callback data: leaking it is safer than a
     * use after free */
    log_warn("libvirt did not release the event callbacks of host '%s'", h->uri);
    return;
  }
  pthread_mutex_destroy(&h->conn_lock);
  pthread_mutex_destroy(&h->attach_lock);
  pthread_mutex_destroy(&h->wait_lock);
  pthread_cond_destroy(&h->wait_cond);
  free(h->uri);
  free(h->console_listen);
  free(h);
}

static int lv_ping(struct hyper *h)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  unsigned long ver;
  if (virConnectGetLibVersion(c, &ver) < 0) {
    enum err_code code = virt_code() == ERR_INTERNAL ? ERR_UNAVAILABLE : virt_code();
    return error(code, "host '%s' does not answer: %s", h->uri, virGetLastErrorMessage());
  }
  return 0;
}

static int lv_host_info(struct hyper *h, char **hostname, int *cpus, int64_t *memory)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  virNodeInfo info;
  if (virNodeGetInfo(c, &info) < 0) return virt_error("cannot read the node info of host '%s'", h->uri);
  char *name = virConnectGetHostname(c);
  if (!name) return virt_error("cannot read the hostname of host '%s'", h->uri);
  *hostname = xstrdup(name);
  free(name);
  *cpus = (int)info.cpus;
  *memory = (int64_t)info.memory * 1024;
  return 0;
}

static char *lv_domain_xml_for(struct hyper *h, const struct hyper_vm_spec *spec)
{
  return domxml_domain(spec, h->domain_type);
}

static int lv_domain_start(struct hyper *h, const struct hyper_vm_spec *spec_in)
{
  /* every VM gets a VNC console on the host's console address, locked until a ticket */
  struct hyper_vm_spec with_console = *spec_in;
  const struct hyper_vm_spec *spec = &with_console;
  if (!with_console.graphics_listen) with_console.graphics_listen = h->console_listen;
  /* and a SPICE one where QEMU has SPICE */
  if (hyper_lv_graphics_supported(h, "spice") == 1) with_console.spice = true;
  error_clear();
  AUTOFREE char *xml = domxml_domain(spec, h->domain_type);
  if (!xml) return -1;
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  const struct vm *vm = spec->vm;
  AUTOPTR(virDomain) old = virDomainLookupByUUIDString(c, vm->id);
  if (old && virDomainIsActive(old) == 1)
    return error(ERR_CONFLICT, "cannot start VM '%s': it is already running", vm->name);
  virResetLastError();
  AUTOPTR(virDomain) d = virDomainCreateXML(c, xml, 0);
  if (!d) return virt_error("cannot start VM '%s'", vm->name);
  return 0;
}

static int lv_domain_destroy(struct hyper *h, const char *vm_id)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOPTR(virDomain) d = virDomainLookupByUUIDString(c, vm_id);
  if (!d) {
    if (hyper_lv_last_error_is(VIR_ERR_NO_DOMAIN)) return 0;
    return virt_error("cannot stop VM '%s'", vm_id);
  }
  if (virDomainDestroy(d) < 0) {
    if (hyper_lv_last_error_is(VIR_ERR_OPERATION_INVALID) || hyper_lv_last_error_is(VIR_ERR_NO_DOMAIN)) return 0;
    return virt_error("cannot stop VM '%s'", vm_id);
  }
  return 0;
}

static int lv_domain_shutdown(struct hyper *h, const char *vm_id)
{
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  if (virDomainShutdown(d) < 0) return virt_error("cannot shut down VM '%s'", vm_id);
  return 0;
}

static int lv_domain_state(struct hyper *h, const char *vm_id, int *vm_status)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  AUTOPTR(virDomain) d = virDomainLookupByUUIDString(c, vm_id);
  if (!d) {
    if (!hyper_lv_last_error_is(VIR_ERR_NO_DOMAIN)) return virt_error("cannot look up VM '%s'", vm_id);
    *vm_status = VM_DOWN;
    return 0;
  }
  int state, reason;
  if (virDomainGetState(d, &state, &reason, 0) < 0) {
    if (hyper_lv_last_error_is(VIR_ERR_NO_DOMAIN)) {
      *vm_status = VM_DOWN;
      return 0;
    }
    return virt_error("cannot read the state of VM '%s'", vm_id);
  }
  switch (state) {
  case VIR_DOMAIN_RUNNING:
  case VIR_DOMAIN_BLOCKED: *vm_status = VM_UP; break;
  case VIR_DOMAIN_PAUSED:
  case VIR_DOMAIN_PMSUSPENDED: *vm_status = VM_PAUSED; break;
  case VIR_DOMAIN_SHUTDOWN: *vm_status = VM_POWERING_DOWN; break;
  case VIR_DOMAIN_NOSTATE: *vm_status = VM_POWERING_UP; break;
  default: *vm_status = VM_DOWN; break;
  }
  return 0;
}

static int lv_domain_list(struct hyper *h, struct strvec *ids)
{
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  virDomainPtr *doms = NULL;
  int n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  if (n < 0) return virt_error("cannot list the VMs of host '%s'", h->uri);
  for (int i = 0; i < n; i++) {
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (virDomainGetUUIDString(doms[i], uuid) == 0) vec_push(ids, xstrdup(uuid));
    virDomainFree(doms[i]);
  }
  free(doms);
  return 0;
}

/* live XML of d, as a malloc'ed string */
char *hyper_lv_live_xml(virDomainPtr d, const char *vm_id)
{
  char *xml = virDomainGetXMLDesc(d, 0);
  if (!xml) virt_error("cannot read the XML of VM '%s'", vm_id);
  return xml;
}

static char *lv_domain_live_xml(struct hyper *h, const char *vm_id)
{
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  return d ? hyper_lv_live_xml(d, vm_id) : NULL;
}

int hyper_lv_live_disks(virDomainPtr d, const char *vm_id, struct hyper_live_disk **out, size_t *n)
{
  AUTOFREE char *xml = hyper_lv_live_xml(d, vm_id);
  if (!xml) return -1;
  return domxml_parse_disks(xml, out, n);
}

static int lv_domain_disks(struct hyper *h, const char *vm_id, struct hyper_live_disk **out, size_t *n)
{
  *out = NULL;
  *n = 0;
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  return hyper_lv_live_disks(d, vm_id, out, n);
}

static int lv_disk_attach(struct hyper *h, const char *vm_id, const struct hyper_disk *disk)
{
  if (disk->iface == IFACE_SATA || disk->iface == IFACE_IDE)
    return error(ERR_UNSUPPORTED, "disk interface '%s' cannot be hot-plugged; use virtio or virtio_scsi, "
                 "or attach while the VM is down", disk_iface_to_str(disk->iface));
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  pthread_mutex_lock(&h->attach_lock);
  struct hyper_live_disk *live = NULL;
  size_t n = 0;
  int rc = hyper_lv_live_disks(d, vm_id, &live, &n);
  if (rc == 0) {
    AUTOFREE char *target = domxml_free_target(disk->iface, live, n);
    AUTOFREE char *xml = domxml_disk(disk, target);
    if (!xml)
      rc = -1;
    else if (virDomainAttachDeviceFlags(d, xml, VIR_DOMAIN_AFFECT_LIVE) < 0)
      rc = virt_error("cannot attach disk '%s' to VM '%s'", disk->disk_id, vm_id);
  }
  pthread_mutex_unlock(&h->attach_lock);
  hyper_live_disks_free(live, n);
  return rc;
}

/* true when the live domain still has a device with this alias */
static int alias_present(virDomainPtr d, const char *vm_id, const char *alias, bool *present)
{
  struct hyper_live_disk *live = NULL;
  size_t n = 0;
  if (hyper_lv_live_disks(d, vm_id, &live, &n) < 0) return -1;
  *present = false;
  for (size_t i = 0; i < n; i++)
    if (live[i].alias && strcmp(live[i].alias, alias) == 0) *present = true;
  hyper_live_disks_free(live, n);
  return 0;
}

/* Asks for the unplug, then waits for DEVICE_REMOVED (registered before the
 * request, so an event that comes back at once is not missed). A request
 * that libvirt says is already in progress (an earlier detach timed out) is
 * waited for the same way. After the timeout the live XML decides. */
static int lv_disk_detach(struct hyper *h, const char *vm_id, const char *disk_id)
{
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  AUTOFREE char *alias = xasprintf("ua-%s", disk_id);
  bool present;
  if (alias_present(d, vm_id, alias, &present) < 0) return -1;
  if (!present)
    return error(ERR_NOT_FOUND, "cannot detach disk '%s': it is not plugged into VM '%s'", disk_id, vm_id);
  struct detach_waiter w = {vm_id, alias, false, NULL};
  pthread_mutex_lock(&h->wait_lock);
  w.next = h->waiters;
  h->waiters = &w;
  pthread_mutex_unlock(&h->wait_lock);

  int rc = 0;
  if (virDomainDetachDeviceAlias(d, alias, VIR_DOMAIN_AFFECT_LIVE) < 0) {
    const char *msg = virGetLastErrorMessage();
    if (hyper_lv_last_error_is(VIR_ERR_DEVICE_MISSING))
      rc = error(ERR_NOT_FOUND, "cannot detach disk '%s': it is not plugged into VM '%s'", disk_id, vm_id);
    else if (!strstr(msg, "already in the process of unplug"))
      rc = virt_error("cannot detach disk '%s' from VM '%s'", disk_id, vm_id);
  }
  bool removed = false;
  if (rc == 0) {
    struct timespec deadline;
    hyper_lv_deadline_after(&deadline, h->detach_timeout_ms);
    pthread_mutex_lock(&h->wait_lock);
    while (!w.removed)
      if (pthread_cond_timedwait(&h->wait_cond, &h->wait_lock, &deadline) == ETIMEDOUT) break;
    removed = w.removed;
    pthread_mutex_unlock(&h->wait_lock);
  }
  pthread_mutex_lock(&h->wait_lock);
  for (struct detach_waiter **p = &h->waiters; *p; p = &(*p)->next)
    if (*p == &w) {
      *p = w.next;
      break;
    }
  pthread_mutex_unlock(&h->wait_lock);
  if (rc < 0 || removed) return rc;

  if (alias_present(d, vm_id, alias, &present) < 0) return -1;
  if (present)
    return error(ERR_CONFLICT, "guest did not release disk '%s' of VM '%s' within %d s: "
                 "the disk stays plugged and the unplug request remains pending in the guest",
                 disk_id, vm_id, (h->detach_timeout_ms + 999) / 1000);
  return 0;
}

DEFINE_AUTOPTR(virDomainSnapshot, struct _virDomainSnapshot, virDomainSnapshotFree)

/* true when the last error says no guest agent is configured or answering, or
 * the one that answers does not know or has disabled guest-fsfreeze-* (libvirt
 * passes its CommandNotFound/CommandDisabled on as an internal error with the
 * agent's text): a quiesced snapshot cannot work then, a crash-consistent one can */
static bool agent_missing(void)
{
  virErrorPtr e = virGetLastError();
  if (!e) return false;
  switch (e->code) {
  case VIR_ERR_AGENT_UNRESPONSIVE:
  case VIR_ERR_AGENT_UNSYNCED:
    return true;
  case VIR_ERR_INTERNAL_ERROR:
    return e->message && strstr(e->message, "agent command 'guest-fsfreeze-") &&
           (strstr(e->message, "has not been found") || strstr(e->message, "has been disabled"));
  case VIR_ERR_ARGUMENT_UNSUPPORTED:  /* "QEMU guest agent is not configured" */
  case VIR_ERR_OPERATION_UNSUPPORTED:
  case VIR_ERR_OPERATION_INVALID:
    return e->message && strcasestr(e->message, "agent");
  default:
    return false;
  }
}

/* One virDomainSnapshotCreateXML: disk-only, external, on the overlays the
 * caller made (REUSE_EXT), without snapshot metadata in libvirt (the store
 * keeps the truth), all disks or none (ATOMIC). With quiesce it first asks
 * for QUIESCE and falls back to crash-consistent when the agent is missing;
 * any other failure of the quiesced attempt is reported as it is. */
static int lv_domain_snapshot(struct hyper *h, const char *vm_id, const struct hyper_snap_disk *disks, size_t n,
                              bool quiesce, bool *quiesced)
{
  if (quiesced) *quiesced = false;
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  struct hyper_live_disk *live = NULL;
  size_t nlive = 0;
  if (hyper_lv_live_disks(d, vm_id, &live, &nlive) < 0) return -1;
  AUTOFREE char *xml = domxml_snapshot(disks, n, live, nlive);
  hyper_live_disks_free(live, nlive);
  if (!xml) return error_prefix("cannot snapshot VM '%s': ", vm_id);

  unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT |
                   VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
  if (quiesce) {
    AUTOPTR(virDomainSnapshot) snap = virDomainSnapshotCreateXML(d, xml, flags | VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE);
    if (snap) {
      if (quiesced) *quiesced = true;
      return 0;
    }
    if (!quiesced)
      return virt_error("cannot snapshot the disks of VM '%s' consistently (the guest agent must "
                        "freeze its file systems)", vm_id);
    if (!agent_missing()) return virt_error("cannot snapshot the disks of VM '%s'", vm_id);
    log_info("snapshot of VM '%s' is crash-consistent: %s", vm_id, virGetLastErrorMessage());
    virResetLastError();
  }
  AUTOPTR(virDomainSnapshot) snap = virDomainSnapshotCreateXML(d, xml, flags);
  if (!snap) return virt_error("cannot snapshot the disks of VM '%s'", vm_id);
  return 0;
}

/* ---- network interfaces ---- */

static int lv_nic_change(struct hyper *h, const char *vm_id, const struct hyper_nic *nic, bool attach)
{
  AUTOFREE char *xml = domxml_nic(nic);
  if (!xml) return -1;
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  int rc = attach ? virDomainAttachDeviceFlags(d, xml, VIR_DOMAIN_AFFECT_LIVE)
                  : virDomainDetachDeviceFlags(d, xml, VIR_DOMAIN_AFFECT_LIVE);
  if (rc < 0)
    return virt_error("cannot %s NIC '%s' of VM '%s'", attach ? "hot-plug" : "hot-unplug", nic->mac, vm_id);
  return 0;
}

static int lv_nic_attach(struct hyper *h, const char *vm_id, const struct hyper_nic *nic)
{
  return lv_nic_change(h, vm_id, nic, true);
}

static int lv_nic_detach(struct hyper *h, const char *vm_id, const struct hyper_nic *nic)
{
  return lv_nic_change(h, vm_id, nic, false);
}

const struct hyper_ops hyper_libvirt_ops = {
  .name = "libvirt",
  .open = lv_open,
  .close = lv_close,
  .ping = lv_ping,
  .host_info = lv_host_info,
  .domain_xml_for = lv_domain_xml_for,
  .domain_start = lv_domain_start,
  .domain_destroy = lv_domain_destroy,
  .domain_shutdown = lv_domain_shutdown,
  .domain_state = lv_domain_state,
  .domain_list = lv_domain_list,
  .domain_live_xml = lv_domain_live_xml,
  .domain_disks = lv_domain_disks,
  .disk_attach = lv_disk_attach,
  .disk_detach = lv_disk_detach,
  .domain_snapshot = lv_domain_snapshot,
  .block_commit = hyper_lv_block_commit,
  .block_job_progress = hyper_lv_block_job_progress,
  .backup_begin = hyper_lv_backup_begin,
  .backup_end = hyper_lv_backup_end,
  .backup_job_alive = hyper_lv_backup_job_alive,
  .domain_stats = hyper_lv_domain_stats,
  .host_stats = hyper_lv_host_stats,
  .nic_attach = lv_nic_attach,
  .nic_detach = lv_nic_detach,
  .graphics_list = hyper_lv_graphics_list,
  .graphics_ticket = hyper_lv_graphics_ticket,
  .domain_migrate = hyper_lv_domain_migrate,
  .local_volume_create = hyper_lv_local_volume_create,
  .local_volume_delete = hyper_lv_local_volume_delete,
  .local_volume_list = hyper_lv_local_volume_list,
  .local_dir_make = hyper_lv_local_dir_make,
  .cdrom_change = hyper_lv_cdrom_change,
  .guest_addresses = hyper_lv_guest_addresses,
  .graphics_supported = hyper_lv_graphics_supported,
};
