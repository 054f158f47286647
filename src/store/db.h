/* db.h: the SQL backend interface (ops table).
 *
 * The entity layer (store.c) speaks portable SQL with '?' placeholders and
 * text/int64/NULL parameters; a backend executes it. SQLite (db_sqlite.c) is
 * the embedded default; PostgreSQL (db_pg.c, later) implements the same ops,
 * translating '?' to $N. Backends are picked by URL scheme in db.c, and which
 * backends exist is decided in meson.build, never by #ifdef in callers.
 *
 * Threading: the store serialises all use of one db with its own recursive
 * mutex, so a backend may assume one caller at a time. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "util/cleanup.h"

enum db_type { DB_NULL, DB_TEXT, DB_INT };
struct db_value {
  enum db_type type;
  const char *text;  /* DB_TEXT; borrowed */
  int64_t i;         /* DB_INT */
};
#define DBV_TEXT(s) ((struct db_value){ (s) ? DB_TEXT : DB_NULL, (s), 0 })
#define DBV_INT(v) ((struct db_value){ DB_INT, NULL, (v) })

/* one row handed to a query callback: column values as text (NULL for SQL NULL) */
struct db_row {
  int ncols;
  const char *const *names;
  const char *const *values;
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
};

/* every backend embeds this as its first member */
struct db { const struct db_ops *ops; };

extern const struct db_ops db_sqlite_ops;

/* opens "sqlite:///abs/path.db", "sqlite:rel/path.db", a bare path (SQLite), or
 * "postgresql://..." when built with that backend; NULL + error otherwise */
struct db *db_open_url(const char *url);
/* checks URL as db_open_url would, without opening anything: 0 or -1 + error */
int db_check_url(const char *url);
