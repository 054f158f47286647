/* restoreio.c: a disk's bytes from the repository to an upload transfer
 * (restore).
 *
 * Worker threads read the blocks ahead of the writer, QUEUE blocks at most,
 * into a ring of 4 MiB slots (block i uses slot i % QUEUE): each through its
 * own disk_reader (the block's chunk with the backup's patches laid over it,
 * every chunk checked against its id), so reading, decompressing and
 * hashing run on every core. The readers share one patch_cache, sized by
 * how many patch chunks the walk through the disk needs at once: with a
 * cache each, every worker read and hashed each patch chunk of an
 * incremental backup again (4 workers: 4 times the patch chunks' bytes), and
 * a cache smaller than the walk needs reads them again for nearly every
 * block. The calling thread takes the blocks in disk
 * order and writes their non-zero runs: over NBD with nbd_aio_pwrite in
 * pieces of WRITE_SIZE, the writes of many blocks in flight, or, when the NBD export cannot be
 * reached (a remote engine), over the transfer's imageio URL with one PUT
 * per run (?flush=n, as ovirt-imageio's client does) and one PATCH flush at
 * the end. Zero ranges of ZERO_RUN bytes or more are not written, because
 * the target is a fresh disk that reads as zeros, so the restored image
 * stays sparse; they are found from the block's page map, which checking
 * each chunk against its id yields anyway, not by scanning the bytes again. A slot returns to the ring when its writes are done, so
 * memory stays at QUEUE blocks plus each worker's reader.
 *
 * Version 1 manifests carry the SHA-256 of the whole disk: the calling
 * thread hashes the blocks in order and checks it at the end. */
#include "cli/imageio.h"
#include "cli/transfer.h"
#include "util/err.h"
#include "util/uuid.h"
#include <errno.h>
#include <libnbd.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define QUEUE 16                    /* blocks read ahead or being written: 64 MiB */
#define ZERO_RUN ((size_t)64 << 10) /* zero ranges this long stay holes */
/* NBD writes are cut to this size: qemu-nbd writing into a qcow2 took 2-3x
 * longer for 4 MiB requests than for 256 KiB ones through the page cache
 * (nbdcopy --request-size, one connection). The engine's qemu-nbd writes
 * uploads with O_DIRECT (--cache=none): a restore of the bench's 2 GiB took
 * 3.4 s median with 512 KiB writes, 4.0 s with 256 KiB, 3.5 s with 1 MiB
 * (ABBA, 6 runs each) */
#define WRITE_SIZE ((size_t)512 << 10)
#define MAX_WORKERS PATCH_CACHE_READERS /* the readers one patch_cache serves */
/* the NBD socket's send buffer: with the default (208 KiB) each 256 KiB write
 * waits for qemu-nbd to drain the one before, and the two take turns; 4 MiB
 * lets several writes queue in the kernel. Writing 1 GiB into a new qcow2
 * through qemu-nbd took 10-13% less time here (nbdcopy, net.core.wmem_default
 * raised as the only change). The kernel caps it at net.core.wmem_max. */
#define SEND_BUFFER (4 << 20)

DEFINE_AUTOPTR(nbd_handle, struct nbd_handle, nbd_close)
DEFINE_AUTOPTR(EVP_MD_CTX, EVP_MD_CTX, EVP_MD_CTX_free)

enum slot_state {
  SLOT_FREE,    /* in the ring, unused */
  SLOT_QUEUED,  /* waiting for or being read by a worker */
  SLOT_READY,   /* read: the block's bytes are in buf (or it is a hole) */
  SLOT_WRITING, /* NBD writes of the block in flight */
};

struct slot {
  unsigned char *buf;
  size_t index;     /* block index */
  size_t len;       /* the block's length */
  bool hole;        /* a zero block without patches: nothing to read or write */
  unsigned char map[REPO_PAGE_MAP_BYTES]; /* its pages that may hold data (disk_reader_block) */
  int state;        /* enum slot_state, under the job's lock */
  int pending;      /* NBD writes in flight (calling thread only) */
  int err;          /* errno of a failed NBD write */
};

struct restore_job {
  struct repo *r;
  const struct manifest_disk *d;
  struct patch_cache *patches; /* shared by the workers' readers */
  pthread_mutex_t lock;
  pthread_cond_t work;      /* workers wait for queued slots */
  struct slot *queue[QUEUE]; /* slots to read, in block order */
  size_t qhead, qlen;
  bool stop;
  bool failed;
  struct err_saved err;     /* the first worker error */
  bool by_worker;           /* the writer stopped for it */
  int wake;                 /* eventfd: a worker finished a slot */
};

