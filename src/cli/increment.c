/* increment.c: reading what changed (incremental backup) and reading a disk
 * over HTTP (full backup from a remote engine), into the repository.
 *
 * The fast full path over NBD is nbdcopy.c. Here the data is small (what
 * changed since the last checkpoint) or the source is HTTP, so reads are
 * simple and sequential, in disk order; the patch writer (repo/extent.c)
 * packs the changed bytes into chunks. */
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

static int source_pread(struct disk_source *s, void *buf, size_t len, uint64_t off)
{
  if (s->nbd) {
    if (nbd_pread(s->nbd, buf, len, off, 0) < 0)
      return error(ERR_INTERNAL, "cannot read %zu bytes at %llu from %s: %s", len, (unsigned long long)off, s->what,
                   nbd_get_error());
    return 0;
  }
  return imageio_pread(s->http, buf, len, off);
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

int source_to_repo_incremental(struct repo *r, struct disk_source *src, struct data_extent *dirty,
                               size_t ndirty, const struct manifest_disk *prev, struct manifest_disk *d,
                               struct copy_stats *st, copy_progress_fn progress, void *opaque)
{
  struct patch_writer *pw = patch_writer_new(r, prev, d);
  if (!pw) return -1;
  AUTOFREE unsigned char *buf = xrealloc(NULL, REPO_CHUNK_SIZE);
  size_t k = 0; /* first dirty extent not wholly before the current block */
  int rc = 0;
  while (rc == 0 && k < ndirty) {
    if (cli_interrupted) {
      rc = error(ERR_INTERNAL, "interrupted");
      break;
    }
    if (dirty[k].off >= d->size) break;
    size_t b = (size_t)(dirty[k].off / REPO_CHUNK_SIZE);
    uint64_t bs = (uint64_t)b * REPO_CHUNK_SIZE, be = bs + block_len(d->size, b);
    /* the pieces of this block */
    size_t pieces = 0;
    uint64_t bytes = 0;
    for (size_t q = k; q < ndirty && dirty[q].off < be; q++) {
      uint64_t a = dirty[q].off > bs ? dirty[q].off : bs, e = dirty[q].off + dirty[q].len < be ? dirty[q].off + dirty[q].len : be;
      if (a < e) pieces++, bytes += e - a;
    }
    if (patch_writer_wants_block(pw, b, pieces, bytes)) {
      rc = source_pread(src, buf, (size_t)(be - bs), bs);
      if (rc == 0) rc = patch_writer_block(pw, b, buf, (size_t)(be - bs));
      st->bytes_read += be - bs;
    } else {
      for (size_t q = k; rc == 0 && q < ndirty && dirty[q].off < be; q++) {
        uint64_t a = dirty[q].off > bs ? dirty[q].off : bs, e = dirty[q].off + dirty[q].len < be ? dirty[q].off + dirty[q].len : be;
        if (a >= e) continue;
        if (dirty[q].zero) {
          rc = patch_writer_zero(pw, a, e - a);
          continue;
        }
        rc = source_pread(src, buf, (size_t)(e - a), a);
        if (rc == 0) rc = patch_writer_data(pw, a, buf, (size_t)(e - a));
        st->bytes_read += e - a;
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
    if (progress) progress(opaque, be);
  }
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
  struct disk_source src = {.what = "the imageio URL", .http = io};
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
      rc = source_pread(&src, buf + (a - bs), (size_t)(e - a), a);
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
