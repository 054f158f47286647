/* extent.c: incremental backups as patches over the previous backup's
 * blocks, and reading any backup back block by block.
 *
 * Why patches (docs/repository.md, "Incremental backups"): a 1% change
 * scattered in 64 KiB writes touches most 4 MiB blocks of a disk; storing each
 * touched block again stores the disk ~25 times over. A patch writer instead
 * packs only the changed bytes, in disk order, into chunks of up to 4 MiB and
 * records where each changed extent went. The new manifest keeps the previous
 * one's block list and lays the new patches over its patches (the newest
 * wins), so every manifest alone still describes the whole disk: restoring
 * it, pruning an older backup or collecting garbage never needs another
 * manifest. A block whose patches would grow past MANIFEST_MAX_BLOCK_PATCHES,
 * or that changed by half or more, is given whole instead (compaction: its
 * patches go, it becomes one block chunk again), which bounds both the
 * manifest and the reads of a restore. */
#include "repo/internal.h"
#include "util/err.h"
#include "util/vec.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

DEFINE_VEC(patchvec, struct manifest_patch);

/* Chunks are stored by PUT_THREADS threads while the caller reads on: each
 * chunk costs a hash, compression, a write and an fsync (measured: 20-140 ms
 * a chunk under load, most of an incremental backup's data phase when done
 * in line). At most PUT_QUEUE chunks wait or are stored at once (16 MiB). */
#define PUT_THREADS 2
#define PUT_QUEUE 4
#define PUT_SPARE (PUT_QUEUE + PUT_THREADS)

/* one chunk to store: a pack (patch chunk ref) or a whole block */
struct put_job {
  struct put_job *next;
  unsigned char *data;           /* owned; freed when stored */
  size_t len;
  bool block;                    /* block index, else patch chunk ref */
  size_t index;
  size_t seq;                    /* handed over as the seq-th: a later one wins */
  char id[REPO_ID_HEX + 1];      /* the result */
};

struct put_pool {
  pthread_t threads[PUT_THREADS];
  size_t nthreads;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct put_job *queue, *queue_tail;   /* waiting */
  struct put_job *done;                 /* stored, for finish */
  size_t pending;                       /* queued or being stored */
  size_t seq;                           /* jobs handed over */
  bool stop;
  struct err_saved failed;              /* the first failure */
  bool has_failed;
  struct patch_stats st;
  struct repo *r;
  /* buffers of REPO_CHUNK_SIZE whose chunks are stored, for the next pack:
   * fresh memory costs a page fault a page (measured: 0.5 ms a MiB here,
   * under free page reporting), recycled memory nothing */
  unsigned char *spare[PUT_SPARE];
  size_t nspare;
};

struct patch_writer {
  struct repo *r;
  struct put_pool pool;
  struct manifest_disk *out;     /* starts as a copy of the previous layout */
  struct patchvec fresh;         /* this run's patches, in the order given */
  bool *replaced;                /* blocks given whole */
  unsigned char *pack;           /* changed bytes not yet stored */
  size_t pack_len;
  uint32_t pack_ref;             /* the patch_chunks index the pack will get */
  struct patch_stats st;
};

static void *put_thread(void *arg)
{
  struct put_pool *p = arg;
  struct repo_worker *w = repo_worker_new(p->r);
  pthread_mutex_lock(&p->lock);
  if (!w && !p->has_failed) {
    error_save(&p->failed);
    p->has_failed = true;
  }
  error_clear();
  for (;;) {
    while (!p->queue && !p->stop) pthread_cond_wait(&p->cond, &p->lock);
    if (!p->queue) break;
    struct put_job *j = p->queue;
    p->queue = j->next;
    if (!p->queue) p->queue_tail = NULL;
    bool skip = p->has_failed;
    pthread_mutex_unlock(&p->lock);
    bool is_new = false;
    size_t stored = 0;
    int rc = skip ? -1 : repo_chunk_put(w, j->data, j->len, j->id, &is_new, &stored);
    pthread_mutex_lock(&p->lock);
    if (p->nspare < PUT_SPARE) p->spare[p->nspare++] = j->data;
    else free(j->data);
    j->data = NULL;
    if (rc < 0 && !skip && !p->has_failed) {
      error_save(&p->failed);
      p->has_failed = true;
    }
    error_clear();
    if (rc == 0 && is_new) p->st.chunks_new++, p->st.bytes_stored += stored;
    else if (rc == 0) p->st.chunks_reused++;
    j->next = p->done;
    p->done = j;
    p->pending--;
    pthread_cond_broadcast(&p->cond);
  }
  pthread_mutex_unlock(&p->lock);
  repo_worker_free(w);
  return NULL;
}

