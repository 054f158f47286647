/* test_store.c: the entity layer over SQLite, in a fresh temporary directory,
 * or over PostgreSQL when SNAPBACK_PG_HOST names the socket directory of a
 * server where SNAPBACK_PG_USER may create databases (tests/pg/with-pg.sh
 * starts one: meson test store-pg) */
#include "tap.h"
#include "store/store.h"
#include "store/db.h"
#include "store/store_internal.h"
#include "util/blocking.h"
#include "util/buf.h"
#include "util/err.h"
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir_template[] = "/tmp/snapback-store-XXXXXX";
static char *db_url;
static const char *pg_host, *pg_user;  /* set: the stores are PostgreSQL databases */

/* the URL of a new, empty store called NAME: a file in the test directory,
 * or a database created on the PostgreSQL server. Caller frees. */
static char *test_url(const char *name)
{
  if (!pg_host) return xasprintf("sqlite://%s/%s.db", dir_template, name);
  AUTOFREE char *admin = xasprintf("postgresql://%s@/postgres?host=%s", pg_user, pg_host);
  AUTOFREE char *dbname = xasprintf("snapback_t%d_%s", (int)getpid(), name);
  struct db *db = db_open_url(admin);
  AUTOFREE char *create = xasprintf("CREATE DATABASE %s", dbname);
  if (!db || db->ops->exec_script(db, create) < 0) fprintf(stderr, "# %s: %s\n", create, error_message());
  if (db) db->ops->close(db);
  return xasprintf("postgresql://%s@/%s?host=%s", pg_user, dbname, pg_host);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  return remove(path);
}

static bool failed_with(int r, enum err_code code)
{
  return r < 0 && error_code() == code && error_message()[0];
}

static int backend_row(const struct db_row *row, void *opaque)
{
  struct { int rows; bool blob_ok; } *seen = opaque;
  seen->rows++;
  seen->blob_ok = row->ncols == 3 && row->values[0] && strcmp(row->values[0], "one") == 0 &&
                  row->values[1] && strcmp(row->values[1], "1099511627776") == 0 && row->lengths[2] == 4 &&
                  memcmp(row->values[2], "a\0\xffz", 4) == 0;
  return 0;
}

static int count_row(const struct db_row *row, void *opaque)
{
  *(int64_t *)opaque = strtoll(row->values[0], NULL, 10);
  return 0;
}

/* a second connection's transaction: begins (waiting for the first
 * connection's), counts the rows, commits */
struct second_writer { struct db *db; int began; int64_t seen; };

static void *second_writer_run(void *opaque)
{
  struct second_writer *w = opaque;
  if (w->db->ops->begin(w->db) < 0) return NULL;
  __atomic_store_n(&w->began, 1, __ATOMIC_RELEASE);
  w->db->ops->query(w->db, "SELECT COUNT(*) FROM t", NULL, 0, count_row, &w->seen);
  w->db->ops->commit(w->db);
  return NULL;
}

static void test_db_url(void)
{
  struct db *db;
  error_clear();
  CHECK(db_open_url("postgresql://u:pw@/db?host=/nonexistent-dir") == NULL);
  CHECK(error_code() == ERR_UNAVAILABLE);
  CHECK(strstr(error_message(), "cannot connect to PostgreSQL") && !strstr(error_message(), "pw"));
  CHECK(db_open_url("mysql://x/y") == NULL && error_code() == ERR_INVALID);
  CHECK(strstr(error_message(), "pw") == NULL);
  CHECK(db_open_url("sqlite://host/x.db") == NULL && error_code() == ERR_INVALID);
  CHECK(db_open_url("") == NULL && error_code() == ERR_INVALID);
  CHECK(db_open_url("sqlite:///nonexistent-dir/x/y.db") == NULL && error_code() == ERR_UNAVAILABLE);

  AUTOFREE char *abs = xasprintf("sqlite://%s/abs.db", dir_template);
  CHECK((db = db_open_url(abs)) != NULL);
  if (db) {
    int64_t changes = -1;
    CHECK(db->ops->exec(db, "CREATE TABLE t (a TEXT PRIMARY KEY)", NULL, 0, NULL) == 0);
    struct db_value v[] = { DBV_TEXT("x") };
    CHECK(db->ops->exec(db, "INSERT INTO t VALUES (?)", v, 1, &changes) == 0 && changes == 1);
    CHECK(failed_with(db->ops->exec(db, "INSERT INTO t VALUES (?)", v, 1, NULL), ERR_CONFLICT));
    CHECK(failed_with(db->ops->exec(db, "INSERT INTO t VALUES (?)", NULL, 0, NULL), ERR_INTERNAL));
    CHECK(failed_with(db->ops->exec(db, "NOT SQL", NULL, 0, NULL), ERR_INTERNAL));
    db->ops->close(db);
  }
  AUTOFREE char *abs_file = xasprintf("%s/abs.db", dir_template);
  CHECK(access(abs_file, F_OK) == 0);

  /* relative and bare paths */
  AUTOFREE char *cwd = getcwd(NULL, 0);
  CHECK(chdir(dir_template) == 0);
  CHECK((db = db_open_url("sqlite:rel.db")) != NULL);
  if (db) db->ops->close(db);
  CHECK(access("rel.db", F_OK) == 0);
  CHECK((db = db_open_url("bare.db")) != NULL);
  if (db) db->ops->close(db);
  CHECK(access("bare.db", F_OK) == 0);
  CHECK(chdir(cwd) == 0);
}

/* the ops every backend has, on a database of its own: typed parameters
 * (an int64 beyond 32 bits, a blob with a NUL byte, NULL), affected rows,
 * constraint errors, sequences (made past existing rows, never repeating)
 * and, where the backend has one, the one-engine claim */
