/* chunk.c: the content-addressed chunk store.
 *
 * A chunk file is an envelope (docs/repository.md): a 16-byte header
 * ("SBC1", compression, encryption, raw and payload lengths), then the payload
 * (zstd, the pages form or raw), sealed with AES-256-GCM in an encrypted
 * repository. A version 3 repository's ids skip zero 4 KiB pages (page_id). The
 * header and the chunk id are authenticated data, so a chunk file copied
 * under another name fails to open. Reading always re-hashes the content
 * against the id: a chunk that reads back is the chunk that was written. */
#include "repo/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

enum { COMP_NONE = 0, COMP_ZSTD = 1, COMP_PAGES = 2 };

#define ID_PAGE REPO_PAGE_SIZE         /* the page-skipping id's page */
#define ID_MAP_BYTES REPO_PAGE_MAP_BYTES /* its bitmap, for a whole chunk */
#define SAMPLE_PAGES 16                             /* worth_compressing's trial: 64 KiB */
enum { ENC_NONE = 0, ENC_AES_GCM = 1 };

struct repo_worker {
  struct repo *r;
  EVP_MD_CTX *md;      /* SHA-256 of a page-skipping id (plain repositories) */
  EVP_MAC_CTX *mac;    /* HMAC-SHA256 of a page-skipping id (encrypted ones) */
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
  unsigned char *zbuf; /* compressed payload */
  size_t zcap;
  unsigned char *fbuf; /* the whole file: header, nonce, payload, tag */
  size_t fcap;
};

/* the worker's hash context for page-skipping ids: a SHA-256 digest, or an
 * HMAC-SHA256 keyed with the repository's id key */
static int id_ctx_new(struct repo_worker *w)
{
  if (!w->r->encrypted) {
    w->md = EVP_MD_CTX_new();
    return w->md ? 0 : error(ERR_INTERNAL, "cannot create a SHA-256 context");
  }
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  w->mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
  EVP_MAC_free(mac);
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_END};
  if (!w->mac || EVP_MAC_CTX_set_params(w->mac, params) != 1)
    return error(ERR_INTERNAL, "cannot create an HMAC-SHA256 context");
  return 0;
}

struct repo_worker *repo_worker_new(struct repo *r)
{
  struct repo_worker *w = xcalloc(1, sizeof *w);
  w->r = r;
  w->cctx = ZSTD_createCCtx();
  w->dctx = ZSTD_createDCtx();
  if (!w->cctx || !w->dctx) {
    repo_worker_free(w);
    error(ERR_INTERNAL, "cannot create a zstd context");
    return NULL;
  }
  if (r->page_ids && id_ctx_new(w) < 0) {
    repo_worker_free(w);
    return NULL;
  }
  w->zcap = ZSTD_compressBound(REPO_CHUNK_SIZE);
  w->zbuf = xrealloc(NULL, w->zcap);
  /* aligned and padded for direct I/O (repo_write_file_direct) */
  size_t need = ENVELOPE_HEADER + ENVELOPE_NONCE + w->zcap + ENVELOPE_TAG;
  w->fcap = (need + REPO_DIO_ALIGN - 1) / REPO_DIO_ALIGN * REPO_DIO_ALIGN;
  w->fbuf = xalloc_large(w->fcap); /* 2 MiB aligned: enough for direct I/O */
  return w;
}

void repo_worker_free(struct repo_worker *w)
{
  if (!w) return;
  EVP_MD_CTX_free(w->md);
  EVP_MAC_CTX_free(w->mac);
  ZSTD_freeCCtx(w->cctx);
  ZSTD_freeDCtx(w->dctx);
  free(w->zbuf);
  free(w->fbuf);
  free(w);
}

