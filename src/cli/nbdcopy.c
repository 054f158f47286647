/* nbdcopy.c: a disk's bytes between an NBD transfer URL and the repository.
 *
 * Backup (nbd_to_repo): the calling thread owns the NBD handle. It asks for
 * the allocation map (base:allocation) once, then keeps up to QUEUE chunk
 * reads in flight (nbd_aio_pread of READ_SIZE pieces into a ring of 4 MiB
 * slots; chunk i uses slot i % QUEUE). Zero and unallocated ranges are never
 * read, and their whole pages are not even zeroed: the slot's hole map tells
 * repo_chunk_put_holes which pages are zero. As chunks complete it takes them in disk order and, unless the chunk is a
 * hole, hands it to the worker threads, which record all-zero chunks as zero
 * markers and hash, compress and store the others. A slot returns to the
 * ring when its worker is done with it, so memory stays at QUEUE chunks plus
 * the buffers of each worker. The disk's digest is computed from the chunk
 * ids when the manifest is written: the data is hashed once. (Restore is
 * restoreio.c.) */
#include "cli/transfer.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/vec.h"
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define QUEUE 16 /* chunks in flight: 64 MiB */
/* NBD reads are cut to this size: qemu-nbd served 4 MiB requests 2x slower
 * than 256 KiB ones here (nbdcopy --request-size, one connection) */
#define READ_SIZE ((size_t)256 << 10)
#define STATUS_SPAN ((uint64_t)1 << 30) /* block status asked per request */

DEFINE_AUTOPTR(nbd_handle, struct nbd_handle, nbd_close)

static struct nbd_handle *nbd_open_url(const char *url, bool want_extents)
{
  struct nbd_handle *h = nbd_create();
  if (!h) {
    error(ERR_INTERNAL, "cannot create an NBD handle: %s", nbd_get_error());
    return NULL;
  }
  /* a read's buffer is used only once the read succeeded (libnbd fails a
   * structured read that does not cover it all): libnbd's zeroing of each
   * buffer first was 12% of an incremental backup's CPU */
  if (nbd_set_pread_initialize(h, false) < 0 ||
      (want_extents && nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0) ||
      nbd_connect_uri(h, url) < 0) {
    error(ERR_UNAVAILABLE, "cannot connect to '%s': %s", url, nbd_get_error());
    nbd_close(h);
    return NULL;
  }
  return h;
}

/* ---- the allocation map ---- */

struct extent { uint64_t off, len; bool zero; };
DEFINE_VEC(extentvec, struct extent);

struct extent_ctx { struct extentvec *v; uint64_t end; /* end of what was received */ uint64_t limit; };

static int extent_cb(void *opaque, const char *context, uint64_t offset, uint32_t *entries, size_t n, int *err)
{
  struct extent_ctx *x = opaque;
  if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) return 0;
  for (size_t i = 0; i + 1 < n; i += 2) {
    uint64_t len = entries[i];
    if (offset >= x->limit) break;
    if (offset + len > x->limit) len = x->limit - offset;
    bool zero = entries[i + 1] & LIBNBD_STATE_ZERO;
    struct extentvec *v = x->v;
    if (v->len && v->ptr[v->len - 1].zero == zero && v->ptr[v->len - 1].off + v->ptr[v->len - 1].len == offset)
      v->ptr[v->len - 1].len += len;
    else
      vec_push(v, ((struct extent){offset, len, zero}));
    offset += len;
  }
  if (offset > x->end) x->end = offset;
  return 0;
}

static int extents_read(struct nbd_handle *h, uint64_t size, struct extentvec *v)
{
  if (nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1) {
    vec_push(v, ((struct extent){0, size, false}));
    return 0;
  }
  struct extent_ctx x = {v, 0, size};
  while (x.end < size) {
    uint64_t want = size - x.end < STATUS_SPAN ? size - x.end : STATUS_SPAN, before = x.end;
    if (nbd_block_status(h, want, x.end, (nbd_extent_callback){.callback = extent_cb, .user_data = &x}, 0) < 0)
      return error(ERR_INTERNAL, "cannot read the allocation map: %s", nbd_get_error());
    if (x.end <= before) { /* the server said nothing: read the rest */
      vec_push(v, ((struct extent){before, size - before, false}));
      x.end = size;
    }
  }
  return 0;
}

