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

/* ---- incremental: a plan of reads, straight into chunk buffers ---- */

/* One step of an incremental backup, in disk order: a whole block to read
 * (compaction), a changed piece to read, or a piece now zero (not read). */
enum step_kind { STEP_BLOCK, STEP_DATA, STEP_ZERO };
struct step { uint64_t off, len, block_end; size_t block; enum step_kind kind; };
DEFINE_VEC(stepvec, struct step);

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
      vec_push(out, ((struct step){bs, be - bs, be, b, STEP_BLOCK}));
    } else {
      for (size_t q = k; q < ndirty && dirty[q].off < be; q++) {
        uint64_t a = dirty[q].off > bs ? dirty[q].off : bs, e = dirty[q].off + dirty[q].len < be ? dirty[q].off + dirty[q].len : be;
        if (a < e) vec_push(out, ((struct step){a, e - a, be, b, dirty[q].zero ? STEP_ZERO : STEP_DATA}));
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

/* Reads go straight into the buffers the patch writer stores as chunks: a
 * pack (changed pieces one after the other, up to a chunk) or a whole block.
 * Over NBD, the reads of up to GROUPS_IN_FLIGHT buffers are in flight at
 * once, as NBD requests of at most READ_PIECE bytes, and each buffer goes to
 * the writer as soon as its own reads are done, so that storing the first
 * chunks overlaps reading the next. One request at a time, the 328
 * scattered 64 KiB pieces of the bench's 1% change took 0.1-0.7 s (a round
 * trip through QEMU each, 3 ms apiece when the machine is busy). Reading a
 * 16 MiB window first and copying it into packs cost a copy of every byte
 * and 16 MiB of fresh memory (0.5 ms a MiB of page faults here). */
#define GROUPS_IN_FLIGHT 4
#define READ_PIECE ((size_t)256 << 10)

DEFINE_VEC(piecevec, struct patch_piece);

/* the reads into one buffer */
struct group {
  unsigned char *buf;
  size_t used;
  bool block;                 /* a whole block, else a pack of pieces */
  size_t block_index;
  struct piecevec pieces;     /* of a pack */
  size_t last;                /* its last step (progress) */
  unsigned pending;           /* NBD reads not done yet */
  int err;                    /* the first failed read's errno */
};

static int group_read_done(void *opaque, int *error)
{
  struct group *g = opaque;
  if (*error && !g->err) g->err = *error;
  g->pending--;
  return 1;
}

struct reader {
  struct disk_source *src;
  struct patch_writer *pw;
  struct group groups[GROUPS_IN_FLIGHT]; /* a ring: head is the oldest */
  size_t head, count;
  struct group *open;                    /* the pack still taking pieces */
  uint64_t shown;                        /* the progress shown so far */
};

/* shows progress up to pos (a pack can end past a block given after it) */
static void reader_progress(struct reader *rd, uint64_t pos, copy_progress_fn progress, void *opaque)
{
  if (!progress || pos <= rd->shown) return;
  rd->shown = pos;
  progress(opaque, pos);
}

/* reads len bytes at off into g's buffer at g->used */
static int group_read(struct reader *rd, struct group *g, uint64_t off, size_t len)
{
  unsigned char *dst = g->buf + g->used;
  g->used += len;
  if (!rd->src->nbd) return imageio_pread(rd->src->http, dst, len, off);
  for (size_t p = 0; p < len; p += READ_PIECE) {
    size_t n = len - p < READ_PIECE ? len - p : READ_PIECE;
    if (nbd_aio_pread(rd->src->nbd, dst + p, n, off + p,
                      (nbd_completion_callback){.callback = group_read_done, .user_data = g}, 0) < 0)
      return error(ERR_INTERNAL, "cannot read %zu bytes at %llu from %s: %s", n, (unsigned long long)(off + p),
                   rd->src->what, nbd_get_error());
    g->pending++;
  }
  return 0;
}

/* waits until every read into g is done */
static int group_wait(struct reader *rd, struct group *g)
{
  int rc = 0;
  while (rd->src->nbd && g->pending > 0)
    if (nbd_poll(rd->src->nbd, -1) < 0) {
      rc = error(ERR_INTERNAL, "cannot read from %s: %s", rd->src->what, nbd_get_error());
      break;
    }
  if (rc == 0 && g->err) rc = error(ERR_INTERNAL, "cannot read from %s: %s", rd->src->what, strerror(g->err));
  return rc;
}

/* hands the oldest buffer to the writer once its reads are done */
static int reader_hand_over(struct reader *rd, struct step *steps, struct copy_stats *st, copy_progress_fn progress,
                            void *opaque)
{
  struct group *g = &rd->groups[rd->head];
  if (g == rd->open) rd->open = NULL;
  int rc = group_wait(rd, g);
  unsigned char *buf = steal_pointer(&g->buf);
  if (rc < 0) patch_writer_buffer_back(rd->pw, buf);
  else if (g->block) rc = patch_writer_block_owned(rd->pw, g->block_index, buf, g->used);
  else rc = patch_writer_pack(rd->pw, buf, g->pieces.ptr, g->pieces.len);
  if (rc == 0) st->bytes_read += g->used;
  if (rc == 0) reader_progress(rd, steps[g->last].block_end, progress, opaque);
  free(g->pieces.ptr);
  g->pieces = (struct piecevec)VEC_INIT;
  rd->head = (rd->head + 1) % GROUPS_IN_FLIGHT;
  rd->count--;
  return rc;
}

/* a new buffer at the ring's end, handing the oldest over when all are busy */
static struct group *reader_group(struct reader *rd, struct step *steps, size_t first, struct copy_stats *st,
                                  copy_progress_fn progress, void *opaque)
{
  if (rd->count == GROUPS_IN_FLIGHT && reader_hand_over(rd, steps, st, progress, opaque) < 0) return NULL;
  struct group *g = &rd->groups[(rd->head + rd->count++) % GROUPS_IN_FLIGHT];
  *g = (struct group){.buf = patch_writer_buffer(rd->pw), .last = first};
  return g;
}

/* waits for the reads still in flight and gives the buffers back (on failure) */
static void reader_drop(struct reader *rd)
{
  for (; rd->count; rd->count--, rd->head = (rd->head + 1) % GROUPS_IN_FLIGHT) {
    struct group *g = &rd->groups[rd->head];
    if (group_wait(rd, g) < 0) error_clear();
    patch_writer_buffer_back(rd->pw, g->buf);
    free(g->pieces.ptr);
  }
}

int incremental_finish(struct patch_writer *pending, struct copy_stats *st)
{
  return writer_end(pending, 0, st);
}

int source_to_repo_incremental(struct repo *r, struct disk_source *src, struct data_extent *dirty,
                               size_t ndirty, const struct manifest_disk *prev, struct manifest_disk *d,
                               struct copy_stats *st, struct patch_writer **pending, copy_progress_fn progress,
                               void *opaque)
{
  *pending = NULL;
  struct patch_writer *pw = patch_writer_new(r, prev, d);
  if (!pw) return -1;
  struct stepvec steps = VEC_INIT;
  plan_steps(pw, dirty, ndirty, d->size, &steps);
  struct reader rd = {.src = src, .pw = pw};
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < steps.len; i++) {
    if (cli_interrupted) {
      rc = error(ERR_INTERNAL, "interrupted");
      break;
    }
    struct step *s = &steps.ptr[i];
    if (s->kind == STEP_ZERO) {
      rc = patch_writer_zero(pw, s->off, s->len);
      if (rc == 0 && !rd.count) reader_progress(&rd, s->block_end, progress, opaque);
      continue;
    }
    struct group *g;
    if (s->kind == STEP_BLOCK) {
      if (!(g = reader_group(&rd, steps.ptr, i, st, progress, opaque))) { rc = -1; break; }
      g->block = true;
      g->block_index = s->block;
    } else {
      if (rd.open && rd.open->used + s->len > REPO_CHUNK_SIZE) rd.open = NULL; /* full: reads go on */
      if (!rd.open && !(rd.open = reader_group(&rd, steps.ptr, i, st, progress, opaque))) { rc = -1; break; }
      g = rd.open;
      vec_push(&g->pieces, ((struct patch_piece){s->off, (size_t)s->len}));
    }
    g->last = i;
    rc = group_read(&rd, g, s->off, (size_t)s->len);
  }
  while (rc == 0 && rd.count) rc = reader_hand_over(&rd, steps.ptr, st, progress, opaque);
  reader_drop(&rd);
  free(steps.ptr);
  if (rc < 0) return writer_end(pw, rc, st);
  *pending = pw;
  return 0;
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
  AUTOFREE unsigned char *buf = xalloc_large(REPO_CHUNK_SIZE);
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