bool repo_is_zero(const void *data, size_t len)
{
  const unsigned char *p = data;
  if (len == 0) return true;
  /* check a few bytes by hand, then let memcmp compare the buffer with itself shifted */
  size_t head = len < 16 ? len : 16;
  for (size_t i = 0; i < head; i++)
    if (p[i]) return false;
  return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

static bool page_set(const unsigned char *map, size_t i) { return map[i / 8] >> (i % 8) & 1; }

/* a chunk's 4 KiB pages as a bitmap: bit i (of byte i / 8) is set when page
 * i holds a byte that is not zero; the number of zero pages. A page set in
 * holes (may be NULL) is zero without being read. */
static size_t page_map(const unsigned char *data, size_t len, const unsigned char *holes,
                       unsigned char map[ID_MAP_BYTES])
{
  size_t zero = 0;
  memset(map, 0, ID_MAP_BYTES);
  for (size_t i = 0, off = 0; off < len; i++, off += ID_PAGE) {
    if ((holes && page_set(holes, i)) || repo_is_zero(data + off, len - off < ID_PAGE ? len - off : ID_PAGE)) zero++;
    else map[i / 8] |= (unsigned char)(1u << (i % 8));
  }
  return zero;
}

/* writes the zeros of the hole pages into data, which is then whole */
static void fill_holes(unsigned char *data, size_t len, const unsigned char *holes)
{
  for (size_t i = 0, off = 0; off < len; i++, off += ID_PAGE)
    if (page_set(holes, i)) memset(data + off, 0, len - off < ID_PAGE ? len - off : ID_PAGE);
}

static int id_update(struct repo_worker *w, const void *p, size_t n)
{
  return w->mac ? EVP_MAC_update(w->mac, p, n) : EVP_DigestUpdate(w->md, p, n);
}

/* the page-skipping id: the hash of the non-zero pages in order, then the
 * page bitmap, then the length (8 bytes, little-endian). The length fixes the
 * bitmap's size and the bitmap which pages the data fills, so two contents
 * never share an encoding; zero pages cost a compare, not a hash. */
static int page_id(struct repo_worker *w, const unsigned char *data, size_t len, const unsigned char *map,
                   unsigned char md[32])
{
  bool ok = w->mac ? EVP_MAC_init(w->mac, w->r->mac_key, REPO_KEY_LEN, NULL) == 1
                   : EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) == 1;
  size_t npages = (len + ID_PAGE - 1) / ID_PAGE;
  for (size_t i = 0; ok && i < npages;) {
    if (!page_set(map, i)) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < npages && page_set(map, j)) j++;
    size_t off = i * ID_PAGE, end = j * ID_PAGE < len ? j * ID_PAGE : len;
    ok = id_update(w, data + off, end - off) == 1;
    i = j;
  }
  unsigned char tail[8];
  for (int k = 0; k < 8; k++) tail[k] = (unsigned char)((uint64_t)len >> (8 * k));
  ok = ok && id_update(w, map, (npages + 7) / 8) == 1 && id_update(w, tail, sizeof tail) == 1;
  size_t n = 32;
  unsigned int un = 32;
  ok = ok && (w->mac ? EVP_MAC_final(w->mac, md, &n, 32) == 1 : EVP_DigestFinal_ex(w->md, md, &un) == 1);
  return ok ? 0 : error(ERR_INTERNAL, "cannot compute a chunk id: %s failed", w->mac ? "HMAC-SHA256" : "SHA-256");
}

/* the chunk's id; map is its page bitmap (page_map), which a page-skipping
 * id needs and a whole-chunk id does not (NULL then: no scan of the pages) */
static int chunk_id(struct repo_worker *w, const void *data, size_t len, const unsigned char *map,
                    char id[REPO_ID_HEX + 1])
{
  unsigned char md[32], own[ID_MAP_BYTES];
  unsigned int n = sizeof md;
  if (w->r->page_ids && !map) {
    page_map(data, len, NULL, own);
    map = own;
  }
  if (w->r->page_ids) {
    if (page_id(w, data, len, map, md) < 0) return -1;
  } else if (w->r->encrypted) {
    if (!HMAC(EVP_sha256(), w->r->mac_key, REPO_KEY_LEN, data, len, md, &n))
      return error(ERR_INTERNAL, "cannot compute a chunk id: HMAC-SHA256 failed");
  } else if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1) {
    return error(ERR_INTERNAL, "cannot compute a chunk id: SHA-256 failed");
  }
  repo_hex(md, sizeof md, id);
  return 0;
}