static void test_backend(void)
{
  AUTOFREE char *url = test_url("backend");
  struct db *db = db_open_url(url);
  CHECK(db != NULL);
  if (!db) return;
  CHECK(db->ops->exec_script(db, "CREATE TABLE t (k TEXT NOT NULL PRIMARY KEY, n BIGINT, b BYTEA)") == 0 ||
        db->ops->exec_script(db, "CREATE TABLE t (k TEXT NOT NULL PRIMARY KEY, n BIGINT, b BLOB)") == 0);
  error_clear();
  static const char blob[4] = { 'a', 0, (char)0xff, 'z' };
  struct db_value v[3] = { DBV_TEXT("one"), DBV_INT(INT64_C(1) << 40), DBV_BLOB(blob, sizeof blob) };
  int64_t changes = -1;
  CHECK(db->ops->exec(db, "INSERT INTO t (k, n, b) VALUES (?, ?, ?)", v, 3, &changes) == 0 && changes == 1);
  v[0] = DBV_TEXT("two");
  v[1] = DBV_NULL;
  v[2] = DBV_NULL;
  CHECK(db->ops->exec(db, "INSERT INTO t (k, n, b) VALUES (?, ?, ?)", v, 3, NULL) == 0);
  CHECK(failed_with(db->ops->exec(db, "INSERT INTO t (k, n, b) VALUES (?, ?, ?)", v, 3, NULL), ERR_CONFLICT));
  struct db_value big[1] = { DBV_INT((INT64_C(1) << 40) - 1) };
  struct { int rows; bool blob_ok; } seen = { 0, false };
  CHECK(db->ops->query(db, "SELECT k, n, b FROM t WHERE n > ? ORDER BY k", big, 1, backend_row, &seen) == 0);
  CHECK(seen.rows == 1 && seen.blob_ok);
  CHECK(db->ops->exec(db, "UPDATE t SET n = ? WHERE n IS NULL OR n > ?", (struct db_value[]){ DBV_INT(-5), DBV_INT(0) },
                      2, &changes) == 0 && changes == 2);

  /* sequences: start past what the table holds, go on across a reopen */
  int64_t a = 0, b = 0;
  CHECK(db->ops->sequence_ensure(db, "t_seq", 42) == 0);
  CHECK(db->ops->sequence_ensure(db, "t_seq", 10) == 0);  /* never goes back */
  CHECK(db->ops->sequence_next(db, "t_seq", &a) == 0 && a == 42);
  CHECK(db->ops->sequence_next(db, "t_seq", &b) == 0 && b == 43);
  CHECK(db->ops->begin(db) == 0 && db->ops->sequence_next(db, "t_seq", &a) == 0 && db->ops->rollback(db) == 0);
  CHECK(db->ops->sequence_ensure(db, "t_seq", 44) == 0);
  CHECK(db->ops->sequence_next(db, "t_seq", &b) == 0 && b >= 44);
  CHECK(failed_with(db->ops->sequence_next(db, "no_seq", &a), ERR_INTERNAL));

  /* a failed write inside a transaction leaves the earlier ones (SQLite's rule) */
  CHECK(db->ops->begin(db) == 0);
  v[0] = DBV_TEXT("three");
  CHECK(db->ops->exec(db, "INSERT INTO t (k, n, b) VALUES (?, ?, ?)", v, 3, NULL) == 0);
  CHECK(failed_with(db->ops->exec(db, "INSERT INTO t (k, n, b) VALUES (?, ?, ?)", v, 3, NULL), ERR_CONFLICT));
  CHECK(db->ops->commit(db) == 0);
  int64_t n = 0;
  CHECK(db->ops->query(db, "SELECT COUNT(*) FROM t", NULL, 0, count_row, &n) == 0 && n == 3);

  /* two connections (two processes): a second writer's transaction waits
   * until the first one ends (SQLite's BEGIN IMMEDIATE, PostgreSQL's
   * transaction lock), so it sees what the first committed */
  struct second_writer w = { db_open_url(url), 0, -1 };
  CHECK(w.db != NULL);
  if (w.db) {
    CHECK(db->ops->begin(db) == 0);
    v[0] = DBV_TEXT("four");
    CHECK(db->ops->exec(db, "INSERT INTO t (k, n, b) VALUES (?, ?, ?)", v, 3, NULL) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, second_writer_run, &w) == 0);
    usleep(300 * 1000);
    CHECK(__atomic_load_n(&w.began, __ATOMIC_ACQUIRE) == 0);  /* still waiting */
    CHECK(db->ops->commit(db) == 0);
    pthread_join(t, NULL);
    CHECK(w.began == 1 && w.seen == 4);
    w.db->ops->close(w.db);
  }

  if (db->ops->claim) {  /* one engine per store: the second claim is refused, naming the first */
    struct db *other = db_open_url(url);
    CHECK(other && db->ops->claim(db) == 0);
    error_clear();
    CHECK(other && failed_with(other->ops->claim(other), ERR_CONFLICT));
    CHECK(strstr(error_message(), "in use by another snapbackd (snapback pid ") != NULL);
    if (other) other->ops->close(other);
    db->ops->close(db);
    /* the lock goes with the connection */
    db = db_open_url(url);
    CHECK(db && db->ops->claim(db) == 0);

    /* a broken connection (the server restarted, an admin killed the
     * session) is made again at the next call, and so is the lock */
    other = db_open_url(url);
    AUTOFREE char *kill = xasprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                    "application_name = 'snapback pid %d' AND pid <> pg_backend_pid()", (int)getpid());
    CHECK(other && other->ops->exec_script(other, kill) == 0);
    n = 0;
    for (int i = 0; i < 2 && n != 4; i++) {  /* the first call may find the connection gone */
      error_clear();
      db->ops->query(db, "SELECT COUNT(*) FROM t", NULL, 0, count_row, &n);
    }
    CHECK(n == 4);
    CHECK(other && failed_with(other->ops->claim(other), ERR_CONFLICT));
    CHECK(db->ops->change_stamp(db) != 0);
    if (other) other->ops->close(other);
  }
  if (db) db->ops->close(db);
}

