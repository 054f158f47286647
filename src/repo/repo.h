/* repo.h: the backup repository (docs/repository.md is the format).
 *
 * A repository is a directory: config.json, a lock file, content-addressed
 * chunks (chunks/ab/abcdef...) and one manifest per complete backup
 * (backups/<timestamp>-<vm>-<id>.json). A full backup cuts a disk into
 * fixed 4 MiB blocks, each stored as one chunk; an incremental backup keeps
 * the previous backup's blocks and adds patches: extents of the disk whose
 * bytes lie inside a packed chunk of changed data (extent.c). A chunk is
 * stored once, compressed with zstd and, in an encrypted repository, sealed
 * with AES-256-GCM. A backup is complete exactly when its manifest exists:
 * the manifest is written last, after every chunk it names is durable.
 *
 * Errors follow util/err.h: 0/-1 or pointer/NULL, the error recorded once.
 * Thread-safety: a struct repo may be shared by threads for chunk_put,
 * chunk_get and chunk_exists; each thread needs its own struct repo_worker. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/cleanup.h"

#define REPO_CHUNK_SIZE ((size_t)4 << 20)
#define REPO_PAGE_SIZE ((size_t)4096)                           /* a page-skipping id's page */
#define REPO_PAGE_MAP_BYTES (REPO_CHUNK_SIZE / REPO_PAGE_SIZE / 8) /* a chunk's page bitmap */
#define REPO_ID_HEX 64 /* a chunk id: 32 bytes as lowercase hex */
#define REPO_ZERO_MARK "zero" /* the manifest's entry for an all-zero chunk */

struct repo;
struct repo_worker;

/* repo_init creates a repository at path (the directory may exist but must be
 * empty of repository files). With key_file, the repository is encrypted; a
 * key file that does not exist is created with a fresh random key (mode 0600). */
int repo_init(const char *path, const char *key_file) WARN_UNUSED;
/* true when path holds a repository (config.json exists) */
bool repo_exists(const char *path);
/* repo_open reads config.json; an encrypted repository needs key_file and
 * refuses a wrong key before anything is read. key_file is ignored (with no
 * error) for a plain repository. */
struct repo *repo_open(const char *path, const char *key_file);
void repo_close(struct repo *r);
DEFINE_AUTOPTR(repo, struct repo, repo_close)
const char *repo_path(const struct repo *r);
bool repo_encrypted(const struct repo *r);

/* Locks on REPO/lock (flock): backup and verify hold it shared for their
 * whole run, prune and gc exclusive, so gc never runs while a backup may
 * still reference chunks that no manifest names yet. repo_lock blocks;
 * when it has to wait, *waited (if not NULL) is set first so the caller can
 * say so. Released by repo_close. */
enum repo_lock_mode { REPO_LOCK_SHARED, REPO_LOCK_EXCLUSIVE };
int repo_lock(struct repo *r, enum repo_lock_mode mode, void (*on_wait)(void *), void *opaque) WARN_UNUSED;

/* ---- chunks ---- */

struct repo_worker *repo_worker_new(struct repo *r);
void repo_worker_free(struct repo_worker *w);
DEFINE_AUTOPTR(repo_worker, struct repo_worker, repo_worker_free)

/* true when len bytes at data are all zero */
bool repo_is_zero(const void *data, size_t len);
/* the chunk id of data: SHA-256, or HMAC-SHA256 with the repository's key */
int repo_chunk_id(struct repo_worker *w, const void *data, size_t len, char id[REPO_ID_HEX + 1]) WARN_UNUSED;
/* repo_chunk_put stores data (at most REPO_CHUNK_SIZE bytes, not all zero)
 * unless a chunk with its id exists; *is_new says which. The file is written
 * to a temporary name, fsynced and renamed; the directory fsync is deferred
 * to repo_sync() (a chunk whose rename is lost in a crash is simply absent,
 * never damaged). stored_bytes (may be NULL) gets the file size written. */
int repo_chunk_put(struct repo_worker *w, const void *data, size_t len, char id[REPO_ID_HEX + 1],
                   bool *is_new, size_t *stored_bytes) WARN_UNUSED;