/* ---- backup ---- */

enum slot_state { SLOT_FREE, SLOT_READING, SLOT_READY, SLOT_BUSY };

struct slot {
  unsigned char *buf;
  size_t index;        /* chunk index */
  size_t len;
  int pending;         /* NBD reads outstanding (main thread only) */
  int err;             /* errno of a failed read */
  bool hole;           /* nothing was read: all zero */
  unsigned char holes[REPO_PAGE_MAP_BYTES]; /* pages not read: zero, their bytes unwritten */
  _Atomic int state;
};

/* a FIFO of slots; at most QUEUE are ever queued */
struct slotq { struct slot *s[QUEUE]; size_t head, len; };

static void slotq_push(struct slotq *q, struct slot *s)
{
  q->s[(q->head + q->len) % QUEUE] = s;
  q->len++;
}

static struct slot *slotq_pop(struct slotq *q)
{
  struct slot *s = q->s[q->head];
  q->head = (q->head + 1) % QUEUE;
  q->len--;
  return s;
}

struct backup_job {
  struct repo *r;
  char **chunks;               /* the disk's chunk slots in the manifest */
  struct copy_stats *st;
  pthread_mutex_t lock;
  pthread_cond_t work;         /* workers wait for queued slots */
  pthread_cond_t done;         /* the main thread waits for released slots */
  struct slotq store;          /* slots to store, any order */
  bool stop;
  bool failed;
  struct err_saved err;        /* the first worker error */
  unsigned long stored_events; /* bumped at every release, under lock */
};

/* under lock: the worker is done with s */
static void slot_release(struct backup_job *j, struct slot *s)
{
  atomic_store(&s->state, SLOT_FREE);
  j->stored_events++;
  pthread_cond_broadcast(&j->done);
}

static void *backup_worker(void *arg)
{
  struct backup_job *j = arg;
  AUTOPTR(repo_worker) w = repo_worker_new(j->r);
  pthread_mutex_lock(&j->lock);
  if (!w) {
    if (!j->failed) error_save(&j->err);
    j->failed = true;
    j->stored_events++;
    pthread_cond_broadcast(&j->done);
  }
  while (w) {
    while (!j->store.len && !j->stop) pthread_cond_wait(&j->work, &j->lock);
    if (!j->store.len) break;
    struct slot *s = slotq_pop(&j->store);
    pthread_mutex_unlock(&j->lock);
    char id[REPO_ID_HEX + 1];
    bool is_new = false, zero = false;
    size_t stored = 0;
    int rc = repo_chunk_put_holes(w, s->buf, s->len, s->holes, id, &is_new, &stored, &zero);
    pthread_mutex_lock(&j->lock);
    if (rc < 0) {
      if (!j->failed) error_save(&j->err);
      j->failed = true;
    } else if (zero) {
      j->chunks[s->index] = xstrdup(REPO_ZERO_MARK);
      j->st->chunks_zero++;
    } else {
      j->chunks[s->index] = xstrdup(id);
      if (is_new) j->st->chunks_new++;
      else j->st->chunks_reused++;
      j->st->bytes_stored += stored;
    }
    slot_release(j, s);
  }
  pthread_mutex_unlock(&j->lock);
  return NULL;
}

static int read_done(void *opaque, int *err)
{
  struct slot *s = opaque;
  if (*err && !s->err) s->err = *err;
  if (--s->pending == 0) atomic_store(&s->state, SLOT_READY);
  return 1;
}

/* bytes [a, b) of slot s are zero: whole pages become holes, never written;
 * the edges of partial pages are zeroed */