/* hands data (owned) to the store threads; waits while PUT_QUEUE chunks are
 * pending. -1 with the error of an earlier chunk that failed. */
static int put_async(struct patch_writer *pw, unsigned char *data, size_t len, bool block, size_t index)
{
  struct put_pool *p = &pw->pool;
  struct put_job *j = xcalloc(1, sizeof *j);
  *j = (struct put_job){.data = data, .len = len, .block = block, .index = index, .seq = p->seq++};
  pthread_mutex_lock(&p->lock);
  while (p->pending >= PUT_QUEUE && !p->has_failed) pthread_cond_wait(&p->cond, &p->lock);
  if (p->has_failed) {
    pthread_mutex_unlock(&p->lock);
    free(data);
    free(j);
    return error(ERR_INTERNAL, "a chunk could not be stored");
  }
  if (p->queue_tail) p->queue_tail->next = j;
  else p->queue = j;
  p->queue_tail = j;
  p->pending++;
  pthread_cond_signal(&p->cond);
  pthread_mutex_unlock(&p->lock);
  return 0;
}

/* waits until every chunk handed over is stored, stops the threads; 0, or
 * -1 with the first failure's error */
static int put_drain(struct put_pool *p)
{
  pthread_mutex_lock(&p->lock);
  p->stop = true;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
  for (size_t i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  p->nthreads = 0;
  if (p->has_failed) {
    p->has_failed = false;
    return error_restore(&p->failed);
  }
  return 0;
}

static void put_pool_free(struct put_pool *p)
{
  if (p->nthreads) {
    pthread_mutex_lock(&p->lock);
    p->has_failed = true; /* what is still queued is dropped */
    pthread_mutex_unlock(&p->lock);
    struct err_saved keep;
    error_save(&keep);
    if (put_drain(p) < 0) error_clear();
    error_restore(&keep);
  }
  if (p->has_failed) free(p->failed.msg);
  for (struct put_job *j = p->done, *n; j; j = n) {
    n = j->next;
    free(j->data);
    free(j);
  }
  for (struct put_job *j = p->queue, *n; j; j = n) {
    n = j->next;
    free(j->data);
    free(j);
  }
  for (size_t i = 0; i < p->nspare; i++) free(p->spare[i]);
  p->nspare = 0;
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cond);
}

struct patch_writer *patch_writer_new(struct repo *r, const struct manifest_disk *prev, struct manifest_disk *out)
{
  if (prev && prev->size != out->size) {
    error(ERR_CONFLICT, "disk '%s' changed size from %llu to %llu bytes: an incremental backup needs the same size",
          out->id ? out->id : "?", (unsigned long long)prev->size, (unsigned long long)out->size);
    return NULL;
  }
  struct patch_writer *pw = xcalloc(1, sizeof *pw);
  pw->r = r;
  pw->out = out;
  if (prev) manifest_disk_copy_layout(out, prev);
  else
    for (size_t i = 0; i < out->nchunks; i++)
      if (!out->chunks[i]) out->chunks[i] = xstrdup(REPO_ZERO_MARK);
  pw->replaced = xcalloc(out->nchunks + 1, sizeof *pw->replaced);
  pw->pack = xalloc_large(REPO_CHUNK_SIZE);
  pw->pack_ref = (uint32_t)out->npatch_chunks;
  struct put_pool *p = &pw->pool;
  p->r = r;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  for (; p->nthreads < PUT_THREADS; p->nthreads++)
    if (pthread_create(&p->threads[p->nthreads], NULL, put_thread, p) != 0) break;
  if (!p->nthreads) {
    error(ERR_INTERNAL, "cannot start a thread to store chunks");
    patch_writer_free(pw);
    return NULL;
  }
  return pw;
}

