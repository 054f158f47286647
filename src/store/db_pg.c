/* db_pg.c: the PostgreSQL backend of db.h, through libpq.
 *
 * The entity layer speaks portable SQL with '?' placeholders; this file
 * translates the small, explicit set where PostgreSQL differs:
 *   - '?' becomes $1, $2, ... (outside quoted strings and identifiers);
 *   - sequences are PostgreSQL sequences (SQLite keeps a table of counters);
 *   - typed parameters: DB_INT is sent as int8, DB_BLOB as binary bytea, and
 *     DB_TEXT as an untyped literal (PostgreSQL gives it the column's type,
 *     as it would a quoted constant); bytea results come back as bytes.
 * Upserts (ON CONFLICT ... DO UPDATE SET x = excluded.x) and every other
 * statement are the same text on both backends.
 *
 * Statements are prepared once per connection and kept in a small LRU cache
 * keyed by their SQL and parameter types, as db_sqlite.c keeps its
 * statements: the entity layer sends the same few dozen statements again
 * and again, and parsing and planning dominate a simple SELECT.
 *
 * Concurrency: the store serialises this process on one connection. Other
 * processes on the same database (`snapbackd user lock`, a second engine
 * refused by db_pg_claim) are serialised with SQLite's rule: a transaction
 * takes a transaction-scoped advisory lock first (what SQLite's BEGIN
 * IMMEDIATE does with its write lock), so read-modify-write sequences of two
 * processes never interleave; under READ COMMITTED each statement after the
 * lock sees everything committed before it. Single statements outside a
 * transaction (vm_set_status) are atomic on their own and take no lock.
 *
 * Change stamps: a write transaction sends NOTIFY snapback_store as it
 * commits; a second connection LISTENs, and change_stamp counts what has
 * arrived on it without a query (PQconsumeInput reads what the socket holds,
 * never waits), so a commit by any process moves every engine's stamp. */
#include "store/db.h"
#include "util/buf.h"
#include "util/err.h"
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

DEFINE_AUTOPTR(PGresult, PGresult, PQclear)

/* type oids of the parameters we send (pg_type.h is a server header) */
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20

/* advisory lock keys, (class, object): "snap" and what is locked */
#define PG_LOCK_CLASS 0x736e6170
#define PG_LOCK_ENGINE 1  /* session lock: the one engine on this database */
#define PG_LOCK_WRITE 2   /* transaction lock: one writing transaction at a time */
#define PG_CHANNEL "snapback_store"

#define PG_STMT_CACHE_SIZE 64

struct pg_stmt {
  char *key;         /* SQL, a NUL byte, then one letter per parameter type; NULL: free */
  size_t key_len;
  char name[16];     /* the server-side prepared statement's name */
  int nparams;
  uint64_t last_use;
};

struct db_pg {
  struct db base;
  PGconn *conn;
  bool in_tx;           /* between begin and commit/rollback */
  bool wrote;           /* exec ran in this transaction: notify at commit */
  bool savepoint;       /* db_pg_stmt is set (db_pg_exec) */
  uint64_t clock, serial;
  struct pg_stmt cache[PG_STMT_CACHE_SIZE];

  bool claimed;         /* db_pg_claim holds the engine lock (taken again on a reconnect) */
  bool lost;            /* a reconnect found the engine lock taken: every call fails */

  PGconn *listen;       /* LISTEN connection for change_stamp; NULL: none */
  pthread_mutex_t listen_lock;
  uint64_t notes;       /* notifications seen on it */
  time_t listen_retry;  /* when a broken LISTEN connection was last reset */
};

/* Records the error of a failed result (or of the connection when RES is
 * NULL): a violated constraint (class 23) is a conflict with the stored
 * state, a serialization failure, deadlock, lost connection or shutdown is
 * unavailability, anything else is internal. Returns -1. */
static int pg_error(struct db_pg *db, const PGresult *res)
{
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  if (!msg) msg = PQerrorMessage(db->conn);
  AUTOFREE char *text = xstrdup(msg && *msg ? msg : "unknown error");
  text[strcspn(text, "\n")] = 0;
  if (state && strncmp(state, "23", 2) == 0) return error(ERR_CONFLICT, "%s", text);
  if ((state && (strncmp(state, "40", 2) == 0 || strncmp(state, "08", 2) == 0 ||
                 strncmp(state, "57P", 3) == 0)) ||
      PQstatus(db->conn) != CONNECTION_OK)
    return error(ERR_UNAVAILABLE, "database is unavailable: %s", text);
  return error(ERR_INTERNAL, "database error: %s", text);
}