static void slot_zero(struct slot *s, size_t a, size_t b)
{
  size_t pa = (a + REPO_PAGE_SIZE - 1) / REPO_PAGE_SIZE, pb = b / REPO_PAGE_SIZE;
  if (b == s->len) pb = (b + REPO_PAGE_SIZE - 1) / REPO_PAGE_SIZE; /* a short last page */
  if (pa >= pb) {
    memset(s->buf + a, 0, b - a);
    return;
  }
  memset(s->buf + a, 0, pa * REPO_PAGE_SIZE - a);
  if (pb * REPO_PAGE_SIZE < b) memset(s->buf + pb * REPO_PAGE_SIZE, 0, b - pb * REPO_PAGE_SIZE);
  for (size_t i = pa; i < pb; i++) s->holes[i / 8] |= (unsigned char)(1u << (i % 8));
}

/* starts the reads of chunk idx into s: data extents are read, the rest are
 * holes (slot_zero) */
static int issue_chunk(struct nbd_handle *h, struct slot *s, size_t idx, uint64_t size,
                       const struct extentvec *ext, size_t *cursor, struct copy_stats *st)
{
  uint64_t off = (uint64_t)idx * REPO_CHUNK_SIZE, end = off + REPO_CHUNK_SIZE;
  if (end > size) end = size;
  s->index = idx;
  s->len = (size_t)(end - off);
  s->pending = 0;
  s->err = 0;
  s->hole = true;
  memset(s->holes, 0, sizeof s->holes);
  atomic_store(&s->state, SLOT_READING);
  /* skip extents that end before this chunk */
  while (*cursor < ext->len && ext->ptr[*cursor].off + ext->ptr[*cursor].len <= off) (*cursor)++;
  uint64_t pos = off;
  for (size_t i = *cursor; i < ext->len && ext->ptr[i].off < end; i++) {
    const struct extent *e = &ext->ptr[i];
    uint64_t a = e->off > off ? e->off : off, b = e->off + e->len < end ? e->off + e->len : end;
    if (e->zero || a >= b) continue;
    if (a > pos) slot_zero(s, (size_t)(pos - off), (size_t)(a - off));
    s->hole = false;
    for (uint64_t p = a; p < b; p += READ_SIZE) {
      size_t len = b - p < READ_SIZE ? (size_t)(b - p) : READ_SIZE;
      s->pending++;
      if (nbd_aio_pread(h, s->buf + (p - off), len, p,
                        (nbd_completion_callback){.callback = read_done, .user_data = s}, 0) < 0) {
        s->pending--;
        return error(ERR_INTERNAL, "cannot read at offset %llu: %s", (unsigned long long)p, nbd_get_error());
      }
    }
    st->bytes_read += b - a;
    pos = b;
  }
  if (!s->hole && pos < end) slot_zero(s, (size_t)(pos - off), (size_t)(end - off));
  if (s->pending == 0) atomic_store(&s->state, SLOT_READY);
  return 0;
}

int nbd_to_repo(struct repo *r, const char *url, struct manifest *m, size_t *disk_index, int workers,
                struct copy_stats *st, copy_progress_fn progress, void *opaque)
{
  AUTOPTR(nbd_handle) h = nbd_open_url(url, true);
  if (!h) return -1;
  int64_t ssize = nbd_get_size(h);
  if (ssize < 0) return error(ERR_INTERNAL, "cannot get the size of '%s': %s", url, nbd_get_error());
  uint64_t size = (uint64_t)ssize;
  struct extentvec ext = VEC_INIT;
  if (extents_read(h, size, &ext) < 0) {
    free(ext.ptr);
    return -1;
  }
  *disk_index = m->ndisks;
  struct manifest_disk *d = manifest_add_disk(m, size);
  size_t n = d->nchunks;

