/* imageio PATCH bodies (http/patch.c): {"op": "zero"|"flush", ...} */
#include "fuzz.h"
#include "http/patch.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct imageio_patch p;
  if (imageio_patch_parse((const char *)data, size, &p) == 0) {
    if (p.zero && (p.offset > INT64_MAX || p.size > INT64_MAX)) abort(); /* a negative number got through */
    if (!p.zero && !p.flush) abort();                                    /* an op that does nothing */
  }
  error_clear();
  return 0;
}
