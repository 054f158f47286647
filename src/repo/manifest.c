/* manifest.c: one JSON manifest per complete backup.
 *
 * backups/<timestamp>-<vm>-<id>.json holds the VM, its OVF, and per disk its
 * layout: the block chunk ids (binary, base64: 32 bytes a block, all zero for
 * a zero block), the patches laid over them (20-byte records, base64) and
 * the chunks they point into, and a digest over all chunk ids (version 2).
 * Version 1 manifests (a JSON array of hex ids and the SHA-256 of the disk's
 * bytes) are still read. It is written last,
 * after repo_sync(), with temp + fsync + rename + directory fsync: a backup is
 * listed exactly when its manifest exists. In an encrypted repository the
 * file is an "SBM1" envelope sealed like a chunk (docs/repository.md). */
#include "repo/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/vec.h"
#include <dirent.h>
#include <openssl/evp.h>
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
    free(d->digest);
    free(d->mode);
    free(d->why);
    for (size_t j = 0; j < d->nchunks; j++) free(d->chunks[j]);
    free(d->chunks);
    for (size_t j = 0; j < d->npatch_chunks; j++) free(d->patch_chunks[j]);
    free(d->patch_chunks);
    free(d->patches);
  }
  free(m->disks);
  free(m->id);
  free(m->name);
  free(m->vm_id);
  free(m->vm_name);
  free(m->snapshot_id);
  free(m->checkpoint_id);
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
  d->patch_chunks = xcalloc(1, sizeof *d->patch_chunks);
  d->patches = xcalloc(1, sizeof *d->patches);
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
  /* a manifest is outside input: a year of 2^31 overflowed the ms (found by fuzz_repo) */
  if (tm.tm_year < 1970 || tm.tm_year > 9999 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
      tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 ||
      tm.tm_sec < 0 || tm.tm_sec > 60 || msec < 0 || msec > 999)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm) * 1000 + msec;
}

/* ---- the binary layout inside the JSON (base64) ---- */

#define PATCH_RECORD 20 /* off u64, len u32, ref u32, ref_off u32; little-endian */

static int hexval(char c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* a chunk reference as 32 bytes: the id, or zeros for REPO_ZERO_MARK */
static void ref_to_bin(const char *ref, unsigned char out[32])
{
  memset(out, 0, 32);
  if (strcmp(ref, REPO_ZERO_MARK) == 0) return;
  for (int i = 0; i < 32; i++) out[i] = (unsigned char)(hexval(ref[2 * i]) << 4 | hexval(ref[2 * i + 1]));
}

static char *ref_from_bin(const unsigned char in[32])
{
  static const unsigned char zero[32];
  if (memcmp(in, zero, 32) == 0) return xstrdup(REPO_ZERO_MARK);
  char *s = xrealloc(NULL, REPO_ID_HEX + 1);
  repo_hex(in, 32, s);
  return s;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
  for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static json_t *base64_json(const unsigned char *bin, size_t n)
{
  AUTOFREE char *out = xrealloc(NULL, 4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)out, bin, (int)n);
  return json_string(out);
}

/* decodes s into exactly n bytes; NULL when s is not base64 of n bytes */
static unsigned char *base64_decode(const char *s, size_t n)
{
  size_t sl = strlen(s);
  if (sl != 4 * ((n + 2) / 3)) return NULL;
  unsigned char *out = xrealloc(NULL, sl / 4 * 3 + 1);
  if (sl && EVP_DecodeBlock(out, (const unsigned char *)s, (int)sl) < (int)n) {
    free(out);
    return NULL;
  }
  return out;
}

static void patch_record(const struct manifest_patch *p, unsigned char rec[PATCH_RECORD])
{
  put_le(rec, p->off, 8);
  put_le(rec + 8, p->len, 4);
  put_le(rec + 12, p->ref, 4);
  put_le(rec + 16, p->ref_off, 4);
}

void manifest_disk_digest(const struct manifest_disk *d, char out[REPO_ID_HEX + 1])
{
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  unsigned char bin[32], rec[PATCH_RECORD];
  for (size_t i = 0; i < d->nchunks; i++) {
    ref_to_bin(d->chunks[i], bin);
    EVP_DigestUpdate(md, bin, 32);
  }
  for (size_t i = 0; i < d->npatches; i++) {
    const struct manifest_patch *p = &d->patches[i];
    struct manifest_patch q = *p;
    q.ref = 0; /* the id itself is hashed, not the table index */
    patch_record(&q, rec);
    EVP_DigestUpdate(md, rec, PATCH_RECORD);
    ref_to_bin(p->ref == MANIFEST_ZERO_REF ? REPO_ZERO_MARK : d->patch_chunks[p->ref], bin);
    EVP_DigestUpdate(md, bin, 32);
  }
  unsigned char digest[32];
  unsigned int dl = sizeof digest;
  EVP_DigestFinal_ex(md, digest, &dl);
  EVP_MD_CTX_free(md);
  repo_hex(digest, 32, out);
}

void manifest_disk_copy_layout(struct manifest_disk *dst, const struct manifest_disk *src)
{
  for (size_t i = 0; i < dst->nchunks && i < src->nchunks; i++) {
    free(dst->chunks[i]);
    dst->chunks[i] = xstrdup(src->chunks[i]);
  }
  for (size_t i = 0; i < dst->npatch_chunks; i++) free(dst->patch_chunks[i]);
  free(dst->patch_chunks);
  dst->npatch_chunks = src->npatch_chunks;
  dst->patch_chunks = xcalloc(src->npatch_chunks + 1, sizeof *dst->patch_chunks);
  for (size_t i = 0; i < src->npatch_chunks; i++) dst->patch_chunks[i] = xstrdup(src->patch_chunks[i]);
  free(dst->patches);
  dst->npatches = src->npatches;
  dst->patches = xcalloc(src->npatches + 1, sizeof *dst->patches);
  if (src->npatches) memcpy(dst->patches, src->patches, src->npatches * sizeof *src->patches);
}

size_t manifest_disk_block_patches(const struct manifest_disk *d, size_t b)
{
  uint64_t start = (uint64_t)b * REPO_CHUNK_SIZE, end = start + REPO_CHUNK_SIZE;
  size_t lo = 0, hi = d->npatches;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (d->patches[mid].off < start) lo = mid + 1;
    else hi = mid;
  }
  size_t n = 0;
  while (lo + n < d->npatches && d->patches[lo + n].off < end) n++;
  return n;
}

