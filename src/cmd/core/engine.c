/* engine.c: the engine context: store, host connections, start-up.
 *
 * At start it opens the store, creates the first-start objects once, connects
 * the local host by its libvirt URI and reconciles: the store is the truth
 * for configuration, libvirt for what runs right now. Running guests are
 * never disturbed by an engine restart. */
#include "cmd/internal.h"
#include "cmd/nic.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLANK_TEMPLATE_ID "00000000-0000-0000-0000-000000000000"

static int mkdir_p(const char *path, mode_t mode)
{
  AUTOFREE char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return error(ERR_INTERNAL, "cannot create directory '%s': %s", p, strerror(errno));
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST)
    return error(ERR_INTERNAL, "cannot create directory '%s': %s", p, strerror(errno));
  return 0;
}

/* the state directory holds the store, keys and disk images: 0700, also
 * when an older version created it readable for all */
static int state_dir_private(const char *dir)
{
  struct stat sb;
  if (stat(dir, &sb) < 0)
    return error(ERR_INTERNAL, "cannot read the state directory '%s': %s", dir, strerror(errno));
  if ((sb.st_mode & 07777) == 0700) return 0;
  if (chmod(dir, 0700) < 0)
    return error(ERR_INTERNAL, "cannot make the state directory '%s' private (0700): %s", dir,
                 strerror(errno));
  log_info("state directory '%s' was mode %04o; it is 0700 now", dir, (unsigned)(sb.st_mode & 07777));
  return 0;
}

struct store *engine_store(struct engine *eng) { return eng->st; }
const char *engine_state_dir(struct engine *eng) { return eng->state_dir; }

char *volume_path_for(const struct storage_domain *sd, const char *disk_id, const char *vol_id)
{
  return xasprintf("%s/%s/images/%s/%s", sd->path, sd->id, disk_id, vol_id);
}

struct volume *disk_active_volume(struct store *st, const char *disk_id)
{
  AUTOLIST(volume) vols = volume_list_active_of_disk(st, disk_id);
  if (!vols) return NULL;
  if (!vols[0]) {
    error(ERR_INTERNAL, "disk '%s' has no active volume", disk_id);
    return NULL;
  }
  struct volume *v = vols[0];
  vols[0] = NULL;
  return v;
}

void engine_vm_went_down(struct engine *eng, const char *vm_id)
{
  AUTOLIST(attachment) atts = attachment_list_plugged_or_overlaid_of_vm(eng->st, vm_id);
  if (!atts) { log_err("%s", error_message()); return; }
  for (size_t i = 0; atts[i]; i++) {
    struct attachment *a = atts[i];
    if (a->overlay_path) transient_overlay_remove(eng, vm_id, a->overlay_path);
    if (attachment_set_unplugged(eng->st, vm_id, a->disk_id) < 0) log_err("%s", error_message());
  }
}

void engine_on_lifecycle(void *opaque, const char *vm_id, int status, const char *reason)
{
  struct engine *eng = opaque;
  AUTOPTR(vm) vm = vm_get(eng->st, vm_id);
  if (!vm) { error_clear(); return; } /* not one of ours */
  if (vm->status == status) return;
  int old = vm->status;
  /* status and host only: this thread holds no object lock, and a command
   * may be changing the VM's other fields right now */
  if (vm_set_status(eng->st, vm_id, status, status == VM_DOWN ? NULL : vm->host_id) < 0) {
    log_err("%s", error_message());
    return;
  }
  if (status == VM_DOWN) {
    engine_vm_went_down(eng, vm_id);
    if (old != VM_POWERING_DOWN)
      engine_event(eng, strcmp(reason, "crashed") == 0 ? SEVERITY_ERROR : SEVERITY_NORMAL,
                   EV_VM_DOWN, NULL, vm_id, "VM %s is down: %s", vm->name, reason);
  }
}

