#include "tap.h"
#include "util/blkhash.h"
#include "util/blocking.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/spawn.h"
#include "util/uuid.h"
#include "util/vec.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* a process that runs spawn_status("sleep 30.1234567") and is then killed -9, as the
 * engine during an OVA export: its child must not go on running */
static void child_dies_with_engine(void)
{
  int p[2];
  CHECK(pipe(p) == 0);
  pid_t engine = fork();
  if (engine == 0) {
    close(p[0]);
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (write(p[1], line, (size_t)n) < 0) _exit(1);
    const char *argv[] = {"sleep", "30.1234567", NULL};
    spawn_status(argv, NULL, NULL);
    _exit(0);
  }
  close(p[1]);
  char line[32] = "";
  CHECK(read(p[0], line, sizeof line - 1) > 0);
  close(p[0]);
  size_t n = 0;
  pid_t *kids = NULL;
  for (int i = 0; i < 200 && n == 0; i++) { /* up to 2 s for the child to exec */
    free(kids);
    kids = process_find("sleep", "30.1234567", &n);
    if (n == 0) usleep(10000);
  }
  CHECK(n == 1);
  kill(engine, SIGKILL);
  waitpid(engine, NULL, 0);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; i++) { /* up to 2 s */
    gone = n == 0 || !process_matches(kids[0], "sleep", "30.1234567");
    if (!gone) usleep(10000);
  }
  CHECK(gone);
  if (!gone && n) kill(kids[0], SIGKILL);
  free(kids);
}

/* hex of a one-shot blake2b */
static char *b2hex(size_t outlen, const void *data, size_t len)
{
  unsigned char out[64];
  blake2b(out, outlen, data, len);
  struct buf b = BUF_INIT;
  for (size_t i = 0; i < outlen; i++) buf_printf(&b, "%02x", out[i]);
  return buf_detach(&b);
}