static void wake_writer(struct restore_job *j)
{
  uint64_t one = 1;
  while (write(j->wake, &one, sizeof one) < 0 && errno == EINTR) {}
}

static void *restore_worker(void *arg)
{
  struct restore_job *j = arg;
  AUTOPTR(disk_reader) dr = disk_reader_new(j->r, j->d, j->patches);
  pthread_mutex_lock(&j->lock);
  if (!dr) {
    if (!j->failed) error_save(&j->err);
    j->failed = true;
    wake_writer(j);
  }
  while (dr) {
    while (!j->qlen && !j->stop) pthread_cond_wait(&j->work, &j->lock);
    if (!j->qlen) break;
    struct slot *s = j->queue[j->qhead];
    j->qhead = (j->qhead + 1) % QUEUE;
    j->qlen--;
    pthread_mutex_unlock(&j->lock);
    size_t got = 0;
    int rc = disk_reader_block(dr, s->index, s->buf, &got, s->map);
    pthread_mutex_lock(&j->lock);
    if (rc < 0) {
      if (!j->failed) error_save(&j->err);
      j->failed = true;
    } else {
      s->len = got;
      s->state = SLOT_READY;
    }
    wake_writer(j);
  }
  pthread_mutex_unlock(&j->lock);
  return NULL;
}

static bool page_data(const struct slot *s, size_t i) { return s->map[i / 8] >> (i % 8) & 1; }

/* the next run of slot s from *pos to write, from its page map (the bytes are
 * not scanned again): data pages, with the zero pages between them when
 * fewer than ZERO_RUN bytes; longer zero runs and the zero pages at the end
 * stay holes. False when nothing is left. */
static bool next_run(const struct slot *s, size_t *pos, size_t *end)
{
  size_t npages = (s->len + REPO_PAGE_SIZE - 1) / REPO_PAGE_SIZE, i = *pos / REPO_PAGE_SIZE;
  while (i < npages && !page_data(s, i)) i++;
  if (i >= npages) return false;
  size_t j = i;
  for (;;) {
    while (j < npages && page_data(s, j)) j++;
    size_t k = j; /* the zero pages after j */
    while (k < npages && !page_data(s, k)) k++;
    if (k >= npages || (k - j) * REPO_PAGE_SIZE >= ZERO_RUN) break;
    j = k;
  }
  *pos = i * REPO_PAGE_SIZE;
  *end = j * REPO_PAGE_SIZE < s->len ? j * REPO_PAGE_SIZE : s->len;
  return true;
}

static int write_done(void *opaque, int *err)
{
  struct slot *s = opaque;
  if (*err && !s->err) s->err = *err;
  s->pending--;
  return 1;
}

/* writes the non-zero runs of slot s (the block at off); the NBD writes stay
 * in flight (s->pending), the HTTP ones are done on return. Adds the bytes
 * sent to *written. */
static int write_block(struct nbd_handle *h, struct imageio *io, struct slot *s, uint64_t off, const char *what,
                       uint64_t *written)
{
  size_t pos = 0, end;
  while (next_run(s, &pos, &end)) {
    for (size_t p = pos; h && p < end; p += WRITE_SIZE) {
      size_t len = end - p < WRITE_SIZE ? end - p : WRITE_SIZE;
      s->pending++;
      if (nbd_aio_pwrite(h, s->buf + p, len, off + p,
                         (nbd_completion_callback){.callback = write_done, .user_data = s}, 0) < 0) {
        s->pending--;
        return error(ERR_INTERNAL, "cannot write to '%s' at offset %llu: %s", what, (unsigned long long)(off + p),
                     nbd_get_error());
      }
    }
    if (!h && imageio_pwrite(io, s->buf + pos, end - pos, off + pos, false) < 0) return -1;
    *written += end - pos;
    pos = end;
  }
  return 0;
}

/* waits until a worker finishes a slot or, with NBD writes in flight, the
 * connection can move on (libnbd's own fd and direction) */