/* repo_chunk_put for a buffer with holes: the pages set in holes (a
 * REPO_PAGE_MAP_BYTES bitmap, bit i of byte i / 8 for page i of
 * REPO_PAGE_SIZE bytes) are zero but their bytes in buf were never written,
 * so they are not read (a version 1 or 2 repository's id, or zstd, needs
 * every byte: buf's hole pages are zeroed first then). With all_zero (may be
 * NULL), a chunk whose every page is zero is not stored: *all_zero says so
 * and id is left alone. */
int repo_chunk_put_holes(struct repo_worker *w, void *buf, size_t len, const unsigned char *holes,
                         char id[REPO_ID_HEX + 1], bool *is_new, size_t *stored_bytes, bool *all_zero) WARN_UNUSED;
/* repo_chunk_get reads chunk id into out (cap >= REPO_CHUNK_SIZE), checking
 * the authentication tag and that the content hashes to id. A damaged or
 * missing chunk fails with a message naming it. */
int repo_chunk_get(struct repo_worker *w, const char *id, void *out, size_t cap, size_t *len) WARN_UNUSED;
/* the same, also giving the chunk's page bitmap (REPO_PAGE_MAP_BYTES; bit i
 * of byte i / 8 set when page i holds a byte that is not zero), which the
 * check against the id computes or reads anyway */
int repo_chunk_get_map(struct repo_worker *w, const char *id, void *out, size_t cap, size_t *len,
                       unsigned char map[REPO_PAGE_MAP_BYTES]) WARN_UNUSED;
/* repo_chunk_decode does the same for a chunk file already in memory (f,
 * flen bytes): the part of repo_chunk_get that parses, fuzzed in memory */
int repo_chunk_decode(struct repo_worker *w, const char *id, const unsigned char *f, size_t flen, void *out,
                      size_t cap, size_t *len) WARN_UNUSED;
bool repo_chunk_exists(struct repo *r, const char *id);
/* fsyncs every chunk directory written since the last call; call before a
 * manifest is written. With writer threads, waits for their queue first and
 * fails with the first chunk write that failed. */
int repo_sync(struct repo *r) WARN_UNUSED;
/* write-behind: threads (at most 8) that write the chunk files repo_chunk_put
 * queues, so the caller's threads hash and compress while the disk writes.
 * A chunk put is then on disk only after repo_sync (repo_chunk_get and
 * repo_chunk_exists do not see it before). Stopped by repo_close. */
int repo_writers_start(struct repo *r, int threads) WARN_UNUSED;

/* ---- manifests ---- */

/* A patch: len bytes of the disk at off are bytes ref_off.. of patch chunk
 * ref (an index into manifest_disk.patch_chunks), or zeros when ref is
 * MANIFEST_ZERO_REF. A patch never crosses a block boundary. */
#define MANIFEST_ZERO_REF UINT32_MAX
#define MANIFEST_MAX_BLOCK_PATCHES 16 /* more in one block: the block is rewritten whole */
struct manifest_patch { uint64_t off; uint32_t len, ref, ref_off; };

struct manifest_disk {
  char *id;          /* the disk id in the engine */
  char *alias;
  char *image_id;    /* the snapshot volume that was read */
  char *interface;   /* virtio, virtio_scsi, ide, sata */
  bool bootable;
  uint64_t size;     /* virtual size in bytes */
  char *sha256;      /* version 1 manifests: hex of the whole disk's bytes */
  char *digest;      /* version 2: manifest_disk_digest(), over the chunk ids */
  char *mode;        /* "full" or "incremental": how this run read the disk */
  char *why;         /* why a full backup was taken when an incremental was asked (or NULL) */
  char **chunks;     /* nchunks block entries: a chunk id or REPO_ZERO_MARK */
  size_t nchunks;
  char **patch_chunks;              /* ids of the chunks patches point into */
  size_t npatch_chunks;
  struct manifest_patch *patches;   /* sorted by off, never overlapping */
  size_t npatches;
};

struct manifest {
  char *id;          /* the backup id (a UUID) */
  char *name;        /* file stem: <timestamp>-<vm>-<id>; set by write/read */
  char *vm_id, *vm_name;
  char *snapshot_id;
  char *checkpoint_id; /* the engine checkpoint this backup ends at (incremental base of the next) */
  int64_t start_ms, end_ms;
  char *ovf;
  struct manifest_disk *disks;
  size_t ndisks;
  /* statistics of the run that wrote it */
  uint64_t chunks_new, chunks_reused, chunks_zero, bytes_read, bytes_stored;
};

