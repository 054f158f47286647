/* db_sqlite.c: the embedded SQLite backend of db.h.
 *
 * The connection runs in WAL mode (readers do not block the writer), with
 * synchronous=NORMAL (durable at checkpoints, safe against corruption in WAL
 * mode), foreign keys enforced and a 5 s busy timeout for other processes
 * (the CLI) touching the same file.
 *
 * Prepared statements are kept in a small LRU cache keyed by their SQL text:
 * the entity layer builds the same few dozen statements over and over, and
 * preparing dominates the cost of a simple SELECT. The store serialises all
 * calls on one db, so the cache needs no lock; a statement is marked busy
 * while in use so that a query issued from inside a row callback prepares
 * its own copy instead of resetting the one being stepped. */
#include "store/db.h"
#include "util/buf.h"
#include "util/err.h"
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

DEFINE_AUTOPTR(sqlite3_stmt, sqlite3_stmt, sqlite3_finalize)

#define STMT_CACHE_SIZE 64

struct cached_stmt {
  char *sql;          /* the key; NULL for a free slot */
  sqlite3_stmt *stmt;
  uint64_t last_use;  /* LRU clock value of the last lookup */
  bool busy;          /* handed out and not yet released */
};

struct db_sqlite {
  struct db base;
  sqlite3 *conn;
  char *path, *wal;      /* the database file and its write-ahead log (change_stamp) */
  uint64_t clock;
  struct cached_stmt cache[STMT_CACHE_SIZE];
};

/* A statement handed out for one call: cached ones are reset and given back
 * to the cache on release, uncached ones finalized. */
struct stmt_lease {
  sqlite3_stmt *stmt;
  struct cached_stmt *slot;  /* NULL when not cached */
};

static void stmt_lease_release(struct stmt_lease *l)
{
  if (!l->stmt) return;
  if (l->slot) {
    sqlite3_reset(l->stmt);
    sqlite3_clear_bindings(l->stmt);
    l->slot->busy = false;
  } else {
    sqlite3_finalize(l->stmt);
  }
  l->stmt = NULL;
}
#define AUTOLEASE __attribute__((cleanup(stmt_lease_release)))

/* Records the connection's last error: a violated constraint (duplicate key,
 * foreign key, NOT NULL) is a conflict with the stored state, a locked
 * database is unavailable, anything else is internal. Returns -1. */
static int sqlite_error(struct db_sqlite *db, int rc)
{
  int primary = rc & 0xff;
  const char *msg = db && db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc);
  if (primary == SQLITE_CONSTRAINT) return error(ERR_CONFLICT, "%s", msg);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    return error(ERR_UNAVAILABLE, "database is busy: %s", msg);
  return error(ERR_INTERNAL, "database error: %s", msg);
}

/* Finds the statement for sql in the cache or prepares it, evicting the least
 * recently used idle entry. On failure returns -1 with an error and leaves
 * the lease empty. */
static int stmt_acquire(struct db_sqlite *db, const char *sql, struct stmt_lease *lease)
{
  struct cached_stmt *victim = NULL;
  db->clock++;
  for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
    struct cached_stmt *c = &db->cache[i];
    if (c->sql && !c->busy && strcmp(c->sql, sql) == 0) {
      c->busy = true;
      c->last_use = db->clock;
      *lease = (struct stmt_lease){ c->stmt, c };
      return 0;
    }
    if (c->busy) continue;
    if (!victim || !c->sql || (victim->sql && c->last_use < victim->last_use)) victim = c;
  }

  AUTOPTR(sqlite3_stmt) stmt = NULL;
  int rc = sqlite3_prepare_v2(db->conn, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) return sqlite_error(db, rc);

  if (!victim) {  /* every slot is busy: a deep callback nesting; do not cache */
    *lease = (struct stmt_lease){ steal_pointer(&stmt), NULL };
    return 0;
  }
  if (victim->sql) {
    sqlite3_finalize(victim->stmt);
    free(victim->sql);
  }
  *victim = (struct cached_stmt){ xstrdup(sql), steal_pointer(&stmt), db->clock, true };
  *lease = (struct stmt_lease){ victim->stmt, victim };
  return 0;
}

static int bind_params(struct db_sqlite *db, sqlite3_stmt *stmt, const struct db_value *params, int nparams)
{
  if (nparams != sqlite3_bind_parameter_count(stmt))
    return error(ERR_INTERNAL, "statement takes %d parameters, %d given: %s",
                 sqlite3_bind_parameter_count(stmt), nparams, sqlite3_sql(stmt));
  for (int i = 0; i < nparams; i++) {
    int rc;
    switch (params[i].type) {
    case DB_TEXT: rc = sqlite3_bind_text(stmt, i + 1, params[i].text, -1, SQLITE_STATIC); break;
    case DB_INT: rc = sqlite3_bind_int64(stmt, i + 1, params[i].i); break;
    case DB_BLOB: rc = sqlite3_bind_blob64(stmt, i + 1, params[i].text, params[i].len, SQLITE_STATIC); break;
    default: rc = sqlite3_bind_null(stmt, i + 1); break;
    }
    if (rc != SQLITE_OK) return sqlite_error(db, rc);
  }
  return 0;
}