/* creates the objects a fresh installation has, in one transaction */
static int engine_first_start(struct engine *eng)
{
  AUTOFREE char *done = store_setting_get(eng->st, "initialized");
  if (done) return 0;
  char dc[UUID_STRLEN + 1], cl[UUID_STRLEN + 1], sd[UUID_STRLEN + 1], host[UUID_STRLEN + 1];
  if (uuid_generate_str(dc) < 0 || uuid_generate_str(cl) < 0 || uuid_generate_str(sd) < 0 ||
      uuid_generate_str(host) < 0)
    return -1;
  AUTOFREE char *sd_root = xasprintf("%s/storage", eng->state_dir);
  AUTOFREE char *sd_dir = xasprintf("%s/%s/images", sd_root, sd);
  if (mkdir_p(sd_dir, 0755) < 0) return -1;
  if (store_begin(eng->st) < 0) return -1;
  struct datacenter d = {.id = dc, .name = (char *)"Default", .description = (char *)"The default Data Center"};
  struct cluster c = {.id = cl, .name = (char *)"Default", .description = (char *)"The default server cluster", .datacenter_id = dc};
  struct template t = {.id = (char *)BLANK_TEMPLATE_ID, .name = (char *)"Blank", .description = (char *)"Blank template", .cluster_id = NULL};
  struct storage_domain s = {.id = sd, .name = (char *)"data", .path = sd_root, .datacenter_id = dc, .type = (char *)"data"};
  struct host h = {.id = host, .name = (char *)"localhost", .address = eng->libvirt_uri, .cluster_id = cl, .status = HOST_INSTALLING};
  if (datacenter_insert(eng->st, &d) < 0 || cluster_insert(eng->st, &c) < 0 ||
      template_insert(eng->st, &t) < 0 || storage_domain_insert(eng->st, &s) < 0 ||
      host_insert(eng->st, &h) < 0 || store_setting_set(eng->st, "initialized", "1") < 0 ||
      store_setting_set(eng->st, "local_host_id", host) < 0) {
    store_rollback(eng->st);
    return -1;
  }
  if (store_commit(eng->st) < 0) return -1;
  log_info("first start: created data center and cluster 'Default', template 'Blank', "
           "storage domain 'data' at %s, host 'localhost' (%s)", sd_root, eng->libvirt_uri);
  return 0;
}

/* the VMs of HOST against what its libvirt runs: adopt running domains,
 * mark the rest down. A host that does not answer leaves its VMs unknown:
 * they may still run there. */
static void reconcile_host(struct engine *eng, const struct host *host, bool at_start, int *adopted, int *downed,
                           int *unknown)
{
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, host->id, &ops);
  AUTOSTRVEC struct strvec running = VEC_INIT;
  if (h && ops->domain_list(h, &running) < 0) h = NULL;
  if (!h) {
    log_warn("%s; its VMs are unknown until it answers", error_message());
    error_clear();
  }
  AUTOLIST(vm) vms = vm_list_all(eng->st);
  if (!vms) { log_err("%s", error_message()); return; }
  for (size_t i = 0; vms[i]; i++) {
    struct vm *vm = vms[i];
    bool here = vm->host_id && strcmp(vm->host_id, host->id) == 0;
    bool listed = false;
    for (size_t k = 0; h && k < running.len; k++) listed |= strcmp(running.ptr[k], vm->id) == 0;
    /* a VM of another host is not ours to judge, unless it runs here: a
     * down one started outside the engine, or one whose migration finished
     * while the engine was not there to record it, is adopted */
    if (!here && !listed) continue;
    /* after a reconnect, commands run: a VM one of them holds (a start
     * between powering_up and libvirt) is left to it */
    const char *lock[] = {vm->id, NULL};
    if (!at_start && locks_acquire(eng, lock, "Reconcile", NULL) < 0) { error_clear(); continue; }
    AUTOPTR(vm) cur = at_start ? NULL : vm_get(eng->st, vm->id); /* fresh, under the lock */
    if (!at_start && !cur) { error_clear(); locks_release(eng, lock); continue; }
    int status = cur ? cur->status : vm->status;
    int st = VM_DOWN;
    if (!h) {
      if (status != VM_DOWN && status != VM_UNKNOWN) {
        if (vm_set_status(eng->st, vm->id, VM_UNKNOWN, host->id) < 0) log_err("%s", error_message());
        (*unknown)++;
      }
    } else if (ops->domain_state(h, vm->id, &st) < 0) {
      log_warn("%s", error_message());
    } else if (st != status || !here) {
      if (st == VM_DOWN) {
        engine_on_lifecycle(eng, vm->id, VM_DOWN, at_start ? "stopped while the engine was not running"
                                                           : "stopped while libvirt's events were lost");
        (*downed)++;
      } else {
        if (vm_set_status(eng->st, vm->id, st, host->id) < 0) log_err("%s", error_message());
        (*adopted)++;
      }
    } else if (st != VM_DOWN) {
      (*adopted)++;
    }
    if (!at_start) locks_release(eng, lock);
  }
}

