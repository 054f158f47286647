/* store.c: the entity layer over db.h.
 *
 * Every entity type is described once by a struct entity_desc (entity.h,
 * the descriptions in entities.c): its table, key columns and a field table
 * (column name, type, offset in the C struct). The generic functions below
 * map structs to and from rows with that table, build the SQL, and create the
 * schema, so adding a column is one line in a field table.
 *
 * Locking: struct store holds one recursive mutex. Each call takes it for its
 * own duration; store_begin() takes it until the outermost commit/rollback,
 * so a transaction keeps other threads out and may call anything here. */
#include "store/store.h"
#include "store/db.h"
#include "store/entity.h"
#include "store/store_internal.h"
#include "store/migrate.h"
#include "util/blocking.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/vec.h"
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* Indexes for the lookups the engine does often; primary keys (events.id
 * included) are indexed already. */
static const char *const schema_indexes[] = {
  "CREATE UNIQUE INDEX IF NOT EXISTS users_name ON users (name)",
  "CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user_id)",
  "CREATE INDEX IF NOT EXISTS vms_name ON vms (name)",
  "CREATE UNIQUE INDEX IF NOT EXISTS nics_mac ON nics (mac)",
  "CREATE INDEX IF NOT EXISTS attachments_vm ON attachments (vm_id)",
  "CREATE INDEX IF NOT EXISTS attachments_disk ON attachments (disk_id)",
  "CREATE INDEX IF NOT EXISTS volumes_disk ON volumes (disk_id)",
  "CREATE INDEX IF NOT EXISTS snapshots_vm ON snapshots (vm_id)",
  "CREATE UNIQUE INDEX IF NOT EXISTS image_transfers_ticket ON image_transfers (ticket)",
  "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status)",       /* schema step 2 */
  "CREATE INDEX IF NOT EXISTS events_time ON events (time_ms)",    /* schema step 2 */
  "CREATE UNIQUE INDEX IF NOT EXISTS usergroups_name ON usergroups (name)",
  "CREATE UNIQUE INDEX IF NOT EXISTS group_members_pair ON group_members (group_id, user_id)",
  "CREATE INDEX IF NOT EXISTS group_members_user ON group_members (user_id)",
  "CREATE UNIQUE INDEX IF NOT EXISTS roles_name ON roles (name)",
  "CREATE UNIQUE INDEX IF NOT EXISTS role_permits_pair ON role_permits (role_id, permit)",
  "CREATE INDEX IF NOT EXISTS permissions_user ON permissions (user_id)",
  "CREATE INDEX IF NOT EXISTS permissions_group ON permissions (group_id)",
  "CREATE INDEX IF NOT EXISTS permissions_object ON permissions (object_type, object_id)",
  "CREATE INDEX IF NOT EXISTS backups_vm ON backups (vm_id)",      /* new tables: no step */
  "CREATE INDEX IF NOT EXISTS checkpoints_vm ON checkpoints (vm_id)",
};

/* Sequences for integer keys, each made past the largest key its table
 * already holds (so a store from before it existed continues where it was):
 * created when missing at every open, like the tables. */
static const struct schema_sequence {
  const char *name, *table, *column;
} schema_sequences[] = {
  { "events_id", "events", "id" },
};

/* ---- the store and its lock ---- */

struct store {
  struct db *db;
  pthread_mutex_t lock;  /* recursive */
  int depth;             /* store_begin nesting on the thread holding the lock */
  bool doomed;           /* a nested rollback happened: the outermost commit rolls back */
  int64_t writes;        /* bumped by every write of this process (store_generation) */
  uint64_t stamp, stamp_at; /* the backend's last change stamp, and when (change_stamp_recent) */
};

/* the lock is marked for util/blocking: nothing may spawn or touch volume
 * files while it is held, since every other thread waits for it */
static struct store *store_lock(struct store *st)
{
  pthread_mutex_lock(&st->lock);
  blocking_forbid();
  return st;
}

static void store_unlock(struct store *st)
{
  blocking_allow();
  pthread_mutex_unlock(&st->lock);
}

static void store_unlockp(struct store **stp)
{
  if (*stp) store_unlock(*stp);
}
/* holds the store lock until the end of the enclosing scope */
#define STORE_LOCKED(st) \
  __attribute__((cleanup(store_unlockp), unused)) struct store *store_locked_ = store_lock(st)

