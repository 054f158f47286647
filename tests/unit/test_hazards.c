/* Regression tests for the concurrency hazards of issue 13, against a real
 * store in a temp dir and libvirt's test driver (test:///default) as the host:
 *
 *   - the size cache: a GET never stats a storage path on the request's
 *     thread (stat/statvfs/access/realpath are interposed and counted while
 *     the GETs run); the housekeeping thread measures instead;
 *   - the start race: a guest that dies at once, its stop event arriving
 *     before the start command finishes, is recorded down (not up) and the
 *     transient overlay of its disk snapshot is removed;
 *   - the reconcile after libvirtd restarts: a VM whose stop event was lost
 *     (the store says up, libvirt runs nothing) is recorded down once the
 *     reconnect asks the housekeeping thread to reconcile;
 *   - a live merge that QEMU finished while libvirtd was away (the engine saw
 *     the socket close) is taken as done from the live chain, not left for
 *     the store and the files to drift apart (found by the soak).
 *
 * The start race wraps the engine's hyper ops (cmd/internal.h): the wrapper
 * starts the domain, kills it, and delivers the stop event itself, which is
 * the order the race produces. The reconnect itself (hyper_libvirt noticing
 * libvirtd is back) is exercised by the soak's libvirtd restart fault. */
#include "fixture.h"
#include "cmd/internal.h"
#include "hyper/hyper.h"
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* ---- stat and friends, counted for storage paths on a watching thread */

static char storage_root[PATH_MAX];
static __thread int watching;
static int storage_stats; /* atomic: storage paths touched by a watching thread */
static int storage_seen;  /* atomic: by any thread (the interposition works) */

