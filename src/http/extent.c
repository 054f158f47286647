/* extent.c: combining and writing extents (see extent.h). */
#include "http/extent.h"
#include <inttypes.h>

void extent_add(struct extent_vec *v, uint64_t offset, uint64_t len, uint32_t flags)
{
  if (!len) return;
  struct extent *last = v->len ? &v->ptr[v->len - 1] : NULL;
  if (last && last->flags == flags && last->start + last->length == offset) last->length += len;
  else vec_push(v, ((struct extent){offset, len, flags}));
}

uint64_t extent_vec_end(const struct extent_vec *v, uint64_t empty)
{
  return v->len ? v->ptr[v->len - 1].start + v->ptr[v->len - 1].length : empty;
}

/* the index of the extent of v holding pos, searching on from *i */
static const struct extent *extent_at(const struct extent_vec *v, size_t *i, uint64_t pos)
{
  while (*i + 1 < v->len && v->ptr[*i].start + v->ptr[*i].length <= pos) (*i)++;
  return &v->ptr[*i];
}

void extents_combine(const struct extent_vec *base, const struct extent_vec *dirty, uint64_t from,
                     uint64_t to, struct extent_vec *out)
{
  size_t ib = 0, id = 0;
  for (uint64_t pos = from; pos < to;) {
    uint64_t next = to;
    uint32_t flags = 0;
    if (base && base->len) {
      const struct extent *e = extent_at(base, &ib, pos);
      flags |= e->flags & (EXTENT_HOLE | EXTENT_ZERO);
      if (e->start + e->length < next) next = e->start + e->length;
    }
    if (dirty && dirty->len) {
      const struct extent *e = extent_at(dirty, &id, pos);
      flags |= e->flags & EXTENT_DIRTY;
      if (e->start + e->length < next) next = e->start + e->length;
    }
    if (next <= pos) next = to; /* a list ends early: the caller broke the contract */
    extent_add(out, pos, next - pos, flags);
    pos = next;
  }
}

void extent_json(struct buf *b, const struct extent *e, bool dirty)
{
  const char *zero = e->flags & EXTENT_ZERO ? "true" : "false";
  if (dirty)
    buf_printf(b, "{\"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"dirty\": %s, \"zero\": %s}",
               e->start, e->length, e->flags & EXTENT_DIRTY ? "true" : "false", zero);
  else
    buf_printf(b, "{\"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"zero\": %s, \"hole\": %s}",
               e->start, e->length, zero, e->flags & EXTENT_HOLE ? "true" : "false");
}
