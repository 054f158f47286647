/* Range and Content-Range headers of the image transfer data path
 * (http/range.c). Input: 8 bytes of image size, then the header value. */
#include "fuzz.h"
#include "http/range.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 8) return 0;
  uint64_t image = 0;
  memcpy(&image, data, 8);
  image %= (uint64_t)1 << 50; /* images are at most a few PiB */
  char *h = fuzz_cstr(data + 8, size - 8);
  uint64_t start = 0, len = 0, end = 0;
  if (http_range_parse(h, image, &start, &len) == 0) {
    if (start > image || len > image - start) abort(); /* a range past the end was accepted */
  }
  if (http_content_range_parse(h, &start, &end) == 0) {
    if (end <= start) abort(); /* an empty or wrapped range was accepted */
  }
  free(h);
  error_clear();
  return 0;
}
