/* uuid.h: random (v4) UUIDs as 36-char lowercase strings, from OpenSSL's CSPRNG */
#pragma once
#include <stdbool.h>
#define UUID_STRLEN 36
/* writes 37 bytes into out; returns 0, or -1 with an error when no entropy */
int uuid_generate_str(char out[UUID_STRLEN + 1]);
/* true when s has the 8-4-4-4-12 hex form */
bool uuid_is_valid(const char *s);
/* random lowercase hex token of nbytes bytes (2*nbytes chars); caller frees; NULL on error */
char *random_hex(size_t nbytes);
/* lowercase hex of the n bytes at p (2*n chars); caller frees */
char *hex_of(const unsigned char *p, size_t n);

/* what is kept of a random secret (bearer token, transfer ticket) at rest:
 * SECRET_DIGEST_PREFIX + hex SHA-256. The secrets are 128 bits or more of
 * CSPRNG output, so a plain hash without salt cannot be reversed. Caller frees. */
#define SECRET_DIGEST_PREFIX "sha256:"
char *secret_digest(const char *secret);
/* equality of two digests (or any strings) in time independent of where they differ */
bool secret_equal(const char *a, const char *b);
