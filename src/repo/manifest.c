/* manifest.c: one JSON manifest per complete backup.
 *
 * backups/<timestamp>-<vm>-<id>.json holds the VM, its OVF, and per disk the
 * chunk list (ids or "zero") and the whole disk's SHA-256. It is written last,
 * after repo_sync(), with temp + fsync + rename + directory fsync: a backup is
 * listed exactly when its manifest exists. In an encrypted repository the
 * file is an "SBM1" envelope sealed like a chunk (docs/repository.md). */
#include "repo/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/vec.h"
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

#define MANIFEST_MAX ((size_t)256 << 20)

size_t manifest_chunk_count(uint64_t size)
{
  return (size_t)((size + REPO_CHUNK_SIZE - 1) / REPO_CHUNK_SIZE);
}

void manifest_free(struct manifest *m)
{
  if (!m) return;
  for (size_t i = 0; i < m->ndisks; i++) {
    struct manifest_disk *d = &m->disks[i];
    free(d->id);
    free(d->alias);
    free(d->image_id);
    free(d->interface);
    free(d->sha256);
    for (size_t j = 0; j < d->nchunks; j++) free(d->chunks[j]);
    free(d->chunks);
  }
  free(m->disks);
  free(m->id);
  free(m->name);
  free(m->vm_id);
  free(m->vm_name);
  free(m->snapshot_id);
  free(m->ovf);
  free(m);
}

struct manifest_disk *manifest_add_disk(struct manifest *m, uint64_t size)
{
  m->disks = xrealloc(m->disks, (m->ndisks + 1) * sizeof *m->disks);
  struct manifest_disk *d = &m->disks[m->ndisks++];
  memset(d, 0, sizeof *d);
  d->size = size;
  d->nchunks = manifest_chunk_count(size);
  d->chunks = xcalloc(d->nchunks ? d->nchunks : 1, sizeof *d->chunks);
  return d;
}

static void iso(int64_t ms, char out[32]) { time_format_iso(ms, out); }

static int64_t parse_iso(const char *s)
{
  struct tm tm = {0};
  int msec = 0;
  if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec, &msec) < 6)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm) * 1000 + msec;
}

static json_t *manifest_to_json(const struct manifest *m)
{
  char started[32], finished[32];
  iso(m->start_ms, started);
  iso(m->end_ms, finished);
  json_t *disks = json_array();
  for (size_t i = 0; i < m->ndisks; i++) {
    const struct manifest_disk *d = &m->disks[i];
    json_t *chunks = json_array();
    for (size_t j = 0; j < d->nchunks; j++) json_array_append_new(chunks, json_string(d->chunks[j]));
    json_array_append_new(disks, json_pack("{s:s, s:s*, s:s*, s:s*, s:b, s:I, s:s, s:o}", "id", d->id,
                                           "alias", d->alias, "image_id", d->image_id, "interface",
                                           d->interface, "bootable", d->bootable, "size",
                                           (json_int_t)d->size, "sha256", d->sha256, "chunks", chunks));
  }
  return json_pack("{s:s, s:i, s:s, s:{s:s, s:s}, s:s*, s:s, s:s, s:I, s:s*, s:o, s:{s:I, s:I, s:I, s:I, s:I}}",
                   "format", "snapback-backup", "version", REPO_FORMAT_VERSION, "id", m->id, "vm", "id",
                   m->vm_id, "name", m->vm_name, "snapshot_id", m->snapshot_id, "started", started,
                   "finished", finished, "chunk_size", (json_int_t)REPO_CHUNK_SIZE, "ovf", m->ovf,
                   "disks", disks, "stats", "chunks_new", (json_int_t)m->chunks_new, "chunks_reused",
                   (json_int_t)m->chunks_reused, "chunks_zero", (json_int_t)m->chunks_zero, "bytes_read",
                   (json_int_t)m->bytes_read, "bytes_stored", (json_int_t)m->bytes_stored);
}

