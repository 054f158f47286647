/* db.h: the SQL backend interface (ops table).
 *
 * The entity layer (store.c) speaks portable SQL with '?' placeholders and
 * typed parameters (text, int64, blob, NULL); a backend executes it. SQLite
 * (db_sqlite.c) is the embedded default; PostgreSQL (db_pg.c) implements the
 * same ops, translating '?' to $N. Where the dialects differ the backend
 * owns the difference, and the list is short: placeholders, sequences
 * (sequence_ensure/sequence_next), the write lock of a transaction (begin)
 * and the one-engine lock (claim). Upserts use ON CONFLICT, which both speak.
 * Backends are picked by URL scheme in db.c, and which backends exist is
 * decided in meson.build, never by #ifdef in callers.
 *
 * Threading: the store serialises all use of one db with its own recursive
 * mutex, so a backend may assume one caller at a time. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "util/cleanup.h"

enum db_type { DB_NULL, DB_TEXT, DB_INT, DB_BLOB };
struct db_value {
  enum db_type type;
  const char *text;  /* DB_TEXT (NUL-terminated), DB_BLOB (LEN bytes); borrowed */
  int64_t i;         /* DB_INT */
  size_t len;        /* DB_BLOB */
};
#define DBV_TEXT(s) ((struct db_value){ (s) ? DB_TEXT : DB_NULL, (s), 0, 0 })
#define DBV_INT(v) ((struct db_value){ DB_INT, NULL, (v), 0 })
#define DBV_BLOB(p, n) ((struct db_value){ DB_BLOB, (const char *)(p), 0, (n) })
#define DBV_NULL ((struct db_value){ DB_NULL, NULL, 0, 0 })

/* one row handed to a query callback: column values as text, numbers in
 * decimal (NULL for SQL NULL); a blob column holds its bytes, LENGTHS[i] of
 * them (the backend decodes bytea) */
struct db_row {
  int ncols;
  const char *const *names;
  const char *const *values;
  const size_t *lengths;
};
/* return 0 to continue, -1 (with an error recorded) to stop the query */
typedef int (*db_row_cb)(const struct db_row *row, void *opaque);

struct db;
struct db_ops {
  const char *scheme;  /* "sqlite", "postgresql" */
  /* open the database named by the URL remainder (path or conninfo); NULL + error */
  struct db *(*open)(const char *target);
  /* close and free; NULL-safe */
  void (*close)(struct db *db);
  /* run a statement with no result rows (DDL, INSERT, UPDATE, DELETE).
   * *changes (may be NULL) receives the number of rows affected. */
  int (*exec)(struct db *db, const char *sql, const struct db_value *params, int nparams, int64_t *changes);
  /* run a query; cb is called once per row */
  int (*query)(struct db *db, const char *sql, const struct db_value *params, int nparams,
               db_row_cb cb, void *opaque);
  /* transactions; begin never nests (the store counts nesting) */
  int (*begin)(struct db *db);
  int (*commit)(struct db *db);
  int (*rollback)(struct db *db);
  /* run a multi-statement schema script (no parameters) */
  int (*exec_script)(struct db *db, const char *sql);
  /* bytes the database takes on disk (for /metrics); -1 + error */
  int64_t (*size_bytes)(struct db *db);
  /* optional: a value that changes whenever any process commits to the
   * database, read without a query (so without the store's lock); 0 when it
   * cannot tell. A backend without it has the store ask with a query. */
  uint64_t (*change_stamp)(struct db *db);
  /* creates sequence NAME ([a-z0-9_]) when missing and makes sure its next
   * value is at least MIN_NEXT (so a sequence made for a table that already
   * has rows starts past them); idempotent */
  int (*sequence_ensure)(struct db *db, const char *name, int64_t min_next);
  /* the next value of sequence NAME: never handed out twice, also across
   * processes and after a rollback (gaps are allowed) */
  int (*sequence_next)(struct db *db, const char *name, int64_t *out);
  /* optional: claims the database for this process's lifetime, so a second
   * engine on it fails here (ERR_CONFLICT with a message naming the holder).
   * NULL when the backend has no such lock (SQLite: the state directory's
   * flock covers it) */
  int (*claim)(struct db *db);
};

/* every backend embeds this as its first member */
struct db { const struct db_ops *ops; };

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_pg_ops;

/* opens "sqlite:///abs/path.db", "sqlite:rel/path.db", a bare path (SQLite), or
 * "postgresql://..." / "postgres://..." (any libpq URI); NULL + error otherwise */
struct db *db_open_url(const char *url);
/* checks URL as db_open_url would, without opening anything: 0 or -1 + error */
int db_check_url(const char *url);
