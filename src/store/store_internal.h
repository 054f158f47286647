/* store_internal.h: the entity layer's generic select, for store/query.c
 * only. Other layers ask through the named queries of store/query.h, so no
 * SQL text leaves this folder. */
#pragma once
#include <stdint.h>
#include "store/db.h"
#include "store/store.h"

#define STORE_TYPE_ENUM(T) STORE_TYPE_##T,
enum store_type { STORE_TYPES(STORE_TYPE_ENUM) STORE_TYPE_LAST };
#undef STORE_TYPE_ENUM
#define STORE_TYPE(T) STORE_TYPE_##T

/* The rows of type T matching WHERE (portable SQL over T's columns with '?'
 * placeholders, or NULL for all) bound to PARAMS, ordered by ORDER (NULL:
 * the type's default order), at most LIMIT of them (0: all): a
 * NULL-terminated list of struct T *, or NULL + error. */
void **store_select(struct store *st, enum store_type t, const char *where, const struct db_value *params,
                    int nparams, const char *order, int limit);
/* how many rows of type T match WHERE; -1 + error */
int64_t store_count_where(struct store *st, enum store_type t, const char *where, const struct db_value *params,
                          int nparams);