/* the values come from Python's hashlib, as imageio computes them */
static void test_blkhash(void)
{
  AUTOFREE char *e = b2hex(32, "", 0), *abc = b2hex(32, "abc", 3), *abc64 = b2hex(64, "abc", 3);
  CHECK_STR(e, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  CHECK_STR(abc, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  CHECK_STR(abc64, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
                   "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
  /* bytes(range(256)) * 1000 + 70000 zero bytes + 100 'x', in 64 KiB blocks */
  size_t n = 326100, bs = 65536;
  AUTOFREE unsigned char *d = xcalloc(1, n);
  for (size_t i = 0; i < 256000; i++) d[i] = (unsigned char)i;
  memset(d + 326000, 'x', 100);
  AUTOFREE char *one = b2hex(32, d, 256000);
  CHECK_STR(one, "5d074c3f889bcba3b3a253496ee73cba18832b6d3c67d2b739dc202c78ed2581");
  const char *algs[] = {"blake2b", "sha256", "blake2s"};
  const char *want[] = {"39e74348bad7eefc1af1c1dd7764f3393f1f76cd031cf06adce2ac2a5e923510",
                        "0f36fd73023dca9a9a14b65cd3802afe45141db8b4cba8c0d9a5041e2a899249",
                        "e265ccd24624315866a8855d2c088c3d01cb0ec6f4425b853073ff3cda331d12"};
  for (size_t a = 0; a < 3; a++) {
    struct blkhash *h = blkhash_new(algs[a], bs);
    CHECK(h != NULL);
    if (!h) continue;
    for (size_t off = 0; off < n; off += bs) blkhash_update(h, d + off, n - off < bs ? n - off : bs);
    AUTOFREE char *hex = blkhash_hexdigest(h);
    CHECK_STR(hex, want[a]);
    blkhash_free(h);
  }
  /* zero blocks without data: two full ones (the second from the cache), a short one */
  struct blkhash *h = blkhash_new("blake2b", bs);
  blkhash_zero(h, bs);
  blkhash_zero(h, bs);
  blkhash_zero(h, 100);
  blkhash_update(h, "abc", 3);
  AUTOFREE char *hex = blkhash_hexdigest(h);
  CHECK_STR(hex, "2978d8bfdd0fcd9fdf29c1821c821d1f980ae0f1cc2d0a4bab37e7997202c3dc");
  blkhash_free(h);
  CHECK(blkhash_new("crc32", bs) == NULL && error_code() == ERR_INVALID);
  error_clear();
  CHECK(blkhash_supported("sha1") && !blkhash_supported("shake_128"));
  CHECK_STR(blkhash_algorithms()[0], "blake2b");
}

static int fails_with_conflict(void) { return error(ERR_CONFLICT, "disk '%s' is locked", "d1"); }

/* spawn_start_env adds its variables to the daemon's environment, a
 * variable of the same name replaced, not doubled */
static void test_spawn_env(void)
{
  char dir[] = "/tmp/snapback-test-env-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  AUTOFREE char *log = xasprintf("%s/env.log", dir);
  setenv("SNAPBACK_TEST_KEEP", "kept", 1);
  setenv("SNAPBACK_TEST_SWAP", "old", 1);
  const char *argv[] = {"env", NULL};
  const char *env[] = {"SNAPBACK_TEST_SWAP=new", "SNAPBACK_TEST_ADD=added", NULL};
  pid_t pid = 0;
  CHECK(spawn_start_env(argv, env, log, &pid) == 0);
  int status = -1;
  for (int i = 0; i < 500 && spawn_alive(pid, &status); i++) usleep(10000);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  AUTOBUF struct buf text = BUF_INIT;
  const char *cat[] = {"cat", log, NULL};
  CHECK(spawn_run(cat, &text, NULL) == 0);
  const char *t = buf_str(&text);
  CHECK(strstr(t, "SNAPBACK_TEST_KEEP=kept\n") && strstr(t, "SNAPBACK_TEST_SWAP=new\n") &&
        strstr(t, "SNAPBACK_TEST_ADD=added\n") && !strstr(t, "SNAPBACK_TEST_SWAP=old"));
  unlink(log);
  rmdir(dir);
  unsetenv("SNAPBACK_TEST_KEEP");
  unsetenv("SNAPBACK_TEST_SWAP");
}

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

  /* nothing may be spawned under the store lock (util/blocking.h) */
  blocking_forbid();
  const char *t[] = {"true", NULL};
  CHECK(spawn_run(t, NULL, NULL) == -1);
  CHECK(error_code() == ERR_INTERNAL);
  CHECK(strstr(error_message(), "store lock") != NULL);
  blocking_allow();
  CHECK(spawn_run(t, NULL, NULL) == 0);
  /* the tool's own signals are back to default (the daemon ignores SIGPIPE) */
  signal(SIGPIPE, SIG_IGN);
  AUTOBUF struct buf sig = BUF_INIT;
  const char *sh[] = {"grep", "SigIgn", "/proc/self/status", NULL};
  CHECK(spawn_run(sh, &sig, NULL) == 0);
  {
    /* SIGPIPE, which the daemon ignores, is back to its default in the tool */
    const char *hex = strchr(buf_str(&sig), ':');
    unsigned long long ign = hex ? strtoull(hex + 1, NULL, 16) : ~0ULL;
    if (ign & (1ULL << (SIGPIPE - 1))) fprintf(stderr, "child's %s", buf_str(&sig));
    CHECK(!(ign & (1ULL << (SIGPIPE - 1))));
  }
  signal(SIGPIPE, SIG_DFL);
  child_dies_with_engine();
  test_spawn_env();

  AUTOSTRVEC struct strvec v = VEC_INIT;
  for (int i = 0; i < 20; i++) vec_push(&v, xasprintf("%d", i));
  CHECK(v.len == 20);
  CHECK_STR(v.ptr[19], "19");
  test_blkhash();
  return tap_done();
}