static json_t *disk_to_json(const struct manifest_disk *d)
{
  AUTOFREE unsigned char *blocks = xrealloc(NULL, d->nchunks * 32 + 1);
  for (size_t j = 0; j < d->nchunks; j++) ref_to_bin(d->chunks[j], blocks + 32 * j);
  AUTOFREE unsigned char *recs = xrealloc(NULL, d->npatches * PATCH_RECORD + 1);
  for (size_t j = 0; j < d->npatches; j++) patch_record(&d->patches[j], recs + PATCH_RECORD * j);
  json_t *pc = json_array();
  for (size_t j = 0; j < d->npatch_chunks; j++) json_array_append_new(pc, json_string(d->patch_chunks[j]));
  json_t *jd = json_pack("{s:s, s:s*, s:s*, s:s*, s:b, s:I, s:s, s:s*, s:s*, s:o, s:o, s:o}", "id", d->id, "alias",
                         d->alias, "image_id", d->image_id, "interface", d->interface, "bootable", d->bootable,
                         "size", (json_int_t)d->size, "digest", d->digest, "mode", d->mode, "why", d->why,
                         "blocks", base64_json(blocks, d->nchunks * 32), "patch_chunks", pc, "patches",
                         base64_json(recs, d->npatches * PATCH_RECORD));
  return jd;
}

static json_t *manifest_to_json(const struct manifest *m)
{
  char started[32], finished[32];
  iso(m->start_ms, started);
  iso(m->end_ms, finished);
  json_t *disks = json_array();
  for (size_t i = 0; i < m->ndisks; i++) json_array_append_new(disks, disk_to_json(&m->disks[i]));
  return json_pack("{s:s, s:i, s:s, s:{s:s, s:s}, s:s*, s:s*, s:s, s:s, s:I, s:s*, s:o, s:{s:I, s:I, s:I, s:I, s:I}}",
                   "format", "snapback-backup", "version", MANIFEST_VERSION, "id", m->id, "vm", "id",
                   m->vm_id, "name", m->vm_name, "snapshot_id", m->snapshot_id, "checkpoint_id",
                   m->checkpoint_id, "started", started, "finished", finished, "chunk_size",
                   (json_int_t)REPO_CHUNK_SIZE, "ovf", m->ovf, "disks", disks, "stats", "chunks_new",
                   (json_int_t)m->chunks_new, "chunks_reused", (json_int_t)m->chunks_reused, "chunks_zero",
                   (json_int_t)m->chunks_zero, "bytes_read", (json_int_t)m->bytes_read, "bytes_stored",
                   (json_int_t)m->bytes_stored);
}