  struct slot slots[QUEUE];
  memset(slots, 0, sizeof slots);
  for (int i = 0; i < QUEUE; i++) slots[i].buf = xalloc_large(REPO_CHUNK_SIZE);
  struct backup_job j = {.r = r, .chunks = d->chunks, .st = st};
  pthread_mutex_init(&j.lock, NULL);
  pthread_cond_init(&j.work, NULL);
  pthread_cond_init(&j.done, NULL);
  if (workers < 1) workers = 1;
  if (workers > 8) workers = 8;
  pthread_t tid[8];
  int started = 0;
  for (; started < workers; started++)
    if (pthread_create(&tid[started], NULL, backup_worker, &j) != 0) break;

  int rc = started ? 0 : error(ERR_INTERNAL, "cannot start worker threads");
  size_t next_issue = 0, next_done = 0, cursor = 0;
  bool by_worker = false;
  while (rc == 0 && next_done < n) {
    if (cli_interrupted) {
      rc = error(ERR_INTERNAL, "interrupted");
      break;
    }
    pthread_mutex_lock(&j.lock);
    bool failed = j.failed;
    unsigned long seen = j.stored_events;
    pthread_mutex_unlock(&j.lock);
    if (failed) {
      rc = -1;
      by_worker = true;
      break;
    }
    /* fill the ring */
    while (next_issue < n && next_issue < next_done + QUEUE &&
           atomic_load(&slots[next_issue % QUEUE].state) == SLOT_FREE) {
      if ((rc = issue_chunk(h, &slots[next_issue % QUEUE], next_issue, size, &ext, &cursor, st)) < 0) break;
      next_issue++;
    }
    if (rc < 0) break;
    /* take completed chunks in disk order: unless a hole, to a worker
     * (which also finds chunks that read as all zero) */
    struct slot *s = &slots[next_done % QUEUE];
    if (next_done < next_issue && atomic_load(&s->state) == SLOT_READY) {
      if (s->err) {
        rc = error(ERR_INTERNAL, "cannot read chunk %zu of '%s': %s", s->index, url, strerror(s->err));
        break;
      }
      atomic_store(&s->state, SLOT_BUSY);
      pthread_mutex_lock(&j.lock);
      if (s->hole) {
        d->chunks[s->index] = xstrdup(REPO_ZERO_MARK);
        st->chunks_zero++;
        atomic_store(&s->state, SLOT_FREE);
      } else {
        slotq_push(&j.store, s);
        pthread_cond_signal(&j.work);
      }
      pthread_mutex_unlock(&j.lock);
      next_done++;
      if (progress) progress(opaque, next_done == n ? size : (uint64_t)next_done * REPO_CHUNK_SIZE);
      continue;
    }
    /* wait: for a read when any is in flight, else for a worker */
    if (nbd_aio_in_flight(h) > 0) {
      if (nbd_poll(h, -1) < 0) rc = error(ERR_INTERNAL, "NBD connection to '%s' failed: %s", url, nbd_get_error());
    } else {
      pthread_mutex_lock(&j.lock);
      while (j.stored_events == seen && !j.failed) pthread_cond_wait(&j.done, &j.lock);
      pthread_mutex_unlock(&j.lock);
    }
  }
  /* drain: reads still in flight must finish before their buffers go */
  while (nbd_aio_in_flight(h) > 0)
    if (nbd_poll(h, -1) < 0) break;
  /* the workers finish what is queued, then stop */
  pthread_mutex_lock(&j.lock);
  j.stop = true;
  pthread_cond_broadcast(&j.work);
  pthread_mutex_unlock(&j.lock);
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
  if (j.failed && (rc == 0 || by_worker)) {
    error_restore(&j.err);
    rc = -1;
  } else if (j.failed) {
    free(j.err.msg);
  }
  if (rc == 0) {
    d->mode = xstrdup("full");
    nbd_shutdown(h, 0);
  }
  for (int i = 0; i < QUEUE; i++) free(slots[i].buf);
  pthread_cond_destroy(&j.work);
  pthread_cond_destroy(&j.done);
  pthread_mutex_destroy(&j.lock);
  free(ext.ptr);
  return rc;
}