/* the result is a success of one of the two kinds we expect, or -1 + error */
static int pg_check(struct db_pg *db, const PGresult *res)
{
  ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return 0;
  return pg_error(db, res);
}

static int pg_reconnect(struct db_pg *db);

/* runs a parameterless script (several statements allowed); 0 or -1 + error */
static int pg_exec_plain(struct db_pg *db, const char *sql)
{
  if ((db->lost || PQstatus(db->conn) != CONNECTION_OK) && pg_reconnect(db) < 0) return -1;
  AUTOPTR(PGresult) res = PQexec(db->conn, sql);
  return pg_check(db, res);
}

/* '?' → $N outside '...' strings, "..." identifiers and -- comments; *n gets
 * the count. Caller frees. */
static char *pg_translate(const char *sql, int *n)
{
  AUTOBUF struct buf b = BUF_INIT;
  char quote = 0;
  *n = 0;
  for (const char *p = sql; *p; p++) {
    if (quote) {
      if (*p == quote) quote = 0;
      buf_putc(&b, *p);
    } else if (*p == '\'' || *p == '"') {
      quote = *p;
      buf_putc(&b, *p);
    } else if (*p == '-' && p[1] == '-') {
      size_t len = strcspn(p, "\n");
      buf_add(&b, p, len);
      p += len - 1;
    } else if (*p == '?') {
      buf_printf(&b, "$%d", ++*n);
    } else {
      buf_putc(&b, *p);
    }
  }
  return buf_detach(&b);
}

static char param_letter(enum db_type t)
{
  return t == DB_INT ? 'i' : t == DB_BLOB ? 'b' : t == DB_TEXT ? 't' : 'n';
}

/* The cached prepared statement for SQL with these parameter types,
 * preparing it (and evicting the least recently used one) when new. NULL +
 * error when the statement does not prepare. */
static struct pg_stmt *pg_prepare(struct db_pg *db, const char *sql, const struct db_value *params, int nparams)
{
  size_t sql_len = strlen(sql);
  size_t key_len = sql_len + 1 + (size_t)nparams;
  AUTOFREE char *key = xcalloc(1, key_len + 1);
  memcpy(key, sql, sql_len + 1);
  for (int i = 0; i < nparams; i++) key[sql_len + 1 + i] = param_letter(params[i].type);
  key[key_len] = 0;

  struct pg_stmt *victim = NULL;
  db->clock++;
  for (size_t i = 0; i < PG_STMT_CACHE_SIZE; i++) {
    struct pg_stmt *c = &db->cache[i];
    if (c->key && c->key_len == key_len && memcmp(c->key, key, key_len) == 0) {
      c->last_use = db->clock;
      return c;
    }
    if (!victim || !c->key || (victim->key && c->last_use < victim->last_use)) victim = c;
  }

  int n = 0;
  AUTOFREE char *text = pg_translate(sql, &n);
  if (n != nparams) {
    error(ERR_INTERNAL, "statement takes %d parameters, %d given: %s", n, nparams, sql);
    return NULL;
  }
  AUTOFREE Oid *types = xcalloc(nparams > 0 ? nparams : 1, sizeof(Oid));
  for (int i = 0; i < nparams; i++)
    types[i] = params[i].type == DB_INT ? PG_OID_INT8 : params[i].type == DB_BLOB ? PG_OID_BYTEA : 0;

  if (victim->key) {  /* the server forgets it too, so that names can be reused */
    AUTOFREE char *dealloc = xasprintf("DEALLOCATE %s", victim->name);
    PQclear(PQexec(db->conn, dealloc));
    free(victim->key);
    victim->key = NULL;
  }
  struct pg_stmt fresh = { NULL, key_len, "", nparams, db->clock };
  snprintf(fresh.name, sizeof fresh.name, "s%llu", (unsigned long long)++db->serial);
  AUTOPTR(PGresult) res = PQprepare(db->conn, fresh.name, text, nparams, types);
  if (pg_check(db, res) < 0) return NULL;
  fresh.key = steal_pointer(&key);
  *victim = fresh;
  return victim;
}