static int wait_events(struct nbd_handle *h, int wake, const char *what)
{
  struct pollfd fds[2] = {{.fd = wake, .events = POLLIN}};
  nfds_t n = 1;
  if (h && nbd_aio_in_flight(h) > 0) {
    unsigned dir = nbd_aio_get_direction(h);
    fds[1].fd = nbd_aio_get_fd(h);
    fds[1].events = (short)((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
                            (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0));
    n = 2;
  }
  if (poll(fds, n, -1) < 0) {
    if (errno == EINTR) return 0;
    return error(ERR_INTERNAL, "poll failed: %s", strerror(errno));
  }
  if (fds[0].revents & POLLIN) {
    uint64_t v;
    if (read(wake, &v, sizeof v) < 0 && errno != EAGAIN) return error(ERR_INTERNAL, "eventfd: %s", strerror(errno));
  }
  if (n == 2) {
    int rc = 0;
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) rc = nbd_aio_notify_read(h);
    else if (fds[1].revents & POLLOUT) rc = nbd_aio_notify_write(h);
    if (rc < 0) return error(ERR_INTERNAL, "NBD connection to '%s' failed: %s", what, nbd_get_error());
  }
  return 0;
}

/* the target's size: the NBD export's, else the imageio URL's */
static int target_size(struct nbd_handle *h, struct imageio *io, const char *what, uint64_t *size)
{
  int64_t s = h ? nbd_get_size(h) : imageio_size(io);
  if (s < 0) return h ? error(ERR_INTERNAL, "cannot get the size of '%s': %s", what, nbd_get_error()) : -1;
  *size = (uint64_t)s;
  return 0;
}

/* the calling thread's loop: queue blocks to the workers, write them in
 * order, hash them in order for a version 1 manifest */
static int restore_loop(struct restore_job *j, struct slot *slots, struct nbd_handle *h, struct imageio *io,
                        const char *what, EVP_MD_CTX *md, struct copy_stats *st, copy_progress_fn progress,
                        void *opaque)
{
  const struct manifest_disk *d = j->d;
  size_t n = d->nchunks, next_queue = 0, next_write = 0;
  while (next_write < n) {
    if (cli_interrupted) return error(ERR_INTERNAL, "interrupted");
    /* slots whose writes are done go back to the ring */
    for (int i = 0; i < QUEUE; i++) {
      struct slot *s = &slots[i];
      if (s->state == SLOT_WRITING && s->pending == 0) {
        if (s->err) return error(ERR_INTERNAL, "cannot write to '%s': %s", what, strerror(s->err));
        s->state = SLOT_FREE;
      }
    }
    pthread_mutex_lock(&j->lock);
    if (j->failed) {
      j->by_worker = true;
      pthread_mutex_unlock(&j->lock);
      return -1; /* the worker's error is restored by the caller */
    }
    /* fill the ring: holes need no worker */
    while (next_queue < n && next_queue < next_write + QUEUE && slots[next_queue % QUEUE].state == SLOT_FREE) {
      struct slot *s = &slots[next_queue % QUEUE];
      uint64_t off = (uint64_t)next_queue * REPO_CHUNK_SIZE;
      s->index = next_queue;
      s->len = (size_t)(d->size - off < REPO_CHUNK_SIZE ? d->size - off : REPO_CHUNK_SIZE);
      s->hole = strcmp(d->chunks[next_queue], REPO_ZERO_MARK) == 0 && manifest_disk_block_patches(d, next_queue) == 0;
      s->err = 0;
      if (s->hole) {
        s->state = SLOT_READY;
      } else {
        s->state = SLOT_QUEUED;
        j->queue[(j->qhead + j->qlen) % QUEUE] = s;
        j->qlen++;
        pthread_cond_signal(&j->work);
      }
      next_queue++;
    }
    struct slot *s = &slots[next_write % QUEUE];
    bool ready = next_write < next_queue && s->state == SLOT_READY;
    pthread_mutex_unlock(&j->lock);
    if (!ready) {
      if (wait_events(h, j->wake, what) < 0) return -1;
      continue;
    }
    uint64_t off = (uint64_t)s->index * REPO_CHUNK_SIZE;
    if (s->hole) {
      if (md) {
        memset(s->buf, 0, s->len);
        EVP_DigestUpdate(md, s->buf, s->len);
      }
      st->chunks_zero++;
      s->state = SLOT_FREE;
    } else {
      if (md) EVP_DigestUpdate(md, s->buf, s->len);
      if (write_block(h, io, s, off, what, &st->bytes_read) < 0) return -1;
      st->chunks_reused++;
      s->state = h ? SLOT_WRITING : SLOT_FREE;
    }
    next_write++;
    if (progress) progress(opaque, next_write == n ? d->size : off + s->len);
  }
  return 0;
}