void patch_writer_free(struct patch_writer *pw)
{
  if (!pw) return;
  put_pool_free(&pw->pool);
  free(pw->fresh.ptr);
  free(pw->replaced);
  free(pw->pack);
  free(pw);
}

unsigned char *patch_writer_buffer(struct patch_writer *pw)
{
  struct put_pool *p = &pw->pool;
  unsigned char *b = NULL;
  pthread_mutex_lock(&p->lock);
  if (p->nspare) b = p->spare[--p->nspare];
  pthread_mutex_unlock(&p->lock);
  return b ? b : xalloc_large(REPO_CHUNK_SIZE);
}

void patch_writer_buffer_back(struct patch_writer *pw, unsigned char *buf)
{
  struct put_pool *p = &pw->pool;
  if (!buf) return;
  pthread_mutex_lock(&p->lock);
  if (p->nspare < PUT_SPARE) p->spare[p->nspare++] = buf, buf = NULL;
  pthread_mutex_unlock(&p->lock);
  free(buf);
}

/* a new slot at the end of patch_chunks, which patch_writer_finish fills
 * with the id of the chunk stored for it; returns its index */
static size_t patch_chunk_slot(struct patch_writer *pw)
{
  struct manifest_disk *d = pw->out;
  size_t ref = d->npatch_chunks;
  d->patch_chunks = xrealloc(d->patch_chunks, (d->npatch_chunks + 2) * sizeof *d->patch_chunks);
  d->patch_chunks[d->npatch_chunks++] = NULL;
  d->patch_chunks[d->npatch_chunks] = NULL;
  return ref;
}

/* hands the pack to the store threads and appends a slot to patch_chunks
 * that patch_writer_finish fills with its id */
static int pack_flush(struct patch_writer *pw)
{
  if (!pw->pack_len) return 0;
  struct manifest_disk *d = pw->out;
  size_t ref = patch_chunk_slot(pw);
  unsigned char *full = pw->pack;
  size_t len = pw->pack_len;
  pw->pack = patch_writer_buffer(pw);
  pw->pack_len = 0;
  pw->pack_ref = (uint32_t)d->npatch_chunks;
  return put_async(pw, full, len, false, ref);
}

static int check_range(const struct patch_writer *pw, uint64_t off, uint64_t len)
{
  if (len == 0 || off > pw->out->size || len > pw->out->size - off)
    return error(ERR_INVALID, "extent %llu+%llu lies outside disk '%s' of %llu bytes", (unsigned long long)off,
                 (unsigned long long)len, pw->out->id ? pw->out->id : "?", (unsigned long long)pw->out->size);
  return 0;
}

/* how many of the len bytes from off lie in off's block (a patch never
 * crosses a block) */
static size_t in_block(uint64_t off, uint64_t len)
{
  uint64_t left = REPO_CHUNK_SIZE - off % REPO_CHUNK_SIZE;
  return (size_t)(len < left ? len : left);
}

/* the n bytes at p, [off, off + n) of the disk inside one block, become a
 * patch: a zero patch when they read as zeros, else a patch of chunk ref,
 * moved to buf + *used (p may already be there, or further on in buf) */
static void patch_take(struct patch_writer *pw, uint64_t off, const unsigned char *p, size_t n, unsigned char *buf,
                       size_t *used, uint32_t ref)
{
  if (repo_is_zero(p, n)) {
    vec_push(&pw->fresh, ((struct manifest_patch){off, (uint32_t)n, MANIFEST_ZERO_REF, 0}));
    return;
  }
  if (buf + *used != p) memmove(buf + *used, p, n);
  vec_push(&pw->fresh, ((struct manifest_patch){off, (uint32_t)n, ref, (uint32_t)*used}));
  *used += n;
}

