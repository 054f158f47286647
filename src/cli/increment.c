/* increment.c: reading what changed (incremental backup) and reading a disk
 * over HTTP (full backup from a remote engine), into the repository.
 *
 * The fast full path over NBD is nbdcopy.c. Here the data is small (what
 * changed since the last checkpoint) or the source is HTTP. An incremental
 * backup first plans its reads in disk order (whole blocks to compact,
 * changed pieces, pieces now zero), then reads a window of them at a time,
 * all at once over NBD, and hands them in order to the patch writer
 * (repo/extent.c), which packs the changed bytes into chunks and stores
 * them on threads of its own while the next window is read. */
#include "cli/imageio.h"
#include "cli/transfer.h"
#include "util/err.h"
#include "util/vec.h"
#include <libnbd.h>
#include <string.h>

/* ---- dirty extents from the NBD export itself ---- */

static int first_context(void *opaque, const char *name)
{
  char **out = opaque;
  if (!*out) *out = xstrdup(name);
  return 0;
}

struct dirty_ctx { const char *context; struct extentlist *v; uint64_t end, limit; };

static int dirty_cb(void *opaque, const char *context, uint64_t offset, uint32_t *entries, size_t n, int *err)
{
  (void)err;
  struct dirty_ctx *x = opaque;
  if (strcmp(context, x->context) != 0) return 0;
  for (size_t i = 0; i + 1 < n && offset < x->limit; i += 2) {
    uint64_t len = entries[i];
    if (offset + len > x->limit) len = x->limit - offset;
    if (entries[i + 1] & 1) { /* dirty */
      struct extentlist *v = x->v;
      if (v->len && v->ptr[v->len - 1].off + v->ptr[v->len - 1].len == offset) v->ptr[v->len - 1].len += len;
      else vec_push(v, ((struct data_extent){offset, len, false}));
    }
    offset += len;
  }
  if (offset > x->end) x->end = offset;
  return 0;
}

int nbd_dirty_extents(const char *url, struct extentlist *out, char **context)
{
  *context = NULL;
  struct nbd_handle *h = nbd_create();
  if (!h) return error(ERR_INTERNAL, "cannot create an NBD handle: %s", nbd_get_error());
  int rc = 0;
  if (nbd_set_opt_mode(h, true) < 0 || nbd_connect_uri(h, url) < 0)
    rc = error(ERR_UNAVAILABLE, "cannot connect to '%s': %s", url, nbd_get_error());
  if (rc == 0 && (nbd_add_meta_context(h, "qemu:dirty-bitmap:") < 0 ||
                  nbd_opt_list_meta_context(h, (nbd_context_callback){.callback = first_context, .user_data = context}) < 0))
    rc = error(ERR_UNSUPPORTED, "'%s' lists no meta contexts: %s", url, nbd_get_error());
  if (rc == 0 && !*context) rc = error(ERR_NOT_FOUND, "'%s' exports no dirty bitmap", url);
  if (rc == 0 && (nbd_clear_meta_contexts(h) < 0 || nbd_add_meta_context(h, *context) < 0 || nbd_opt_go(h) < 0 ||
                  nbd_can_meta_context(h, *context) != 1))
    rc = error(ERR_UNSUPPORTED, "cannot read '%s' of '%s': %s", *context, url, nbd_get_error());
  int64_t size = rc == 0 ? nbd_get_size(h) : -1;
  if (rc == 0 && size < 0) rc = error(ERR_INTERNAL, "cannot get the size of '%s': %s", url, nbd_get_error());
  struct dirty_ctx x = {*context, out, 0, (uint64_t)(size > 0 ? size : 0)};
  while (rc == 0 && x.end < x.limit) {
    uint64_t before = x.end, want = x.limit - x.end < ((uint64_t)1 << 30) ? x.limit - x.end : (uint64_t)1 << 30;
    if (nbd_block_status(h, want, x.end, (nbd_extent_callback){.callback = dirty_cb, .user_data = &x}, 0) < 0)
      rc = error(ERR_INTERNAL, "cannot read '%s' of '%s': %s", *context, url, nbd_get_error());
    else if (x.end <= before)
      rc = error(ERR_INTERNAL, "'%s' of '%s' says nothing about offset %llu", *context, url, (unsigned long long)before);
  }
  if (rc == 0) nbd_shutdown(h, 0);
  nbd_close(h);
  return rc;
}

static size_t block_len(uint64_t size, size_t b)
{
  uint64_t off = (uint64_t)b * REPO_CHUNK_SIZE;
  return (size_t)(size - off < REPO_CHUNK_SIZE ? size - off : REPO_CHUNK_SIZE);
}

/* finishes the writer when the run succeeded (rc 0), else drops it; adds
 * what it stored to st */