static bool valid_chunk_ref(const char *s)
{
  return s && (strcmp(s, REPO_ZERO_MARK) == 0 || repo_is_chunk_name(s));
}

static struct manifest *manifest_from_json(json_t *j, const char *name)
{
  const char *format = NULL, *id = NULL, *vm_id = NULL, *vm_name = NULL, *snap = NULL, *started = NULL,
             *finished = NULL, *ovf = NULL;
  json_int_t chunk_size = 0;
  json_t *disks = NULL, *stats = NULL;
  if (json_unpack(j, "{s:s, s:s, s:{s:s, s:s}, s?s, s:s, s:s, s:I, s?s, s:o, s?o}", "format", &format, "id",
                  &id, "vm", "id", &vm_id, "name", &vm_name, "snapshot_id", &snap, "started", &started,
                  "finished", &finished, "chunk_size", &chunk_size, "ovf", &ovf, "disks", &disks,
                  "stats", &stats) < 0 ||
      strcmp(format, "snapback-backup") != 0 || !json_is_array(disks)) {
    error(ERR_INVALID, "backup '%s' is damaged: its manifest lacks required fields", name);
    return NULL;
  }
  if (chunk_size != (json_int_t)REPO_CHUNK_SIZE) {
    error(ERR_UNSUPPORTED, "backup '%s' uses %lld-byte chunks", name, (long long)chunk_size);
    return NULL;
  }
  AUTOPTR(manifest) m = xcalloc(1, sizeof *m);
  m->id = xstrdup(id);
  m->name = xstrdup(name);
  m->vm_id = xstrdup(vm_id);
  m->vm_name = xstrdup(vm_name);
  m->snapshot_id = xstrdup(snap);
  m->ovf = xstrdup(ovf);
  m->start_ms = parse_iso(started);
  m->end_ms = parse_iso(finished);
  if (stats) {
    json_int_t a = 0, b = 0, c = 0, d = 0, e = 0;
    json_unpack(stats, "{s?I, s?I, s?I, s?I, s?I}", "chunks_new", &a, "chunks_reused", &b, "chunks_zero", &c,
                "bytes_read", &d, "bytes_stored", &e);
    m->chunks_new = (uint64_t)a, m->chunks_reused = (uint64_t)b, m->chunks_zero = (uint64_t)c;
    m->bytes_read = (uint64_t)d, m->bytes_stored = (uint64_t)e;
  }
  size_t i;
  json_t *jd;
  json_array_foreach(disks, i, jd) {
    const char *did = NULL, *alias = NULL, *image = NULL, *iface = NULL, *sha = NULL;
    int boot = 0;
    json_int_t size = -1;
    json_t *chunks = NULL;
    if (json_unpack(jd, "{s:s, s?s, s?s, s?s, s?b, s:I, s:s, s:o}", "id", &did, "alias", &alias, "image_id",
                    &image, "interface", &iface, "bootable", &boot, "size", &size, "sha256", &sha, "chunks",
                    &chunks) < 0 ||
        size < 0 || !json_is_array(chunks)) {
      error(ERR_INVALID, "backup '%s' is damaged: disk %zu lacks required fields", name, i);
      return NULL;
    }
    struct manifest_disk *d = manifest_add_disk(m, (uint64_t)size);
    d->id = xstrdup(did);
    d->alias = xstrdup(alias);
    d->image_id = xstrdup(image);
    d->interface = xstrdup(iface);
    d->bootable = boot;
    d->sha256 = xstrdup(sha);
    if (json_array_size(chunks) != d->nchunks) {
      error(ERR_INVALID, "backup '%s' is damaged: disk '%s' lists %zu chunks for %lld bytes", name, did,
            json_array_size(chunks), (long long)size);
      return NULL;
    }
    for (size_t k = 0; k < d->nchunks; k++) {
      const char *c = json_string_value(json_array_get(chunks, k));
      if (!valid_chunk_ref(c)) {
        error(ERR_INVALID, "backup '%s' is damaged: disk '%s' chunk %zu is not a chunk id", name, did, k);
        return NULL;
      }
      d->chunks[k] = xstrdup(c);
    }
  }
  return steal_pointer(&m);
}