int store_begin(struct store *st)
{
  store_lock(st);
  if (st->depth == 0) {
    if (st->db->ops->begin(st->db) < 0) {
      store_unlock(st);
      return -1;
    }
    st->doomed = false;
  }
  st->depth++;
  return 0;  /* the lock stays held until the matching commit/rollback */
}

/* Ends one nesting level and releases the lock taken by its store_begin. */
static int store_end(struct store *st, bool commit)
{
  int r = 0;
  if (st->depth == 0) return error(ERR_INTERNAL, "no transaction is open");
  if (!commit) st->doomed = true;
  if (--st->depth == 0) {
    if (st->doomed) {
      if (st->db->ops->rollback(st->db) < 0) r = -1;
      else if (commit) r = error(ERR_CONFLICT, "transaction was rolled back by a nested failure");
    } else if (st->db->ops->commit(st->db) < 0) {
      /* the transaction is still open after a failed COMMIT: end it */
      struct err_saved saved;
      error_save(&saved);
      st->db->ops->rollback(st->db);
      r = error_restore(&saved);
    }
  }
  store_unlock(st);
  return r;
}

int store_commit(struct store *st)
{
  return store_end(st, true);
}

/* A rollback inside an outer transaction cannot undo only its own part, so
 * it dooms the whole transaction: the outermost commit then rolls back and
 * fails. Errors of the rollback itself are dropped: the caller is already
 * handling the failure that made it roll back. */
void store_rollback(struct store *st)
{
  struct err_saved saved;
  error_save(&saved);
  store_end(st, false);
  error_restore(&saved);
}

/* ---- struct <-> SQL ---- */

static void *field_ptr(const struct field *f, const void *obj)
{
  return (char *)obj + f->offset;
}

/* The parameter for field f of obj; borrowed from obj. Fails for an enum
 * value out of range, which would otherwise be stored as NULL. */
static int field_value(const struct entity_desc *d, const struct field *f, const void *obj,
                       struct db_value *out)
{
  void *p = field_ptr(f, obj);
  switch (f->type) {
  case F_STR: *out = DBV_TEXT(*(char **)p); return 0;
  case F_INT: *out = DBV_INT(*(int64_t *)p); return 0;
  case F_BOOL: *out = DBV_INT(*(bool *)p ? 1 : 0); return 0;
  case F_ENUM: {
    const char *s = f->codec->to_str(*(int *)p);
    if (!s) return error(ERR_INVALID, "invalid %s value %d for %s %s", f->codec->name, *(int *)p, d->kind, f->col);
    *out = DBV_TEXT(s);
    return 0;
  }
  }
  return error(ERR_INTERNAL, "unknown field type %d", (int)f->type);
}

static int field_set(const struct entity_desc *d, const struct field *f, void *obj, const char *text)
{
  void *p = field_ptr(f, obj);
  switch (f->type) {
  case F_STR: *(char **)p = xstrdup(text); return 0;
  case F_INT: *(int64_t *)p = text ? strtoll(text, NULL, 10) : 0; return 0;
  case F_BOOL: *(bool *)p = text && strtoll(text, NULL, 10) != 0; return 0;
  case F_ENUM: {
    int v = f->codec->from_str(text);
    if (v < 0)
      return error(ERR_INTERNAL, "unknown %s '%s' stored in %s.%s", f->codec->name, text ? text : "NULL",
                   d->table, f->col);
    *(int *)p = v;
    return 0;
  }
  }
  return error(ERR_INTERNAL, "unknown field type %d", (int)f->type);
}

static const struct field *desc_field(const struct entity_desc *d, const char *col)
{
  for (size_t i = 0; i < d->nfields; i++)
    if (strcmp(d->fields[i].col, col) == 0) return &d->fields[i];
  return NULL;
}

static bool desc_is_key(const struct entity_desc *d, const char *col)
{
  for (int i = 0; i < d->nkeys; i++)
    if (strcmp(d->keys[i], col) == 0) return true;
  return false;
}

static void entity_free(const struct entity_desc *d, void *obj)
{
  if (!obj) return;
  for (size_t i = 0; i < d->nfields; i++)
    if (d->fields[i].type == F_STR) free(*(char **)field_ptr(&d->fields[i], obj));
  free(obj);
}

static void entity_list_free(const struct entity_desc *d, void **list)
{
  if (!list) return;
  for (void **p = list; *p; p++) entity_free(d, *p);
  free(list);
}