static void test_settings(struct store *st)
{
  AUTOFREE char *v = store_setting_get(st, "schema_version");
  AUTOFREE char *latest = xasprintf("%d", store_schema_version());
  CHECK_STR(v, latest);
  error_clear();
  CHECK(store_setting_get(st, "nope") == NULL && error_code() == ERR_NONE);
  CHECK(store_setting_set(st, "k", "v1") == 0);
  CHECK(store_setting_set(st, "k", "v2") == 0);
  AUTOFREE char *k = store_setting_get(st, "k");
  CHECK_STR(k, "v2");
}

static void test_vm(struct store *st)
{
  struct vm a = { .id = "00000000-0000-0000-0000-00000000000a", .name = "web", .description = "front",
                  .cluster_id = "c1", .memory = 1LL << 32, .sockets = 1, .cores = 2, .threads = 1,
                  .os_type = "other", .status = VM_UP, .creation_ms = 1700000000123LL };
  struct vm b = { .id = "00000000-0000-0000-0000-00000000000b", .name = "db", .status = VM_DOWN,
                  .os_type = "rhel_8x64", .memory = 1024 };
  struct vm c = { .id = "00000000-0000-0000-0000-00000000000c", .name = "app", .status = VM_UP };
  CHECK(vm_insert(st, &a) == 0);
  CHECK(vm_insert(st, &b) == 0);
  CHECK(vm_insert(st, &c) == 0);

  error_clear();
  CHECK(failed_with(vm_insert(st, &a), ERR_CONFLICT));
  CHECK(strstr(error_message(), "VM '00000000-0000-0000-0000-00000000000a'") != NULL);

  AUTOPTR(vm) g = vm_get(st, a.id);
  CHECK(g != NULL);
  if (g) {
    CHECK_STR(g->name, "web");
    CHECK_STR(g->description, "front");
    CHECK(g->host_id == NULL && g->kernel == NULL);
    CHECK(g->memory == 1LL << 32 && g->cores == 2 && g->creation_ms == 1700000000123LL);
    CHECK(g->status == VM_UP);
  }

  /* enums are stored as their strings */
  CHECK(vm_count_by_status(st, VM_UP) == 2);
  CHECK(vm_count_all(st) == 3);

  AUTOLIST(vm) all = vm_list_all(st);
  CHECK(all && all[0] && all[1] && all[2] && !all[3]);
  if (all && all[2]) {  /* default order: name */
    CHECK_STR(all[0]->name, "app");
    CHECK_STR(all[2]->name, "web");
  }
  AUTOLIST(vm) ups = vm_list_by_status(st, VM_UP);
  CHECK(ups && ups[0] && ups[1] && !ups[2]);  /* by name */
  if (ups && ups[0] && ups[1]) CHECK_STR(ups[1]->name, "web");
  AUTOLIST(vm) empty = vm_list_by_name(st, "zzz");
  CHECK(empty && empty[0] == NULL);
  error_clear();
  CHECK(store_select(st, STORE_TYPE(vm), "no_such_column = 1", NULL, 0, NULL, 0) == NULL &&
        error_code() == ERR_INTERNAL);

  b.status = VM_POWERING_UP;
  b.host_id = "h1";
  CHECK(vm_update(st, &b) == 0);
  AUTOPTR(vm) g2 = vm_get(st, b.id);
  CHECK(g2 && g2->status == VM_POWERING_UP);
  if (g2) CHECK_STR(g2->host_id, "h1");

  /* the event thread's write (status, host) keeps a command's concurrent
   * change to the other columns: no lost update */
  struct vm edited = b;
  edited.memory = 4096;
  edited.host_id = "h1";
  CHECK(vm_update(st, &edited) == 0);             /* a command, after the event read the row */
  CHECK(vm_set_status(st, b.id, VM_DOWN, NULL) == 0); /* the event thread */
  AUTOPTR(vm) g3 = vm_get(st, b.id);
  CHECK(g3 && g3->memory == 4096 && g3->status == VM_DOWN && g3->host_id == NULL);

  struct vm bad = c;
  bad.status = 99;
  error_clear();
  CHECK(failed_with(vm_update(st, &bad), ERR_INVALID));

  error_clear();
  CHECK(vm_get(st, "missing") == NULL && error_code() == ERR_NOT_FOUND);
  CHECK_STR(error_message(), "VM 'missing' does not exist");
  struct vm ghost = { .id = "missing", .name = "g" };
  CHECK(failed_with(vm_update(st, &ghost), ERR_NOT_FOUND));
  CHECK(vm_delete(st, c.id) == 0);
  CHECK(failed_with(vm_delete(st, c.id), ERR_NOT_FOUND));
  CHECK(vm_count_all(st) == 2);
}