/* the store says what should run, libvirt what does, host by host. At
 * start, and after a host connection came back (libvirtd restarted, or the
 * host answers again; its events were lost). */
void engine_reconcile(struct engine *eng, bool at_start)
{
  AUTOLIST(host) hosts = host_list_all(eng->st);
  if (!hosts) { log_err("%s", error_message()); return; }
  int adopted = 0, downed = 0, unknown = 0;
  for (size_t i = 0; hosts[i]; i++) reconcile_host(eng, hosts[i], at_start, &adopted, &downed, &unknown);
  if (at_start && (adopted || downed || unknown))
    engine_event(eng, SEVERITY_NORMAL, EV_RECONCILED, NULL, NULL,
                 "engine started: %d VM(s) running, %d found stopped, %d unknown (host not answering)",
                 adopted, downed, unknown);
  else if (!at_start && downed)
    engine_event(eng, SEVERITY_WARNING, EV_RECONCILED, NULL, NULL,
                 "host reconnected: %d VM(s) stopped while its events could not arrive", downed);
}

struct engine *engine_open(const struct engine_options *opts, const char *admin_password)
{
  (void)admin_password;
  struct engine *eng = xcalloc(1, sizeof *eng);
  pthread_mutex_init(&eng->hyper_mu, NULL);
  pthread_mutex_init(&eng->lock_mu, NULL);
  eng->perm_cache = perm_cache_new();
  pthread_mutex_init(&eng->bg_mu, NULL);
  pthread_mutex_init(&eng->tickets_mu, NULL);
  pthread_cond_init(&eng->bg_cv, NULL);
  eng->state_lock_fd = -1;
  eng->event_retention_days = opts->event_retention_days > 0 ? opts->event_retention_days : 30;
  eng->nbd_port_min = opts->nbd_port_min > 0 ? opts->nbd_port_min : 10809;
  eng->nbd_port_max = opts->nbd_port_min > 0 ? opts->nbd_port_max : 10909;
  size_cache_init(eng);
  eng->state_dir = xstrdup(opts->state_dir);
  eng->libvirt_uri = xstrdup(opts->libvirt_uri);
  eng->domain_type = opts->domain_type;
  eng->detach_timeout_ms = opts->detach_timeout_ms;
  eng->console_listen = xstrdup(opts->console_listen);
  eng->hyper_ops = &hyper_libvirt_ops;
  eng->db_url = opts->db_url ? xstrdup(opts->db_url) : xasprintf("sqlite:%s/snapback.db", opts->state_dir);
  AUTOFREE char *transient = xasprintf("%s/transient", eng->state_dir);
  AUTOFREE char *console = xasprintf("%s/console", eng->state_dir);
  if (mkdir_p(eng->state_dir, 0700) < 0 || state_dir_private(eng->state_dir) < 0 ||
      mkdir_p(transient, 0700) < 0 || mkdir_p(console, 0755) < 0)
    goto fail;
  if (host_paths_init(eng, opts->allow_paths) < 0) goto fail;
  if ((eng->state_lock_fd = engine_state_lock(eng->state_dir)) < 0) goto fail;
  eng->st = store_open(eng->db_url);
  if (!eng->st || store_claim(eng->st) < 0) goto fail;
  if (engine_first_start(eng) < 0 || network_setup(eng) < 0) goto fail;
  eng->host_id = store_setting_get(eng->st, "local_host_id");
  if (!eng->host_id) {
    error(ERR_INTERNAL, "the store has no local host; was it created by another program?");
    goto fail;
  }
  {
    AUTOPTR(host) hrow = host_get(eng->st, eng->host_id);
    if (hrow && strcmp(hrow->address, eng->libvirt_uri) != 0) {
      free(hrow->address);
      hrow->address = xstrdup(eng->libvirt_uri);
      if (host_update(eng->st, hrow) < 0) goto fail;
    }
  }
  engine_sweep_children(eng);
  engine_reconcile(eng, true);
  snapshot_recover(eng);
  ova_recover(eng);
  engine_sweep_orphans(eng);
  transient_sweep(eng);
  transfer_recover(eng);
  transfer_tickets_hash_legacy(eng);
  backup_recover(eng);
  transfer_reaper_start(eng);
  housekeeping_start(eng);
  return eng;
fail:
  {
    struct err_saved s;
    error_save(&s);
    engine_close(eng);
    error_restore(&s);
  }
  return NULL;
}