/* Runs SQL with typed parameters; the result (rows or command) or NULL +
 * error. Values go as text except blobs (binary); results come as text. */
static PGresult *pg_run(struct db_pg *db, const char *sql, const struct db_value *params, int nparams)
{
  if ((db->lost || PQstatus(db->conn) != CONNECTION_OK) && pg_reconnect(db) < 0) return NULL;
  struct pg_stmt *s = pg_prepare(db, sql, params, nparams);
  if (!s) return NULL;
  int count = nparams > 0 ? nparams : 1;
  AUTOFREE const char **values = xcalloc(count, sizeof(char *));
  AUTOFREE int *lengths = xcalloc(count, sizeof(int));
  AUTOFREE int *formats = xcalloc(count, sizeof(int));
  AUTOFREE char *ints = xcalloc(count, 24);
  for (int i = 0; i < nparams; i++) {
    switch (params[i].type) {
    case DB_TEXT: values[i] = params[i].text; break;
    case DB_INT:
      snprintf(ints + 24 * i, 24, "%lld", (long long)params[i].i);
      values[i] = ints + 24 * i;
      break;
    case DB_BLOB:
      values[i] = params[i].text ? params[i].text : "";
      lengths[i] = (int)params[i].len;
      formats[i] = 1;
      break;
    case DB_NULL: values[i] = NULL; break;
    }
  }
  AUTOPTR(PGresult) res = PQexecPrepared(db->conn, s->name, nparams, values, lengths, formats, 0);
  if (pg_check(db, res) < 0) return NULL;
  return steal_pointer(&res);
}

static void db_pg_close(struct db *base)
{
  struct db_pg *db = (struct db_pg *)base;
  if (!db) return;
  for (size_t i = 0; i < PG_STMT_CACHE_SIZE; i++) free(db->cache[i].key);
  if (db->conn) PQfinish(db->conn);
  if (db->listen) PQfinish(db->listen);
  pthread_mutex_destroy(&db->listen_lock);
  free(db);
}
DEFINE_AUTOPTR(db_pg, struct db, db_pg_close)

/* the conninfo (URL) without a password, for messages */
static char *pg_describe(PGconn *conn)
{
  const char *dbname = PQdb(conn), *user = PQuser(conn);
  return xasprintf("database '%s' as '%s'", dbname ? dbname : "?", user ? user : "?");
}

/* the server's notices (a WARNING for a ROLLBACK with nothing to roll back)
 * are not errors, and stderr is the log: dropped */
static void pg_notice_drop(void *arg, const char *message)
{
}

static PGconn *pg_connect(const char *url)
{
  PGconn *conn = PQconnectdb(url);
  if (!conn) {
    error(ERR_UNAVAILABLE, "cannot connect to PostgreSQL: out of memory");
    return NULL;
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    AUTOFREE char *msg = xstrdup(PQerrorMessage(conn));
    msg[strcspn(msg, "\n")] = 0;
    /* libpq's message names host and database, never the password */
    error(ERR_UNAVAILABLE, "cannot connect to PostgreSQL: %s", msg);
    PQfinish(conn);
    return NULL;
  }
  PQsetNoticeProcessor(conn, pg_notice_drop, NULL);
  return conn;
}

/* what every session of ours sets first: quiet notices (IF NOT EXISTS), UTC
 * for any time function, and a name that tells a refused second engine who
 * holds the database */
static int pg_session_setup(struct db_pg *db)
{
  AUTOFREE char *setup = xasprintf("SET client_min_messages = warning; SET TIME ZONE 'UTC'; "
                                   "SET application_name = 'snapback pid %d'", (int)getpid());
  return pg_exec_plain(db, setup);
}

static int pg_try_engine_lock(struct db_pg *db, PGresult **out);

/* After the server restarted or the connection broke (never inside a
 * transaction: its work is gone and the caller learns it from the failed
 * statement), connects again: the prepared statements went with the old
 * session, and so did the engine lock, which is taken again. If another
 * engine took it meanwhile, this one must not write: every later call
 * fails. 0, or -1 + error. */