static void test_user_token(struct store *st)
{
  struct user u = { "u1", "admin@internal", "$argon2id$x" };
  CHECK(user_insert(st, &u) == 0);
  struct user dup_name = { "u2", "admin@internal", "h" };
  CHECK(failed_with(user_insert(st, &dup_name), ERR_CONFLICT));
  AUTOPTR(user) g = user_get_by_name(st, "admin@internal");
  CHECK(g != NULL);
  if (g) CHECK_STR(g->id, "u1");
  error_clear();
  CHECK(user_get_by_name(st, "nobody") == NULL && error_code() == ERR_NOT_FOUND);
  u.password_hash = "$argon2id$y";
  CHECK(user_update(st, &u) == 0);
  AUTOPTR(user) g2 = user_get(st, "u1");
  if (g2) CHECK_STR(g2->password_hash, "$argon2id$y");

  struct token t1 = { "tok1", "u1", 1000 }, t2 = { "tok2", "u1", 2000 };
  CHECK(token_insert(st, &t1) == 0 && token_insert(st, &t2) == 0);
  CHECK(failed_with(token_insert(st, &t1), ERR_CONFLICT));
  AUTOPTR(token) gt = token_get(st, "tok2");
  CHECK(gt && gt->expires_ms == 2000);
  if (gt) CHECK_STR(gt->user_id, "u1");
  CHECK(token_count_expired(st, 1500) == 1);
  t1.expires_ms = 3000;
  CHECK(token_update(st, &t1) == 0);
  AUTOLIST(token) tl = token_list_by_user(st, "u1");
  CHECK(tl && tl[0] && tl[1] && !tl[2]);
  if (tl && tl[1]) CHECK_STR(tl[1]->token, "tok1");  /* ordered by expiry */
  CHECK(token_delete(st, "tok1") == 0);
  error_clear();
  CHECK(failed_with(token_delete(st, "tok1"), ERR_NOT_FOUND));
  CHECK(token_get(st, "tok1") == NULL && error_code() == ERR_NOT_FOUND);
  CHECK(user_delete(st, "u1") == 0 && user_count_all(st) == 0);
}

static void test_infra(struct store *st)
{
  struct datacenter dc = { "dc1", "Default", "the default" };
  struct cluster cl = { "cl1", "Default", NULL, "dc1" };
  struct template tp = { "00000000-0000-0000-0000-000000000000", "Blank", "blank template", "cl1" };
  struct host h = { "h1", "local", "qemu:///system", "cl1", HOST_UP };
  struct storage_domain sd = { "sd1", "data", "/var/lib/snapback/sd", "dc1", "data" };
  CHECK(datacenter_insert(st, &dc) == 0);
  CHECK(cluster_insert(st, &cl) == 0);
  CHECK(template_insert(st, &tp) == 0);
  CHECK(host_insert(st, &h) == 0);
  CHECK(storage_domain_insert(st, &sd) == 0);
  CHECK(failed_with(host_insert(st, &h), ERR_CONFLICT));

  AUTOPTR(datacenter) gdc = datacenter_get(st, "dc1");
  if (gdc) CHECK_STR(gdc->description, "the default"); else CHECK(0);
  AUTOPTR(cluster) gcl = cluster_get(st, "cl1");
  CHECK(gcl && gcl->description == NULL);
  if (gcl) CHECK_STR(gcl->datacenter_id, "dc1");
  AUTOPTR(template) gtp = template_get(st, tp.id);
  if (gtp) CHECK_STR(gtp->name, "Blank"); else CHECK(0);
  AUTOPTR(host) gh = host_get(st, "h1");
  CHECK(gh && gh->status == HOST_UP);
  AUTOPTR(storage_domain) gsd = storage_domain_get(st, "sd1");
  if (gsd) CHECK_STR(gsd->path, "/var/lib/snapback/sd"); else CHECK(0);

  h.status = HOST_MAINTENANCE;
  CHECK(host_update(st, &h) == 0);
  CHECK(host_count_by_status(st, HOST_MAINTENANCE) == 1);
  dc.name = "Renamed";
  CHECK(datacenter_update(st, &dc) == 0);
  CHECK(datacenter_count_by_name(st, "Renamed") == 1);
  cl.description = "desc";
  CHECK(cluster_update(st, &cl) == 0);
  tp.description = NULL;
  CHECK(template_update(st, &tp) == 0);
  sd.name = "data2";
  CHECK(storage_domain_update(st, &sd) == 0);
  AUTOLIST(storage_domain) sds = storage_domain_list_all(st);
  CHECK(sds && sds[0] && !sds[1]);
  if (sds && sds[0]) CHECK_STR(sds[0]->name, "data2");
  AUTOLIST(host) hs = host_list_all(st);
  CHECK(hs && hs[0] && !hs[1]);
  AUTOLIST(cluster) cls = cluster_list_all(st);
  CHECK(cls && cls[0] && !cls[1]);
  AUTOLIST(template) tps = template_list_all(st);
  CHECK(tps && tps[0] && !tps[1]);
  AUTOLIST(datacenter) dcs = datacenter_list_all(st);
  CHECK(dcs && dcs[0] && !dcs[1]);

  error_clear();
  CHECK(storage_domain_get(st, "nope") == NULL);
  CHECK_STR(error_message(), "storage domain 'nope' does not exist");
  CHECK(datacenter_get(st, "nope") == NULL && error_code() == ERR_NOT_FOUND);
  CHECK(cluster_get(st, "nope") == NULL && error_code() == ERR_NOT_FOUND);
  CHECK(template_get(st, "nope") == NULL && error_code() == ERR_NOT_FOUND);
  CHECK(host_get(st, "nope") == NULL && error_code() == ERR_NOT_FOUND);

  CHECK(host_delete(st, "h1") == 0 && host_count_all(st) == 0);
  CHECK(template_delete(st, tp.id) == 0 && template_count_all(st) == 0);
  CHECK(failed_with(cluster_delete(st, "nope"), ERR_NOT_FOUND));
  CHECK(failed_with(datacenter_delete(st, "nope"), ERR_NOT_FOUND));
  CHECK(failed_with(storage_domain_delete(st, "nope"), ERR_NOT_FOUND));
}

