/* range.c: Range and Content-Range (see range.h). */
#include "http/range.h"
#include "util/err.h"
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int http_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
  if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
    return error(ERR_INVALID, "unsupported Range '%s': give one range, bytes=START-END", h);
  const char *p = h + 6;
  char *end;
  if (*p == '-') {
    if (p[1] < '0' || p[1] > '9') return error(ERR_INVALID, "invalid Range '%s'", h);
    uint64_t n = strtoull(p + 1, &end, 10);
    if (*end || n == 0 || !size) return error(ERR_INVALID, "invalid Range '%s'", h);
    if (n > size) n = size;
    *start = size - n;
    *len = n;
    return 0;
  }
  if (*p < '0' || *p > '9') return error(ERR_INVALID, "invalid Range '%s'", h);
  uint64_t a = strtoull(p, &end, 10);
  if (*end != '-') return error(ERR_INVALID, "invalid Range '%s'", h);
  if (a >= size)
    return error(ERR_INVALID, "Range '%s' starts beyond the end of the image (%" PRIu64 " bytes)", h, size);
  p = end + 1;
  uint64_t b = size - 1;
  if (*p) {
    if (*p < '0' || *p > '9') return error(ERR_INVALID, "invalid Range '%s'", h);
    b = strtoull(p, &end, 10);
    if (*end || b < a) return error(ERR_INVALID, "invalid Range '%s'", h);
    if (b >= size) b = size - 1;
  }
  *start = a;
  *len = b - a + 1;
  return 0;
}

int http_content_range_parse(const char *h, uint64_t *start, uint64_t *end)
{
  unsigned long long a, b;
  int used = 0;
  /* b + 1 must not wrap: an end of 2^64-1 (or any that strtoull saturates)
   * would end the range at 0 (found by fuzz_range) */
  if (strncmp(h, "bytes ", 6) != 0 || h[6] < '0' || h[6] > '9' ||
      sscanf(h, "bytes %llu-%llu/%n", &a, &b, &used) != 2 || used == 0 || b < a || b == ULLONG_MAX ||
      (strcmp(h + used, "*") != 0 && strspn(h + used, "0123456789") != strlen(h + used)))
    return error(ERR_INVALID, "invalid Content-Range '%s': give bytes START-END/*", h);
  *start = a;
  *end = b + 1;
  return 0;
}