struct bg_job { struct engine *eng; void (*fn)(struct engine *, void *); void *arg; };

static void *bg_main(void *p)
{
  struct bg_job *job = p;
  job->fn(job->eng, job->arg);
  error_clear();
  pthread_mutex_lock(&job->eng->bg_mu);
  job->eng->bg_running--;
  pthread_cond_broadcast(&job->eng->bg_cv);
  pthread_mutex_unlock(&job->eng->bg_mu);
  free(job);
  return NULL;
}

void engine_background(struct engine *eng, void (*fn)(struct engine *, void *), void *arg)
{
  struct bg_job *job = xcalloc(1, sizeof *job);
  *job = (struct bg_job){eng, fn, arg};
  pthread_mutex_lock(&eng->bg_mu);
  eng->bg_running++;
  pthread_mutex_unlock(&eng->bg_mu);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, bg_main, job) != 0) {
    /* no thread: run it here rather than lose it */
    pthread_attr_destroy(&attr);
    bg_main(job);
    return;
  }
  pthread_attr_destroy(&attr);
}

void engine_close(struct engine *eng)
{
  if (!eng) return;
  housekeeping_stop(eng);
  transfer_reaper_stop(eng);
  pthread_mutex_lock(&eng->bg_mu);
  while (eng->bg_running > 0) pthread_cond_wait(&eng->bg_cv, &eng->bg_mu);
  pthread_mutex_unlock(&eng->bg_mu);
  hosts_close(eng);
  store_close(eng->st);
  size_cache_free(eng);
  for (size_t i = 0; i < eng->nlocks; i++) {
    free(eng->locks[i].id);
    free(eng->locks[i].user);
  }
  free(eng->locks);
  perm_cache_free(eng->perm_cache);
  free(eng->host_id);
  strvec_free(&eng->allow_roots);
  transfer_tickets_free(eng);
  pthread_mutex_destroy(&eng->tickets_mu);
  free(eng->state_dir);
  free(eng->db_url);
  free(eng->libvirt_uri);
  free(eng->console_listen);
  pthread_mutex_destroy(&eng->hyper_mu);
  pthread_mutex_destroy(&eng->lock_mu);
  pthread_mutex_destroy(&eng->bg_mu);
  pthread_cond_destroy(&eng->bg_cv);
  engine_state_unlock(eng->state_lock_fd); /* last: nothing of this engine runs now */
  free(eng);
}
