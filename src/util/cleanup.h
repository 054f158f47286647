/* cleanup.h: scope-bound cleanup with __attribute__((cleanup)).
 *
 * AUTOFREE char *s = ...;      free(s) at end of scope
 * AUTOPTR(xmlDoc) doc = ...;   the type's registered free at end of scope
 * steal_pointer(&p)            hands ownership back and leaves p NULL
 *
 * Every *_free in the project accepts NULL, so these are always safe. */
#pragma once
#include <stdlib.h>

static inline void cleanup_freep(void *p) { free(*(void **)p); }
#define AUTOFREE __attribute__((cleanup(cleanup_freep)))

/* DEFINE_AUTOPTR(name, type, freefn) makes AUTOPTR(name) usable. */
#define DEFINE_AUTOPTR(name, type, freefn)                                  \
  typedef type *autoptr_##name;                                             \
  static inline void autoptr_cleanup_##name(type **p) { if (*p) freefn(*p); }
#define AUTOPTR(name) \
  __attribute__((cleanup(autoptr_cleanup_##name))) autoptr_##name

static inline void *steal_pointer_impl(void **pp) { void *p = *pp; *pp = NULL; return p; }
#define steal_pointer(pp) ((__typeof__(*(pp)))steal_pointer_impl((void **)(pp)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))
#define WARN_UNUSED __attribute__((warn_unused_result))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
