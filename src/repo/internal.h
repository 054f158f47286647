/* internal.h: what the repository's files share and callers never see. */
#pragma once
#include "repo/repo.h"
#include <pthread.h>
#include <stdint.h>

/* config.json's version: 2 once a version 2 manifest may exist, 3 for page-skipping chunk ids */
#define REPO_FORMAT_VERSION 3   /* the newest this snapback reads, and what init writes */
#define REPO_MANIFEST2_VERSION 2 /* the least version that may hold version 2 manifests */
#define MANIFEST_VERSION 2    /* extent layout (blocks + patches), digest over chunk ids */
#define REPO_ZSTD_LEVEL 3
#define REPO_KEY_LEN 32

struct repo {
  char *path;
  bool encrypted;
  unsigned char enc_key[REPO_KEY_LEN]; /* AES-256-GCM key (encrypted repositories) */
  unsigned char mac_key[REPO_KEY_LEN]; /* HMAC key for chunk ids (encrypted repositories) */
  int version;                         /* config.json's version: 1 to 3 */
  bool page_ids;                       /* chunk ids skip zero pages ("sha256-pages", version 3) */
  int lock_fd;                         /* REPO/lock while locked, else -1 */
  pthread_mutex_t dirty_lock;
  bool dirty[256];                     /* chunk directories with renames not yet fsynced */
  struct repo_writers *writers;        /* write-behind (writer.c), or NULL: chunk_put writes */
};

/* chunk id's directory has a rename to fsync at the next repo_sync */
void repo_mark_dirty(struct repo *r, const char *id);

/* writer.c: hands the chunk file in *buf (len bytes, in a buffer of bufsize
 * bytes aligned for direct I/O) to the writer threads, which write it to
 * dir/id as repo_write_file_direct does; *buf becomes another buffer of the
 * same size. Waits while the queue is full. Fails with an earlier write's
 * failure, if any. */
int repo_writers_submit(struct repo *r, const char *dir, const char *id, unsigned char **buf, size_t len,
                        size_t bufsize) WARN_UNUSED;
/* waits until every queued file is written; the first failure, if any */
int repo_writers_drain(struct repo *r) WARN_UNUSED;
/* drains, then stops the threads (repo_close) */
void repo_writers_stop(struct repo *r);

/* the envelope shared by chunk and manifest files (docs/repository.md) */
#define ENVELOPE_HEADER 16
#define ENVELOPE_NONCE 12
#define ENVELOPE_TAG 16

/* writes data to dir/name crash-safe: a temporary file in dir, fsync, rename;
 * the directory is fsynced too unless defer_dir_sync */
int repo_write_file(const char *dir, const char *name, const void *data, size_t len,
                    bool defer_dir_sync) WARN_UNUSED;
/* the same for a chunk file, with O_DIRECT where the file system allows it:
 * the data goes to the disk from data without a copy into the page cache
 * (which it would be flushed from at the fsync anyway). data must be aligned
 * to REPO_DIO_ALIGN and hold cap bytes, cap >= len rounded up to
 * REPO_DIO_ALIGN (the bytes past len are zeroed and cut off again);
 * otherwise the write goes through the page cache. */
#define REPO_DIO_ALIGN 4096
int repo_write_file_direct(const char *dir, const char *name, unsigned char *data, size_t len, size_t cap,
                           bool defer_dir_sync) WARN_UNUSED;
int repo_fsync_dir(const char *dir) WARN_UNUSED;
/* reads a whole file (at most max bytes); NULL with ERR_NOT_FOUND when absent */
unsigned char *repo_read_file(const char *path, size_t max, size_t *len);

/* AES-256-GCM with the repository key: out gets nonce | ciphertext | tag
 * (len + 28 bytes); aad binds the result to its header and name */
int repo_seal(const struct repo *r, const void *aad, size_t aadlen, const void *in, size_t len,
              unsigned char *out) WARN_UNUSED;
/* the inverse; fails (ERR_INVALID) when the tag does not match */
int repo_open_sealed(const struct repo *r, const void *aad, size_t aadlen, const unsigned char *in,
                     size_t len, unsigned char *out) WARN_UNUSED;

/* raises config.json's version to REPO_MANIFEST2_VERSION (crash-safe), so a
 * snapback that cannot read version 2 manifests refuses the repository with
 * a clear message instead of calling them damaged */
int repo_config_upgrade(struct repo *r) WARN_UNUSED;

void repo_hex(const unsigned char *bin, size_t n, char *out);
bool repo_is_chunk_name(const char *s);
