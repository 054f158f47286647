/* patch.h: the JSON body of an imageio PATCH ({"op": "zero", "offset": N,
 * "size": N, "flush": B} or {"op": "flush"}), parsed without trusting it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imageio_patch {
  bool zero;           /* op "zero": offset and size are set */
  bool flush;          /* op "flush", or "flush": true on a zero */
  uint64_t offset, size;
};

/* 0 with *out filled, or -1 + ERR_INVALID naming what is wrong */
int imageio_patch_parse(const char *body, size_t len, struct imageio_patch *out);