static void test_disks(struct store *st)
{
  struct disk d = { .id = "d1", .alias = "root", .provisioned_size = 10LL << 30, .format = DISK_FORMAT_COW,
                    .sparse = true, .shareable = false, .storage_domain_id = "sd1", .status = DISK_OK };
  struct disk d2 = { .id = "d2", .alias = "data", .format = DISK_FORMAT_RAW, .status = DISK_LOCKED };
  CHECK(disk_insert(st, &d) == 0 && disk_insert(st, &d2) == 0);
  AUTOPTR(disk) gd = disk_get(st, "d1");
  CHECK(gd && gd->sparse && !gd->shareable && gd->format == DISK_FORMAT_COW &&
        gd->provisioned_size == 10LL << 30);
  CHECK(disk_count_by_format_status(st, DISK_FORMAT_RAW, DISK_LOCKED) == 1);
  d2.status = DISK_OK;
  d2.shareable = true;
  CHECK(disk_update(st, &d2) == 0);
  AUTOPTR(disk) gd2 = disk_get(st, "d2");
  CHECK(gd2 && gd2->shareable && gd2->status == DISK_OK);

  struct volume v1 = { "v1", "d1", NULL, "s1", DISK_FORMAT_COW, DISK_OK, "/sd/v1", false };
  struct volume v2 = { "v2", "d1", "v1", NULL, DISK_FORMAT_COW, DISK_OK, "/sd/v2", true };
  CHECK(volume_insert(st, &v1) == 0 && volume_insert(st, &v2) == 0);
  AUTOLIST(volume) chain = volume_list_by_disk(st, "d1");
  CHECK(chain && chain[0] && chain[1] && !chain[2]);
  AUTOPTR(volume) gv = volume_get(st, "v2");
  CHECK(gv && gv->active && gv->snapshot_id == NULL);
  if (gv) CHECK_STR(gv->parent_id, "v1");
  v2.status = DISK_ILLEGAL;
  CHECK(volume_update(st, &v2) == 0);
  CHECK(volume_count_by_status(st, DISK_ILLEGAL) == 1);
  CHECK(volume_delete(st, "v2") == 0);
  CHECK(failed_with(volume_delete(st, "v2"), ERR_NOT_FOUND));

  struct attachment a1 = { "vmA", "d1", NULL, IFACE_VIRTIO_SCSI, true, true, false, false, NULL, NULL, 2 };
  struct attachment a2 = { "vmA", "d2", NULL, IFACE_VIRTIO, false, true, true, false, "/dev/vdb", NULL, 1 };
  struct attachment a3 = { "vmB", "d2", "s1", IFACE_SATA, false, true, true, true, NULL, "/tmp/ov", 1 };
  CHECK(attachment_insert(st, &a1) == 0 && attachment_insert(st, &a2) == 0 && attachment_insert(st, &a3) == 0);
  error_clear();
  CHECK(failed_with(attachment_insert(st, &a1), ERR_CONFLICT));
  AUTOPTR(attachment) ga = attachment_get(st, "vmA", "d1");
  CHECK(ga && ga->iface == IFACE_VIRTIO_SCSI && ga->bootable && !ga->read_only && ga->position == 2);
  AUTOLIST(attachment) atts = attachment_list_by_vm(st, "vmA");
  CHECK(atts && atts[0] && atts[1] && !atts[2]);
  if (atts && atts[1]) CHECK_STR(atts[0]->disk_id, "d2");  /* by position */
  CHECK(attachment_count_by_disk(st, "d2") == 2);
  a3.plugged = false;
  a3.overlay_path = NULL;
  CHECK(attachment_update(st, &a3) == 0);
  AUTOPTR(attachment) ga3 = attachment_get(st, "vmB", "d2");
  CHECK(ga3 && !ga3->plugged && ga3->overlay_path == NULL);
  if (ga3) CHECK_STR(ga3->snapshot_id, "s1");
  error_clear();
  CHECK(attachment_get(st, "vmB", "d1") == NULL);
  CHECK_STR(error_message(), "attachment of disk 'd1' to VM 'vmB' does not exist");
  CHECK(attachment_delete(st, "vmA", "d1") == 0);
  CHECK(failed_with(attachment_delete(st, "vmA", "d1"), ERR_NOT_FOUND));
  CHECK(disk_delete(st, "d1") == 0);
  CHECK(failed_with(disk_delete(st, "d1"), ERR_NOT_FOUND));
}