int patch_writer_zero(struct patch_writer *pw, uint64_t off, uint64_t len)
{
  if (check_range(pw, off, len) < 0) return -1;
  while (len) {
    size_t n = in_block(off, len);
    vec_push(&pw->fresh, ((struct manifest_patch){off, (uint32_t)n, MANIFEST_ZERO_REF, 0}));
    off += n, len -= n;
  }
  return 0;
}

int patch_writer_data(struct patch_writer *pw, uint64_t off, const void *data, size_t len)
{
  if (check_range(pw, off, len) < 0) return -1;
  const unsigned char *p = data;
  while (len) {
    size_t n = in_block(off, len);
    /* a pack that cannot take these bytes goes first (zeros take none) */
    if (pw->pack_len + n > REPO_CHUNK_SIZE && !repo_is_zero(p, n) && pack_flush(pw) < 0) return -1;
    patch_take(pw, off, p, n, pw->pack, &pw->pack_len, pw->pack_ref);
    off += n, p += n, len -= n;
  }
  return 0;
}

int patch_writer_block(struct patch_writer *pw, size_t b, const void *data, size_t len)
{
  unsigned char *copy = patch_writer_buffer(pw);
  memcpy(copy, data, len < REPO_CHUNK_SIZE ? len : REPO_CHUNK_SIZE);
  return patch_writer_block_owned(pw, b, copy, len);
}

int patch_writer_pack(struct patch_writer *pw, unsigned char *buf, const struct patch_piece *pieces, size_t n)
{
  /* what patch_writer_data packed so far goes first, as its own chunk */
  if (pack_flush(pw) < 0) {
    patch_writer_buffer_back(pw, buf);
    return -1;
  }
  size_t at = 0, used = 0; /* where the next piece lies in buf, and the packed bytes before it */
  uint32_t ref = (uint32_t)pw->out->npatch_chunks;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uint64_t off = pieces[i].off;
    size_t len = pieces[i].len;
    if (check_range(pw, off, len) < 0 || at + len > REPO_CHUNK_SIZE) {
      rc = at + len > REPO_CHUNK_SIZE ? error(ERR_INVALID, "%zu bytes of pieces do not fit in one chunk", at + len) : -1;
      break;
    }
    const unsigned char *p = buf + at;
    at += len;
    /* a zero piece before this one left a gap, which patch_take closes */
    while (len) {
      size_t k = in_block(off, len);
      patch_take(pw, off, p, k, buf, &used, ref);
      off += k, p += k, len -= k;
    }
  }
  if (rc < 0 || !used) {
    patch_writer_buffer_back(pw, buf);
    return rc;
  }
  size_t slot = patch_chunk_slot(pw);
  pw->pack_ref = (uint32_t)pw->out->npatch_chunks;
  return put_async(pw, buf, used, false, slot);
}

int patch_writer_block_owned(struct patch_writer *pw, size_t b, unsigned char *buf, size_t len)
{
  struct manifest_disk *d = pw->out;
  uint64_t off = (uint64_t)b * REPO_CHUNK_SIZE;
  size_t want = b < d->nchunks ? (size_t)(d->size - off < REPO_CHUNK_SIZE ? d->size - off : REPO_CHUNK_SIZE) : 0;
  if (b >= d->nchunks || len != want) {
    patch_writer_buffer_back(pw, buf);
    return error(ERR_INVALID, "block %zu of disk '%s' must be %zu bytes, not %zu", b, d->id ? d->id : "?", want, len);
  }
  bool zero = repo_is_zero(buf, len);
  free(d->chunks[b]);
  d->chunks[b] = zero ? xstrdup(REPO_ZERO_MARK) : NULL; /* else filled in by patch_writer_finish */
  pw->replaced[b] = true;
  pw->st.blocks_rewritten++;
  if (zero) {
    pw->st.chunks_zero++;
    patch_writer_buffer_back(pw, buf);
    return 0;
  }
  return put_async(pw, buf, len, true, b);
}

