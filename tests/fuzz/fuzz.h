/* fuzz.h: shared bits of the libFuzzer targets (tests/fuzz/README.md).
 *
 * Each target feeds one parser that takes outside input. Inputs are bytes;
 * parsers that take C strings get a NUL-terminated copy. Errors recorded by
 * the parser are expected results and are cleared; only crashes, sanitizer
 * reports, leaks and timeouts are findings. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* a NUL-terminated copy of the input; free() it */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = 0;
  return s;
}