static void test_snapshots_jobs(struct store *st)
{
  struct snapshot s1 = { "s1", "vmA", "Active VM", SNAPSHOT_ACTIVE, SNAPSHOT_OK, 100, false, NULL };
  struct snapshot s2 = { "s2", "vmA", "nightly", SNAPSHOT_REGULAR, SNAPSHOT_LOCKED, 200, true, "<ovf/>" };
  CHECK(snapshot_insert(st, &s1) == 0 && snapshot_insert(st, &s2) == 0);
  AUTOPTR(snapshot) g = snapshot_get(st, "s2");
  CHECK(g && g->type == SNAPSHOT_REGULAR && g->status == SNAPSHOT_LOCKED && g->persist_memorystate);
  if (g) CHECK_STR(g->ovf, "<ovf/>");
  s2.status = SNAPSHOT_IN_PREVIEW;
  CHECK(snapshot_update(st, &s2) == 0);
  AUTOLIST(snapshot) l = snapshot_list_by_vm(st, "vmA");
  CHECK(l && l[0] && l[1] && !l[2]);
  if (l && l[1]) CHECK(l[1]->status == SNAPSHOT_IN_PREVIEW);  /* the newest last */
  CHECK(snapshot_count_by_type(st, SNAPSHOT_ACTIVE) == 1);
  CHECK(snapshot_delete(st, "s2") == 0);
  error_clear();
  CHECK(snapshot_get(st, "s2") == NULL);
  CHECK_STR(error_message(), "snapshot 's2' does not exist");

  struct job j = { "j1", "Adding disk", JOB_STARTED, 10, 0, "u1", 0 };
  CHECK(job_insert(st, &j) == 0);
  j.status = JOB_FINISHED;
  j.end_ms = 20;
  j.progress = 100;
  CHECK(job_update(st, &j) == 0);
  AUTOPTR(job) gj = job_get(st, "j1");
  CHECK(gj && gj->status == JOB_FINISHED && gj->end_ms == 20 && gj->progress == 100);
  CHECK(job_count_all(st) == 1);
  AUTOLIST(job) jl = job_list_all(st);
  CHECK(jl && jl[0] && !jl[1]);
  CHECK(job_delete(st, "j1") == 0);
  CHECK(failed_with(job_delete(st, "j1"), ERR_NOT_FOUND));
  CHECK(job_get(st, "j1") == NULL && error_code() == ERR_NOT_FOUND);
}

static void test_events(struct store *st)
{
  struct event e = { .time_ms = 1, .severity = SEVERITY_NORMAL, .code = 30, .description = "first",
                     .origin = "snapback", .custom_id = -1 };
  CHECK(event_insert(st, &e) == 0);
  int64_t first = e.id;
  CHECK(first >= 1);
  e.description = "second";
  e.severity = SEVERITY_ALERT;
  CHECK(event_insert(st, &e) == 0);
  CHECK(e.id == first + 1);
  AUTOPTR(event) g = event_get(st, first + 1);
  CHECK(g && g->severity == SEVERITY_ALERT && g->custom_id == -1 && g->vm_id == NULL);
  if (g) CHECK_STR(g->description, "second");
  AUTOLIST(event) latest = event_list_newest(st, 1);
  CHECK(latest && latest[0] && !latest[1] && latest[0]->id == first + 1);
  CHECK(event_count_after(st, 0) == 2);
  e.id = first;
  e.code = 31;
  CHECK(event_update(st, &e) == 0);
  error_clear();
  CHECK(event_get(st, 9999) == NULL);
  CHECK_STR(error_message(), "event '9999' does not exist");
  CHECK(event_delete(st, first) == 0);
  CHECK(failed_with(event_delete(st, first), ERR_NOT_FOUND));

  /* retention: old events go in batches, the newest never (ids stay increasing) */
  for (int i = 0; i < 5; i++) {
    e.time_ms = 100 + i;
    CHECK(event_insert(st, &e) == 0);
  }
  int64_t newest = e.id, gone = 0;
  CHECK(event_prune(st, 1000, 2, &gone) == 0 && gone == 2);
  CHECK(event_prune(st, 1000, 100, &gone) == 0 && gone == 3);
  CHECK(event_count_all(st) == 1);
  CHECK(event_insert(st, &e) == 0 && e.id == newest + 1);
}

static void test_transactions(struct store *st)
{
  struct datacenter dc = { "tx1", "tx", NULL };
  CHECK(store_begin(st) == 0);
  CHECK(datacenter_insert(st, &dc) == 0);
  CHECK(datacenter_count_by_id(st, "tx1") == 1);
  store_rollback(st);
  CHECK(datacenter_count_by_id(st, "tx1") == 0);

  /* a transaction forbids blocking work (qemu-img, volume files) on its
   * thread until it ends; plain calls leave nothing forbidden behind */
  CHECK(blocking_check("test") == 0);
  CHECK(store_begin(st) == 0);
  CHECK(blocking_check("run 'qemu-img'") == -1);
  CHECK(store_begin(st) == 0);
  store_rollback(st);
  CHECK(blocking_check("run 'qemu-img'") == -1);
  store_rollback(st);
  error_clear();
  CHECK(blocking_check("test") == 0);

  /* nested: only the outermost commit reaches the database */
  CHECK(store_begin(st) == 0);
  CHECK(datacenter_insert(st, &dc) == 0);
  CHECK(store_begin(st) == 0);
  struct datacenter dc2 = { "tx2", "tx2", NULL };
  CHECK(datacenter_insert(st, &dc2) == 0);
  CHECK(store_commit(st) == 0);
  CHECK(store_commit(st) == 0);
  CHECK(datacenter_count_by_id(st, "tx1") + datacenter_count_by_id(st, "tx2") == 2);

  /* a nested rollback dooms the outer transaction */
  struct datacenter dc3 = { "tx3", "tx3", NULL };
  CHECK(store_begin(st) == 0);
  CHECK(datacenter_insert(st, &dc3) == 0);
  CHECK(store_begin(st) == 0);
  store_rollback(st);
  error_clear();
  CHECK(failed_with(store_commit(st), ERR_CONFLICT));
  CHECK(datacenter_count_by_id(st, "tx3") == 0);

  /* a failed statement inside a transaction leaves the earlier ones */
  CHECK(store_begin(st) == 0);
  CHECK(datacenter_insert(st, &dc3) == 0);
  CHECK(failed_with(datacenter_insert(st, &dc3), ERR_CONFLICT));
  CHECK(store_commit(st) == 0);
  CHECK(datacenter_count_by_id(st, "tx3") == 1);

  error_clear();
  CHECK(failed_with(store_commit(st), ERR_INTERNAL));
}