int repo_to_disk(struct repo *r, const struct manifest_disk *d, const char *nbd_url, struct imageio *io,
                 int workers, struct copy_stats *st, copy_progress_fn progress, void *opaque)
{
  AUTOPTR(nbd_handle) h = NULL;
  const char *what = nbd_url;
  if (nbd_url) {
    AUTOFREE char *why = NULL;
    h = transfer_nbd_try(nbd_url, &why);
    if (!h) return error(ERR_UNAVAILABLE, "%s", why);
    int sndbuf = SEND_BUFFER, fd = nbd_aio_get_fd(h);
    /* best effort: a smaller buffer only costs speed */
    if (fd >= 0) (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  } else if (!io) {
    return error(ERR_INTERNAL, "restore of disk '%s' has no target", d->id);
  } else {
    what = "the imageio URL";
  }
  uint64_t size = 0;
  if (target_size(h, io, what, &size) < 0) return -1;
  if (size < d->size)
    return error(ERR_CONFLICT, "cannot restore disk '%s': the target has %llu bytes, the backup %llu",
                 d->alias ? d->alias : d->id, (unsigned long long)size, (unsigned long long)d->size);
  AUTOPTR(EVP_MD_CTX) md = d->sha256 ? EVP_MD_CTX_new() : NULL;
  if (d->sha256 && (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1))
    return error(ERR_INTERNAL, "cannot start checking disk '%s'", d->id);

  struct slot slots[QUEUE];
  memset(slots, 0, sizeof slots);
  for (int i = 0; i < QUEUE; i++) slots[i].buf = xalloc_large(REPO_CHUNK_SIZE);
  if (workers < 1) workers = 1;
  if (workers > MAX_WORKERS) workers = MAX_WORKERS;
  AUTOPTR(patch_cache) patches = patch_cache_new(d, (size_t)workers);
  struct restore_job j = {.r = r, .d = d, .patches = patches, .wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  pthread_mutex_init(&j.lock, NULL);
  pthread_cond_init(&j.work, NULL);
  pthread_t tid[MAX_WORKERS];
  int started = 0;
  if (j.wake >= 0)
    for (; started < workers; started++)
      if (pthread_create(&tid[started], NULL, restore_worker, &j) != 0) break;
  int rc = started ? restore_loop(&j, slots, h, io, what, md, st, progress, opaque)
                   : error(ERR_INTERNAL, "cannot start the restore's threads");
  /* drain: writes still in flight must finish before their buffers go */
  while (h && nbd_aio_in_flight(h) > 0)
    if (nbd_poll(h, -1) < 0) break;
  pthread_mutex_lock(&j.lock);
  j.stop = true;
  j.qlen = 0; /* what is not read yet is not needed */
  pthread_cond_broadcast(&j.work);
  pthread_mutex_unlock(&j.lock);
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
  if (j.failed && (rc == 0 || j.by_worker)) rc = error_restore(&j.err);
  else if (j.failed) free(j.err.msg);
  for (int i = 0; rc == 0 && i < QUEUE; i++)
    if (slots[i].err) rc = error(ERR_INTERNAL, "cannot write to '%s': %s", what, strerror(slots[i].err));
  if (rc == 0 && h && nbd_flush(h, 0) < 0) rc = error(ERR_INTERNAL, "cannot flush '%s': %s", what, nbd_get_error());
  if (rc == 0 && !h) rc = imageio_flush(io);
  if (rc == 0 && md) {
    unsigned char digest[32];
    unsigned int dl = sizeof digest;
    EVP_DigestFinal_ex(md, digest, &dl);
    AUTOFREE char *hex = hex_of(digest, sizeof digest);
    if (strcmp(hex, d->sha256) != 0)
      rc = error(ERR_INVALID, "disk '%s' restored with SHA-256 %s, the backup recorded %s", d->id, hex, d->sha256);
  }
  if (rc == 0 && h) nbd_shutdown(h, 0);
  for (int i = 0; i < QUEUE; i++) free(slots[i].buf);
  if (j.wake >= 0) close(j.wake);
  pthread_cond_destroy(&j.work);
  pthread_mutex_destroy(&j.lock);
  return rc;
}
