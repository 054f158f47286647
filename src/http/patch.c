/* patch.c: imageio PATCH bodies (see patch.h). */
#include "http/patch.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <jansson.h>
#include <string.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

int imageio_patch_parse(const char *body, size_t len, struct imageio_patch *out)
{
  *out = (struct imageio_patch){0};
  json_error_t jerr;
  AUTOPTR(json) j = json_loadb(body, len, 0, &jerr);
  const char *op = json_is_object(j) ? json_string_value(json_object_get(j, "op")) : NULL;
  if (!op)
    return error(ERR_INVALID, "invalid PATCH body: give JSON {\"op\": \"zero\", \"offset\": N, \"size\": N} "
                 "or {\"op\": \"flush\"}");
  if (strcmp(op, "zero") != 0 && strcmp(op, "flush") != 0)
    return error(ERR_INVALID, "unsupported PATCH op '%s': use 'zero' or 'flush'", op);
  out->flush = strcmp(op, "flush") == 0 || json_is_true(json_object_get(j, "flush"));
  if (strcmp(op, "zero") != 0) return 0;
  json_t *jo = json_object_get(j, "offset"), *js = json_object_get(j, "size");
  if (!json_is_integer(js) || (jo && !json_is_integer(jo)) || json_integer_value(js) < 0 ||
      json_integer_value(jo) < 0)
    return error(ERR_INVALID, "invalid zero request: give integer \"offset\" and \"size\"");
  out->zero = true;
  out->offset = (uint64_t)json_integer_value(jo);
  out->size = (uint64_t)json_integer_value(js);
  return 0;
}