void manifest_free(struct manifest *m);
DEFINE_AUTOPTR(manifest, struct manifest, manifest_free)
/* appends a disk with ceil(size / chunk size) empty chunk slots; returns it */
struct manifest_disk *manifest_add_disk(struct manifest *m, uint64_t size);
size_t manifest_chunk_count(uint64_t size);

/* the disk's digest: SHA-256 over its block chunk ids in order, then over
 * its patches (offset, length, chunk id, offset in the chunk). Chunk ids are
 * digests of their content, so this commits to every byte of the disk
 * without a second pass over the data. out gets 64 hex digits. */
void manifest_disk_digest(const struct manifest_disk *d, char out[REPO_ID_HEX + 1]);
/* copies the layout of src (blocks, patches, patch chunks) into dst, whose
 * size must equal src's */
void manifest_disk_copy_layout(struct manifest_disk *dst, const struct manifest_disk *src);
/* number of patches inside block b */
size_t manifest_disk_block_patches(const struct manifest_disk *d, size_t b);

/* writes the manifest crash-safe (repo_sync first, then temp + fsync +
 * rename + directory fsync); sets m->name. Every chunk slot must be filled. */
int manifest_write(struct repo *r, struct manifest *m) WARN_UNUSED;
/* reads backups/<name>.json */
struct manifest *manifest_read(struct repo *r, const char *name);
/* parses a manifest file already in memory (len bytes at data)
 * as backup name: the part of manifest_read that parses */
struct manifest *manifest_parse(struct repo *r, const char *name, const unsigned char *data, size_t len);
/* the manifest names (file stems), oldest first; NULL-terminated, caller
 * frees each and the array. *count may be NULL. */
char **manifest_list(struct repo *r, size_t *count);
/* finds a backup by file stem, by id, or by a unique prefix of either */
struct manifest *manifest_find(struct repo *r, const char *what);
int manifest_remove(struct repo *r, const char *name) WARN_UNUSED;

/* ---- incremental backups and restore (extent.c) ---- */

/* A patch writer turns the changed extents of a disk into a new disk entry:
 * it starts from the previous backup's layout (blocks and patches), packs
 * changed bytes into chunks of up to 4 MiB, and at the end lays the new
 * patches over the old ones (the new win). A whole block given with
 * patch_writer_block replaces the block and every patch inside it
 * (compaction). Single-threaded. */
struct patch_writer;
struct patch_writer *patch_writer_new(struct repo *r, const struct manifest_disk *prev, struct manifest_disk *out);
/* bytes [off, off + len) of the disk changed to data (zeros are noticed and
 * stored as zero patches) */
int patch_writer_data(struct patch_writer *pw, uint64_t off, const void *data, size_t len) WARN_UNUSED;
/* bytes [off, off + len) of the disk now read as zeros */
int patch_writer_zero(struct patch_writer *pw, uint64_t off, uint64_t len) WARN_UNUSED;
/* the whole block b (its length: 4 MiB, or less for a disk's last block) */
int patch_writer_block(struct patch_writer *pw, size_t b, const void *data, size_t len) WARN_UNUSED;
/* Zero-copy: a caller that reads changed extents straight into chunk
 * buffers takes each from patch_writer_buffer (REPO_CHUNK_SIZE bytes,
 * recycled from chunks already stored) and hands it back filled, to
 * patch_writer_pack or patch_writer_block_owned, or unused to
 * patch_writer_buffer_back. */
unsigned char *patch_writer_buffer(struct patch_writer *pw);
void patch_writer_buffer_back(struct patch_writer *pw, unsigned char *buf);
/* the changed extents pieces[0..n) laid one after the other in buf (at most
 * REPO_CHUNK_SIZE bytes in all), as patch_writer_data would take them one by
 * one: pieces of zeros become zero patches, the rest one patch chunk. Takes
 * buf, also on failure. */
struct patch_piece { uint64_t off; size_t len; };
int patch_writer_pack(struct patch_writer *pw, unsigned char *buf, const struct patch_piece *pieces, size_t n) WARN_UNUSED;
/* patch_writer_block for a buffer from patch_writer_buffer; takes buf, also
 * on failure */
int patch_writer_block_owned(struct patch_writer *pw, size_t b, unsigned char *buf, size_t len) WARN_UNUSED;
/* true when block b should be read and given whole rather than patched:
 * dirty_pieces new patches of dirty_bytes would leave it with more than
 * MANIFEST_MAX_BLOCK_PATCHES patches, or change half of it or more */