static char *key_text(const struct db_value *v)
{
  if (v->type == DB_INT) return xasprintf("%" PRId64, v->i);
  return xstrdup(v->text ? v->text : "");
}

/* "VM 'id'", or for the two-column attachment key "attachment of disk 'D' to
 * VM 'V'"; caller frees */
static char *key_describe(const struct entity_desc *d, const struct db_value *keys)
{
  AUTOBUF struct buf b = BUF_INIT;
  AUTOFREE char *first = key_text(&keys[0]);
  if (d->nkeys == 2) {
    AUTOFREE char *second = key_text(&keys[1]);
    buf_printf(&b, "%s '%s' to VM '%s'", d->kind, second, first);
  } else {
    buf_printf(&b, "%s '%s'", d->kind, first);
  }
  return buf_detach(&b);
}

/* the key values of obj, borrowed from it */
static void key_values(const struct entity_desc *d, const void *obj, struct db_value keys[2])
{
  for (int i = 0; i < d->nkeys; i++) field_value(d, desc_field(d, d->keys[i]), obj, &keys[i]);
}

static void put_columns(struct buf *b, const struct entity_desc *d)
{
  for (size_t i = 0; i < d->nfields; i++) buf_printf(b, "%s%s", i ? ", " : "", d->fields[i].col);
}

static void put_key_cond(struct buf *b, const struct entity_desc *d)
{
  for (int i = 0; i < d->nkeys; i++) buf_printf(b, "%s%s = ?", i ? " AND " : "", d->keys[i]);
}

DEFINE_VEC(ptrvec, void *);

struct collect {
  const struct entity_desc *desc;
  struct ptrvec rows;
};

/* row callback: one struct per row, columns in field-table order */
static int collect_row(const struct db_row *row, void *opaque)
{
  struct collect *c = opaque;
  const struct entity_desc *d = c->desc;
  void *obj = xcalloc(1, d->size);
  for (size_t i = 0; i < d->nfields && (int)i < row->ncols; i++) {
    if (field_set(d, &d->fields[i], obj, row->values[i]) < 0) {
      entity_free(d, obj);
      return -1;
    }
  }
  vec_push(&c->rows, obj);
  return 0;
}

static void collect_free(struct collect *c)
{
  for (size_t i = 0; i < c->rows.len; i++) entity_free(c->desc, c->rows.ptr[i]);
  free(c->rows.ptr);
  c->rows = (struct ptrvec)VEC_INIT;
}

static int int_row(const struct db_row *row, void *opaque)
{
  *(int64_t *)opaque = row->ncols > 0 && row->values[0] ? strtoll(row->values[0], NULL, 10) : 0;
  return 0;
}

/* ---- generic CRUD ---- */

static void *entity_get(struct store *st, const struct entity_desc *d, const struct db_value *keys)
{
  AUTOBUF struct buf sql = BUF_INIT;
  buf_puts(&sql, "SELECT ");
  put_columns(&sql, d);
  buf_printf(&sql, " FROM %s WHERE ", d->table);
  put_key_cond(&sql, d);

  struct collect c = { d, VEC_INIT };
  STORE_LOCKED(st);
  if (st->db->ops->query(st->db, buf_str(&sql), keys, d->nkeys, collect_row, &c) < 0) {
    collect_free(&c);
    return NULL;
  }
  if (c.rows.len == 0) {
    AUTOFREE char *what = key_describe(d, keys);
    error(ERR_NOT_FOUND, "%s does not exist", what);
    return NULL;
  }
  void *obj = c.rows.ptr[0];
  c.rows.ptr[0] = NULL;
  collect_free(&c);
  return obj;
}

static void **entity_list(struct store *st, const struct entity_desc *d, const char *where,
                          const struct db_value *params, int nparams, const char *order, int limit)
{
  AUTOBUF struct buf sql = BUF_INIT;
  buf_puts(&sql, "SELECT ");
  put_columns(&sql, d);
  buf_printf(&sql, " FROM %s", d->table);
  if (where && *where) buf_printf(&sql, " WHERE (%s)", where);
  buf_printf(&sql, " ORDER BY %s", order && *order ? order : d->default_order);
  if (limit > 0) buf_printf(&sql, " LIMIT %d", limit);

  struct collect c = { d, VEC_INIT };
  STORE_LOCKED(st);
  if (st->db->ops->query(st->db, buf_str(&sql), params, nparams, collect_row, &c) < 0) {
    collect_free(&c);
    return NULL;
  }
  vec_push(&c.rows, NULL);
  return c.rows.ptr;
}