/* a VM name made safe for a file name: [A-Za-z0-9._-], at most 64 bytes */
static void safe_name(struct buf *b, const char *s)
{
  size_t n = 0;
  for (; s && *s && n < 64; s++, n++) {
    char c = *s;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    buf_putc(b, ok ? c : '_');
  }
  if (!n) buf_puts(b, "vm");
}

static const unsigned char MANIFEST_MAGIC[4] = {'S', 'B', 'M', '1'};

int manifest_write(struct repo *r, struct manifest *m)
{
  for (size_t i = 0; i < m->ndisks; i++)
    for (size_t j = 0; j < m->disks[i].nchunks; j++)
      if (!valid_chunk_ref(m->disks[i].chunks[j]))
        return error(ERR_INTERNAL, "cannot write backup '%s': disk '%s' chunk %zu is not filled", m->id,
                     m->disks[i].id, j);
  if (repo_sync(r) < 0) return error_prefix("cannot write backup '%s': ", m->id);
  struct buf name = BUF_INIT;
  time_t t = (time_t)(m->start_ms / 1000);
  struct tm tm;
  char stamp[32];
  gmtime_r(&t, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  buf_printf(&name, "%s-", stamp);
  safe_name(&name, m->vm_name);
  buf_printf(&name, "-%s", m->id);
  free(m->name);
  m->name = buf_detach(&name);
  AUTOPTR(json) j = manifest_to_json(m);
  if (!j) return error(ERR_INTERNAL, "cannot write backup '%s': cannot build its JSON", m->id);
  AUTOFREE char *text = json_dumps(j, JSON_INDENT(1) | JSON_COMPACT);
  size_t len = strlen(text);
  AUTOFREE char *dir = xasprintf("%s/backups", r->path);
  AUTOFREE char *file = xasprintf("%s.json", m->name);
  if (!r->encrypted) return repo_write_file(dir, file, text, len, false);
  AUTOFREE unsigned char *env = xrealloc(NULL, ENVELOPE_HEADER + ENVELOPE_NONCE + len + ENVELOPE_TAG);
  memcpy(env, MANIFEST_MAGIC, 4);
  memset(env + 4, 0, ENVELOPE_HEADER - 4);
  env[5] = 1;
  env[8] = (unsigned char)len, env[9] = (unsigned char)(len >> 8), env[10] = (unsigned char)(len >> 16),
  env[11] = (unsigned char)(len >> 24);
  memcpy(env + 12, env + 8, 4);
  /* the file name is authenticated: a manifest renamed to another backup fails */
  struct buf aad = BUF_INIT;
  buf_add(&aad, env, ENVELOPE_HEADER);
  buf_puts(&aad, m->name);
  int rc = repo_seal(r, aad.data, aad.len, text, len, env + ENVELOPE_HEADER);
  buf_free(&aad);
  if (rc < 0) return -1;
  return repo_write_file(dir, file, env, ENVELOPE_HEADER + ENVELOPE_NONCE + len + ENVELOPE_TAG, false);
}

struct manifest *manifest_read(struct repo *r, const char *name)
{
  AUTOFREE char *path = xasprintf("%s/backups/%s.json", r->path, name);
  size_t len;
  AUTOFREE unsigned char *data = repo_read_file(path, MANIFEST_MAX, &len);
  if (!data) {
    if (error_code() == ERR_NOT_FOUND) error(ERR_NOT_FOUND, "backup '%s' does not exist", name);
    return NULL;
  }
  const char *text = (const char *)data;
  size_t tlen = len;
  AUTOFREE unsigned char *plain = NULL;
  if (len >= 4 && memcmp(data, MANIFEST_MAGIC, 4) == 0) {
    if (!r->encrypted) {
      error(ERR_INVALID, "backup '%s' is damaged: it is encrypted in an unencrypted repository", name);
      return NULL;
    }
    if (len < ENVELOPE_HEADER + ENVELOPE_NONCE + ENVELOPE_TAG) {
      error(ERR_INVALID, "backup '%s' is damaged: truncated", name);
      return NULL;
    }
    tlen = len - ENVELOPE_HEADER - ENVELOPE_NONCE - ENVELOPE_TAG;
    plain = xrealloc(NULL, tlen + 1);
    struct buf aad = BUF_INIT;
    buf_add(&aad, data, ENVELOPE_HEADER);
    buf_puts(&aad, name);
    int rc = repo_open_sealed(r, aad.data, aad.len, data + ENVELOPE_HEADER, len - ENVELOPE_HEADER, plain);
    buf_free(&aad);
    if (rc < 0) {
      error_prefix("backup '%s' is damaged: ", name);
      return NULL;
    }
    plain[tlen] = '\0';
    text = (const char *)plain;
  } else if (r->encrypted) {
    error(ERR_INVALID, "backup '%s' is damaged: it is not encrypted in an encrypted repository", name);
    return NULL;
  }
  json_error_t je;
  AUTOPTR(json) j = json_loadb(text, tlen, 0, &je);
  if (!j) {
    error(ERR_INVALID, "backup '%s' is damaged: %s (line %d)", name, je.text, je.line);
    return NULL;
  }
  return manifest_from_json(j, name);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

char **manifest_list(struct repo *r, size_t *count)
{
  AUTOFREE char *dir = xasprintf("%s/backups", r->path);
  DIR *d = opendir(dir);
  if (!d) {
    error(ERR_INTERNAL, "cannot list '%s': %s", dir, strerror(errno));
    return NULL;
  }
  struct strvec v = VEC_INIT;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (e->d_name[0] == '.' || n <= 5 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
    vec_push(&v, xasprintf("%.*s", (int)(n - 5), e->d_name));
  }
  closedir(d);
  if (v.len) qsort(v.ptr, v.len, sizeof *v.ptr, cmp_str);
  if (count) *count = v.len;
  vec_push(&v, NULL);
  return v.ptr;
}

static void strv_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

struct manifest *manifest_find(struct repo *r, const char *what)
{
  size_t n;
  char **names = manifest_list(r, &n);
  if (!names) return NULL;
  const char *exact = NULL, *match = NULL;
  size_t matches = 0, wl = strlen(what);
  for (size_t i = 0; i < n; i++) {
    /* the stem ends in -<36-char id> */
    size_t nl = strlen(names[i]);
    const char *id = nl > 36 ? names[i] + nl - 36 : names[i];
    if (strcmp(names[i], what) == 0 || strcmp(id, what) == 0) {
      exact = names[i];
      break;
    }
    if (wl && (strncmp(names[i], what, wl) == 0 || strncmp(id, what, wl) == 0)) {
      match = names[i];
      matches++;
    }
  }
  struct manifest *m = NULL;
  if (exact) m = manifest_read(r, exact);
  else if (matches == 1) m = manifest_read(r, match);
  else if (matches > 1) error(ERR_CONFLICT, "backup '%s' is ambiguous: %zu backups match", what, matches);
  else error(ERR_NOT_FOUND, "backup '%s' does not exist in repository '%s'", what, r->path);
  strv_free(names);
  return m;
}

int manifest_remove(struct repo *r, const char *name)
{
  AUTOFREE char *path = xasprintf("%s/backups/%s.json", r->path, name);
  if (unlink(path) < 0) return error(ERR_INTERNAL, "cannot remove backup '%s': %s", name, strerror(errno));
  AUTOFREE char *dir = xasprintf("%s/backups", r->path);
  return repo_fsync_dir(dir);
}
