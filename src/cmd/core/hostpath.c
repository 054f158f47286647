/* hostpath.c: host paths that reach the engine through the API.
 *
 * OVA directories, OVA files to import, storage-domain directories and VM
 * kernels and initrds name files on the host, which the engine opens as root.
 * Each is resolved with realpath() (symlinks and ".." followed) and must then
 * lie under one of the roots the host's administrator gave with the repeatable
 * flag --allow-path DIR, or under the state directory; nothing else is
 * reachable. A path that is outside answers the same whether it exists or
 * not, so the API cannot be used to probe the host's files. Callers use the
 * resolved path from then on. */
#include "cmd/internal.h"
#include "util/err.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* "/a//b/./c/../d" -> "/a/b/d"; the path without touching the file system */
static char *path_normalize(const char *path)
{
  struct buf b = BUF_INIT;
  const char *p = path;
  while (*p) {
    while (*p == '/') p++;
    const char *end = strchrnul(p, '/');
    size_t n = (size_t)(end - p);
    if (n == 0 || (n == 1 && p[0] == '.')) {
      /* nothing */
    } else if (n == 2 && p[0] == '.' && p[1] == '.') {
      while (b.len && b.data[b.len - 1] != '/') b.len--;
      if (b.len) b.len--;
      if (b.data) b.data[b.len] = 0;
    } else {
      buf_putc(&b, '/');
      buf_add(&b, p, n);
    }
    p = end;
  }
  if (!b.len) buf_putc(&b, '/');
  return buf_detach(&b);
}

static bool under(const char *path, const char *root)
{
  size_t n = strlen(root);
  if (n == 1 && root[0] == '/') return true;
  return strncmp(path, root, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static bool under_any(struct engine *eng, const char *path)
{
  for (size_t i = 0; i < eng->allow_roots.len; i++)
    if (under(path, eng->allow_roots.ptr[i])) return true;
  return false;
}

static int outside(const char *what, const char *path)
{
  return error(ERR_FORBIDDEN, "%s '%s' is outside the directories this engine may use on the host: "
               "the host's administrator allows a directory with the snapbackd setting "
               "--allow-path DIR (by default only the state directory)", what, path);
}

char *host_path_resolve(struct engine *eng, const char *path, const char *what)
{
  if (!path || path[0] != '/')
    return error(ERR_INVALID, "invalid %s '%s': give an absolute path on the host", what,
                 path ? path : ""), NULL;
  char real[PATH_MAX];
  if (!realpath(path, real)) {
    int e = errno;
    AUTOFREE char *lexical = path_normalize(path);
    if (!under_any(eng, lexical)) return outside(what, path), NULL;
    return error(ERR_INVALID, "invalid %s '%s': %s", what, path, strerror(e)), NULL;
  }
  if (!under_any(eng, real)) return outside(what, path), NULL;
  return xstrdup(real);
}

int host_paths_init(struct engine *eng, const char *const *allow_paths)
{
  char real[PATH_MAX];
  if (!realpath(eng->state_dir, real))
    return error(ERR_INTERNAL, "cannot resolve the state directory '%s': %s", eng->state_dir,
                 strerror(errno));
  vec_push(&eng->allow_roots, xstrdup(real));
  for (const char *const *p = allow_paths; p && *p; p++) {
    if (!realpath(*p, real))
      return error(ERR_INVALID, "invalid value '%s' for --allow-path: %s", *p, strerror(errno));
    vec_push(&eng->allow_roots, xstrdup(real));
  }
  return 0;
}
