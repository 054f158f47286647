/* route matching and query strings: the ROUTES table against any path, and
 * the query parameters handlers read (max, search, from), as MHD hands them
 * over (split on '&' and '=', percent-decoded).
 *
 * routes.c keeps route_match and query_max static, so the target includes
 * it: the fuzzed code is exactly the engine's. */
#include "fuzz.h"
#include "../../src/api/routes.c"
#include "api/search.h"
#include <microhttpd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *in = fuzz_cstr(data, size);
  char *query = strchr(in, '?');
  if (query) *query++ = 0;
  char storage[1024];
  for (size_t i = 0; i < ARRAY_SIZE(ROUTES); i++) {
    const char *params[MAX_PARAMS] = {0};
    route_match(ROUTES[i].pattern, in, params, storage, sizeof storage);
  }
  struct api_param qp[17];
  size_t n = 0;
  for (char *p = query, *next; p && *p && n < 16; p = next) {
    next = strchr(p, '&');
    if (next) *next++ = 0;
    char *eq = strchr(p, '=');
    if (eq) *eq++ = 0;
    MHD_http_unescape(p);
    if (eq) MHD_http_unescape(eq);
    qp[n++] = (struct api_param){p, eq ? eq : ""};
  }
  qp[n] = (struct api_param){NULL, NULL};
  struct api_request req = {.method = "GET", .path = in, .query = qp};
  struct api_call c = {.req = &req};
  int max;
  query_max(&c, &max);
  const char *search = api_query(&req, "search");
  if (search) {
    static const char *const vm_fields[] = {"name", "status", "id", NULL};
    struct search *s = search_parse(search, vm_fields, false);
    search_free(s);
  }
  free(in);
  error_clear();
  return 0;
}