int repo_chunk_id(struct repo_worker *w, const void *data, size_t len, char id[REPO_ID_HEX + 1])
{
  return chunk_id(w, data, len, NULL, id);
}

/* whether zstd is worth running over a whole chunk: a trial over up to
 * SAMPLE_PAGES of its non-zero pages, spread over it, compresses by 3% or
 * more. Zero pages cost zstd little and are left to the pages form, so data
 * that does not compress (most of a disk's) costs a 64 KiB trial instead
 * of a 4 MiB one. */
static bool worth_compressing(struct repo_worker *w, const unsigned char *data, size_t len,
                              const unsigned char *map, size_t zero_pages)
{
  size_t npages = (len + ID_PAGE - 1) / ID_PAGE, full = len / ID_PAGE, data_pages = npages - zero_pages;
  if (full < 2 * SAMPLE_PAGES || data_pages < SAMPLE_PAGES) return true; /* small: just try */
  unsigned char *sample = w->zbuf + w->zcap - SAMPLE_PAGES * ID_PAGE; /* the trial's input, after its output */
  size_t taken = 0, seen = 0, step = data_pages / SAMPLE_PAGES;
  for (size_t i = 0; i < full && taken < SAMPLE_PAGES; i++) {
    if (!page_set(map, i)) continue;
    if (seen++ % step == 0) memcpy(sample + ID_PAGE * taken++, data + i * ID_PAGE, ID_PAGE);
  }
  size_t in = taken * ID_PAGE;
  size_t z = ZSTD_compressCCtx(w->cctx, w->zbuf, w->zcap - SAMPLE_PAGES * ID_PAGE, sample, in, REPO_ZSTD_LEVEL);
  return ZSTD_isError(z) || z < in / 100 * 97;
}

/* the pages form of a chunk with zero pages (version 3): the page bitmap,
 * then the non-zero pages; its length, or 0 when it would not save 3% */
static size_t pages_form(const unsigned char *data, size_t len, const unsigned char *map, size_t zero_pages,
                         unsigned char *out)
{
  size_t npages = (len + ID_PAGE - 1) / ID_PAGE, mapb = (npages + 7) / 8;
  if (zero_pages == 0) return 0;
  size_t last = len - (npages - 1) * ID_PAGE;
  size_t plen = mapb + (npages - zero_pages - (page_set(map, npages - 1) ? 1 : 0)) * ID_PAGE +
                (page_set(map, npages - 1) ? last : 0);
  if (plen >= len / 100 * 97) return 0;
  memcpy(out, map, mapb);
  unsigned char *p = out + mapb;
  for (size_t i = 0; i < npages; i++) {
    if (!page_set(map, i)) continue;
    size_t n = i == npages - 1 ? last : ID_PAGE;
    memcpy(p, data + i * ID_PAGE, n);
    p += n;
  }
  return plen;
}

/* the payload length that a pages-form bitmap (of a chunk of rawlen bytes)
 * implies: the bitmap, then its pages; 0 when a bit past the last page is set */
static size_t pages_len(const unsigned char *map, size_t rawlen)
{
  size_t npages = (rawlen + ID_PAGE - 1) / ID_PAGE, mapb = (npages + 7) / 8, len = mapb;
  if (npages % 8 && map[mapb - 1] >> (npages % 8)) return 0;
  for (size_t i = 0; i < npages; i++)
    if (page_set(map, i)) len += i == npages - 1 ? rawlen - i * ID_PAGE : ID_PAGE;
  return len;
}