static int writer_end(struct patch_writer *pw, int rc, struct copy_stats *st)
{
  if (rc < 0) {
    patch_writer_free(pw);
    return -1;
  }
  struct patch_stats ps;
  if (patch_writer_finish(pw, &ps) < 0) return -1;
  st->bytes_stored += ps.bytes_stored;
  st->chunks_new += ps.chunks_new;
  st->chunks_reused += ps.chunks_reused;
  st->chunks_zero += ps.chunks_zero;
  return 0;
}

/* ---- incremental: a plan of reads, done a window at a time ---- */

/* One step of an incremental backup, in disk order: a whole block to read
 * (compaction), a changed piece to read, or a piece now zero (not read). */
enum step_kind { STEP_BLOCK, STEP_DATA, STEP_ZERO };
struct step { uint64_t off, len, block_end; size_t block; enum step_kind kind; size_t buf_off; };
DEFINE_VEC(stepvec, struct step);

/* Reads in flight at once: up to WINDOW bytes, as NBD requests of at most
 * READ_PIECE bytes. One at a time, the 328 scattered 64 KiB pieces of the
 * bench's 1% change took 0.1-0.7 s (a round trip through qemu-nbd each, 3
 * ms apiece when the machine is busy); all in flight, qemu-nbd serves them
 * in a few wake-ups. */
#define WINDOW ((size_t)16 << 20)
#define READ_PIECE ((size_t)256 << 10)

/* the steps of an incremental backup of the dirty extents (consumed: cut at
 * block boundaries) into a disk of size bytes laid out as pw's */
static void plan_steps(const struct patch_writer *pw, struct data_extent *dirty, size_t ndirty, uint64_t size,
                       struct stepvec *out)
{
  size_t k = 0; /* first dirty extent not wholly before the current block */
  while (k < ndirty) {
    if (dirty[k].off >= size) break;
    size_t b = (size_t)(dirty[k].off / REPO_CHUNK_SIZE);
    uint64_t bs = (uint64_t)b * REPO_CHUNK_SIZE, be = bs + block_len(size, b);
    /* the pieces of this block */
    size_t pieces = 0;
    uint64_t bytes = 0;
    for (size_t q = k; q < ndirty && dirty[q].off < be; q++) {
      uint64_t a = dirty[q].off > bs ? dirty[q].off : bs, e = dirty[q].off + dirty[q].len < be ? dirty[q].off + dirty[q].len : be;
      if (a < e) pieces++, bytes += e - a;
    }
    if (patch_writer_wants_block(pw, b, pieces, bytes)) {
      vec_push(out, ((struct step){bs, be - bs, be, b, STEP_BLOCK, 0}));
    } else {
      for (size_t q = k; q < ndirty && dirty[q].off < be; q++) {
        uint64_t a = dirty[q].off > bs ? dirty[q].off : bs, e = dirty[q].off + dirty[q].len < be ? dirty[q].off + dirty[q].len : be;
        if (a < e) vec_push(out, ((struct step){a, e - a, be, b, dirty[q].zero ? STEP_ZERO : STEP_DATA, 0}));
      }
    }
    /* move on to the next block: skip extents that end inside this one */
    while (k < ndirty && dirty[k].off + dirty[k].len <= be) k++;
    if (k < ndirty && dirty[k].off < be) {
      /* an extent that runs past this block: continue it in the next */
      struct data_extent *rest = &dirty[k];
      rest->len -= be - rest->off;
      rest->off = be;
    }
  }
}

struct read_status { int err; };

static int read_done(void *opaque, int *error)
{
  struct read_status *rs = opaque;
  if (*error && !rs->err) rs->err = *error;
  return 1;
}

/* reads steps[from, to) into buf (each at its buf_off): over NBD all at
 * once, over HTTP one after the other */
static int window_read(struct disk_source *src, struct step *steps, size_t from, size_t to, unsigned char *buf)
{
  if (!src->nbd) {
    for (size_t i = from; i < to; i++)
      if (steps[i].kind != STEP_ZERO &&
          imageio_pread(src->http, buf + steps[i].buf_off, (size_t)steps[i].len, steps[i].off) < 0)
        return -1;
    return 0;
  }
  struct read_status rs = {0};
  int rc = 0;
  for (size_t i = from; rc == 0 && i < to; i++) {
    if (steps[i].kind == STEP_ZERO) continue;
    for (uint64_t p = 0; rc == 0 && p < steps[i].len; p += READ_PIECE) {
      size_t len = steps[i].len - p < READ_PIECE ? (size_t)(steps[i].len - p) : READ_PIECE;
      if (nbd_aio_pread(src->nbd, buf + steps[i].buf_off + p, len, steps[i].off + p,
                        (nbd_completion_callback){.callback = read_done, .user_data = &rs}, 0) < 0)
        rc = error(ERR_INTERNAL, "cannot read %zu bytes at %llu from %s: %s", len,
                   (unsigned long long)(steps[i].off + p), src->what, nbd_get_error());
    }
  }
  /* whatever was queued completes before buf goes (its callback names rs) */
  while (nbd_aio_in_flight(src->nbd) > 0)
    if (nbd_poll(src->nbd, -1) < 0) {
      if (rc == 0) rc = error(ERR_INTERNAL, "cannot read from %s: %s", src->what, nbd_get_error());
      break;
    }
  if (rc == 0 && rs.err)
    rc = error(ERR_INTERNAL, "cannot read from %s: %s", src->what, strerror(rs.err));
  return rc;
}

