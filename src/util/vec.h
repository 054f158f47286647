/* vec.h: the one generic vector (after nbdkit's DEFINE_VECTOR_TYPE).
 *
 *   DEFINE_VEC(strvec, char *);
 *   struct strvec v = VEC_INIT;  vec_push(&v, x);  v.ptr[i], v.len;  free(v.ptr);
 */
#pragma once
#include "util/buf.h"

#define DEFINE_VEC(name, type) struct name { type *ptr; size_t len, cap; }
#define VEC_INIT { NULL, 0, 0 }
#define vec_push(v, x)                                                     \
  do {                                                                     \
    if ((v)->len == (v)->cap) {                                            \
      (v)->cap = (v)->cap ? (v)->cap * 2 : 8;                              \
      (v)->ptr = xrealloc((v)->ptr, (v)->cap * sizeof(*(v)->ptr));         \
    }                                                                      \
    (v)->ptr[(v)->len++] = (x);                                            \
  } while (0)

DEFINE_VEC(strvec, char *);
/* frees every string and the array */
void strvec_free(struct strvec *v);
static inline void strvec_cleanup(struct strvec *v) { strvec_free(v); }
#define AUTOSTRVEC __attribute__((cleanup(strvec_cleanup)))