bool patch_writer_wants_block(const struct patch_writer *pw, size_t b, size_t dirty_pieces, uint64_t dirty_bytes)
{
  return manifest_disk_block_patches(pw->out, b) + dirty_pieces > MANIFEST_MAX_BLOCK_PATCHES ||
         dirty_bytes >= REPO_CHUNK_SIZE / 2;
}

static int cmp_patch(const void *a, const void *b)
{
  const struct manifest_patch *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off;
}

/* the part [a, b) of patch p */
static struct manifest_patch patch_cut(const struct manifest_patch *p, uint64_t a, uint64_t b)
{
  struct manifest_patch q = {a, (uint32_t)(b - a), p->ref, 0};
  if (p->ref != MANIFEST_ZERO_REF) q.ref_off = p->ref_off + (uint32_t)(a - p->off);
  return q;
}

/* keeps only the newest patch for any byte: fresh may overlap itself (a later
 * one wins); the result is sorted and free of overlaps */
static void fresh_normalize(struct patchvec *v)
{
  /* a stable order by offset keeps "later wins" for equal offsets: tag with
   * the position, sort, then sweep keeping the newest owner of each byte */
  size_t n = v->len;
  if (n < 2) return;
  bool sorted = true, overlap = false;
  for (size_t i = 1; i < n; i++) {
    if (v->ptr[i].off < v->ptr[i - 1].off) sorted = false;
    if (v->ptr[i].off < v->ptr[i - 1].off + v->ptr[i - 1].len) overlap = true;
  }
  if (sorted && !overlap) return;
  /* rare (a caller that gives the same range twice): lay them one by one */
  struct patchvec out = VEC_INIT;
  for (size_t i = 0; i < n; i++) {
    struct manifest_patch p = v->ptr[i];
    struct patchvec next = VEC_INIT;
    for (size_t k = 0; k < out.len; k++) {
      struct manifest_patch *o = &out.ptr[k];
      uint64_t oe = o->off + o->len, pe = p.off + p.len;
      if (oe <= p.off || o->off >= pe) {
        vec_push(&next, *o);
        continue;
      }
      if (o->off < p.off) vec_push(&next, patch_cut(o, o->off, p.off));
      if (oe > pe) vec_push(&next, patch_cut(o, pe, oe));
    }
    vec_push(&next, p);
    free(out.ptr);
    out = next;
  }
  qsort(out.ptr, out.len, sizeof *out.ptr, cmp_patch);
  free(v->ptr);
  *v = out;
}