static bool valid_chunk_ref(const char *s)
{
  return s && (strcmp(s, REPO_ZERO_MARK) == 0 || repo_is_chunk_name(s));
}

/* version 1: "chunks" is a JSON array of hex ids, "sha256" the disk's bytes */
static int disk_from_json_v1(json_t *jd, struct manifest_disk *d, const char *name)
{
  const char *sha = NULL;
  json_t *chunks = NULL;
  if (json_unpack(jd, "{s:s, s:o}", "sha256", &sha, "chunks", &chunks) < 0 || !json_is_array(chunks))
    return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' lacks its chunks", name, d->id);
  d->sha256 = xstrdup(sha);
  if (json_array_size(chunks) != d->nchunks)
    return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' lists %zu chunks for %llu bytes", name, d->id,
                 json_array_size(chunks), (unsigned long long)d->size);
  for (size_t k = 0; k < d->nchunks; k++) {
    const char *c = json_string_value(json_array_get(chunks, k));
    if (!valid_chunk_ref(c))
      return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' chunk %zu is not a chunk id", name, d->id, k);
    free(d->chunks[k]);
    d->chunks[k] = xstrdup(c);
  }
  return 0;
}

/* version 2: blocks and patches in base64, checked against the digest */
static int disk_from_json_v2(json_t *jd, struct manifest_disk *d, const char *name)
{
  const char *digest = NULL, *blocks = NULL, *patches = NULL, *mode = NULL, *why = NULL;
  json_t *pc = NULL;
  if (json_unpack(jd, "{s:s, s:s, s:o, s:s, s?s, s?s}", "digest", &digest, "blocks", &blocks, "patch_chunks", &pc,
                  "patches", &patches, "mode", &mode, "why", &why) < 0 ||
      !json_is_array(pc))
    return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' lacks its layout", name, d->id);
  d->digest = xstrdup(digest);
  d->mode = xstrdup(mode);
  d->why = xstrdup(why);
  AUTOFREE unsigned char *bin = base64_decode(blocks, d->nchunks * 32);
  if (!bin) return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' has a bad block list", name, d->id);
  for (size_t k = 0; k < d->nchunks; k++) {
    free(d->chunks[k]);
    d->chunks[k] = ref_from_bin(bin + 32 * k);
  }
  free(d->patch_chunks);
  d->npatch_chunks = json_array_size(pc);
  d->patch_chunks = xcalloc(d->npatch_chunks + 1, sizeof *d->patch_chunks);
  for (size_t k = 0; k < d->npatch_chunks; k++) {
    const char *c = json_string_value(json_array_get(pc, k));
    if (!c || !repo_is_chunk_name(c))
      return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' patch chunk %zu is not a chunk id", name, d->id, k);
    d->patch_chunks[k] = xstrdup(c);
  }
  size_t pl = strlen(patches) / 4 * 3 / PATCH_RECORD;
  AUTOFREE unsigned char *recs = base64_decode(patches, pl * PATCH_RECORD);
  if (!recs) return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' has a bad patch list", name, d->id);
  free(d->patches);
  d->npatches = pl;
  d->patches = xcalloc(pl + 1, sizeof *d->patches);
  uint64_t prev_end = 0;
  for (size_t k = 0; k < pl; k++) {
    const unsigned char *r = recs + PATCH_RECORD * k;
    struct manifest_patch *p = &d->patches[k];
    p->off = get_le(r, 8), p->len = (uint32_t)get_le(r + 8, 4), p->ref = (uint32_t)get_le(r + 12, 4);
    p->ref_off = (uint32_t)get_le(r + 16, 4);
    bool ok = p->len > 0 && p->off >= prev_end && p->off + p->len <= d->size &&
              p->off / REPO_CHUNK_SIZE == (p->off + p->len - 1) / REPO_CHUNK_SIZE &&
              (p->ref == MANIFEST_ZERO_REF ||
               (p->ref < d->npatch_chunks && (uint64_t)p->ref_off + p->len <= REPO_CHUNK_SIZE));
    if (!ok) return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' patch %zu is out of place", name, d->id, k);
    prev_end = p->off + p->len;
  }
  char check[REPO_ID_HEX + 1];
  manifest_disk_digest(d, check);
  if (strcmp(check, digest) != 0)
    return error(ERR_INVALID, "backup '%s' is damaged: disk '%s' layout does not match its digest", name, d->id);
  return 0;
}