/* expands a pages-form payload into out (rawlen bytes); false when it is not one */
static bool pages_expand(const unsigned char *payload, size_t plen, size_t rawlen, unsigned char *out)
{
  size_t npages = (rawlen + ID_PAGE - 1) / ID_PAGE, mapb = (npages + 7) / 8;
  if (plen < mapb || pages_len(payload, rawlen) != plen) return false;
  const unsigned char *map = payload, *p = payload + mapb;
  for (size_t i = 0; i < npages; i++) {
    size_t n = i == npages - 1 ? rawlen - i * ID_PAGE : ID_PAGE;
    if (!page_set(map, i)) {
      memset(out + i * ID_PAGE, 0, n);
      continue;
    }
    memcpy(out + i * ID_PAGE, p, n);
    p += n;
  }
  return true;
}


static char *chunk_dir(const struct repo *r, const char *id)
{
  return xasprintf("%s/chunks/%.2s", r->path, id);
}

static char *chunk_path(const struct repo *r, const char *id)
{
  return xasprintf("%s/chunks/%.2s/%s", r->path, id, id);
}

bool repo_chunk_exists(struct repo *r, const char *id)
{
  AUTOFREE char *p = chunk_path(r, id);
  return access(p, F_OK) == 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int repo_chunk_put(struct repo_worker *w, const void *data, size_t len, char id[REPO_ID_HEX + 1],
                   bool *is_new, size_t *stored_bytes)
{
  /* without holes, data is only read */
  return repo_chunk_put_holes(w, (void *)data, len, NULL, id, is_new, stored_bytes, NULL);
}

int repo_chunk_put_holes(struct repo_worker *w, void *buf, size_t len, const unsigned char *holes,
                         char id[REPO_ID_HEX + 1], bool *is_new, size_t *stored_bytes, bool *all_zero)
{
  struct repo *r = w->r;
  unsigned char *data = buf;
  if (len == 0 || len > REPO_CHUNK_SIZE)
    return error(ERR_INVALID, "cannot store a chunk of %zu bytes: chunks hold 1 to %zu bytes", len,
                 REPO_CHUNK_SIZE);
  /* a whole-chunk id (version 1 and 2) hashes every byte: the holes are filled first */
  if (holes && !r->page_ids) {
    fill_holes(data, len, holes);
    holes = NULL;
  }
  unsigned char map[ID_MAP_BYTES];
  size_t zero_pages = page_map(data, len, holes, map), npages = (len + ID_PAGE - 1) / ID_PAGE;
  if (all_zero) *all_zero = zero_pages == npages;
  if (all_zero && *all_zero) {
    *is_new = false;
    if (stored_bytes) *stored_bytes = 0;
    return 0;
  }
  if (chunk_id(w, data, len, map, id) < 0) return -1;
  if (repo_chunk_exists(r, id)) {
    *is_new = false;
    if (stored_bytes) *stored_bytes = 0;
    return 0;
  }
  /* compress; keep the raw bytes when zstd saves less than 3%. A plain
   * repository compresses straight into the file buffer, after the header;
   * an encrypted one into the scratch buffer, then seals into the file buffer. */
  unsigned char *h = w->fbuf;
  unsigned char *zdst = r->encrypted ? w->zbuf : h + ENVELOPE_HEADER;
  const unsigned char *payload = data;
  size_t plen = len;
  unsigned char comp = COMP_NONE;
  /* zstd when a trial says the data compresses, or when an older repository
   * (no pages form) has zero pages to keep small; else, in a version 3
   * repository, the pages form when the chunk has zero pages; else raw */
  bool zstd = (zero_pages > 0 && !r->page_ids) || worth_compressing(w, data, len, map, zero_pages);
  if (zstd && holes) fill_holes(data, len, holes); /* zstd reads every byte */
  size_t z = zstd ? ZSTD_compressCCtx(w->cctx, zdst, w->zcap, data, len, REPO_ZSTD_LEVEL) : len;
  if (!ZSTD_isError(z) && z < len / 100 * 97) {
    payload = zdst;
    plen = z;
    comp = COMP_ZSTD;
  } else if (r->page_ids && (z = pages_form(data, len, map, zero_pages, zdst)) > 0) {
    payload = zdst;
    plen = z;
    comp = COMP_PAGES;
  }
  if (comp == COMP_NONE && holes) fill_holes(data, len, holes); /* stored as it is */
  memcpy(h, "SBC1", 4);
  h[4] = comp;
  h[5] = r->encrypted ? ENC_AES_GCM : ENC_NONE;
  h[6] = h[7] = 0;
  put_u32(h + 8, (uint32_t)len);
  put_u32(h + 12, (uint32_t)plen);
  size_t total;
  if (r->encrypted) {
    unsigned char aad[ENVELOPE_HEADER + REPO_ID_HEX];
    memcpy(aad, h, ENVELOPE_HEADER);
    memcpy(aad + ENVELOPE_HEADER, id, REPO_ID_HEX);
    if (repo_seal(r, aad, sizeof aad, payload, plen, h + ENVELOPE_HEADER) < 0) return -1;
    total = ENVELOPE_HEADER + ENVELOPE_NONCE + plen + ENVELOPE_TAG;
  } else {
    if (comp == COMP_NONE) memcpy(h + ENVELOPE_HEADER, payload, plen);
    total = ENVELOPE_HEADER + plen;
  }
  AUTOFREE char *dir = chunk_dir(r, id);
  if (r->writers) {
    if (repo_writers_submit(r, dir, id, &w->fbuf, total, w->fcap) < 0) return -1;
  } else {
    if (repo_write_file_direct(dir, id, h, total, w->fcap, true) < 0) return error_prefix("cannot store chunk: ");
    repo_mark_dirty(r, id);
  }
  *is_new = true;
  if (stored_bytes) *stored_bytes = total;
  return 0;
}

/* reads len bytes at the file's current offset; -1 (errno, or 0 at an early end) */
static int read_full(int fd, void *buf, size_t len)
{
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (unsigned char *)buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = 0;
      return -1;
    }
    got += (size_t)n;
  }
  return 0;
}