static int64_t entity_count(struct store *st, const struct entity_desc *d, const char *where,
                            const struct db_value *params, int nparams)
{
  AUTOBUF struct buf sql = BUF_INIT;
  buf_printf(&sql, "SELECT COUNT(*) FROM %s", d->table);
  if (where && *where) buf_printf(&sql, " WHERE (%s)", where);
  int64_t n = 0;
  STORE_LOCKED(st);
  if (st->db->ops->query(st->db, buf_str(&sql), params, nparams, int_row, &n) < 0) return -1;
  return n;
}

void **store_select(struct store *st, enum store_type t, const char *where, const struct db_value *params,
                    int nparams, const char *order, int limit)
{
  return entity_list(st, store_entities[t], where, params, nparams, order, limit);
}

int64_t store_count_where(struct store *st, enum store_type t, const char *where, const struct db_value *params,
                          int nparams)
{
  return entity_count(st, store_entities[t], where, params, nparams);
}

static int entity_insert(struct store *st, const struct entity_desc *d, const void *obj)
{
  AUTOBUF struct buf sql = BUF_INIT;
  buf_printf(&sql, "INSERT INTO %s (", d->table);
  put_columns(&sql, d);
  buf_puts(&sql, ") VALUES (");
  AUTOFREE struct db_value *vals = xcalloc(d->nfields, sizeof(*vals));
  for (size_t i = 0; i < d->nfields; i++) {
    buf_puts(&sql, i ? ", ?" : "?");
    if (field_value(d, &d->fields[i], obj, &vals[i]) < 0) return -1;
  }
  buf_putc(&sql, ')');

  STORE_LOCKED(st);
  __atomic_fetch_add(&st->writes, 1, __ATOMIC_RELAXED);
  if (st->db->ops->exec(st->db, buf_str(&sql), vals, (int)d->nfields, NULL) < 0) {
    struct db_value keys[2];
    key_values(d, obj, keys);
    AUTOFREE char *what = key_describe(d, keys);
    return error_prefix("cannot add %s: ", what);
  }
  return 0;
}

static int entity_update(struct store *st, const struct entity_desc *d, const void *obj)
{
  AUTOBUF struct buf sql = BUF_INIT;
  AUTOFREE struct db_value *vals = xcalloc(d->nfields, sizeof(*vals));
  int n = 0;
  buf_printf(&sql, "UPDATE %s SET ", d->table);
  for (size_t i = 0; i < d->nfields; i++) {
    if (desc_is_key(d, d->fields[i].col)) continue;
    buf_printf(&sql, "%s%s = ?", n ? ", " : "", d->fields[i].col);
    if (field_value(d, &d->fields[i], obj, &vals[n++]) < 0) return -1;
  }
  buf_puts(&sql, " WHERE ");
  put_key_cond(&sql, d);
  key_values(d, obj, &vals[n]);
  n += d->nkeys;

  int64_t changes = 0;
  STORE_LOCKED(st);
  __atomic_fetch_add(&st->writes, 1, __ATOMIC_RELAXED);
  if (st->db->ops->exec(st->db, buf_str(&sql), vals, n, &changes) < 0) return -1;
  if (changes == 0) {
    AUTOFREE char *what = key_describe(d, &vals[n - d->nkeys]);
    return error(ERR_NOT_FOUND, "%s does not exist", what);
  }
  return 0;
}

static int entity_delete(struct store *st, const struct entity_desc *d, const struct db_value *keys)
{
  AUTOBUF struct buf sql = BUF_INIT;
  buf_printf(&sql, "DELETE FROM %s WHERE ", d->table);
  put_key_cond(&sql, d);

  int64_t changes = 0;
  STORE_LOCKED(st);
  __atomic_fetch_add(&st->writes, 1, __ATOMIC_RELAXED);
  if (st->db->ops->exec(st->db, buf_str(&sql), keys, d->nkeys, &changes) < 0) return -1;
  if (changes == 0) {
    AUTOFREE char *what = key_describe(d, keys);
    return error(ERR_NOT_FOUND, "%s does not exist", what);
  }
  return 0;
}

/* ---- typed wrappers ---- */