int patch_writer_finish(struct patch_writer *pw, struct patch_stats *st)
{
  struct manifest_disk *d = pw->out;
  if (pack_flush(pw) < 0 || put_drain(&pw->pool) < 0) {
    patch_writer_free(pw);
    return -1;
  }
  /* the ids of the chunks the threads stored, in the order handed over */
  struct put_job **jobs = xcalloc(pw->pool.seq + 1, sizeof *jobs);
  for (struct put_job *j = pw->pool.done; j; j = j->next) jobs[j->seq] = j;
  for (size_t i = 0; i < pw->pool.seq; i++) {
    struct put_job *j = jobs[i];
    char **slot = j->block ? &d->chunks[j->index] : &d->patch_chunks[j->index];
    free(*slot);
    *slot = xstrdup(j->id);
  }
  free(jobs);
  pw->st.chunks_new += pw->pool.st.chunks_new;
  pw->st.chunks_reused += pw->pool.st.chunks_reused;
  pw->st.bytes_stored += pw->pool.st.bytes_stored;
  fresh_normalize(&pw->fresh);
  const struct manifest_patch *nw = pw->fresh.ptr;
  size_t nn = pw->fresh.len, k = 0;
  /* the old patches minus what the fresh ones cover, then merged with them;
   * nothing survives inside a block given whole */
  struct patchvec old = VEC_INIT, merged = VEC_INIT;
  for (size_t i = 0; i < d->npatches; i++) {
    const struct manifest_patch *p = &d->patches[i];
    if (pw->replaced[p->off / REPO_CHUNK_SIZE]) continue;
    uint64_t s = p->off, e = p->off + p->len, cur = s;
    while (k < nn && nw[k].off + nw[k].len <= s) k++;
    for (size_t q = k; q < nn && nw[q].off < e; q++) {
      if (nw[q].off > cur) vec_push(&old, patch_cut(p, cur, nw[q].off));
      if (nw[q].off + nw[q].len > cur) cur = nw[q].off + nw[q].len;
    }
    if (cur < e) vec_push(&old, patch_cut(p, cur, e));
  }
  size_t a = 0, b = 0;
  while (a < old.len || b < nn) {
    if (b < nn && pw->replaced[nw[b].off / REPO_CHUNK_SIZE]) {
      b++;
      continue;
    }
    if (b >= nn || (a < old.len && old.ptr[a].off < nw[b].off)) vec_push(&merged, old.ptr[a++]);
    else vec_push(&merged, nw[b++]);
  }
  free(old.ptr);
  /* drop patch chunks nothing points into any more, renumbering the rest */
  uint32_t *map = xcalloc(d->npatch_chunks + 1, sizeof *map);
  for (size_t i = 0; i < merged.len; i++)
    if (merged.ptr[i].ref != MANIFEST_ZERO_REF) map[merged.ptr[i].ref] = 1;
  uint32_t kept = 0;
  for (size_t i = 0; i < d->npatch_chunks; i++) {
    if (map[i]) {
      d->patch_chunks[kept] = d->patch_chunks[i];
      map[i] = kept++;
    } else {
      free(d->patch_chunks[i]);
    }
  }
  d->npatch_chunks = kept;
  for (size_t i = 0; i < merged.len; i++)
    if (merged.ptr[i].ref != MANIFEST_ZERO_REF) merged.ptr[i].ref = map[merged.ptr[i].ref];
  free(map);
  free(d->patches);
  d->patches = merged.ptr ? merged.ptr : xcalloc(1, sizeof *d->patches);
  d->npatches = merged.len;
  char digest[REPO_ID_HEX + 1];
  manifest_disk_digest(d, digest);
  free(d->digest);
  d->digest = xstrdup(digest);
  if (st) *st = pw->st;
  patch_writer_free(pw);
  return 0;
}

/* ---- reading a disk back ---- */

/* decompressed, checked patch chunks: 4 MiB a slot, allocated at its first
 * use. A reader pins one slot at a time (while it copies a patch out) and
 * waits while none is free, so more slots than readers means a free one
 * always comes. Beyond that, a cache holds as many chunks as a walk through
 * the disk needs at once (patch_working_set), up to PATCH_CACHE_MAX_SLOTS:
 * each round of incremental backups packs its patches in disk order, so a
 * disk with R rounds of patches needs about R chunks at any point of the
 * walk, and a cache smaller than that reads and checks each chunk again for
 * nearly every block (measured: a restore of 25 rounds of 1 % changes took
 * 19 s with 10 slots). */
#define PATCH_CACHE_MAX_SLOTS 32

struct cached_chunk {
  uint32_t ref;  /* MANIFEST_ZERO_REF: empty */
  size_t len;
  unsigned char *data;
  uint64_t used; /* the cache's clock at the last use: least recently used goes */
  int pins;      /* readers copying from it, or its loader */
  bool loading;  /* being read by one reader; the others wait */
};

struct patch_cache {
  pthread_mutex_t lock;
  pthread_cond_t changed; /* a slot was loaded, failed or unpinned */
  size_t nslots;
  struct cached_chunk *slot;
  uint64_t clock;
};