/* reads the pages of a pages-form chunk file (fd at the first page) straight
 * into their places in out, one read per run of pages, and zeroes the rest:
 * no copy through the file buffer. -1 with errno (0 at an early end). */
static int pages_read(int fd, const unsigned char *map, size_t rawlen, unsigned char *out)
{
  size_t npages = (rawlen + ID_PAGE - 1) / ID_PAGE;
  for (size_t i = 0; i < npages;) {
    size_t j = i;
    bool set = page_set(map, i);
    while (j < npages && page_set(map, j) == set) j++;
    size_t off = i * ID_PAGE, end = j * ID_PAGE < rawlen ? j * ID_PAGE : rawlen;
    if (!set) memset(out + off, 0, end - off);
    else if (read_full(fd, out + off, end - off) < 0) return -1;
    i = j;
  }
  return 0;
}

/* checks that out (rawlen bytes) hashes to id; file_map: a pages-form
 * file's own bitmap, the id's encoding with its pages (one-to-one, even for a
 * bitmap that marks a zero page: that hashes to another id), so out's pages
 * are not scanned for zeros again; NULL: the id computed from out alone.
 * map_out (may be NULL) gets the page bitmap: bit i set when page i is data. */
static int check_id(struct repo_worker *w, const char *id, const unsigned char *out, size_t rawlen,
                    const unsigned char *file_map, unsigned char *map_out)
{
  unsigned char own[ID_MAP_BYTES];
  const unsigned char *map = file_map;
  if (!map && (w->r->page_ids || map_out)) {
    page_map(out, rawlen, NULL, own);
    map = own;
  }
  char got[REPO_ID_HEX + 1];
  if (chunk_id(w, out, rawlen, map, got) < 0) return -1;
  if (memcmp(got, id, REPO_ID_HEX) != 0)
    return error(ERR_INVALID, "chunk '%s' is damaged: its content hashes to '%s'", id, got);
  if (map_out) {
    memset(map_out, 0, ID_MAP_BYTES);
    memcpy(map_out, map, (rawlen + 8 * ID_PAGE - 1) / (8 * ID_PAGE));
  }
  return 0;
}

