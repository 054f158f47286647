/* entity.h: how each entity type of store.h maps to a table, for the
 * entity layer (store.c) only. entities.c holds the descriptions: one field
 * table per type (column name, type, offset in the C struct), so adding a
 * column is one line there. */
#pragma once
#include <stddef.h>
#include "store/store.h"

struct enum_codec {
  const char *name;
  const char *(*to_str)(int v);
  int (*from_str)(const char *s);
};
enum field_type {
  F_STR,   /* char *, NULL allowed */
  F_INT,   /* int64_t */
  F_BOOL,  /* bool, stored as 0/1 */
  F_ENUM,  /* int, stored as the codec's string */
};

struct field {
  const char *col;               /* column name == C member name */
  enum field_type type;
  size_t offset;
  const struct enum_codec *codec; /* F_ENUM only */
};

struct entity_desc {
  const char *kind;           /* for messages: "VM", "storage domain" */
  const char *table;
  const char *keys[2];        /* key columns, in the order typed functions take them */
  int nkeys;
  const char *default_order;  /* ORDER BY when the caller gives none */
  size_t size;
  const struct field *fields;
  size_t nfields;
};
#define STORE_DESC_DECL(T) extern const struct entity_desc T##_desc;
STORE_TYPES(STORE_DESC_DECL)
#undef STORE_DESC_DECL

/* every type's description, in STORE_TYPES order (enum store_type) */
extern const struct entity_desc *const store_entities[];
extern const size_t store_nentities;