static void note(const char *path)
{
  if (!path || !storage_root[0] || strncmp(path, storage_root, strlen(storage_root)) != 0) return;
  __atomic_add_fetch(&storage_seen, 1, __ATOMIC_RELAXED);
  if (watching) {
    __atomic_add_fetch(&storage_stats, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "# a GET touched '%s'\n", path);
  }
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int stat64(const char *restrict path, struct stat64 *restrict st)
{
  note(path);
  return REAL(stat64)(path, st);
}

int lstat64(const char *restrict path, struct stat64 *restrict st)
{
  note(path);
  return REAL(lstat64)(path, st);
}

int statvfs64(const char *restrict path, struct statvfs64 *restrict st)
{
  note(path);
  return REAL(statvfs64)(path, st);
}

int access(const char *path, int mode)
{
  note(path);
  return REAL(access)(path, mode);
}

char *realpath(const char *restrict path, char *restrict resolved)
{
  note(path);
  return REAL(realpath)(path, resolved);
}

/* ---- requests */

/* runs one request as admin; returns the HTTP status; *out (may be NULL) gets
 * the XML; without out, an error is printed as a TAP comment */
static int call(const char *method, const char *path, const char *xml, char **out)
{
  AUTOFREE char *mine = NULL;
  int status = fixture_call(&admin, method, path, xml, NULL, out ? out : &mine, false);
  if (!out && status >= 400) fprintf(stderr, "# %s %s: %s\n", method, path, mine ? mine : "");
  return status;
}

/* POST path body, expecting 201 or 202; the new object's id into id */
static void create(const char *path, const char *xml, char id[UUID_STRLEN + 1])
{
  AUTOFREE char *x = NULL;
  int st = call("POST", path, xml, &x);
  if (st != 201 && st != 202) fprintf(stderr, "# POST %s: %d %s\n", path, st, x ? x : "");
  CHECK(st == 201 || st == 202);
  fixture_first_id(x, id);
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* GETs path until its answer holds want (up to 20 s) */
static bool wait_for(const char *path, const char *want)
{
  for (int i = 0; i < 200; i++) {
    AUTOFREE char *x = NULL;
    if (call("GET", path, NULL, &x) == 200 && x && strstr(x, want)) return true;
    sleep_ms(100);
  }
  return false;
}

static int vm_status_of(const char *vm_id)
{
  AUTOPTR(vm) v = vm_get(engine_store(eng), vm_id);
  return v ? v->status : -1;
}

static int files_in(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* ---- the start race: a hyper whose guests die as soon as they start */

static const struct hyper_ops *real_ops;
static struct hyper_ops dying_ops;

/* waits until libvirt's event thread has brought the VM to STATUS */
static bool status_reached(const char *vm_id, int status)
{
  for (int i = 0; i < 200; i++) {
    if (vm_status_of(vm_id) == status) return true;
    sleep_ms(25);
  }
  return false;
}

static int dying_domain_start(struct hyper *h, const struct hyper_vm_spec *spec)
{
  if (real_ops->domain_start(h, spec) < 0) return -1;
  /* the guest dies at once, and its stop event beats the start command.
   * Both of the test driver's events are awaited here, in their order: one
   * still queued when the start command checks would reach the engine after
   * it, which a guest's own events never do */
  CHECK(status_reached(spec->vm->id, VM_UP));
  CHECK(real_ops->domain_destroy(h, spec->vm->id) == 0);
  CHECK(status_reached(spec->vm->id, VM_DOWN));
  return 0;
}

static void test_size_cache(const char *vm_id, const char *disk_id, const char *sd_id)
{
  AUTOFREE char *disk = xasprintf("/disks/%s", disk_id);
  AUTOFREE char *sd = xasprintf("/storagedomains/%s", sd_id);
  AUTOFREE char *sd_disks = xasprintf("/storagedomains/%s/disks", sd_id);
  AUTOFREE char *atts = xasprintf("/vms/%s/diskattachments", vm_id);
  const char *gets[] = {"/disks", disk, "/storagedomains", sd, sd_disks, atts, NULL};
  /* twice: the first round asks for paths the cache has not seen yet */
  watching = 1;
  for (int round = 0; round < 2; round++)
    for (size_t i = 0; gets[i]; i++) CHECK(call("GET", gets[i], NULL, NULL) == 200);
  watching = 0;
  CHECK(__atomic_load_n(&storage_stats, __ATOMIC_RELAXED) == 0);
  /* and the sizes are there: measured by the housekeeping thread */
  CHECK(wait_for(disk, "<actual_size>"));
  CHECK(wait_for(sd, "<available>"));
  CHECK(__atomic_load_n(&storage_seen, __ATOMIC_RELAXED) > 0);
}

static void test_start_race(const char *data_vm, const char *disk_id, const char *state_dir)
{
  /* a snapshot of the data disk, attached to an agent VM: starting the
   * agent makes a transient overlay for it */
  char snap[UUID_STRLEN + 1], agent[UUID_STRLEN + 1];
  AUTOFREE char *snaps = xasprintf("/vms/%s/snapshots", data_vm);
  create(snaps, "<snapshot><description>race</description></snapshot>", snap);
  AUTOFREE char *snap_path = xasprintf("/vms/%s/snapshots/%s", data_vm, snap);
  CHECK(wait_for(snap_path, "<snapshot_status>ok</snapshot_status>"));
  create("/vms", "<vm><name>agent</name><cluster><name>Default</name></cluster>"
                 "<template><name>Blank</name></template></vm>", agent);
  AUTOFREE char *atts = xasprintf("/vms/%s/diskattachments", agent);
  AUTOFREE char *att = xasprintf("<disk_attachment><disk id=\"%s\"><snapshot id=\"%s\"/></disk>"
                                 "<interface>virtio_scsi</interface><active>true</active></disk_attachment>",
                                 disk_id, snap);
  char att_id[UUID_STRLEN + 1];
  create(atts, att, att_id);

  real_ops = eng->hyper_ops;
  dying_ops = *real_ops;
  dying_ops.domain_start = dying_domain_start;
  eng->hyper_ops = &dying_ops;
  AUTOFREE char *start = xasprintf("/vms/%s/start", agent);
  AUTOFREE char *x = NULL;
  int st = call("POST", start, "<action/>", &x);
  eng->hyper_ops = real_ops;
  CHECK(st == 200);
  CHECK(vm_status_of(agent) == VM_DOWN); /* not up: the guest is dead */
  /* its overlay goes with it, a moment later: libvirt's event thread marks
   * the VM down first, and may still be removing the file when the start
   * answers */
  AUTOFREE char *tdir = xasprintf("%s/transient/%s", state_dir, agent);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; i++) {
    AUTOLIST(attachment) al = attachment_list_by_vm(engine_store(eng), agent);
    gone = al && al[0] && !al[0]->plugged && !al[0]->overlay_path && files_in(tdir) == 0;
    if (!gone) sleep_ms(50);
  }
  CHECK(gone);
  CHECK(wait_for("/events", "VM agent is down"));
  /* and it starts normally afterwards */
  CHECK(call("POST", start, "<action/>", NULL) == 200);
  CHECK(vm_status_of(agent) == VM_UP);
  CHECK(files_in(tdir) == 1);
  AUTOFREE char *stop = xasprintf("/vms/%s/stop", agent);
  CHECK(call("POST", stop, "<action/>", NULL) == 200);
  CHECK(vm_status_of(agent) == VM_DOWN);
}

/* ---- a live merge whose libvirtd went away mid-job: QEMU finished it */

static struct volume **merge_chain;   /* the disk's volumes, base first */
static int commits, pings;

/* the live XML a QEMU shows: the whole chain before the commit, without the
 * committed child (index 1) after it */
static char *lost_live_xml(struct hyper *h, const char *vm_id)
{
  (void)h, (void)vm_id;
  struct buf b = BUF_INIT;
  buf_printf(&b, "<domain><devices><disk type='file' device='disk'>");
  size_t n = 0;
  while (merge_chain[n]) n++;
  int opened = 0;
  for (size_t i = n; i-- > 0;) {
    if (commits && i == 1) continue;
    if (opened) buf_printf(&b, "<backingStore type='file'>");
    buf_printf(&b, "<source file='%s'/>", merge_chain[i]->path);
    opened++;
  }
  buf_printf(&b, "<backingStore/>");
  for (int i = 1; i < opened; i++) buf_printf(&b, "</backingStore>");
  buf_printf(&b, "<target dev='sda'/><alias name='ua-%s'/></disk></devices></domain>", merge_chain[0]->disk_id);
  return buf_detach(&b);
}

static int lost_block_commit(struct hyper *h, const char *vm_id, const char *disk_id, const char *top,
                             const char *base, int timeout_ms)
{
  (void)h, (void)vm_id, (void)disk_id, (void)top, (void)base, (void)timeout_ms;
  commits++; /* QEMU finishes the job; the engine only sees the socket close */
  return error(ERR_INTERNAL, "cannot follow the merge: internal error: client socket is closed");
}

static int lost_ping(struct hyper *h)
{
  (void)h;
  return pings++ == 0 ? error(ERR_UNAVAILABLE, "host is restarting") : 0;
}

static void test_merge_lost(void)
{
  char vm[UUID_STRLEN + 1], disk[UUID_STRLEN + 1], att[UUID_STRLEN + 1], s1[UUID_STRLEN + 1],
      s2[UUID_STRLEN + 1];
  create("/vms", "<vm><name>merge</name><cluster><name>Default</name></cluster>"
                 "<template><name>Blank</name></template></vm>", vm);
  create("/disks", "<disk><alias>m1</alias><provisioned_size>1048576</provisioned_size><format>cow</format>"
                   "<storage_domains><storage_domain><name>data</name></storage_domain></storage_domains></disk>",
         disk);
  AUTOFREE char *atts = xasprintf("/vms/%s/diskattachments", vm);
  AUTOFREE char *body = xasprintf("<disk_attachment><disk id=\"%s\"/><interface>virtio_scsi</interface>"
                                  "<active>true</active></disk_attachment>", disk);
  create(atts, body, att);
  /* base (s1's) <- middle (s2's) <- active, made while the VM is down */
  AUTOFREE char *snaps = xasprintf("/vms/%s/snapshots", vm);
  create(snaps, "<snapshot><description>s1</description></snapshot>", s1);
  AUTOFREE char *s1_path = xasprintf("%s/%s", snaps, s1);
  CHECK(wait_for(s1_path, "<snapshot_status>ok</snapshot_status>"));
  create(snaps, "<snapshot><description>s2</description></snapshot>", s2);
  AUTOFREE char *s2_path = xasprintf("%s/%s", snaps, s2);
  CHECK(wait_for(s2_path, "<snapshot_status>ok</snapshot_status>"));
  AUTOFREE char *start = xasprintf("/vms/%s/start", vm);
  CHECK(call("POST", start, "<action/>", NULL) == 200);
  sleep_ms(300); /* the test driver's started event */

  struct store *st = engine_store(eng);
  struct volume **all = volume_list_by_disk(st, disk);
  CHECK(all && all[0] && all[1] && all[2] && !all[3]);
  if (!all || !all[0] || !all[1] || !all[2]) return;
  /* base first: follow parent_id */
  struct volume *ordered[4] = {NULL, NULL, NULL, NULL};
  for (size_t i = 0; all[i]; i++)
    if (!all[i]->parent_id) ordered[0] = all[i];
  for (int k = 1; k < 3 && ordered[k - 1]; k++)
    for (size_t i = 0; all[i]; i++)
      if (all[i]->parent_id && strcmp(all[i]->parent_id, ordered[k - 1]->id) == 0) ordered[k] = all[i];
  CHECK(ordered[0] && ordered[1] && ordered[2]);
  if (!ordered[2]) return;
  merge_chain = ordered;
  char base_id[UUID_STRLEN + 1], mid_id[UUID_STRLEN + 1], top_id[UUID_STRLEN + 1];
  snprintf(base_id, sizeof base_id, "%s", ordered[0]->id);
  snprintf(mid_id, sizeof mid_id, "%s", ordered[1]->id);
  snprintf(top_id, sizeof top_id, "%s", ordered[2]->id);
  AUTOFREE char *mid_path = xstrdup(ordered[1]->path);

  real_ops = eng->hyper_ops;
  dying_ops = *real_ops;
  dying_ops.domain_live_xml = lost_live_xml;
  dying_ops.block_commit = lost_block_commit;
  dying_ops.ping = lost_ping;
  eng->hyper_ops = &dying_ops;
  int st_del = call("DELETE", s1_path, NULL, NULL);
  CHECK(st_del == 200 || st_del == 202);
  bool gone = false;
  for (int i = 0; i < 150 && !gone; i++) {
    AUTOPTR(snapshot) sn = snapshot_get(st, s1);
    gone = !sn;
    error_clear();
    if (!gone) sleep_ms(100);
  }
  eng->hyper_ops = real_ops;
  merge_chain = NULL;
  CHECK(gone);           /* the removal finished: QEMU's part was done */
  CHECK(commits == 1);   /* and was not run twice */
  AUTOPTR(volume) base = volume_get(st, base_id);
  CHECK(base && base->status == DISK_OK && base->snapshot_id && strcmp(base->snapshot_id, s2) == 0);
  AUTOPTR(volume) mid = volume_get(st, mid_id);
  CHECK(!mid);           /* the committed child is gone, row and file */
  error_clear();
  CHECK(access(mid_path, F_OK) != 0);
  AUTOPTR(volume) top = volume_get(st, top_id);
  CHECK(top && top->parent_id && strcmp(top->parent_id, base_id) == 0);
  for (size_t i = 0; all[i]; i++) volume_free(all[i]);
  free(all);
  /* the removal deletes the row, ends its job, then drops the VM's lock: a
   * stop right after the row went may find the lock still held, and is
   * refused until the removal has finished (as the answer says) */
  AUTOFREE char *stop = xasprintf("/vms/%s/stop", vm);
  int stopped = 0;
  for (int i = 0; i < 100; i++) {
    AUTOFREE char *x = NULL;
    stopped = call("POST", stop, "<action/>", &x);
    if (stopped != 409 || !x || !strstr(x, "RemoveSnapshot")) break;
    sleep_ms(20);
  }
  CHECK(stopped == 200);
}

static void test_reconcile(const char *vm_id)
{
  AUTOFREE char *start = xasprintf("/vms/%s/start", vm_id);
  CHECK(call("POST", start, "<action/>", NULL) == 200);
  CHECK(vm_status_of(vm_id) == VM_UP);
  /* libvirtd was down while the guest stopped: the domain is gone and no
   * event told the engine, so the store still says up. Then the connection
   * comes back and reports it (engine_on_reconnected). */
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, NULL, &ops);
  CHECK(h != NULL);
  struct store *st = engine_store(eng);
  if (h) CHECK(ops->domain_destroy(h, vm_id) == 0);
  sleep_ms(300); /* the destroy's own event, which a real restart loses */
  CHECK(vm_set_status(st, vm_id, VM_UP, eng->host_id) == 0);
  __atomic_store_n(&eng->reconcile_needed, true, __ATOMIC_RELEASE);
  housekeeping_wake(eng);
  int status = -1;
  for (int i = 0; i < 100 && (status = vm_status_of(vm_id)) != VM_DOWN; i++) sleep_ms(100);
  CHECK(status == VM_DOWN);
}

int main(void)
{
  if (!fixture_open("hazards")) return tap_done();
  const char *tmpl = fixture_dir;
  AUTOFREE char *root = xasprintf("%s/storage", tmpl);
  CHECK(realpath(root, storage_root) != NULL);

  char vm_id[UUID_STRLEN + 1], disk_id[UUID_STRLEN + 1], sd_id[UUID_STRLEN + 1];
  create("/vms", "<vm><name>data</name><cluster><name>Default</name></cluster>"
                 "<template><name>Blank</name></template></vm>", vm_id);
  create("/disks", "<disk><alias>d1</alias><provisioned_size>1048576</provisioned_size><format>cow</format>"
                   "<storage_domains><storage_domain><name>data</name></storage_domain></storage_domains></disk>",
         disk_id);
  AUTOFREE char *atts = xasprintf("/vms/%s/diskattachments", vm_id);
  AUTOFREE char *att = xasprintf("<disk_attachment><disk id=\"%s\"/><interface>virtio_scsi</interface>"
                                 "<active>true</active></disk_attachment>", disk_id);
  char att_id[UUID_STRLEN + 1];
  create(atts, att, att_id);
  AUTOFREE char *sds = NULL;
  CHECK(call("GET", "/storagedomains", NULL, &sds) == 200);
  fixture_first_id(sds ? strstr(sds, "<storage_domain ") : NULL, sd_id);
  CHECK(uuid_is_valid(vm_id) && uuid_is_valid(disk_id) && uuid_is_valid(sd_id));

  test_size_cache(vm_id, disk_id, sd_id);
  test_start_race(vm_id, disk_id, tmpl);
  test_reconcile(vm_id);
  test_merge_lost();

  fixture_close();
  return tap_done();
}
