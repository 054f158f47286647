/* webassets.c: the web console's files in memory, with their integrity
 * hashes (see webassets.h). */
#include "http/webassets.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/vec.h"
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SRI_OPEN "%SRI:"
#define MAX_ASSET_BYTES ((size_t)8 << 20)

struct asset {
  struct webasset pub;
  char *name;
  char *data;
  char *etag;
  char *integrity;
};

DEFINE_VEC(asset_vec, struct asset);

struct webassets {
  struct asset_vec v;
};

static const struct {
  const char *ext;
  const char *type;
} types[] = {
  {".html", "text/html; charset=utf-8"},
  {".js", "text/javascript; charset=utf-8"},
  {".css", "text/css; charset=utf-8"},
  {".svg", "image/svg+xml"},
  {".png", "image/png"},
  {".ico", "image/x-icon"},
  {".json", "application/json"},
  {".txt", "text/plain; charset=utf-8"},
};

static const char *content_type(const char *name)
{
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < ARRAY_SIZE(types); i++)
    if (strcmp(dot, types[i].ext) == 0) return types[i].type;
  return NULL;
}

/* "sha384-BASE64" of DATA; caller frees */
static char *sri_of(const char *data, size_t len)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (!EVP_Digest(data, len, md, &mdlen, EVP_sha384(), NULL)) return NULL;
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  EVP_EncodeBlock(b64, md, (int)mdlen);
  return xasprintf("sha384-%s", (const char *)b64);
}

static struct asset *find_name(struct webassets *wa, const char *name, size_t len)
{
  for (size_t i = 0; i < wa->v.len; i++)
    if (strlen(wa->v.ptr[i].name) == len && strncmp(wa->v.ptr[i].name, name, len) == 0)
      return &wa->v.ptr[i];
  return NULL;
}

static int read_whole(const char *path, struct buf *out)
{
  FILE *f = fopen(path, "rb");
  if (!f) return error(ERR_INTERNAL, "cannot read web asset '%s': %s", path, strerror(errno));
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    buf_add(out, chunk, n);
    if (out->len > MAX_ASSET_BYTES) {
      fclose(f);
      return error(ERR_INVALID, "web asset '%s' is over %zu bytes", path, MAX_ASSET_BYTES);
    }
  }
  fclose(f);
  return 0;
}

/* sets the hashes of A from its current data */
static int seal(struct asset *a)
{
  a->integrity = sri_of(a->data, a->pub.len);
  if (!a->integrity) return error(ERR_INTERNAL, "cannot hash web asset '%s'", a->name);
  a->etag = xasprintf("\"%s\"", a->integrity);
  a->pub.name = a->name;
  a->pub.data = a->data;
  a->pub.etag = a->etag;
  a->pub.integrity = a->integrity;
  return 0;
}

/* replaces each %SRI:NAME% in the HTML asset A with NAME's integrity value;
 * NAME must be a non-HTML asset (already sealed) */
static int fill_sri(struct webassets *wa, struct asset *a)
{
  struct buf out = BUF_INIT;
  const char *p = a->data, *end = a->data + a->pub.len;
  while (p < end) {
    const char *open = strstr(p, SRI_OPEN);
    if (!open) {
      buf_add(&out, p, (size_t)(end - p));
      break;
    }
    buf_add(&out, p, (size_t)(open - p));
    const char *name = open + strlen(SRI_OPEN);
    const char *close = strchr(name, '%');
    struct asset *ref = close ? find_name(wa, name, (size_t)(close - name)) : NULL;
    if (!ref || ref->pub.html) {
      buf_free(&out);
      return error(ERR_INVALID, "web asset '%s': '%.40s' names no script or style asset", a->name,
                   open);
    }
    buf_puts(&out, ref->integrity);
    p = close + 1;
  }
  free(a->data);
  a->pub.len = out.len;
  a->data = buf_detach(&out);
  return seal(a);
}

static void asset_clear(struct asset *a)
{
  free(a->name);
  free(a->data);
  free(a->etag);
  free(a->integrity);
}

void webassets_free(struct webassets *wa)
{
  if (!wa) return;
  for (size_t i = 0; i < wa->v.len; i++) asset_clear(&wa->v.ptr[i]);
  free(wa->v.ptr);
  free(wa);
}

DEFINE_AUTOPTR(webassets, struct webassets, webassets_free)

struct webassets *webassets_load(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d) {
    error(ERR_INTERNAL, "cannot open the web console directory '%s': %s", dir, strerror(errno));
    return NULL;
  }
  AUTOPTR(webassets) wa = xcalloc(1, sizeof *wa);
  struct dirent *de;
  int rc = 0;
  while (rc == 0 && (de = readdir(d))) {
    const char *type = content_type(de->d_name);
    if (de->d_name[0] == '.' || !type) continue;
    AUTOFREE char *path = xasprintf("%s/%s", dir, de->d_name);
    struct stat sb;
    if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode)) continue;
    struct buf data = BUF_INIT;
    if ((rc = read_whole(path, &data)) < 0) {
      buf_free(&data);
      break;
    }
    struct asset a = {.name = xstrdup(de->d_name)};
    a.pub.content_type = type;
    a.pub.html = strncmp(type, "text/html", 9) == 0;
    a.pub.len = data.len;
    a.data = buf_detach(&data);
    vec_push(&wa->v, a);
  }
  closedir(d);
  if (rc < 0) return NULL;
  /* scripts and styles first: the HTML files name their hashes */
  for (size_t i = 0; i < wa->v.len; i++)
    if (!wa->v.ptr[i].pub.html && seal(&wa->v.ptr[i]) < 0) return NULL;
  for (size_t i = 0; i < wa->v.len; i++)
    if (wa->v.ptr[i].pub.html && fill_sri(wa, &wa->v.ptr[i]) < 0) return NULL;
  return steal_pointer(&wa);
}

const struct webasset *webassets_find(const struct webassets *wa, const char *url)
{
  if (!wa || url[0] != '/') return NULL;
  const char *name = url + 1;
  if (!*name) name = "index.html";
  else if (strcmp(name, "console") == 0) name = "console.html";
  if (strchr(name, '/')) return NULL; /* flat: no traversal possible */
  struct asset *a = find_name((struct webassets *)wa, name, strlen(name));
  return a ? &a->pub : NULL;
}
