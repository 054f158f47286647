/* enumstr.h: enum <-> string tables (after libvirt's VIR_ENUM_IMPL).
 * Each enum ends in a _LAST sentinel and has one table, reused for XML, JSON
 * and SQL, so every value is spelled in one place.
 *
 *   ENUM_DECL(disk_format);                       in the header
 *   ENUM_IMPL(disk_format, DISK_FORMAT_LAST, "cow", "raw");   in one .c
 *   disk_format_to_str(x)  -> "cow" (or NULL when out of range)
 *   disk_format_from_str("raw") -> 1 (or -1 when unknown) */
#pragma once
#include <string.h>
#define ENUM_DECL(name)                          \
  const char *name##_to_str(int v);              \
  int name##_from_str(const char *s)

#define ENUM_IMPL(name, last, ...)                                     \
  static const char *const name##_strings[] = {__VA_ARGS__};           \
  _Static_assert(sizeof(name##_strings) / sizeof(char *) == (last),    \
                 #name " table size mismatch");                        \
  const char *name##_to_str(int v)                                     \
  {                                                                    \
    return (v >= 0 && v < (int)(last)) ? name##_strings[v] : NULL;     \
  }                                                                    \
  int name##_from_str(const char *s)                                   \
  {                                                                    \
    if (!s) return -1;                                                 \
    for (int i = 0; i < (int)(last); i++)                              \
      if (strcmp(name##_strings[i], s) == 0) return i;                 \
    return -1;                                                         \
  }
