#include "util/vec.h"
#include <stdlib.h>

void strvec_free(struct strvec *v)
{
  for (size_t i = 0; i < v->len; i++) free(v->ptr[i]);
  free(v->ptr);
  v->ptr = NULL;
  v->len = v->cap = 0;
}