bool patch_writer_wants_block(const struct patch_writer *pw, size_t b, size_t dirty_pieces, uint64_t dirty_bytes);
struct patch_stats { uint64_t bytes_stored, chunks_new, chunks_reused, chunks_zero, blocks_rewritten; };
/* stores the last packed chunk, lays the patches over the previous layout,
 * drops patch chunks no longer used and sets out->digest; st (may be NULL)
 * gets what the writer stored. Frees pw, also on failure. */
int patch_writer_finish(struct patch_writer *pw, struct patch_stats *st) WARN_UNUSED;
void patch_writer_free(struct patch_writer *pw);

/* Reads a disk back, block by block: block b of d into buf (at least
 * REPO_CHUNK_SIZE), the block's chunk with the patches laid over it. Each
 * chunk read is checked against its id. Readers keep a few patch chunks
 * decompressed in a patch_cache, so reading the blocks in order reads each
 * chunk about once. Readers of one disk on several threads share one cache
 * (thread-safe; at most PATCH_CACHE_READERS readers), so each patch chunk is
 * read and hashed once in all, not once per thread; a reader given NULL has
 * a cache of its own. */
#define PATCH_CACHE_READERS 8
struct patch_cache;
/* a cache for up to readers readers of disk d, sized by what d's patches
 * need at once (patch_working_set), within bounds: at most 128 MiB */
struct patch_cache *patch_cache_new(const struct manifest_disk *d, size_t readers);
/* how many patch chunks a walk through d's blocks in order needs at once */
size_t patch_working_set(const struct manifest_disk *d);
void patch_cache_free(struct patch_cache *pc);
DEFINE_AUTOPTR(patch_cache, struct patch_cache, patch_cache_free)
struct disk_reader;
struct disk_reader *disk_reader_new(struct repo *r, const struct manifest_disk *d, struct patch_cache *shared);
/* block b into buf (REPO_CHUNK_SIZE bytes); map (may be NULL) gets which of
 * its pages may hold data: a clear bit is a zero page (repo_chunk_get_map's
 * bitmap, with the bits of the pages a patch writes set) */
int disk_reader_block(struct disk_reader *dr, size_t b, unsigned char *buf, size_t *len,
                      unsigned char map[REPO_PAGE_MAP_BYTES]) WARN_UNUSED;
void disk_reader_free(struct disk_reader *dr);
DEFINE_AUTOPTR(disk_reader, struct disk_reader, disk_reader_free)

/* ---- maintenance ---- */

/* prune policy: which backups to keep, per VM (grouped by vm_id). A backup
 * kept by any rule is kept. Days and weeks are local time (ISO weeks). */
struct prune_policy { int keep_last, keep_daily, keep_weekly; };
struct prune_item { const char *name; const char *vm_id; int64_t time_ms; bool keep; const char *reason; };
/* marks items[i].keep/reason; items may be in any order */
void prune_decide(const struct prune_policy *p, struct prune_item *items, size_t n);

struct gc_stats { uint64_t chunks_kept, chunks_removed, bytes_removed, temp_removed; };
/* removes every chunk no manifest names and stale temporary files. Needs
 * the exclusive lock. Refuses to remove anything when a manifest cannot be
 * read. dry_run counts without removing. */
int repo_gc(struct repo *r, bool dry_run, struct gc_stats *st) WARN_UNUSED;

struct verify_damage {
  char *chunk;       /* the chunk id */
  char *problem;     /* "missing", or what is wrong */
  char **backups;    /* names of the backups that need it; NULL-terminated */
};
struct verify_report {
  uint64_t chunks_checked, bytes_checked, backups_checked;
  struct verify_damage *damage;
  size_t ndamage;
  char **bad_manifests; /* manifests that cannot be read, NULL-terminated or NULL */
};
void verify_report_free(struct verify_report *v);
/* re-reads and re-hashes every chunk (threads workers; 0 picks the CPU count),
 * checks every chunk a manifest names exists, and fills rep. Returns 0 when
 * the check ran (damage or not), -1 when it could not run. progress (may be
 * NULL) is called with bytes done so far from any thread, serialized. */
int repo_verify(struct repo *r, int threads, struct verify_report *rep,
                void (*progress)(void *, uint64_t done, uint64_t total), void *opaque) WARN_UNUSED;
