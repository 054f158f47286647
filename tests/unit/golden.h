/* golden.h: golden-file checks for unit tests. golden(NAME, GOT) compares GOT
 * with tests/golden/NAME; SNAPBACK_REGENERATE=1 rewrites the file instead.
 * Include after tap.h; needs SRCDIR (set by tests/meson.build). */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/buf.h"

static inline char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  struct buf b = BUF_INIT;
  char tmp[4096];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_add(&b, tmp, n);
  fclose(f);
  return buf_detach(&b);
}

static inline void golden(const char *name, const char *got)
{
  AUTOFREE char *path = xasprintf("%s/tests/golden/%s", SRCDIR, name);
  if (getenv("SNAPBACK_REGENERATE")) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(got, f); fclose(f); }
  }
  AUTOFREE char *want = slurp(path);
  CHECK(want != NULL);
  if (want && strcmp(want, got) != 0) fprintf(stderr, "golden %s differs; got:\n%s", name, got);
  CHECK(want && strcmp(want, got) == 0);
}