static int sqlite_exec_one(struct db_sqlite *db, const char *sql)
{
  char *msg = NULL;
  int rc = sqlite3_exec(db->conn, sql, NULL, NULL, &msg);
  if (rc == SQLITE_OK) return 0;
  /* sqlite3_exec's message is the same as errmsg; free it and use ours */
  sqlite3_free(msg);
  return sqlite_error(db, rc);
}

static void db_sqlite_close(struct db *base)
{
  struct db_sqlite *db = (struct db_sqlite *)base;
  if (!db) return;
  for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
    sqlite3_finalize(db->cache[i].stmt);
    free(db->cache[i].sql);
  }
  sqlite3_close(db->conn);
  free(db->path);
  free(db->wal);
  free(db);
}
DEFINE_AUTOPTR(db_sqlite, struct db, db_sqlite_close)

/* the database and its -wal, -shm and -journal files are 0600: SQLite
 * creates those with the database file's mode, so it is set first, also on
 * a database an older version left readable */
static int db_file_private(const char *path)
{
  if (strcmp(path, ":memory:") == 0 || !*path) return 0;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || fchmod(fd, 0600) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return error(ERR_UNAVAILABLE, "cannot open database '%s': %s", path, strerror(e));
  }
  close(fd);
  static const char *const sidecars[] = {"-wal", "-shm", "-journal"};
  for (size_t i = 0; i < ARRAY_SIZE(sidecars); i++) {
    AUTOFREE char *side = xasprintf("%s%s", path, sidecars[i]);
    if (chmod(side, 0600) < 0 && errno != ENOENT)
      return error(ERR_UNAVAILABLE, "cannot make '%s' private: %s", side, strerror(errno));
  }
  return 0;
}

static struct db *db_sqlite_open(const char *path)
{
  if (db_file_private(path) < 0) return NULL;
  AUTOPTR(db_sqlite) base = xcalloc(1, sizeof(struct db_sqlite));
  struct db_sqlite *db = (struct db_sqlite *)base;
  base->ops = &db_sqlite_ops;
  int rc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK) {
    error(ERR_UNAVAILABLE, "cannot open database '%s': %s", path,
          db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
    return NULL;
  }
  db->path = xstrdup(path);
  db->wal = xasprintf("%s-wal", path);
  sqlite3_extended_result_codes(db->conn, 1);
  sqlite3_busy_timeout(db->conn, 5000);
  if (sqlite_exec_one(db, "PRAGMA journal_mode=WAL") < 0 ||
      sqlite_exec_one(db, "PRAGMA synchronous=NORMAL") < 0 ||
      sqlite_exec_one(db, "PRAGMA foreign_keys=ON") < 0) {
    error_prefix("cannot open database '%s': ", path);
    return NULL;
  }
  return steal_pointer(&base);
}

static int db_sqlite_exec(struct db *base, const char *sql, const struct db_value *params, int nparams,
                          int64_t *changes)
{
  struct db_sqlite *db = (struct db_sqlite *)base;
  AUTOLEASE struct stmt_lease lease = { NULL, NULL };
  if (stmt_acquire(db, sql, &lease) < 0 || bind_params(db, lease.stmt, params, nparams) < 0) return -1;
  int rc;
  while ((rc = sqlite3_step(lease.stmt)) == SQLITE_ROW)
    ;
  if (rc != SQLITE_DONE) return sqlite_error(db, rc);
  if (changes) *changes = sqlite3_changes64(db->conn);
  return 0;
}