size_t patch_working_set(const struct manifest_disk *d)
{
  if (!d->npatch_chunks || !d->nchunks) return 0;
  /* each chunk is needed from the first block that uses it to the last:
   * the most such spans over one block */
  AUTOFREE size_t *first = xcalloc(d->npatch_chunks, sizeof *first);
  AUTOFREE size_t *last = xcalloc(d->npatch_chunks, sizeof *last);
  AUTOFREE long *delta = xcalloc(d->nchunks + 1, sizeof *delta);
  for (size_t i = 0; i < d->npatch_chunks; i++) first[i] = SIZE_MAX;
  for (size_t i = 0; i < d->npatches; i++) {
    const struct manifest_patch *p = &d->patches[i];
    if (p->ref == MANIFEST_ZERO_REF || p->ref >= d->npatch_chunks) continue;
    size_t b = (size_t)(p->off / REPO_CHUNK_SIZE);
    if (b >= d->nchunks) continue;
    if (b < first[p->ref]) first[p->ref] = b;
    if (b > last[p->ref]) last[p->ref] = b;
  }
  for (size_t i = 0; i < d->npatch_chunks; i++) {
    if (first[i] == SIZE_MAX) continue;
    delta[first[i]]++;
    delta[last[i] + 1]--;
  }
  long live = 0, most = 0;
  for (size_t b = 0; b < d->nchunks; b++) {
    live += delta[b];
    if (live > most) most = live;
  }
  return (size_t)most;
}

struct patch_cache *patch_cache_new(const struct manifest_disk *d, size_t readers)
{
  if (readers < 1) readers = 1;
  if (readers > PATCH_CACHE_READERS) readers = PATCH_CACHE_READERS;
  /* what the walk needs, plus a slot for each reader's next chunk and one spare */
  size_t n = patch_working_set(d) + readers + 1;
  if (n < readers + 2) n = readers + 2;
  if (n > PATCH_CACHE_MAX_SLOTS) n = PATCH_CACHE_MAX_SLOTS;
  struct patch_cache *pc = xcalloc(1, sizeof *pc);
  pthread_mutex_init(&pc->lock, NULL);
  pthread_cond_init(&pc->changed, NULL);
  pc->nslots = n;
  pc->slot = xcalloc(n, sizeof *pc->slot);
  for (size_t i = 0; i < n; i++) pc->slot[i].ref = MANIFEST_ZERO_REF;
  return pc;
}

void patch_cache_free(struct patch_cache *pc)
{
  if (!pc) return;
  for (size_t i = 0; i < pc->nslots; i++) free(pc->slot[i].data);
  free(pc->slot);
  pthread_cond_destroy(&pc->changed);
  pthread_mutex_destroy(&pc->lock);
  free(pc);
}

struct disk_reader {
  struct repo_worker *w;
  const struct manifest_disk *d;
  size_t next_patch;       /* first patch not before the last block read */
  struct patch_cache *pc;  /* shared, or own_pc */
  struct patch_cache *own_pc;
};

struct disk_reader *disk_reader_new(struct repo *r, const struct manifest_disk *d, struct patch_cache *shared)
{
  struct repo_worker *w = repo_worker_new(r);
  if (!w) return NULL;
  struct disk_reader *dr = xcalloc(1, sizeof *dr);
  dr->w = w;
  dr->d = d;
  dr->pc = shared ? shared : (dr->own_pc = patch_cache_new(d, 1));
  return dr;
}

void disk_reader_free(struct disk_reader *dr)
{
  if (!dr) return;
  repo_worker_free(dr->w);
  patch_cache_free(dr->own_pc);
  free(dr);
}

/* the patch chunk ref, decompressed and checked, pinned until
 * patch_chunk_release; NULL with the error */
static struct cached_chunk *patch_chunk(struct disk_reader *dr, uint32_t ref)
{
  struct patch_cache *pc = dr->pc;
  pthread_mutex_lock(&pc->lock);
  for (;;) {
    struct cached_chunk *victim = NULL;
    bool wait = false;
    for (size_t i = 0; i < pc->nslots; i++) {
      struct cached_chunk *c = &pc->slot[i];
      if (c->ref == ref) {
        if (c->loading) {
          wait = true;
          break;
        }
        c->pins++;
        c->used = ++pc->clock;
        pthread_mutex_unlock(&pc->lock);
        return c;
      }
      if (!c->pins && (!victim || c->used < victim->used)) victim = c;
    }
    if (wait || !victim) {
      pthread_cond_wait(&pc->changed, &pc->lock);
      continue;
    }
    /* load it into victim, outside the lock: no other reader touches a
     * slot that is loading */
    victim->ref = ref;
    victim->loading = true;
    victim->pins = 1;
    pthread_mutex_unlock(&pc->lock);
    if (!victim->data) victim->data = xalloc_large(REPO_CHUNK_SIZE);
    int rc = repo_chunk_get(dr->w, dr->d->patch_chunks[ref], victim->data, REPO_CHUNK_SIZE, &victim->len);
    pthread_mutex_lock(&pc->lock);
    victim->loading = false;
    if (rc < 0) {
      victim->ref = MANIFEST_ZERO_REF;
      victim->pins = 0;
      victim->used = 0;
    } else {
      victim->used = ++pc->clock;
    }
    pthread_cond_broadcast(&pc->changed);
    pthread_mutex_unlock(&pc->lock);
    return rc < 0 ? NULL : victim;
  }
}