/* The file goes into the worker's buffer, never a fresh allocation (4 MiB
 * of new pages a chunk, faulted in and zeroed by the kernel); the bytes of a
 * plain chunk stored raw (incompressible data: most of a disk's) are read
 * straight into out, and so are the pages of one in the pages form, each run
 * into its place, saving a copy. Either way the content is hashed and
 * checked against id. */
static int chunk_decode(struct repo_worker *w, const char *id, const unsigned char *f, size_t flen, void *out,
                        size_t cap, size_t *len, unsigned char *map);

static int chunk_get(struct repo_worker *w, const char *id, void *out, size_t cap, size_t *len, unsigned char *map)
{
  if (!repo_is_chunk_name(id)) return error(ERR_INVALID, "'%s' is not a chunk id", id);
  AUTOFREE char *path = chunk_path(w->r, id);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return error(ERR_NOT_FOUND, "chunk '%s' is missing", id);
    return error(ERR_INTERNAL, "chunk '%s' is damaged: cannot open '%s': %s", id, path, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return error(ERR_INTERNAL, "chunk '%s' is damaged: cannot stat '%s': %s", id, path, strerror(e));
  }
  size_t flen = (size_t)st.st_size, head = flen < ENVELOPE_HEADER ? flen : ENVELOPE_HEADER;
  if (flen > w->fcap) {
    close(fd);
    return error(ERR_INVALID, "chunk '%s' is damaged: %zu bytes is too large", id, flen);
  }
  unsigned char *f = w->fbuf;
  if (read_full(fd, f, head) < 0) goto short_read;
  uint32_t rawlen = head == ENVELOPE_HEADER ? get_u32(f + 8) : 0;
  if (head == ENVELOPE_HEADER && memcmp(f, "SBC1", 4) == 0 && f[4] == COMP_NONE && f[5] == ENC_NONE &&
      !w->r->encrypted && rawlen > 0 && rawlen <= REPO_CHUNK_SIZE && rawlen <= cap &&
      get_u32(f + 12) == rawlen && flen == ENVELOPE_HEADER + rawlen) {
    if (read_full(fd, out, rawlen) < 0) goto short_read;
    close(fd);
    if (check_id(w, id, out, rawlen, NULL, map) < 0) return -1;
    *len = rawlen;
    return 0;
  }
  /* a plain chunk in the pages form: its bitmap, then its pages read into
   * their places in out */
  size_t mapb = (rawlen + 8 * ID_PAGE - 1) / (8 * ID_PAGE);
  if (head == ENVELOPE_HEADER && memcmp(f, "SBC1", 4) == 0 && f[4] == COMP_PAGES && f[5] == ENC_NONE &&
      !w->r->encrypted && w->r->page_ids && rawlen > 0 && rawlen <= REPO_CHUNK_SIZE && rawlen <= cap &&
      get_u32(f + 12) >= mapb && flen == ENVELOPE_HEADER + get_u32(f + 12)) {
    if (read_full(fd, f + head, mapb) < 0) goto short_read;
    if (pages_len(f + head, rawlen) != get_u32(f + 12)) {
      close(fd);
      return error(ERR_INVALID, "chunk '%s' is damaged: its page bitmap does not match its pages", id);
    }
    if (pages_read(fd, f + head, rawlen, out) < 0) goto short_read;
    close(fd);
    if (check_id(w, id, out, rawlen, f + head, map) < 0) return -1;
    *len = rawlen;
    return 0;
  }
  if (read_full(fd, f + head, flen - head) < 0) goto short_read;
  close(fd);
  return chunk_decode(w, id, f, flen, out, cap, len, map);
short_read:;
  int e = errno;
  close(fd);
  return error(e ? ERR_INTERNAL : ERR_INVALID, "chunk '%s' is damaged: %s", id,
               e ? strerror(e) : "the file shrank while being read");
}