static int db_sqlite_query(struct db *base, const char *sql, const struct db_value *params, int nparams,
                           db_row_cb cb, void *opaque)
{
  struct db_sqlite *db = (struct db_sqlite *)base;
  AUTOLEASE struct stmt_lease lease = { NULL, NULL };
  if (stmt_acquire(db, sql, &lease) < 0 || bind_params(db, lease.stmt, params, nparams) < 0) return -1;

  int ncols = sqlite3_column_count(lease.stmt);
  AUTOFREE const char **names = xcalloc(ncols + 1, sizeof(char *));
  AUTOFREE const char **values = xcalloc(ncols + 1, sizeof(char *));
  AUTOFREE size_t *lengths = xcalloc(ncols + 1, sizeof(size_t));
  for (int i = 0; i < ncols; i++) names[i] = sqlite3_column_name(lease.stmt, i);
  struct db_row row = { ncols, names, values, lengths };

  int rc;
  while ((rc = sqlite3_step(lease.stmt)) == SQLITE_ROW) {
    for (int i = 0; i < ncols; i++) {
      /* a blob is handed over as its bytes; everything else as text */
      if (sqlite3_column_type(lease.stmt, i) == SQLITE_BLOB)
        values[i] = sqlite3_column_blob(lease.stmt, i);
      else
        values[i] = (const char *)sqlite3_column_text(lease.stmt, i);
      lengths[i] = (size_t)sqlite3_column_bytes(lease.stmt, i);
    }
    if (cb(&row, opaque) < 0) return -1;
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc);
  return 0;
}

static int db_sqlite_begin(struct db *db)
{
  return db_sqlite_exec(db, "BEGIN IMMEDIATE", NULL, 0, NULL);
}

static int db_sqlite_commit(struct db *db)
{
  return db_sqlite_exec(db, "COMMIT", NULL, 0, NULL);
}

static int db_sqlite_rollback(struct db *db)
{
  return db_sqlite_exec(db, "ROLLBACK", NULL, 0, NULL);
}

static int db_sqlite_exec_script(struct db *base, const char *sql)
{
  return sqlite_exec_one((struct db_sqlite *)base, sql);
}

static int size_row(const struct db_row *row, void *opaque)
{
  *(int64_t *)opaque = row->ncols > 0 && row->values[0] ? strtoll(row->values[0], NULL, 10) : 0;
  return 0;
}

/* the main database file's size (the WAL, if any, is not counted) */
static int64_t db_sqlite_size_bytes(struct db *db)
{
  int64_t n = 0;
  if (db_sqlite_query(db, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                      NULL, 0, size_row, &n) < 0)
    return -1;
  return n;
}

/* Every commit in WAL mode writes the log (and a checkpoint the database
 * file), which moves that file's modification time (nanoseconds) or size:
 * two stat calls tell whether another process committed, with no lock. */
static uint64_t file_stamp(const char *path)
{
  struct stat s;
  if (stat(path, &s) < 0) return 1;
  return ((uint64_t)s.st_mtim.tv_sec * 1000000007u + (uint64_t)s.st_mtim.tv_nsec) * 31u +
         (uint64_t)s.st_size * 131u + (uint64_t)s.st_ino;
}

static uint64_t db_sqlite_change_stamp(struct db *base)
{
  struct db_sqlite *db = (struct db_sqlite *)base;
  if (!db->path || !strcmp(db->path, ":memory:") || !*db->path) return 0;
  uint64_t v = file_stamp(db->path) * 1000003u + file_stamp(db->wal);
  return v ? v : 1;
}

/* SQLite has no sequences: a table of counters stands in. Bumping a row
 * takes the write lock, and a transaction that rolls back gives its value
 * back, which is fine under that lock: no other writer saw it. */
#define SQLITE_SEQUENCES "CREATE TABLE IF NOT EXISTS sequences (name TEXT NOT NULL PRIMARY KEY, value BIGINT NOT NULL)"

static int db_sqlite_sequence_ensure(struct db *base, const char *name, int64_t min_next)
{
  struct db_value v[2] = { DBV_TEXT(name), DBV_INT(min_next - 1) };
  if (sqlite_exec_one((struct db_sqlite *)base, SQLITE_SEQUENCES) < 0) return -1;
  return db_sqlite_exec(base, "INSERT INTO sequences (name, value) VALUES (?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)", v, 2, NULL);
}

static int db_sqlite_sequence_next(struct db *base, const char *name, int64_t *out)
{
  struct db_value v[1] = { DBV_TEXT(name) };
  *out = 0;
  if (db_sqlite_query(base, "UPDATE sequences SET value = value + 1 WHERE name = ? RETURNING value", v, 1,
                      size_row, out) < 0)
    return -1;
  if (*out == 0) return error(ERR_INTERNAL, "no sequence '%s'", name);
  return 0;
}

const struct db_ops db_sqlite_ops = {
  .scheme = "sqlite",
  .open = db_sqlite_open,
  .close = db_sqlite_close,
  .exec = db_sqlite_exec,
  .query = db_sqlite_query,
  .begin = db_sqlite_begin,
  .commit = db_sqlite_commit,
  .rollback = db_sqlite_rollback,
  .exec_script = db_sqlite_exec_script,
  .size_bytes = db_sqlite_size_bytes,
  .change_stamp = db_sqlite_change_stamp,
  .sequence_ensure = db_sqlite_sequence_ensure,
  .sequence_next = db_sqlite_sequence_next,
};