#define STORE_IMPL_COMMON(T)                                                                 \
  void T##_free(struct T *p) { entity_free(&T##_desc, p); }                                  \
  void T##_list_free(struct T **list) { entity_list_free(&T##_desc, (void **)list); }        \
  int T##_update(struct store *st, const struct T *p) { return entity_update(st, &T##_desc, p); } \
  struct T **T##_list_all(struct store *st)                                                  \
  {                                                                                          \
    return (struct T **)entity_list(st, &T##_desc, NULL, NULL, 0, NULL, 0);                  \
  }                                                                                          \
  int64_t T##_count_all(struct store *st) { return entity_count(st, &T##_desc, NULL, NULL, 0); }
STORE_TYPES(STORE_IMPL_COMMON)

#define STORE_IMPL_INSERT(T)                                                                 \
  int T##_insert(struct store *st, const struct T *p) { return entity_insert(st, &T##_desc, p); }
STORE_IMPL_INSERT(user) STORE_IMPL_INSERT(token) STORE_IMPL_INSERT(host)
STORE_IMPL_INSERT(datacenter) STORE_IMPL_INSERT(cluster) STORE_IMPL_INSERT(template)
STORE_IMPL_INSERT(storage_domain) STORE_IMPL_INSERT(vm) STORE_IMPL_INSERT(disk)
STORE_IMPL_INSERT(volume) STORE_IMPL_INSERT(attachment) STORE_IMPL_INSERT(snapshot)
STORE_IMPL_INSERT(job) STORE_IMPL_INSERT(image_transfer)
STORE_IMPL_INSERT(usergroup) STORE_IMPL_INSERT(group_member) STORE_IMPL_INSERT(role)
STORE_IMPL_INSERT(role_permit) STORE_IMPL_INSERT(permission) STORE_IMPL_INSERT(user_lock)
STORE_IMPL_INSERT(backup)
STORE_IMPL_INSERT(backup_disk) STORE_IMPL_INSERT(checkpoint) STORE_IMPL_INSERT(checkpoint_disk)
STORE_IMPL_INSERT(network) STORE_IMPL_INSERT(nic)

/* get/delete for the types keyed by one text column */
#define STORE_IMPL_BY_KEY(T)                                                                 \
  struct T *T##_get(struct store *st, const char *key)                                       \
  {                                                                                          \
    struct db_value k[1] = { DBV_TEXT(key) };                                                \
    return entity_get(st, &T##_desc, k);                                                     \
  }                                                                                          \
  int T##_delete(struct store *st, const char *key)                                          \
  {                                                                                          \
    struct db_value k[1] = { DBV_TEXT(key) };                                                \
    return entity_delete(st, &T##_desc, k);                                                  \
  }
STORE_IMPL_BY_KEY(user) STORE_IMPL_BY_KEY(token) STORE_IMPL_BY_KEY(host)
STORE_IMPL_BY_KEY(datacenter) STORE_IMPL_BY_KEY(cluster) STORE_IMPL_BY_KEY(template)
STORE_IMPL_BY_KEY(storage_domain) STORE_IMPL_BY_KEY(vm) STORE_IMPL_BY_KEY(disk)
STORE_IMPL_BY_KEY(volume) STORE_IMPL_BY_KEY(snapshot) STORE_IMPL_BY_KEY(job)
STORE_IMPL_BY_KEY(image_transfer)
STORE_IMPL_BY_KEY(usergroup) STORE_IMPL_BY_KEY(group_member) STORE_IMPL_BY_KEY(role)
STORE_IMPL_BY_KEY(role_permit) STORE_IMPL_BY_KEY(permission) STORE_IMPL_BY_KEY(user_lock)
STORE_IMPL_BY_KEY(backup) STORE_IMPL_BY_KEY(backup_disk)
STORE_IMPL_BY_KEY(checkpoint) STORE_IMPL_BY_KEY(checkpoint_disk)
STORE_IMPL_BY_KEY(network) STORE_IMPL_BY_KEY(nic)

struct user *user_get_by_name(struct store *st, const char *name)
{
  struct db_value params[] = { DBV_TEXT(name) };
  AUTOLIST(user) users = (struct user **)entity_list(st, &user_desc, "name = ?", params, 1, NULL, 1);
  if (!users) return NULL;
  if (!users[0]) {
    error(ERR_NOT_FOUND, "user '%s' does not exist", name ? name : "");
    return NULL;
  }
  return steal_pointer(&users[0]);
}

struct attachment *attachment_get(struct store *st, const char *vm_id, const char *disk_id)
{
  struct db_value k[2] = { DBV_TEXT(vm_id), DBV_TEXT(disk_id) };
  return entity_get(st, &attachment_desc, k);
}

int attachment_delete(struct store *st, const char *vm_id, const char *disk_id)
{
  struct db_value k[2] = { DBV_TEXT(vm_id), DBV_TEXT(disk_id) };
  return entity_delete(st, &attachment_desc, k);
}

struct event *event_get(struct store *st, int64_t id)
{
  struct db_value k[1] = { DBV_INT(id) };
  return entity_get(st, &event_desc, k);
}

int event_delete(struct store *st, int64_t id)
{
  struct db_value k[1] = { DBV_INT(id) };
  return entity_delete(st, &event_desc, k);
}

/* Only the columns libvirt's event thread owns: a whole-row update there
 * would undo a concurrent change to the VM's other fields (lost update). */
int vm_set_status(struct store *st, const char *id, int status, const char *host_id)
{
  struct db_value v[3] = { DBV_TEXT(vm_status_to_str(status)), DBV_TEXT(host_id), DBV_TEXT(id) };
  STORE_LOCKED(st);
  return st->db->ops->exec(st->db, "UPDATE vms SET status = ?, host_id = ? WHERE id = ?", v, 3, NULL);
}

/* the attachment is unplugged and loses its transient overlay; its other
 * columns are left alone (see vm_set_status) */
int attachment_set_unplugged(struct store *st, const char *vm_id, const char *disk_id)
{
  struct db_value v[2] = { DBV_TEXT(vm_id), DBV_TEXT(disk_id) };
  STORE_LOCKED(st);
  return st->db->ops->exec(st->db, "UPDATE attachments SET plugged = 0, overlay_path = NULL "
                           "WHERE vm_id = ? AND disk_id = ?", v, 2, NULL);
}

/* Deletes up to LIMIT of the oldest events from before BEFORE_MS, never the
 * newest one (a client polling with ?from=ID keeps its place in a list that
 * is never empty). Batches keep each statement (and the lock) short. */
int event_prune(struct store *st, int64_t before_ms, int limit, int64_t *deleted)
{
  struct db_value v[2] = { DBV_INT(before_ms), DBV_INT(limit) };
  STORE_LOCKED(st);
  __atomic_fetch_add(&st->writes, 1, __ATOMIC_RELAXED);
  return st->db->ops->exec(st->db,
                           "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time_ms < ? "
                           "AND id < (SELECT MAX(id) FROM events) ORDER BY id LIMIT ?)",
                           v, 2, deleted);
}

/* Ids come from the sequence events_id (schema_sequences): never reused,
 * also across processes and after a rollback, on either backend. */
int event_insert(struct store *st, struct event *p)
{
  int64_t next = 0;
  STORE_LOCKED(st);
  if (st->db->ops->sequence_next(st->db, "events_id", &next) < 0) return -1;
  struct event e = *p;
  e.id = next;
  if (entity_insert(st, &event_desc, &e) < 0) return -1;
  p->id = next;
  return 0;
}

/* ---- settings ---- */

static int string_row(const struct db_row *row, void *opaque)
{
  char **out = opaque;
  free(*out);
  *out = xstrdup(row->ncols > 0 ? row->values[0] : NULL);
  return 0;
}

char *store_setting_get(struct store *st, const char *key)
{
  struct db_value k[1] = { DBV_TEXT(key) };
  char *value = NULL;
  STORE_LOCKED(st);
  if (st->db->ops->query(st->db, "SELECT value FROM settings WHERE name = ?", k, 1, string_row, &value) < 0) {
    free(value);
    return NULL;
  }
  return value;
}

int store_setting_set(struct store *st, const char *key, const char *value)
{
  struct db_value v[2] = { DBV_TEXT(key), DBV_TEXT(value) };
  STORE_LOCKED(st);
  /* upsert: SQLite >= 3.24 and PostgreSQL >= 9.5 both speak it */
  return st->db->ops->exec(st->db,
                           "INSERT INTO settings (name, value) VALUES (?, ?) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                           v, 2, NULL);
}

/* ---- schema ---- */

/* CREATE TABLE for d from its field table: portable types only. Columns that
 * always get a value (numbers, booleans, enums, keys) are NOT NULL. */
static void schema_put_table(struct buf *sql, const struct entity_desc *d)
{
  static const char *const sql_types[] = { [F_STR] = "TEXT", [F_INT] = "BIGINT",
                                           [F_BOOL] = "SMALLINT", [F_ENUM] = "TEXT" };
  buf_printf(sql, "CREATE TABLE IF NOT EXISTS %s (\n", d->table);
  for (size_t i = 0; i < d->nfields; i++) {
    const struct field *f = &d->fields[i];
    bool not_null = f->type != F_STR || desc_is_key(d, f->col);
    buf_printf(sql, "  %s %s%s,\n", f->col, sql_types[f->type], not_null ? " NOT NULL" : "");
  }
  buf_puts(sql, "  PRIMARY KEY (");
  for (int i = 0; i < d->nkeys; i++) buf_printf(sql, "%s%s", i ? ", " : "", d->keys[i]);
  buf_puts(sql, ")\n);\n");
}

static int schema_create(struct store *st)
{
  AUTOBUF struct buf sql = BUF_INIT;
  for (size_t i = 0; i < store_nentities; i++) schema_put_table(&sql, store_entities[i]);
  for (size_t i = 0; i < ARRAY_SIZE(schema_indexes); i++) buf_printf(&sql, "%s;\n", schema_indexes[i]);
  if (st->db->ops->exec_script(st->db, buf_str(&sql)) < 0) return -1;
  for (size_t i = 0; i < ARRAY_SIZE(schema_sequences); i++) {
    const struct schema_sequence *q = &schema_sequences[i];
    AUTOFREE char *max = xasprintf("SELECT COALESCE(MAX(%s), 0) + 1 FROM %s", q->column, q->table);
    int64_t next = 1;
    if (st->db->ops->query(st->db, max, NULL, 0, int_row, &next) < 0 ||
        st->db->ops->sequence_ensure(st->db, q->name, next) < 0)
      return error_prefix("sequence %s: ", q->name);
  }
  AUTOFREE char *version = xasprintf("%d", store_schema_version());
  return store_setting_set(st, "schema_version", version);
}

/* ---- what migrate.c asks of the field tables ---- */

static const struct entity_desc *desc_by_table(const char *table)
{
  for (size_t i = 0; i < store_nentities; i++)
    if (strcmp(store_entities[i]->table, table) == 0) return store_entities[i];
  return NULL;
}

bool schema_column_type(const char *table, const char *column, struct buf *sql)
{
  const struct entity_desc *d = desc_by_table(table);
  const struct field *f = d ? desc_field(d, column) : NULL;
  if (!f) return false;
  switch (f->type) {
  case F_STR: buf_puts(sql, "TEXT"); break;
  case F_INT: buf_puts(sql, "BIGINT NOT NULL DEFAULT 0"); break;
  case F_BOOL: buf_puts(sql, "SMALLINT NOT NULL DEFAULT 0"); break;
  case F_ENUM: buf_printf(sql, "TEXT NOT NULL DEFAULT '%s'", f->codec->to_str(0)); break;
  }
  return true;
}

/* Creates the schema of a new database, or checks and migrates the version
 * of an existing one, in one transaction so that two processes opening a
 * new file do not both create it. */
static int schema_init(struct store *st)
{
  if (store_begin(st) < 0) return -1;
  if (st->db->ops->exec_script(st->db, "CREATE TABLE IF NOT EXISTS settings "
                                       "(name TEXT NOT NULL PRIMARY KEY, value TEXT)") < 0) {
    store_rollback(st);
    return -1;
  }
  AUTOFREE char *version = store_setting_get(st, "schema_version");
  if (!version && error_code() != ERR_NONE) {
    store_rollback(st);
    return -1;
  }
  char *end = NULL;
  long v = version ? strtol(version, &end, 10) : 0;
  if (version && (*end || v < 1)) {
    store_rollback(st);
    return error(ERR_INTERNAL, "the store's schema version '%s' is not a version number", version);
  }
  if (v > store_schema_version()) {
    store_rollback(st);
    return error(ERR_UNSUPPORTED, "the store has schema version %ld, newer than the %d this snapbackd "
                 "knows: a newer snapback wrote it; run that version (or restore the store's backup "
                 "from before the upgrade)", v, store_schema_version());
  }
  if (version && v < store_schema_version() && schema_migrate(st->db, (int)v) < 0) {
    store_rollback(st);
    return -1;
  }
  /* new stores get every table; migrated ones the tables added since */
  if (schema_create(st) < 0) {
    store_rollback(st);
    return -1;
  }
  return store_commit(st);
}

/* The backend's change stamp (SQLite: the files' times and sizes), or else
 * SQLite's data_version, changes when another connection (another process:
 * `snapbackd user lock`) committed; our own writes count in st->writes. A
 * backend without either (the PRAGMA fails) makes every call a new generation. */
/* the backend's change stamp, asked at most once per coarse clock tick
 * (1-4 ms): a commit by another process shows within that, and the
 * requests of one tick share two stat calls */
static uint64_t change_stamp_recent(struct store *st)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 1;
  if (__atomic_load_n(&st->stamp_at, __ATOMIC_ACQUIRE) == now)
    return __atomic_load_n(&st->stamp, __ATOMIC_RELAXED);
  uint64_t v = st->db->ops->change_stamp(st->db);
  __atomic_store_n(&st->stamp, v, __ATOMIC_RELAXED);
  __atomic_store_n(&st->stamp_at, now, __ATOMIC_RELEASE);
  return v;
}

int64_t store_generation(struct store *st)
{
  /* the backend's stamp needs no lock: every request asks, and the store's
   * lock is the one every HTTP worker would otherwise queue on */
  uint64_t stamp = st->db->ops->change_stamp ? change_stamp_recent(st) : 0;
  if (stamp) return (int64_t)((stamp * 1000003u + (uint64_t)__atomic_load_n(&st->writes, __ATOMIC_RELAXED)) & (uint64_t)INT64_MAX);
  int64_t dv = 0;
  STORE_LOCKED(st);
  if (st->db->ops->query(st->db, "PRAGMA data_version", NULL, 0, int_row, &dv) < 0) {
    error_clear();
    return -__atomic_add_fetch(&st->writes, 1, __ATOMIC_RELAXED);
  }
  return dv * 1000003 + st->writes;
}

void store_close(struct store *st)
{
  if (!st) return;
  if (st->db) st->db->ops->close(st->db);
  pthread_mutex_destroy(&st->lock);
  free(st);
}
DEFINE_AUTOPTR(store, struct store, store_close)

struct store *store_open(const char *url)
{
  AUTOPTR(store) st = xcalloc(1, sizeof(*st));
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&st->lock, &attr);
  pthread_mutexattr_destroy(&attr);

  if (!(st->db = db_open_url(url))) return NULL;
  error_clear();
  if (schema_init(st) < 0) {
    error_prefix("cannot set up the database schema: ");
    return NULL;
  }
  return steal_pointer(&st);
}

int store_claim(struct store *st)
{
  STORE_LOCKED(st);
  return st->db->ops->claim ? st->db->ops->claim(st->db) : 0;
}

int store_check_url(const char *url)
{
  return db_check_url(url);
}

int64_t store_size_bytes(struct store *st)
{
  STORE_LOCKED(st);
  if (!st->db->ops->size_bytes) return error(ERR_UNSUPPORTED, "the store cannot tell its size");
  return st->db->ops->size_bytes(st->db);
}

/* what users call the objects of each table keyed by "id" */
static const char *id_kind_name(const struct entity_desc *d)
{
  if (d == &volume_desc) return "disk snapshot";
  if (d == &snapshot_desc) return "VM snapshot";
  return d->kind;
}

int store_id_not_found(struct store *st, const char *id, const char *want, const char *listed_by,
                       bool name_other_kind)
{
  const char *other = NULL;
  for (size_t i = 0; name_other_kind && i < store_nentities && !other && id; i++) {
    const struct entity_desc *d = store_entities[i];
    if (d->nkeys != 1 || strcmp(d->keys[0], "id") != 0 || desc_field(d, "id")->type != F_STR) continue;
    struct db_value params[] = { DBV_TEXT(id) };
    if (entity_count(st, d, "id = ?", params, 1) > 0) other = id_kind_name(d);
  }
  error_clear();  /* a failing lookup only loses the hint */
  AUTOBUF struct buf b = BUF_INIT;
  buf_printf(&b, "%s '%s' does not exist: the id of a %s is expected here", want, id ? id : "", want);
  if (listed_by) buf_printf(&b, " (%s lists them)", listed_by);
  if (other && strcmp(other, want) != 0) buf_printf(&b, ", and '%s' is the id of a %s", id, other);
  return error(ERR_NOT_FOUND, "%s", buf_str(&b));
}