int repo_chunk_get(struct repo_worker *w, const char *id, void *out, size_t cap, size_t *len)
{
  return chunk_get(w, id, out, cap, len, NULL);
}

int repo_chunk_get_map(struct repo_worker *w, const char *id, void *out, size_t cap, size_t *len,
                       unsigned char map[REPO_PAGE_MAP_BYTES])
{
  return chunk_get(w, id, out, cap, len, map);
}

int repo_chunk_decode(struct repo_worker *w, const char *id, const unsigned char *f, size_t flen, void *out,
                      size_t cap, size_t *len)
{
  return chunk_decode(w, id, f, flen, out, cap, len, NULL);
}

static int chunk_decode(struct repo_worker *w, const char *id, const unsigned char *f, size_t flen, void *out,
                        size_t cap, size_t *len, unsigned char *map)
{
  struct repo *r = w->r;
  if (flen > w->fcap) return error(ERR_INVALID, "chunk '%s' is damaged: %zu bytes is too large", id, flen);
  if (flen < ENVELOPE_HEADER || memcmp(f, "SBC1", 4) != 0)
    return error(ERR_INVALID, "chunk '%s' is damaged: not a chunk file", id);
  unsigned char comp = f[4], enc = f[5];
  uint32_t rawlen = get_u32(f + 8), plen = get_u32(f + 12);
  size_t want = ENVELOPE_HEADER + plen + (enc ? ENVELOPE_NONCE + ENVELOPE_TAG : 0);
  if (comp > COMP_PAGES || enc > ENC_AES_GCM || rawlen == 0 || rawlen > REPO_CHUNK_SIZE ||
      rawlen > cap || want != flen || (comp == COMP_NONE && plen != rawlen))
    return error(ERR_INVALID, "chunk '%s' is damaged: its header does not match its size", id);
  if (comp == COMP_PAGES && !r->page_ids)
    return error(ERR_INVALID, "chunk '%s' is damaged: it is in the pages form, which a version %d repository "
                 "does not use", id, r->version);
  if ((enc == ENC_AES_GCM) != r->encrypted)
    return error(ERR_INVALID, "chunk '%s' is damaged: it is %s in an %s repository", id,
                 enc ? "encrypted" : "not encrypted", r->encrypted ? "encrypted" : "unencrypted");
  const unsigned char *payload = f + ENVELOPE_HEADER;
  if (enc) {
    unsigned char aad[ENVELOPE_HEADER + REPO_ID_HEX];
    memcpy(aad, f, ENVELOPE_HEADER);
    memcpy(aad + ENVELOPE_HEADER, id, REPO_ID_HEX);
    /* OpenSSL refuses overlapping buffers: decrypt into the scratch buffer
     * (plen <= zcap, since flen <= fcap) */
    if (repo_open_sealed(r, aad, sizeof aad, f + ENVELOPE_HEADER, flen - ENVELOPE_HEADER, w->zbuf) < 0)
      return error_prefix("chunk '%s' is damaged: ", id);
    payload = w->zbuf;
  }
  if (comp == COMP_ZSTD) {
    size_t n = ZSTD_decompressDCtx(w->dctx, out, cap, payload, plen);
    if (ZSTD_isError(n) || n != rawlen)
      return error(ERR_INVALID, "chunk '%s' is damaged: %s", id,
                   ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong decompressed length");
  } else if (comp == COMP_PAGES) {
    if (!pages_expand(payload, plen, rawlen, out))
      return error(ERR_INVALID, "chunk '%s' is damaged: its page bitmap does not match its pages", id);
  } else {
    memcpy(out, payload, rawlen);
  }
  if (check_id(w, id, out, rawlen, comp == COMP_PAGES ? payload : NULL, map) < 0) return -1;
  *len = rawlen;
  return 0;
}