static int pg_reconnect(struct db_pg *db)
{
  if (db->lost)
    return error(ERR_UNAVAILABLE, "the PostgreSQL store was taken over by another snapbackd while the "
                 "connection was down; restart this engine");
  if (PQstatus(db->conn) == CONNECTION_OK || db->in_tx) return 0;
  PQreset(db->conn);
  if (PQstatus(db->conn) != CONNECTION_OK) return pg_error(db, NULL);
  for (size_t i = 0; i < PG_STMT_CACHE_SIZE; i++) {
    free(db->cache[i].key);
    db->cache[i].key = NULL;
  }
  if (pg_session_setup(db) < 0) return -1;
  if (db->claimed) {
    PGresult *res = NULL;
    int got = pg_try_engine_lock(db, &res);
    PQclear(res);
    if (got < 0) return -1;
    if (!got) {
      db->lost = true;
      return pg_reconnect(db);
    }
  }
  return 0;
}

static struct db *db_pg_open(const char *url)
{
  AUTOPTR(db_pg) base = xcalloc(1, sizeof(struct db_pg));
  struct db_pg *db = (struct db_pg *)base;
  base->ops = &db_pg_ops;
  pthread_mutex_init(&db->listen_lock, NULL);
  if (!(db->conn = pg_connect(url))) return NULL;
  /* quiet notices (IF NOT EXISTS), UTC for any time function */
  if (pg_session_setup(db) < 0) {
    error_prefix("cannot open the PostgreSQL store: ");
    return NULL;
  }
  /* without the listening connection every request is a new generation:
   * slower, never wrong */
  PGconn *l = pg_connect(url);
  if (l) {
    PGresult *res = PQexec(l, "LISTEN " PG_CHANNEL);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) db->listen = l;
    else PQfinish(l);
    PQclear(res);
  }
  error_clear();
  return steal_pointer(&base);
}


/* Inside a transaction each write runs under a savepoint: PostgreSQL aborts
 * the whole transaction when one statement fails, SQLite only that
 * statement, and the store relies on the latter (a failed insert leaves the
 * earlier ones of the transaction to commit). The previous write's
 * savepoint is released in the same round trip. */
static int db_pg_exec(struct db *base, const char *sql, const struct db_value *params, int nparams,
                      int64_t *changes)
{
  struct db_pg *db = (struct db_pg *)base;
  if (db->in_tx) {
    if (pg_exec_plain(db, db->savepoint ? "RELEASE SAVEPOINT db_pg_stmt; SAVEPOINT db_pg_stmt"
                                        : "SAVEPOINT db_pg_stmt") < 0)
      return -1;
    db->savepoint = true;
    db->wrote = true;
  }
  AUTOPTR(PGresult) res = pg_run(db, sql, params, nparams);
  if (!res) {
    if (db->in_tx) {
      struct err_saved saved;
      error_save(&saved);
      PQclear(PQexec(db->conn, "ROLLBACK TO SAVEPOINT db_pg_stmt; RELEASE SAVEPOINT db_pg_stmt"));
      db->savepoint = false;
      error_restore(&saved);
    }
    return -1;
  }
  if (changes) *changes = strtoll(PQcmdTuples(res), NULL, 10);
  if (db->in_tx) return 0;
  return pg_exec_plain(db, "NOTIFY " PG_CHANNEL);  /* a write of its own: committed now */
}

static int db_pg_query(struct db *base, const char *sql, const struct db_value *params, int nparams,
                       db_row_cb cb, void *opaque)
{
  struct db_pg *db = (struct db_pg *)base;
  AUTOPTR(PGresult) res = pg_run(db, sql, params, nparams);
  if (!res) return -1;
  int ncols = PQnfields(res), nrows = PQntuples(res);
  AUTOFREE const char **names = xcalloc(ncols + 1, sizeof(char *));
  AUTOFREE const char **values = xcalloc(ncols + 1, sizeof(char *));
  AUTOFREE size_t *lengths = xcalloc(ncols + 1, sizeof(size_t));
  AUTOFREE unsigned char **bytes = xcalloc(ncols + 1, sizeof(char *));
  for (int i = 0; i < ncols; i++) names[i] = PQfname(res, i);
  struct db_row row = { ncols, names, values, lengths };
  int rc = 0;
  for (int r = 0; r < nrows && rc == 0; r++) {
    for (int i = 0; i < ncols; i++) {
      bool null = PQgetisnull(res, r, i);
      values[i] = null ? NULL : PQgetvalue(res, r, i);
      lengths[i] = null ? 0 : (size_t)PQgetlength(res, r, i);
      if (!null && PQftype(res, i) == PG_OID_BYTEA) {
        PQfreemem(bytes[i]);
        bytes[i] = PQunescapeBytea((const unsigned char *)values[i], &lengths[i]);
        values[i] = (const char *)bytes[i];
      }
    }
    rc = cb(&row, opaque);
  }
  for (int i = 0; i < ncols; i++) PQfreemem(bytes[i]);
  return rc;
}

