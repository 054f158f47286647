/* db.c: picks a database backend from the URL scheme.
 *
 * The backends built in are listed in one table; meson.build decides which
 * backend files are compiled, and a new backend (db_pg.c) only has to fill
 * its row here with its ops table. A scheme we know but did not build is
 * reported as unsupported rather than unknown, so the user learns that the
 * URL is right and the build is what lacks it. */
#include "store/db.h"
#include "util/buf.h"
#include "util/err.h"
#include <ctype.h>
#include <string.h>
#include <strings.h>

struct db_backend {
  const char *scheme;
  const struct db_ops *ops;  /* NULL: known scheme, backend not built in */
  const char *name;          /* for messages */
  /* maps the part after "scheme:" to what ops->open takes; NULL + error when
   * malformed; a NULL hook hands over the whole URL (libpq takes
   * postgresql:// URIs as they are) */
  const char *(*target)(const char *url, const char *rest);
};

static const char *sqlite_target(const char *url, const char *rest);

static const struct db_backend db_backends[] = {
  { "sqlite", &db_sqlite_ops, "SQLite", sqlite_target },
  { "postgresql", &db_pg_ops, "PostgreSQL", NULL },
  { "postgres", &db_pg_ops, "PostgreSQL", NULL },
};

/* Length of a leading URL scheme ("sqlite" in "sqlite:x.db"), or 0 when the
 * string does not start with one and so is a bare path. */
static size_t url_scheme_len(const char *url)
{
  size_t n = 0;
  if (!isalpha((unsigned char)url[0])) return 0;
  while (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.') n++;
  return url[n] == ':' ? n : 0;
}

/* The SQLite target of "sqlite:///abs/path" is "/abs/path" and that of
 * "sqlite:rel/path" is "rel/path"; "sqlite://host/..." names a host, which
 * SQLite cannot have. Returns NULL with an error. */
static const char *sqlite_target(const char *url, const char *rest)
{
  if (strncmp(rest, "//", 2) == 0) {
    if (rest[2] != '/') {
      error(ERR_INVALID, "invalid database URL '%s': use sqlite:///absolute/path or sqlite:relative/path", url);
      return NULL;
    }
    return rest + 2;
  }
  return rest;
}

/* the backend ops for URL and what its open takes; NULL + error */
static const struct db_ops *db_resolve(const char *url, const char **target)
{
  if (!url || !*url) {
    error(ERR_INVALID, "no database URL given");
    return NULL;
  }
  size_t n = url_scheme_len(url);
  if (n == 0) {
    *target = url;
    return &db_sqlite_ops;
  }
  for (size_t i = 0; i < ARRAY_SIZE(db_backends); i++) {
    const struct db_backend *be = &db_backends[i];
    if (strlen(be->scheme) != n || strncasecmp(url, be->scheme, n) != 0) continue;
    if (!be->ops) {
      error(ERR_UNSUPPORTED, "the %s backend is not built in", be->name);
      return NULL;
    }
    *target = be->target ? be->target(url, url + n + 1) : url;
    if (!*target) return NULL;
    if (!**target) {
      error(ERR_INVALID, "invalid database URL '%s': no database named", url);
      return NULL;
    }
    return be->ops;
  }
  /* only the scheme: the rest of an unknown URL may hold a password */
  error(ERR_INVALID, "unknown database URL scheme '%.*s'", (int)n, url);
  return NULL;
}

struct db *db_open_url(const char *url)
{
  const char *target = NULL;
  const struct db_ops *ops = db_resolve(url, &target);
  return ops ? ops->open(target) : NULL;
}

int db_check_url(const char *url)
{
  const char *target = NULL;
  return db_resolve(url, &target) ? 0 : -1;
}
