#include "tap.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/spawn.h"
#include "util/uuid.h"
#include "util/vec.h"

static int fails_with_conflict(void) { return error(ERR_CONFLICT, "disk '%s' is locked", "d1"); }

int main(void)
{
  AUTOBUF struct buf b = BUF_INIT;
  CHECK_STR(buf_str(&b), "");
  buf_printf(&b, "%s-%d", "a", 42);
  buf_put_xml_escaped(&b, "<&\"'>");
  CHECK_STR(buf_str(&b), "a-42&lt;&amp;&quot;&apos;&gt;");

  CHECK(fails_with_conflict() == -1);
  CHECK(error_code() == ERR_CONFLICT);
  CHECK_STR(error_message(), "disk 'd1' is locked");
  CHECK(error_http_status(error_code()) == 409);
  error_prefix("cannot attach: ");
  CHECK_STR(error_message(), "cannot attach: disk 'd1' is locked");

  char u[UUID_STRLEN + 1];
  CHECK(uuid_generate_str(u) == 0);
  CHECK(uuid_is_valid(u));
  CHECK(!uuid_is_valid("not-a-uuid"));
  CHECK(u[14] == '4');

  AUTOBUF struct buf out = BUF_INIT;
  const char *argv[] = {"echo", "hello; rm -rf /", NULL};
  CHECK(spawn_run(argv, &out, NULL) == 0);
  CHECK_STR(buf_str(&out), "hello; rm -rf /\n");
  const char *bad[] = {"false", NULL};
  CHECK(spawn_run(bad, NULL, NULL) == -1);
  const char *missing[] = {"/nonexistent/prog", NULL};
  CHECK(spawn_run(missing, NULL, NULL) == -1);

  AUTOSTRVEC struct strvec v = VEC_INIT;
  for (int i = 0; i < 20; i++) vec_push(&v, xasprintf("%d", i));
  CHECK(v.len == 20);
  CHECK_STR(v.ptr[19], "19");
  return tap_done();
}