int source_to_repo_incremental(struct repo *r, struct disk_source *src, struct data_extent *dirty,
                               size_t ndirty, const struct manifest_disk *prev, struct manifest_disk *d,
                               struct copy_stats *st, copy_progress_fn progress, void *opaque)
{
  struct patch_writer *pw = patch_writer_new(r, prev, d);
  if (!pw) return -1;
  struct stepvec steps = VEC_INIT;
  plan_steps(pw, dirty, ndirty, d->size, &steps);
  AUTOFREE unsigned char *buf = xrealloc(NULL, WINDOW);
  int rc = 0;
  for (size_t from = 0; rc == 0 && from < steps.len;) {
    if (cli_interrupted) {
      rc = error(ERR_INTERNAL, "interrupted");
      break;
    }
    /* a window: steps whose reads fit in WINDOW (a block is at most 4 MiB) */
    size_t to = from, used = 0;
    while (to < steps.len && (steps.ptr[to].kind == STEP_ZERO || used + steps.ptr[to].len <= WINDOW)) {
      steps.ptr[to].buf_off = used;
      if (steps.ptr[to].kind != STEP_ZERO) used += steps.ptr[to].len;
      to++;
    }
    rc = window_read(src, steps.ptr, from, to, buf);
    for (size_t i = from; rc == 0 && i < to; i++) {
      const struct step *s = &steps.ptr[i];
      if (s->kind == STEP_ZERO) rc = patch_writer_zero(pw, s->off, s->len);
      else if (s->kind == STEP_BLOCK) rc = patch_writer_block(pw, s->block, buf + s->buf_off, (size_t)s->len);
      else rc = patch_writer_data(pw, s->off, buf + s->buf_off, (size_t)s->len);
      if (s->kind != STEP_ZERO) st->bytes_read += s->len;
      if (progress && (i + 1 == steps.len || steps.ptr[i + 1].block != s->block)) progress(opaque, s->block_end);
    }
    from = to;
  }
  free(steps.ptr);
  return writer_end(pw, rc, st);
}

int http_to_repo(struct repo *r, struct imageio *io, struct manifest *m, size_t *disk_index, struct copy_stats *st,
                 copy_progress_fn progress, void *opaque)
{
  struct extentlist ext = VEC_INIT;
  if (imageio_extents(io, "zero", &ext) < 0) {
    free(ext.ptr);
    return -1;
  }
  int64_t size = imageio_size(io);
  if (size < 0) {
    free(ext.ptr);
    return -1;
  }
  *disk_index = m->ndisks;
  struct manifest_disk *d = manifest_add_disk(m, (uint64_t)size);
  struct patch_writer *pw = patch_writer_new(r, NULL, d);
  if (!pw) {
    free(ext.ptr);
    return -1;
  }
  AUTOFREE unsigned char *buf = xrealloc(NULL, REPO_CHUNK_SIZE);
  size_t cursor = 0;
  int rc = 0;
  for (size_t b = 0; rc == 0 && b < d->nchunks; b++) {
    if (cli_interrupted) {
      rc = error(ERR_INTERNAL, "interrupted");
      break;
    }
    uint64_t bs = (uint64_t)b * REPO_CHUNK_SIZE, be = bs + block_len(d->size, b);
    bool any = false;
    memset(buf, 0, (size_t)(be - bs));
    while (cursor < ext.len && ext.ptr[cursor].off + ext.ptr[cursor].len <= bs) cursor++;
    for (size_t q = cursor; rc == 0 && q < ext.len && ext.ptr[q].off < be; q++) {
      uint64_t a = ext.ptr[q].off > bs ? ext.ptr[q].off : bs, e = ext.ptr[q].off + ext.ptr[q].len < be ? ext.ptr[q].off + ext.ptr[q].len : be;
      if (ext.ptr[q].zero || a >= e) continue;
      rc = imageio_pread(io, buf + (a - bs), (size_t)(e - a), a);
      st->bytes_read += e - a;
      any = true;
    }
    if (rc == 0 && any) rc = patch_writer_block(pw, b, buf, (size_t)(be - bs));
    else if (rc == 0) st->chunks_zero++;
    if (progress) progress(opaque, be);
  }
  free(ext.ptr);
  return writer_end(pw, rc, st);
}
