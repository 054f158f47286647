/* blkhash.c: ovirt-imageio's block checksum (see blkhash.h), with BLAKE2b
 * after RFC 7693 and the other algorithms from OpenSSL's EVP. */
#include "util/blkhash.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/uuid.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ---- BLAKE2b (RFC 7693), unkeyed, any digest length 1..64 ---- */

struct blake2b_state {
  uint64_t h[8], t[2];
  uint8_t b[128];
  size_t c, outlen;
};

static const uint64_t blake2b_iv[8] = {
  0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
  0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL,
};

/* rounds 10 and 11 use rows 0 and 1 again */
static const uint8_t blake2b_sigma[10][16] = {
  {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
  {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
  {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
  {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
  {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
  {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
  {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
  {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
  {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
  {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t rotr64(uint64_t x, unsigned n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64le(const uint8_t *p)
{
  uint64_t v;
  memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

#define B2B_G(a, b, c, d, x, y)                \
  do {                                         \
    v[a] = v[a] + v[b] + (x);                  \
    v[d] = rotr64(v[d] ^ v[a], 32);            \
    v[c] = v[c] + v[d];                        \
    v[b] = rotr64(v[b] ^ v[c], 24);            \
    v[a] = v[a] + v[b] + (y);                  \
    v[d] = rotr64(v[d] ^ v[a], 16);            \
    v[c] = v[c] + v[d];                        \
    v[b] = rotr64(v[b] ^ v[c], 63);            \
  } while (0)

static void blake2b_compress(struct blake2b_state *s, bool last)
{
  uint64_t v[16], m[16];
  for (int i = 0; i < 8; i++) {
    v[i] = s->h[i];
    v[i + 8] = blake2b_iv[i];
  }
  v[12] ^= s->t[0];
  v[13] ^= s->t[1];
  if (last) v[14] = ~v[14];
  for (int i = 0; i < 16; i++) m[i] = load64le(s->b + 8 * i);
  /* unrolled, so that the message schedule is resolved at compile time
   * (twice the speed of a loop here) */
#define B2B_ROUND(r)                                                        \
  do {                                                                      \
    const uint8_t *sg = blake2b_sigma[(r) % 10];                            \
    B2B_G(0, 4, 8, 12, m[sg[0]], m[sg[1]]);                                 \
    B2B_G(1, 5, 9, 13, m[sg[2]], m[sg[3]]);                                 \
    B2B_G(2, 6, 10, 14, m[sg[4]], m[sg[5]]);                                \
    B2B_G(3, 7, 11, 15, m[sg[6]], m[sg[7]]);                                \
    B2B_G(0, 5, 10, 15, m[sg[8]], m[sg[9]]);                                \
    B2B_G(1, 6, 11, 12, m[sg[10]], m[sg[11]]);                              \
    B2B_G(2, 7, 8, 13, m[sg[12]], m[sg[13]]);                               \
    B2B_G(3, 4, 9, 14, m[sg[14]], m[sg[15]]);                               \
  } while (0)
  B2B_ROUND(0); B2B_ROUND(1); B2B_ROUND(2); B2B_ROUND(3); B2B_ROUND(4); B2B_ROUND(5);
  B2B_ROUND(6); B2B_ROUND(7); B2B_ROUND(8); B2B_ROUND(9); B2B_ROUND(10); B2B_ROUND(11);
#undef B2B_ROUND
  for (int i = 0; i < 8; i++) s->h[i] ^= v[i] ^ v[i + 8];
}

static void blake2b_init(struct blake2b_state *s, size_t outlen)
{
  memset(s, 0, sizeof *s);
  memcpy(s->h, blake2b_iv, sizeof s->h);
  s->h[0] ^= 0x01010000ULL ^ (uint64_t)outlen; /* depth 1, fanout 1, no key */
  s->outlen = outlen;
}

static void blake2b_count(struct blake2b_state *s, size_t n)
{
  s->t[0] += n;
  if (s->t[0] < n) s->t[1]++;
}

static void blake2b_update(struct blake2b_state *s, const void *data, size_t len)
{
  const uint8_t *p = data;
  while (len) {
    if (s->c == sizeof s->b) { /* full, and more follows: not the last block */
      blake2b_count(s, s->c);
      blake2b_compress(s, false);
      s->c = 0;
    }
    size_t n = sizeof s->b - s->c;
    if (n > len) n = len;
    memcpy(s->b + s->c, p, n);
    s->c += n;
    p += n;
    len -= n;
  }
}

static void blake2b_final(struct blake2b_state *s, uint8_t *out)
{
  blake2b_count(s, s->c);
  memset(s->b + s->c, 0, sizeof s->b - s->c);
  blake2b_compress(s, true);
  for (size_t i = 0; i < s->outlen; i++) out[i] = (uint8_t)(s->h[i / 8] >> (8 * (i % 8)));
}

void blake2b(void *out, size_t outlen, const void *data, size_t len)
{
  struct blake2b_state s;
  blake2b_init(&s, outlen);
  blake2b_update(&s, data, len);
  blake2b_final(&s, out);
}

/* ---- one digest, of any supported algorithm ---- */

struct algorithm {
  const char *name;   /* hashlib's */
  const char *ossl;   /* OpenSSL's, NULL: blake2b here */
  size_t outlen;      /* for blake2b */
};

/* sorted by name, as imageio lists them */
static const struct algorithm algorithms[] = {
  {"blake2b", NULL, 32},         {"blake2s", "BLAKE2S-256", 0}, {"md5", "MD5", 0},
  {"sha1", "SHA1", 0},           {"sha224", "SHA224", 0},       {"sha256", "SHA256", 0},
  {"sha384", "SHA384", 0},       {"sha3_224", "SHA3-224", 0},   {"sha3_256", "SHA3-256", 0},
  {"sha3_384", "SHA3-384", 0},   {"sha3_512", "SHA3-512", 0},   {"sha512", "SHA512", 0},
  {"sha512_224", "SHA512-224", 0}, {"sha512_256", "SHA512-256", 0},
};
#define NALGORITHMS (sizeof algorithms / sizeof algorithms[0])

struct digest {
  const struct algorithm *a;
  const EVP_MD *md;           /* NULL for blake2b */
  struct blake2b_state b2;
  EVP_MD_CTX *ctx;
};

static const struct algorithm *algorithm_find(const char *name)
{
  for (size_t i = 0; name && i < NALGORITHMS; i++)
    if (strcmp(algorithms[i].name, name) == 0) return &algorithms[i];
  return NULL;
}

static void digest_init(struct digest *d)
{
  if (!d->md) {
    blake2b_init(&d->b2, d->a->outlen);
    return;
  }
  if (!d->ctx) d->ctx = EVP_MD_CTX_new();
  if (!d->ctx || EVP_DigestInit_ex(d->ctx, d->md, NULL) != 1) abort(); /* out of memory */
}

static void digest_update(struct digest *d, const void *data, size_t len)
{
  if (!d->md) blake2b_update(&d->b2, data, len);
  else if (EVP_DigestUpdate(d->ctx, data, len) != 1) abort();
}

/* the digest into out (BLKHASH_MAX_DIGEST bytes); returns its length */
static size_t digest_final(struct digest *d, uint8_t *out)
{
  if (!d->md) {
    blake2b_final(&d->b2, out);
    return d->a->outlen;
  }
  unsigned n = 0;
  if (EVP_DigestFinal_ex(d->ctx, out, &n) != 1) abort();
  return n;
}

/* ---- the block checksum ---- */

struct blkhash {
  size_t block_size;
  struct digest outer, block;
  uint8_t zero_digest[BLKHASH_MAX_DIGEST];
  size_t zero_len;            /* 0 until a full zero block was hashed */
};

const char *const *blkhash_algorithms(void)
{
  static const char *names[NALGORITHMS + 1];
  if (!names[0])
    for (size_t i = 0; i < NALGORITHMS; i++) names[i] = algorithms[i].name;
  return names;
}

bool blkhash_supported(const char *algorithm)
{
  const struct algorithm *a = algorithm_find(algorithm);
  return a && (!a->ossl || EVP_get_digestbyname(a->ossl));
}

struct blkhash *blkhash_new(const char *algorithm, size_t block_size)
{
  if (!blkhash_supported(algorithm))
    return error(ERR_INVALID, "unsupported checksum algorithm '%s'", algorithm ? algorithm : ""),
           NULL;
  struct blkhash *h = xcalloc(1, sizeof *h);
  h->block_size = block_size;
  h->outer.a = h->block.a = algorithm_find(algorithm);
  if (h->outer.a->ossl) h->outer.md = h->block.md = EVP_get_digestbyname(h->outer.a->ossl);
  digest_init(&h->outer);
  return h;
}

void blkhash_update(struct blkhash *h, const void *data, size_t len)
{
  uint8_t out[BLKHASH_MAX_DIGEST];
  digest_init(&h->block);
  digest_update(&h->block, data, len);
  size_t n = digest_final(&h->block, out);
  digest_update(&h->outer, out, n);
}

void blkhash_zero(struct blkhash *h, size_t len)
{
  if (len == h->block_size && h->zero_len) {
    digest_update(&h->outer, h->zero_digest, h->zero_len);
    return;
  }
  static const uint8_t zeroes[64 * 1024];
  uint8_t out[BLKHASH_MAX_DIGEST];
  digest_init(&h->block);
  for (size_t left = len; left;) {
    size_t n = left < sizeof zeroes ? left : sizeof zeroes;
    digest_update(&h->block, zeroes, n);
    left -= n;
  }
  size_t n = digest_final(&h->block, out);
  if (len == h->block_size) {
    memcpy(h->zero_digest, out, n);
    h->zero_len = n;
  }
  digest_update(&h->outer, out, n);
}

char *blkhash_hexdigest(struct blkhash *h)
{
  uint8_t out[BLKHASH_MAX_DIGEST];
  size_t n = digest_final(&h->outer, out);
  return hex_of(out, n);
}

void blkhash_free(struct blkhash *h)
{
  if (!h) return;
  EVP_MD_CTX_free(h->outer.ctx);
  EVP_MD_CTX_free(h->block.ctx);
  free(h);
}