#define THREADS 4
#define PER_THREAD 50
struct worker { struct store *st; int n; int failures; };

static void *worker_run(void *opaque)
{
  struct worker *w = opaque;
  for (int i = 0; i < PER_THREAD; i++) {
    AUTOFREE char *id = xasprintf("t%d-%d", w->n, i);
    struct job j = { id, "concurrent", JOB_STARTED, i, 0, NULL, 0 };
    struct event e = { .time_ms = i, .description = id, .custom_id = -1 };
    if (job_insert(w->st, &j) < 0 || event_insert(w->st, &e) < 0) w->failures++;
    AUTOPTR(job) g = job_get(w->st, id);
    if (!g) w->failures++;
    if (i % 10 == 0) {
      if (store_begin(w->st) < 0) { w->failures++; continue; }
      j.progress = 50;
      if (job_update(w->st, &j) < 0) w->failures++;
      if (store_commit(w->st) < 0) w->failures++;
    }
  }
  return NULL;
}

static void test_threads(struct store *st)
{
  pthread_t t[THREADS];
  struct worker w[THREADS];
  int64_t events_before = event_count_all(st);
  for (int i = 0; i < THREADS; i++) {
    w[i] = (struct worker){ st, i, 0 };
    CHECK(pthread_create(&t[i], NULL, worker_run, &w[i]) == 0);
  }
  int failures = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    failures += w[i].failures;
  }
  CHECK(failures == 0);
  CHECK(job_count_all(st) == THREADS * PER_THREAD);
  CHECK(event_count_all(st) == events_before + THREADS * PER_THREAD);
  AUTOLIST(job) jobs = job_list_all(st);
  int halfway = 0;
  for (size_t i = 0; jobs && jobs[i]; i++) halfway += jobs[i]->progress == 50;
  CHECK(halfway == THREADS * (PER_THREAD / 10));
}

/* T_read: how many rows of T match, read whole through T_list (every column
 * of the current field table, so a column no migration step added fails) */
#define READ_ROWS(T)                                                                            \
  static int64_t T##_read(struct store *st, const char *where, const struct db_value *p, int n) \
  {                                                                                             \
    AUTOLIST(T) l = (struct T **)store_select(st, STORE_TYPE(T), where, p, n, NULL, 0);         \
    if (!l) return -1;                                                                          \
    int64_t k = 0;                                                                              \
    while (l[k]) k++;                                                                           \
    return k;                                                                                   \
  }
READ_ROWS(user) READ_ROWS(token) READ_ROWS(host) READ_ROWS(datacenter) READ_ROWS(cluster)
READ_ROWS(template) READ_ROWS(storage_domain) READ_ROWS(vm) READ_ROWS(disk) READ_ROWS(volume)
READ_ROWS(attachment) READ_ROWS(snapshot) READ_ROWS(event) READ_ROWS(job) READ_ROWS(image_transfer)

/* the tables of schema version 1, with the column the fixture's INSERTs start with */
static const struct v1_table {
  const char *table, *key;
  int64_t (*count)(struct store *st, const char *where, const struct db_value *params, int nparams);
} v1_tables[] = {
  {"users", "id", user_read}, {"tokens", "token", token_read}, {"hosts", "id", host_read},
  {"datacenters", "id", datacenter_read}, {"clusters", "id", cluster_read},
  {"templates", "id", template_read}, {"storage_domains", "id", storage_domain_read},
  {"vms", "id", vm_read}, {"disks", "id", disk_read}, {"volumes", "id", volume_read},
  {"attachments", "vm_id", attachment_read}, {"snapshots", "id", snapshot_read},
  {"events", "id", event_read}, {"jobs", "id", job_read},
  {"image_transfers", "id", image_transfer_read},
};

/* A store made by schema version 1 (tests/fixtures/store-v1.sql) opens with
 * this build: the migration steps run, and every row of the fixture is still
 * there, found by its key through the typed store functions (which read
 * every column of the current field tables, so a column a step forgot fails
 * here too). */