/* the write lock first, as SQLite's BEGIN IMMEDIATE (see the top) */
static int db_pg_begin(struct db *base)
{
  struct db_pg *db = (struct db_pg *)base;
  char sql[128];
  snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_WRITE);
  if (pg_exec_plain(db, sql) < 0) {
    if (PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
      PQclear(PQexec(db->conn, "ROLLBACK"));
    }
    return -1;
  }
  db->in_tx = true;
  db->wrote = false;
  db->savepoint = false;
  return 0;
}

static int db_pg_commit(struct db *base)
{
  struct db_pg *db = (struct db_pg *)base;
  /* NOTIFY is delivered at commit, and not at all when it fails */
  int r = pg_exec_plain(db, db->wrote ? "NOTIFY " PG_CHANNEL "; COMMIT" : "COMMIT");
  /* a COMMIT of a failed transaction "succeeds" as a ROLLBACK */
  if (r == 0 && PQtransactionStatus(db->conn) != PQTRANS_IDLE) r = error(ERR_INTERNAL, "COMMIT left a transaction open");
  if (r == 0 || PQtransactionStatus(db->conn) == PQTRANS_IDLE) db->in_tx = false;
  return r;
}

static int db_pg_rollback(struct db *base)
{
  struct db_pg *db = (struct db_pg *)base;
  db->in_tx = false;
  return pg_exec_plain(db, "ROLLBACK");
}

static int db_pg_exec_script(struct db *base, const char *sql)
{
  struct db_pg *db = (struct db_pg *)base;
  if (db->in_tx) db->wrote = true;
  return pg_exec_plain(db, sql);
}

static int64_t db_pg_size_bytes(struct db *base)
{
  struct db_pg *db = (struct db_pg *)base;
  AUTOPTR(PGresult) res = pg_run(db, "SELECT pg_database_size(current_database())", NULL, 0);
  if (!res) return -1;
  return PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
}

/* the count of notifications on the LISTEN connection (see the top), plus
 * one so it is never 0. Without that connection every call is a new value
 * (every request a new generation: slower, never stale); never 0, since the
 * store's fallback for 0 is SQLite's PRAGMA. */
static uint64_t db_pg_change_stamp(struct db *base)
{
  struct db_pg *db = (struct db_pg *)base;
  pthread_mutex_lock(&db->listen_lock);
  time_t now = time(NULL);
  if (db->listen && PQstatus(db->listen) != CONNECTION_OK && now != db->listen_retry) {
    db->listen_retry = now;  /* at most once a second: requests call this */
    /* a new session listens again; what was sent meanwhile is lost, so the
     * stamp moves (below) */
    PQreset(db->listen);
    PGresult *res = PQstatus(db->listen) == CONNECTION_OK ? PQexec(db->listen, "LISTEN " PG_CHANNEL) : NULL;
    PQclear(res);
    db->notes++;
  }
  if (db->listen && PQconsumeInput(db->listen) && PQstatus(db->listen) == CONNECTION_OK) {
    PGnotify *n;
    while ((n = PQnotifies(db->listen))) {
      db->notes++;
      PQfreemem(n);
    }
  } else {
    db->notes++;
  }
  uint64_t v = db->notes + 1;
  pthread_mutex_unlock(&db->listen_lock);
  return v;
}

/* a sequence name is spelled into SQL: only [a-z0-9_] */
static int pg_check_name(const char *name)
{
  if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name))
    return error(ERR_INTERNAL, "invalid sequence name '%s'", name);
  return 0;
}