static struct manifest *manifest_from_json(json_t *j, const char *name)
{
  const char *format = NULL, *id = NULL, *vm_id = NULL, *vm_name = NULL, *snap = NULL, *ckpt = NULL,
             *started = NULL, *finished = NULL, *ovf = NULL;
  json_int_t chunk_size = 0, version = 0;
  json_t *disks = NULL, *stats = NULL;
  if (json_unpack(j, "{s:s, s:I, s:s, s:{s:s, s:s}, s?s, s?s, s:s, s:s, s:I, s?s, s:o, s?o}", "format", &format,
                  "version", &version, "id", &id, "vm", "id", &vm_id, "name", &vm_name, "snapshot_id", &snap,
                  "checkpoint_id", &ckpt, "started", &started, "finished", &finished, "chunk_size", &chunk_size,
                  "ovf", &ovf, "disks", &disks, "stats", &stats) < 0 ||
      strcmp(format, "snapback-backup") != 0 || !json_is_array(disks)) {
    error(ERR_INVALID, "backup '%s' is damaged: its manifest lacks required fields", name);
    return NULL;
  }
  if (version < 1 || version > MANIFEST_VERSION) {
    error(ERR_UNSUPPORTED, "backup '%s' has manifest version %lld: this snapback reads versions 1 to %d", name,
          (long long)version, MANIFEST_VERSION);
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
  m->checkpoint_id = xstrdup(ckpt);
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
    const char *did = NULL, *alias = NULL, *image = NULL, *iface = NULL;
    int boot = 0;
    json_int_t size = -1;
    if (json_unpack(jd, "{s:s, s?s, s?s, s?s, s?b, s:I}", "id", &did, "alias", &alias, "image_id", &image,
                    "interface", &iface, "bootable", &boot, "size", &size) < 0 ||
        size < 0) {
      error(ERR_INVALID, "backup '%s' is damaged: disk %zu lacks required fields", name, i);
      return NULL;
    }
    /* outside input: the size must fit the blocks the disk lists (a chunk id
     * per 4 MiB in version 1, 32 bytes of base64 in version 2) before that
     * many are allocated; a size of 3.7e17 made calloc fail (fuzz_repo) */
    size_t listed = version == 1 ? json_array_size(json_object_get(jd, "chunks"))
                                 : json_string_length(json_object_get(jd, "blocks")) / 4 * 3 / 32 + 1;
    if (manifest_chunk_count((uint64_t)size) > listed) {
      error(ERR_INVALID, "backup '%s' is damaged: disk %zu is %lld bytes, more than its blocks describe", name,
            i, (long long)size);
      return NULL;
    }
    struct manifest_disk *d = manifest_add_disk(m, (uint64_t)size);
    d->id = xstrdup(did);
    d->alias = xstrdup(alias);
    d->image_id = xstrdup(image);
    d->interface = xstrdup(iface);
    d->bootable = boot;
    if ((version == 1 ? disk_from_json_v1(jd, d, name) : disk_from_json_v2(jd, d, name)) < 0) return NULL;
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
  for (size_t i = 0; i < m->ndisks; i++) {
    char digest[REPO_ID_HEX + 1];
    manifest_disk_digest(&m->disks[i], digest);
    free(m->disks[i].digest);
    m->disks[i].digest = xstrdup(digest);
  }
  if (repo_sync(r) < 0) return error_prefix("cannot write backup '%s': ", m->id);
  if (repo_config_upgrade(r) < 0) return error_prefix("cannot write backup '%s': ", m->id);
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
  return manifest_parse(r, name, data, len);
}

struct manifest *manifest_parse(struct repo *r, const char *name, const unsigned char *data, size_t len)
{
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
  struct buf list = BUF_INIT;
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
      if (matches < 10) buf_printf(&list, "%s%s", matches ? ", " : "", names[i]);
      matches++;
    }
  }
  struct manifest *m = NULL;
  if (exact) m = manifest_read(r, exact);
  else if (matches == 1) m = manifest_read(r, match);
  else if (matches > 1)
    error(ERR_CONFLICT, "backup '%s' is ambiguous: %zu backups match: %s%s", what, matches, buf_str(&list),
          matches > 10 ? ", ..." : "");
  else error(ERR_NOT_FOUND, "backup '%s' does not exist in repository '%s'", what, r->path);
  strv_free(names);
  buf_free(&list);
  return m;
}

int manifest_remove(struct repo *r, const char *name)
{
  AUTOFREE char *path = xasprintf("%s/backups/%s.json", r->path, name);
  if (unlink(path) < 0) return error(ERR_INTERNAL, "cannot remove backup '%s': %s", name, strerror(errno));
  AUTOFREE char *dir = xasprintf("%s/backups", r->path);
  return repo_fsync_dir(dir);
}
