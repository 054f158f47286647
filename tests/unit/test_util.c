#include "tap.h"
#include "util/blkhash.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/spawn.h"
#include "util/uuid.h"
#include "util/vec.h"

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
  test_blkhash();
  return tap_done();
}