static int db_pg_sequence_ensure(struct db *base, const char *name, int64_t min_next)
{
  struct db_pg *db = (struct db_pg *)base;
  if (pg_check_name(name) < 0) return -1;
  AUTOFREE char *create = xasprintf("CREATE SEQUENCE IF NOT EXISTS %s AS BIGINT", name);
  if (db_pg_exec_script(base, create) < 0) return -1;
  /* the next nextval() returns at least MIN_NEXT */
  AUTOFREE char *advance = xasprintf(
    "SELECT setval('%s', ? - 1) FROM %s WHERE "
    "(CASE WHEN is_called THEN last_value + 1 ELSE last_value END) < ? AND ? > 1", name, name);
  struct db_value v[3] = { DBV_INT(min_next), DBV_INT(min_next), DBV_INT(min_next) };
  AUTOPTR(PGresult) res = pg_run(db, advance, v, 3);
  return res ? 0 : -1;
}

static int db_pg_sequence_next(struct db *base, const char *name, int64_t *out)
{
  struct db_pg *db = (struct db_pg *)base;
  struct db_value v[1] = { DBV_TEXT(name) };
  AUTOPTR(PGresult) res = pg_run(db, "SELECT nextval(?::regclass)", v, 1);
  if (!res) return -1;
  if (PQntuples(res) != 1) return error(ERR_INTERNAL, "sequence '%s' gave no value", name);
  *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  return 0;
}

/* pg_try_advisory_lock of the engine key: 1 taken, 0 held by another
 * session, -1 + error; *OUT gets the result (caller clears) */
static int pg_try_engine_lock(struct db_pg *db, PGresult **out)
{
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d, %d)", PG_LOCK_CLASS, PG_LOCK_ENGINE);
  *out = PQexec(db->conn, sql);
  if (pg_check(db, *out) < 0) return -1;
  return PQntuples(*out) == 1 && strcmp(PQgetvalue(*out, 0, 0), "t") == 0;
}

/* the session advisory lock, held as long as the connection lives: the
 * server drops it when this process dies, however it dies */
static int db_pg_claim(struct db *base)
{
  struct db_pg *db = (struct db_pg *)base;
  AUTOPTR(PGresult) res = NULL;
  if ((db->lost || PQstatus(db->conn) != CONNECTION_OK) && pg_reconnect(db) < 0) return -1;
  int got = pg_try_engine_lock(db, &res);
  if (got < 0) return error_prefix("cannot lock the PostgreSQL store: ");
  if (got) {
    db->claimed = true;
    return 0;
  }
  AUTOFREE char *what = pg_describe(db->conn);
  AUTOFREE char *holder_sql = xasprintf("SELECT a.application_name || ' on ' || COALESCE(host(a.client_addr), 'a local socket') "
                                        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                                        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %u "
                                        "AND l.objid = %u AND l.objsubid = 2 AND l.database = "
                                        "(SELECT oid FROM pg_database WHERE datname = current_database())",
                                        (unsigned)PG_LOCK_CLASS, (unsigned)PG_LOCK_ENGINE);
  AUTOPTR(PGresult) who = PQexec(db->conn, holder_sql);
  const char *holder = who && PQresultStatus(who) == PGRES_TUPLES_OK && PQntuples(who) > 0 ? PQgetvalue(who, 0, 0) : NULL;
  return error(ERR_CONFLICT, "PostgreSQL %s is in use by another snapbackd%s%s%s: one engine per store; "
               "stop it first or choose another --db", what, holder ? " (" : "",
               holder ? holder : "", holder ? ")" : "");
}

const struct db_ops db_pg_ops = {
  .scheme = "postgresql",
  .open = db_pg_open,
  .close = db_pg_close,
  .exec = db_pg_exec,
  .query = db_pg_query,
  .begin = db_pg_begin,
  .commit = db_pg_commit,
  .rollback = db_pg_rollback,
  .exec_script = db_pg_exec_script,
  .size_bytes = db_pg_size_bytes,
  .change_stamp = db_pg_change_stamp,
  .sequence_ensure = db_pg_sequence_ensure,
  .sequence_next = db_pg_sequence_next,
  .claim = db_pg_claim,
};
