/* range.h: the byte ranges of imageio's data URLs (Range of a GET,
 * Content-Range of a PUT), parsed without trusting the client. */
#pragma once
#include <stdint.h>

/* "bytes=A-B", "bytes=A-", "bytes=-N" of an image of size bytes -> [*start,
 * *start + *len), the end clipped to the image; -1 + ERR_INVALID for a range
 * HTTP cannot satisfy (several ranges, malformed, starting beyond the end) */
int http_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len);
/* "bytes A-B/TOTAL" or "bytes A-B/(star)" -> [A, B + 1); -1 + ERR_INVALID */
int http_content_range_parse(const char *h, uint64_t *start, uint64_t *end);
