/* test_search.c: the oVirt search subset (api/search.h) */
#include "tap.h"
#include "api/search.h"
#include "util/err.h"
#include <stdbool.h>
#include <string.h>

struct obj { const char *name, *status, *id; };

static const char *get_field(const void *p, const char *field)
{
  const struct obj *o = p;
  if (strcmp(field, "name") == 0) return o->name;
  if (strcmp(field, "status") == 0) return o->status;
  if (strcmp(field, "id") == 0) return o->id;
  return NULL;
}

static const char *const fields[] = { "name", "status", "id", NULL };

/* parses q and matches it against o; -1 when the parse fails */
static int match(const char *q, const struct obj *o, bool cs)
{
  AUTOPTR(search) s = search_parse(q, fields, cs);
  if (!s) return -1;
  return search_match(s, get_field, o) ? 1 : 0;
}

/* true when q fails to parse with the given code */
static bool parse_fails(const char *q, enum err_code code)
{
  error_clear();
  AUTOPTR(search) s = search_parse(q, fields, false);
  return !s && error_code() == code && error_message()[0];
}

static void test_glob(void)
{
  CHECK(search_glob("abc", "abc", true));
  CHECK(!search_glob("abc", "abcd", true));
  CHECK(!search_glob("abcd", "abc", true));
  CHECK(search_glob("*", "", true));
  CHECK(search_glob("*", "anything", true));
  CHECK(search_glob("", "", true));
  CHECK(!search_glob("", "x", true));
  CHECK(search_glob("web*", "web01", true));
  CHECK(!search_glob("web*", "myweb", true));
  CHECK(search_glob("*db*", "my-db-1", true));
  CHECK(search_glob("*db", "mydb", true));
  CHECK(!search_glob("*db", "mydbx", true));
  CHECK(search_glob("a*b*c", "aXbYbZc", true));
  CHECK(search_glob("a*b*c", "abc", true));
  CHECK(!search_glob("a*b*c", "acb", true));
  CHECK(search_glob("**x**", "abxcd", true));
  CHECK(search_glob("a*aab", "aaaaaab", true));
  CHECK(!search_glob("ABC", "abc", true));
  CHECK(search_glob("ABC", "abc", false));
  CHECK(search_glob("W*B", "web", false));
}

static void test_terms(void)
{
  struct obj web = { "web01", "up", "1111" };
  struct obj db = { "DB-main", "down", "2222" };
  struct obj noname = { NULL, "down", "3333" };

  CHECK(match("name=web01", &web, false) == 1);
  CHECK(match("name=web02", &web, false) == 0);
  CHECK(match("name = web01", &web, false) == 1);
  CHECK(match("  name=web01  ", &web, false) == 1);
  CHECK(match("name=web*", &web, false) == 1);
  CHECK(match("name=*eb*", &web, false) == 1);
  CHECK(match("name=web*", &db, false) == 0);

  /* case: values insensitive unless asked, field names and keywords always */
  CHECK(match("name=db-MAIN", &db, false) == 1);
  CHECK(match("name=db-MAIN", &db, true) == 0);
  CHECK(match("name=DB-main", &db, true) == 1);
  CHECK(match("NAME=web01", &web, true) == 1);

  /* and */
  CHECK(match("status=up and name=w*", &web, false) == 1);
  CHECK(match("status=up AND name=w*", &web, false) == 1);
  CHECK(match("status=up and name=d*", &web, false) == 0);
  CHECK(match("status=down and name=d* and id=2222", &db, false) == 1);
  CHECK(match("status=down and name=d* and id=2223", &db, false) == 0);

  /* != */
  CHECK(match("status!=up", &web, false) == 0);
  CHECK(match("status!=up", &db, false) == 1);
  CHECK(match("name!=web*", &db, false) == 1);
  CHECK(match("name != web*", &web, false) == 0);

  /* quoted values */
  struct obj spaced = { "my vm \"x\"", "up", "4444" };
  CHECK(match("name=\"my vm \\\"x\\\"\"", &spaced, true) == 1);
  CHECK(match("name=\"my vm*\" and status=up", &spaced, false) == 1);
  CHECK(match("name=\"and\"", &spaced, false) == 0);

  /* a missing value reads as empty */
  CHECK(match("name=\"\"", &noname, false) == 1);
  CHECK(match("name=*", &noname, false) == 1);
  CHECK(match("name!=\"\"", &noname, false) == 0);

  /* empty query matches everything */
  CHECK(match("", &web, false) == 1);
  CHECK(match("   ", &web, false) == 1);
  CHECK(match(NULL, &web, false) == 1);
}

static void test_errors(void)
{
  CHECK(parse_fails("color=red", ERR_INVALID));
  CHECK(strstr(error_message(), "'color'") != NULL);
  CHECK(strstr(error_message(), "name, status, id") != NULL);
  CHECK(parse_fails("name", ERR_INVALID));
  CHECK(parse_fails("name=", ERR_INVALID));
  CHECK(parse_fails("=web", ERR_INVALID));
  CHECK(parse_fails("name=\"web", ERR_INVALID));
  CHECK(parse_fails("name=we\"b", ERR_INVALID));
  CHECK(parse_fails("name=web and", ERR_INVALID));
  CHECK(parse_fails("name=web and   ", ERR_INVALID));
  CHECK(parse_fails("name=web status=up", ERR_INVALID));
  CHECK(parse_fails("name=web andstatus=up", ERR_INVALID));
  CHECK(parse_fails("name==web", ERR_INVALID));
  CHECK(parse_fails("name=web or name=db", ERR_UNSUPPORTED));
  CHECK(parse_fails("name>web", ERR_UNSUPPORTED));
  CHECK(parse_fails("and name=web", ERR_INVALID));
  CHECK(parse_fails("name!web", ERR_INVALID));
}

int main(void)
{
  test_glob();
  test_terms();
  test_errors();
  return tap_done();
}
