/* the search language (?search=...), parsed and matched against an object */
#include "fuzz.h"
#include "api/search.h"

static const char *const fields[] = {"name", "status", "description", "id", NULL};

static const char *getter(const void *obj, const char *field)
{
  (void)obj;
  if (strcmp(field, "name") == 0) return "e2e-vm-1";
  if (strcmp(field, "status") == 0) return "up";
  if (strcmp(field, "id") == 0) return "0b6f1b2e-6c5e-4d53-9d0c-2b8e1a0c1f00";
  return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  char *q = fuzz_cstr(data + 1, size - 1);
  struct search *s = search_parse(q, fields, data[0] & 1);
  if (s) search_match(s, getter, NULL);
  search_free(s);
  /* the glob matcher on its own: the pattern against itself */
  search_glob(q, q, data[0] & 2);
  search_glob(q, "e2e-vm-1", data[0] & 2);
  free(q);
  error_clear();
  return 0;
}
