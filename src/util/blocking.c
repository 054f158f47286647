#include "util/blocking.h"
#include "util/err.h"

/* how many forbidding locks the calling thread holds */
static __thread int forbid_depth;

void blocking_forbid(void) { forbid_depth++; }

void blocking_allow(void)
{
  if (forbid_depth > 0) forbid_depth--;
}

int blocking_check(const char *what)
{
  if (forbid_depth == 0) return 0;
  return error(ERR_INTERNAL, "internal error: cannot %s while holding the store lock", what);
}
