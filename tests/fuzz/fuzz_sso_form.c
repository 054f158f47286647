/* the SSO token request's form body (application/x-www-form-urlencoded),
 * as http/server.c reads it (form_value is static: the target includes it) */
#include "fuzz.h"
#include "../../src/http/server.c"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *body = fuzz_cstr(data, size);
  static const char *const names[] = {"grant_type", "username", "password", "scope", "token", ""};
  for (size_t i = 0; i < ARRAY_SIZE(names); i++) free(form_value(body, names[i]));
  free(body);
  error_clear();
  return 0;
}