static void test_upgrade(void)
{
  AUTOFREE char *fixture_path = xasprintf("%s/tests/fixtures/store-v1.sql", SRCDIR);
  AUTOFREE char *url = test_url("v1");
  FILE *f = fopen(fixture_path, "re");
  CHECK(f != NULL);
  if (!f) return;
  struct buf sql = BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&sql, chunk, n);
  fclose(f);
  /* PostgreSQL runs the dump as it is but for SQLite's PRAGMA line and the
   * char(10) sqlite3 writes for a newline (chr(10) there) */
  AUTOBUF struct buf portable = BUF_INIT;
  for (const char *p = buf_str(&sql); *p;) {
    size_t len = strcspn(p, "\n");
    if (pg_host && strncmp(p, "PRAGMA", 6) == 0) {
      p += len;
    } else if (pg_host && strncmp(p, "char(10)", 8) == 0) {
      buf_puts(&portable, "chr(10)");
      p += 8;
    } else {
      buf_putc(&portable, *p++);
    }
  }
  struct db *db = db_open_url(url);
  int loaded = db ? db->ops->exec_script(db, buf_str(&portable)) : -1;
  CHECK(loaded == 0);
  if (loaded < 0) fprintf(stderr, "# loading the v1 fixture: %s\n", error_message());
  if (db) db->ops->close(db);

  error_clear();
  struct store *st = store_open(url);
  CHECK(st != NULL);
  if (!st) {
    fprintf(stderr, "# store_open of the v1 fixture: %s\n", error_message());
    buf_free(&sql);
    return;
  }
  AUTOFREE char *version = store_setting_get(st, "schema_version");
  AUTOFREE char *want = xasprintf("%d", store_schema_version());
  CHECK_STR(version, want);

  /* every INSERT of the fixture: its row is found by its key, and the
   * number of rows per table is unchanged */
  int64_t rows[ARRAY_SIZE(v1_tables)] = {0};
  int checked = 0;
  for (char *line = strtok(sql.data, "\n"); line; line = strtok(NULL, "\n")) {
    char table[64], key[128];
    if (sscanf(line, "INSERT INTO %63[a-z_] VALUES(%127[^,]", table, key) != 2) continue;
    for (size_t i = 0; i < ARRAY_SIZE(v1_tables); i++) {
      if (strcmp(v1_tables[i].table, table) != 0) continue;
      char *k = key;
      if (*k == '\'') {
        k++;
        k[strcspn(k, "'")] = 0;
      }
      AUTOFREE char *where = xasprintf("%s = ?", v1_tables[i].key);
      /* typed: events are keyed by a number */
      struct db_value params[] = { strcmp(table, "events") == 0 ? DBV_INT(strtoll(k, NULL, 10)) : DBV_TEXT(k) };
      int64_t found = v1_tables[i].count(st, where, params, 1);
      if (found != 1) fprintf(stderr, "# %s row '%s': found %lld times\n", table, k, (long long)found);
      CHECK(found == 1);
      rows[i]++;
      checked++;
    }
  }
  CHECK(checked >= 40);
  for (size_t i = 0; i < ARRAY_SIZE(v1_tables); i++) {
    CHECK(rows[i] > 0);  /* one of every object */
    CHECK(v1_tables[i].count(st, NULL, NULL, 0) == rows[i]);
  }

  /* and the rows read back whole */
  AUTOPTR(vm) vm = vm_get(st, "74e2abe7-b06b-4e12-af01-9d0ebe6df72e");
  CHECK(vm && strcmp(vm->name, "fixture-vm") == 0 && vm->memory == 134217728 && vm->status == VM_DOWN);
  AUTOPTR(snapshot) snap = snapshot_get(st, "2b54c96b-b16e-4c57-9dfd-0ae428b1ef25");
  CHECK(snap && strcmp(snap->description, "fixture-snap") == 0 && snap->type == SNAPSHOT_REGULAR &&
        snap->ovf && strstr(snap->ovf, "fixture-vm"));
  AUTOPTR(attachment) at = attachment_get(st, "74e2abe7-b06b-4e12-af01-9d0ebe6df72e",
                                          "0d3026c0-c840-4871-bc39-3aaade605bd4");
  CHECK(at && at->iface == IFACE_VIRTIO_SCSI && at->active);
  AUTOPTR(user) admin = user_get_by_name(st, "admin@internal");
  CHECK(admin && admin->password_hash && strncmp(admin->password_hash, "$argon2id$", 10) == 0);
  AUTOPTR(template) tpl = template_get(st, "f3f8310a-1b6c-46e7-a3b2-fdc70df7d3c3");
  CHECK(tpl && strcmp(tpl->name, "fixture-template") == 0);
  CHECK(event_count_by_custom_id(st, 42) == 1);
  /* the events' sequence, new since, starts past the ids the store holds */
  AUTOLIST(event) newest = event_list_newest(st, 1);
  struct event e = { .time_ms = 1, .description = "after the upgrade", .origin = "test", .custom_id = -1 };
  CHECK(newest && newest[0] && event_insert(st, &e) == 0 && e.id == newest[0]->id + 1);
  store_close(st);

  /* a second open has nothing left to migrate */
  st = store_open(url);
  CHECK(st != NULL);
  store_close(st);
  buf_free(&sql);
}

int main(void)
{
  if (!mkdtemp(dir_template)) {
    perror("mkdtemp");
    return 1;
  }
  pg_host = getenv("SNAPBACK_PG_HOST");
  pg_user = getenv("SNAPBACK_PG_USER");
  if (pg_host && !*pg_host) pg_host = NULL;
  if (pg_host && !pg_user) pg_user = "postgres";
  db_url = test_url("store");
  test_db_url();
  test_backend();

  struct store *st = store_open(db_url);
  CHECK(st != NULL);
  if (!st) {
    fprintf(stderr, "store_open: %s\n", error_message());
    return tap_done();
  }
  test_settings(st);
  test_vm(st);
  test_user_token(st);
  test_infra(st);
  test_disks(st);
  test_snapshots_jobs(st);
  test_events(st);
  test_transactions(st);
  test_threads(st);
  store_close(st);

  /* reopening the file keeps the data and does not recreate the schema */
  st = store_open(db_url);
  CHECK(st != NULL);
  if (st) {
    AUTOPTR(vm) g = vm_get(st, "00000000-0000-0000-0000-00000000000a");
    if (g) CHECK_STR(g->name, "web"); else CHECK(0);
    CHECK(job_count_all(st) == THREADS * PER_THREAD);
    AUTOFREE char *k = store_setting_get(st, "k");
    CHECK_STR(k, "v2");
    store_close(st);
  }

  /* a schema newer than this build is refused */
  AUTOFREE char *newer_url = test_url("newer");
  st = store_open(newer_url);
  CHECK(st && store_setting_set(st, "schema_version", "999") == 0);
  store_close(st);
  error_clear();
  CHECK(store_open(newer_url) == NULL && error_code() == ERR_UNSUPPORTED);
  CHECK(strstr(error_message(), "schema version 999, newer than") != NULL);

  test_upgrade();

  if (nftw(dir_template, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0) perror("removing the test directory");
  free(db_url);
  return tap_done();
}
