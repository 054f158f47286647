/* extent.h: image extents as imageio's extents resource answers them,
 * combined from NBD block status (base:allocation, and a dirty bitmap's
 * qemu:dirty-bitmap:NAME context) and written as JSON. */
#pragma once
#include "util/buf.h"
#include "util/vec.h"
#include <stdbool.h>
#include <stdint.h>

/* the flags of an extent: base:allocation's bits as NBD defines them, and
 * EXTENT_DIRTY where the dirty bitmap reports a change */
#define EXTENT_HOLE 1u
#define EXTENT_ZERO 2u
#define EXTENT_DIRTY (1u << 16)

struct extent { uint64_t start, length; uint32_t flags; };
DEFINE_VEC(extent_vec, struct extent);

/* appends [offset, offset + len) with flags, merged into the last extent
 * when that one ends at offset with the same flags; len 0 adds nothing */
void extent_add(struct extent_vec *v, uint64_t offset, uint64_t len, uint32_t flags);
/* where the last extent of v ends, or empty when v has none */
uint64_t extent_vec_end(const struct extent_vec *v, uint64_t empty);
/* appends to out the extents of [from, to), each with the flags of base and
 * of dirty at that place. base NULL: all data; dirty NULL: no dirty bits.
 * Both lists must be contiguous and cover [from, to). */
void extents_combine(const struct extent_vec *base, const struct extent_vec *dirty, uint64_t from,
                     uint64_t to, struct extent_vec *out);
/* one extent as imageio writes it: {"start", "length", "zero", "hole"}, or
 * with dirty {"start", "length", "dirty", "zero"} */
void extent_json(struct buf *b, const struct extent *e, bool dirty);