static void patch_chunk_release(struct disk_reader *dr, struct cached_chunk *c)
{
  struct patch_cache *pc = dr->pc;
  pthread_mutex_lock(&pc->lock);
  /* only a slot no one pins can be given to a waiting reader */
  if (--c->pins == 0) pthread_cond_broadcast(&pc->changed);
  pthread_mutex_unlock(&pc->lock);
}

int disk_reader_block(struct disk_reader *dr, size_t b, unsigned char *buf, size_t *len,
                      unsigned char map[REPO_PAGE_MAP_BYTES])
{
  const struct manifest_disk *d = dr->d;
  if (b >= d->nchunks) return error(ERR_INVALID, "disk '%s' has no block %zu", d->id ? d->id : "?", b);
  uint64_t off = (uint64_t)b * REPO_CHUNK_SIZE;
  size_t want = (size_t)(d->size - off < REPO_CHUNK_SIZE ? d->size - off : REPO_CHUNK_SIZE);
  const char *id = d->chunks[b];
  if (strcmp(id, REPO_ZERO_MARK) == 0) {
    memset(buf, 0, want);
    if (map) memset(map, 0, REPO_PAGE_MAP_BYTES);
  } else {
    size_t got;
    if ((map ? repo_chunk_get_map(dr->w, id, buf, REPO_CHUNK_SIZE, &got, map)
             : repo_chunk_get(dr->w, id, buf, REPO_CHUNK_SIZE, &got)) < 0)
      return -1;
    if (got != want)
      return error(ERR_INVALID, "chunk '%s' holds %zu bytes where block %zu of disk '%s' needs %zu", id, got, b,
                   d->id ? d->id : "?", want);
  }
  /* the patches of this block (blocks are mostly read in order: start from
   * where the last one ended, else search) */
  size_t i = dr->next_patch;
  if (i > d->npatches || (i > 0 && d->patches[i - 1].off >= off) || (i < d->npatches && d->patches[i].off < off)) {
    size_t lo = 0, hi = d->npatches;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (d->patches[mid].off < off) lo = mid + 1;
      else hi = mid;
    }
    i = lo;
  }
  for (; i < d->npatches && d->patches[i].off < off + want; i++) {
    const struct manifest_patch *p = &d->patches[i];
    unsigned char *dst = buf + (p->off - off);
    if (p->ref == MANIFEST_ZERO_REF) { /* its pages keep their bits: data around it stays data */
      memset(dst, 0, p->len);
      continue;
    }
    for (size_t pg = (p->off - off) / REPO_PAGE_SIZE; map && pg * REPO_PAGE_SIZE < p->off - off + p->len; pg++)
      map[pg / 8] |= (unsigned char)(1u << (pg % 8));
    struct cached_chunk *c = patch_chunk(dr, p->ref);
    if (!c) return -1;
    size_t have = c->len;
    if ((uint64_t)p->ref_off + p->len <= have) memcpy(dst, c->data + p->ref_off, p->len);
    patch_chunk_release(dr, c);
    if ((uint64_t)p->ref_off + p->len > have)
      return error(ERR_INVALID, "chunk '%s' holds %zu bytes, too few for a patch of disk '%s' at %llu",
                   d->patch_chunks[p->ref], have, d->id ? d->id : "?", (unsigned long long)p->off);
  }
  dr->next_patch = i;
  *len = want;
  return 0;
}
