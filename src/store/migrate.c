/* migrate.c: the schema's history, one numbered step per change.
 *
 * A store records the number of the last step it has (setting
 * schema_version). A new store is created in the current shape from the
 * field tables (store.c) and gets the last number; an older one runs the
 * steps after its number, in order, in one transaction with the version
 * update, so a crash leaves it as it was. An engine refuses a store with a
 * number it does not know (a newer snapback wrote it). docs/ARCHITECTURE.md
 * says when a change needs a step.
 *
 * A step is portable SQL (SQLite and PostgreSQL both run it) or adds one
 * column that a field table declares, with the column's type and a default
 * derived from the field. Tables that are new since the store was made need
 * no step: after the steps every table is created IF NOT EXISTS in its
 * current shape (so an add_column step skips a table that did not exist).
 * Never edit or renumber a step once merged: stores out there ran it.
 *
 * store.c creates and opens stores; it runs schema_migrate() in its
 * transaction and answers schema_column_type() from its field tables. */
#include "store/migrate.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

struct migration {
  int version;           /* the schema version this step produces: previous + 1 */
  const char *what;      /* for the log */
  const char *sql;       /* statements to run, or NULL for... */
  const char *table;     /* ...adding TABLE.COLUMN as its field table declares it */
  const char *column;
};

static const struct migration migrations[] = {
  /* version 1: the schema as the field tables made it before this list existed
   * (tests/fixtures/store-v1.sql) */
  {2, "index jobs by status and events by time (metrics, event retention)",
   "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);\n"
   "CREATE INDEX IF NOT EXISTS events_time ON events (time_ms)", NULL, NULL},
  /* the imageio data path: transfers of a backup's dirty bitmap or of an NBD server the engine
   * did not start */
  {3, "image transfers: dirty_context", NULL, "image_transfers", "dirty_context"},
  {4, "image transfers: export_name", NULL, "image_transfers", "export_name"},
  {5, "image transfers: external_server", NULL, "image_transfers", "external_server"},
  {6, "image transfers: chosen_source", NULL, "image_transfers", "chosen_source"},
  /* incremental backup: which disks keep dirty bitmaps (backups, checkpoints: new tables) */
  {7, "disks: backup (none or incremental)", NULL, "disks", "backup"},
  /* several hosts: each reached by its own libvirt URI; a VM may be pinned to one */
  {8, "hosts: libvirt_uri", NULL, "hosts", "libvirt_uri"},
  {9, "vms: placement_host_id", NULL, "vms", "placement_host_id"},
  /* jobs name the VM they act on (GET /jobs?search=vm.name=...) */
  {10, "jobs: vm_id", NULL, "jobs", "vm_id"},
  /* CD-ROMs and boot order: ISO disks, the VM's CD and its boot devices */
  {11, "disks: content_type (data or iso)", NULL, "disks", "content_type"},
  {12, "vms: cdrom_disk_id", NULL, "vms", "cdrom_disk_id"},
  {13, "vms: boot_devices", NULL, "vms", "boot_devices"},
  /* backups of VMs on other hosts: libvirt's NBD server on TCP there */
  {14, "backups: nbd_server", NULL, "backups", "nbd_server"},
  {15, "image transfers: nbd_server", NULL, "image_transfers", "nbd_server"},
};
#define SCHEMA_VERSION (migrations[ARRAY_SIZE(migrations) - 1].version)

int store_schema_version(void)
{
  return SCHEMA_VERSION;
}

/* Runs SQL (a probe) inside a savepoint: 1 when it worked, 0 when it failed
 * (the savepoint undoes the failure, which PostgreSQL needs to go on). */
static int schema_probe(struct db *db, const char *sql)
{
  if (db->ops->exec_script(db, "SAVEPOINT schema_probe") < 0) return -1;
  if (db->ops->exec_script(db, sql) == 0)
    return db->ops->exec_script(db, "RELEASE SAVEPOINT schema_probe") < 0 ? -1 : 1;
  error_clear();
  if (db->ops->exec_script(db, "ROLLBACK TO SAVEPOINT schema_probe") < 0 ||
      db->ops->exec_script(db, "RELEASE SAVEPOINT schema_probe") < 0)
    return -1;
  return 0;
}

/* ALTER TABLE ... ADD COLUMN for a field of a table that exists and lacks it */
static int migration_add_column(struct db *db, const struct migration *m)
{
  AUTOBUF struct buf type = BUF_INIT;
  if (!schema_column_type(m->table, m->column, &type))
    return error(ERR_INTERNAL, "schema step %d: no field table declares %s.%s", m->version, m->table, m->column);
  AUTOFREE char *has_table = xasprintf("SELECT 1 FROM %s WHERE 1 = 0", m->table);
  AUTOFREE char *has_column = xasprintf("SELECT %s FROM %s WHERE 1 = 0", m->column, m->table);
  int t = schema_probe(db, has_table);
  if (t <= 0) return t;  /* no such table yet: it is created whole after the steps */
  int c = schema_probe(db, has_column);
  if (c != 0) return c < 0 ? -1 : 0;
  AUTOBUF struct buf sql = BUF_INIT;
  buf_printf(&sql, "ALTER TABLE %s ADD COLUMN %s %s", m->table, m->column, buf_str(&type));
  return db->ops->exec_script(db, buf_str(&sql));
}

int schema_migrate(struct db *db, int from)
{
  for (size_t i = 0; i < ARRAY_SIZE(migrations); i++) {
    const struct migration *m = &migrations[i];
    if (m->version <= from) continue;
    log_info("store: upgrading the schema from version %d to %d: %s", m->version - 1, m->version, m->what);
    int rc = m->sql ? db->ops->exec_script(db, m->sql) : migration_add_column(db, m);
    if (rc < 0) return error_prefix("schema step %d (%s): ", m->version, m->what);
  }
  return 0;
}
