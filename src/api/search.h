/* search.h: oVirt's search language, the subset clients use:
 *   name=myvm    name=web*    name=*db*   status=up and name=a*
 *   terms joined by "and" (case-insensitive keyword); '*' matches any run of
 *   characters; values may be quoted "..."; comparison is case-insensitive
 *   unless case_sensitive is true; '!=' negates.
 * Unknown fields are an ERR_INVALID naming the field and listing valid ones. */
#pragma once
#include <stdbool.h>
#include "util/cleanup.h"

struct search;
/* fields: NULL-terminated list of names the collection supports (e.g. "name","status","id") */
struct search *search_parse(const char *query, const char *const *fields, bool case_sensitive);
void search_free(struct search *s);
DEFINE_AUTOPTR(search, struct search, search_free)
/* get(obj, field) returns the object's value of field as text (NULL = empty) */
typedef const char *(*search_getter)(const void *obj, const char *field);
bool search_match(const struct search *s, search_getter get, const void *obj);
/* glob match with '*' wildcards */
bool search_glob(const char *pattern, const char *text, bool case_sensitive);
