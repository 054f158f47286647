#include <stddef.h>
#include "util/uuid.h"
#include "util/buf.h"
#include "util/err.h"
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

int uuid_generate_str(char out[UUID_STRLEN + 1])
{
  unsigned char u[16];
  if (RAND_bytes(u, sizeof u) != 1)
    return error(ERR_INTERNAL, "cannot generate uuid: no entropy");
  u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
  u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
  snprintf(out, UUID_STRLEN + 1,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
           u[11], u[12], u[13], u[14], u[15]);
  return 0;
}

bool uuid_is_valid(const char *s)
{
  if (!s || strlen(s) != UUID_STRLEN) return false;
  for (int i = 0; i < UUID_STRLEN; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!isxdigit((unsigned char)s[i])) {
      return false;
    }
  }
  return true;
}

/* lower-case hex of N bytes (every request hashes its token: no printf) */
static void put_hex(struct buf *b, const unsigned char *p, size_t n)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    buf_putc(b, digits[p[i] >> 4]);
    buf_putc(b, digits[p[i] & 15]);
  }
}

char *hex_of(const unsigned char *p, size_t n)
{
  struct buf b = BUF_INIT;
  put_hex(&b, p, n);
  return buf_detach(&b);
}

char *random_hex(size_t nbytes)
{
  AUTOFREE unsigned char *raw = xcalloc(nbytes, 1);
  if (RAND_bytes(raw, (int)nbytes) != 1) {
    error(ERR_INTERNAL, "cannot generate random token: no entropy");
    return NULL;
  }
  return hex_of(raw, nbytes);
}

char *secret_digest(const char *secret)
{
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)secret, strlen(secret), md);
  struct buf b = BUF_INIT;
  buf_puts(&b, SECRET_DIGEST_PREFIX);
  put_hex(&b, md, sizeof md);
  return buf_detach(&b);
}

bool secret_equal(const char *a, const char *b)
{
  size_t n = strlen(a);
  return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}
