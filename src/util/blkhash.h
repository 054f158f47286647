/* blkhash.h: the block checksum of ovirt-imageio (GET /images/T/checksum).
 *
 * An image is split into blocks of block_size bytes (the last one may be
 * shorter); each block is hashed, and the checksum is the hash of the
 * concatenated block digests, all with the same algorithm:
 *
 *   checksum = H(H(block0) || H(block1) || ...)
 *
 * blake2b and blake2s use a 32-byte digest, as imageio does (Python's
 * hashlib.blake2b(digest_size=32)); BLAKE2b with that digest length is not
 * BLAKE2b-512 truncated, and OpenSSL 3.0 cannot set it, so blake2b is
 * implemented here (RFC 7693). The other algorithms come from OpenSSL.
 * Algorithm names are Python hashlib's, since clients compare with it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLKHASH_DEFAULT_ALGORITHM "blake2b"
#define BLKHASH_DEFAULT_BLOCK_SIZE ((size_t)4 << 20)
#define BLKHASH_MAX_DIGEST 64

struct blkhash;

/* the supported algorithm names, sorted, NULL-terminated (static) */
const char *const *blkhash_algorithms(void);
bool blkhash_supported(const char *algorithm);

/* a checksum over blocks of block_size bytes; NULL + ERR_INVALID for an
 * algorithm blkhash_supported() refuses */
struct blkhash *blkhash_new(const char *algorithm, size_t block_size);
/* hashes one block of data (len <= block_size, shorter only for the last) */
void blkhash_update(struct blkhash *h, const void *data, size_t len);
/* a block of len zero bytes, without reading it (a precomputed digest for a
 * full block) */
void blkhash_zero(struct blkhash *h, size_t len);
/* the checksum in lowercase hex; caller frees. Ends h: call it once. */
char *blkhash_hexdigest(struct blkhash *h);
void blkhash_free(struct blkhash *h); /* NULL-safe */

/* one-shot BLAKE2b with a digest of outlen bytes (1..64), unkeyed */
void blake2b(void *out, size_t outlen, const void *data, size_t len);
