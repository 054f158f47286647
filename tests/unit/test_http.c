/* test_http.c: the HTTP layer's parts that stand without the API: argon2id
 * passwords, tokens against a real store, Basic credentials, fault rendering
 * the PKI (checked by the openssl command line tool) and the web console's
 * assets (integrity hashes, URL mapping). The server itself
 * is driven over HTTP by test_api.c. */
#include "tap.h"
#include "cmd/auth.h"
#include "cmd/perm.h"
#include "http/extent.h"
#include "http/fault.h"
#include "http/pki.h"
#include "http/patch.h"
#include "http/range.h"
#include "cmd/throttle.h"
#include "http/webassets.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/spawn.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *b64(const char *s)
{
  size_t len = strlen(s);
  char *out = xcalloc(4 * ((len + 2) / 3) + 1, 1);
  EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
  return out;
}

static void test_passwords(void)
{
  AUTOFREE char *h1 = auth_hash_password("s3cret");
  AUTOFREE char *h2 = auth_hash_password("s3cret");
  CHECK(h1 && strncmp(h1, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
  CHECK(h1 && h2 && strcmp(h1, h2) != 0);  /* salted */
  CHECK(auth_verify_password(h1, "s3cret") == 0);
  CHECK(auth_verify_password(h1, "s3creT") == -1 && error_code() == ERR_AUTH);
  CHECK_STR(error_message(), "invalid username or password");
  CHECK(auth_verify_password(h1, "") == -1 && error_code() == ERR_AUTH);
  CHECK(auth_verify_password("plain", "plain") == -1 && error_code() == ERR_INTERNAL);
  CHECK(auth_verify_password(NULL, "x") == -1 && error_code() == ERR_INTERNAL);
  AUTOFREE char *empty = auth_hash_password("");
  CHECK(empty && auth_verify_password(empty, "") == 0);
}

static void test_usernames_and_basic(void)
{
  AUTOFREE char *a = auth_full_username("admin");
  AUTOFREE char *b = auth_full_username("admin@internal");
  AUTOFREE char *c = auth_full_username("joe@example.com");
  CHECK_STR(a, "admin@internal");
  CHECK_STR(b, "admin@internal");
  CHECK_STR(c, "joe@example.com");

  static const char *const cases[][3] = {
    {"admin@internal:s3cret", "admin@internal", "s3cret"},
    {"admin:a:b:c", "admin", "a:b:c"},   /* only the first ':' splits */
    {"u:", "u", ""},                     /* 2 padding chars */
    {"ab:cd", "ab", "cd"},               /* 1 padding char */
    {"abc:def", "abc", "def"},           /* none */
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    AUTOFREE char *enc = b64(cases[i][0]);
    AUTOFREE char *u = NULL;
    AUTOFREE char *p = NULL;
    CHECK(auth_parse_basic(enc, &u, &p) == 0);
    CHECK_STR(u, cases[i][1]);
    CHECK_STR(p, cases[i][2]);
  }
  static const char *const bad[] = {"", "abc", "!!!!", "YWRtaW4=" /* "admin": no ':' */,
                                    "YQBiOmM=" /* "a\0b:c" */};
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    char *u = NULL, *p = NULL;
    CHECK(auth_parse_basic(bad[i], &u, &p) == -1 && error_code() == ERR_AUTH);
    CHECK(!u && !p);
  }
}

static struct user *make_user(struct store *st, const char *id, const char *name, const char *pw)
{
  struct user *u = xcalloc(1, sizeof *u);
  u->id = xstrdup(id);
  u->name = xstrdup(name);
  u->password_hash = auth_hash_password(pw);
  CHECK(user_insert(st, u) == 0);
  /* a user needs LOGIN from some permission to log in */
  AUTOFREE char *pid = xasprintf("perm-of-%s", id);
  struct permission p = {.id = pid, .role_id = (char *)PERM_SUPERUSER_ROLE_ID, .user_id = u->id,
                         .object_type = (char *)"system", .object_id = (char *)PERM_SYSTEM_ID};
  CHECK(permission_insert(st, &p) == 0);
  return u;
}

static void test_tokens(const char *dir)
{
  AUTOFREE char *url = xasprintf("sqlite:%s/db.sqlite", dir);
  struct store *st = store_open(url);
  CHECK(st != NULL);
  if (!st) {
    fprintf(stderr, "store_open: %s\n", error_message());
    return;
  }
  AUTOPTR(user) admin = make_user(st, "00000000-0000-4000-8000-000000000001", "admin@internal", "s3cret");
  AUTOPTR(auth) a = auth_new(st, 0);

  /* login: right, wrong, unknown, short form */
  int64_t exp = 0;
  AUTOFREE char *tok = auth_login(a, "admin@internal", "s3cret", NULL, &exp);
  CHECK(tok && strlen(tok) == 64 && strspn(tok, "0123456789abcdef") == 64);
  CHECK(exp > 0);
  /* the store holds the digest, never the token */
  AUTOFREE char *digest = tok ? secret_digest(tok) : NULL;
  AUTOPTR(token) stored = digest ? token_get(st, digest) : NULL;
  CHECK(stored && strcmp(stored->user_id, admin->id) == 0 && stored->expires_ms == exp);
  CHECK(digest && strncmp(digest, "sha256:", 7) == 0 && strlen(digest) == 71);
  CHECK(tok && token_get(st, tok) == NULL && error_code() == ERR_NOT_FOUND);
  error_clear();
  CHECK(auth_login(a, "admin@internal", "wrong", NULL, NULL) == NULL && error_code() == ERR_AUTH);
  CHECK_STR(error_message(), "invalid username or password");
  CHECK(auth_login(a, "nobody@internal", "s3cret", NULL, NULL) == NULL && error_code() == ERR_AUTH);
  CHECK_STR(error_message(), "invalid username or password");
  CHECK(auth_login(a, "", "s3cret", NULL, NULL) == NULL && error_code() == ERR_AUTH);
  AUTOFREE char *tok2 = auth_login(a, "admin", "s3cret", NULL, NULL);
  CHECK(tok2 && strcmp(tok2, tok) != 0);

  /* bearer: from the cache, through the header, unknown */
  AUTOPTR(user) u1 = auth_check_bearer(a, tok);
  CHECK(u1 && strcmp(u1->name, "admin@internal") == 0 && strcmp(u1->id, admin->id) == 0);
  CHECK(u1 && u1->password_hash == NULL);
  AUTOFREE char *hdr = xasprintf("Bearer %s", tok);
  AUTOPTR(user) u2 = auth_check_header(a, hdr, NULL);
  CHECK(u2 && strcmp(u2->id, admin->id) == 0);
  CHECK(auth_check_bearer(a, "deadbeef") == NULL && error_code() == ERR_AUTH);
  CHECK(auth_check_header(a, NULL, NULL) == NULL && error_code() == ERR_AUTH);
  CHECK(auth_check_header(a, "Digest x", NULL) == NULL && error_code() == ERR_AUTH);

  /* a token only the store knows (another auth instance's cache is cold) */
  AUTOPTR(auth) cold = auth_new(st, 0);
  AUTOPTR(user) u3 = auth_check_bearer(cold, tok);
  CHECK(u3 && strcmp(u3->id, admin->id) == 0);
  AUTOFREE char *past_digest = secret_digest("expired0expired0");
  struct token past = {.token = past_digest, .user_id = admin->id, .expires_ms = 1000};
  CHECK(token_insert(st, &past) == 0);
  /* a token an older version stored in the clear is hashed by the next start */
  struct token legacy = {.token = "legacy0legacy0", .user_id = admin->id, .expires_ms = now_ms() + 60000};
  CHECK(token_insert(st, &legacy) == 0);
  AUTOPTR(auth) upgraded = auth_new(st, 0);
  CHECK(token_get(st, "legacy0legacy0") == NULL && error_code() == ERR_NOT_FOUND);
  AUTOPTR(user) lu = auth_check_bearer(upgraded, "legacy0legacy0");
  CHECK(lu && strcmp(lu->id, admin->id) == 0);
  CHECK(auth_check_bearer(cold, "expired0expired0") == NULL && error_code() == ERR_AUTH);

  /* expiry while cached */
  AUTOPTR(auth) brief = auth_new(st, 150);
  AUTOFREE char *tok3 = auth_login(brief, "admin@internal", "s3cret", NULL, NULL);
  AUTOPTR(user) u4 = tok3 ? auth_check_bearer(brief, tok3) : NULL;
  CHECK(u4 != NULL);
  usleep(300 * 1000);
  CHECK(tok3 && auth_check_bearer(brief, tok3) == NULL && error_code() == ERR_AUTH);
  CHECK(tok3 && auth_check_bearer(cold, tok3) == NULL && error_code() == ERR_AUTH);

  /* logout: gone from the cache and the store; unknown tokens are fine */
  CHECK(auth_logout(a, tok) == 0);
  CHECK(auth_check_bearer(a, tok) == NULL && error_code() == ERR_AUTH);
  CHECK(token_get(st, digest) == NULL && error_code() == ERR_NOT_FOUND);
  CHECK(auth_logout(a, tok) == 0);
  CHECK(auth_logout(a, NULL) == 0);
  /* a token logged out through one instance is still cached by another for
   * at most BEARER_RECHECK_MS: acceptable, the daemon has one instance */

  /* Basic: full and short user names, wrong password, cached second time */
  AUTOFREE char *good = b64("admin@internal:s3cret");
  AUTOFREE char *good_short = b64("admin:s3cret");
  AUTOFREE char *wrong = b64("admin@internal:nope");
  AUTOPTR(user) b1 = auth_check_basic(a, good, NULL);
  CHECK(b1 && strcmp(b1->id, admin->id) == 0);
  AUTOPTR(user) b2 = auth_check_basic(a, good, NULL);
  CHECK(b2 && strcmp(b2->id, admin->id) == 0);
  AUTOPTR(user) b3 = auth_check_basic(a, good_short, NULL);
  CHECK(b3 && strcmp(b3->name, "admin@internal") == 0);
  CHECK(auth_check_basic(a, wrong, NULL) == NULL && error_code() == ERR_AUTH);
  CHECK_STR(error_message(), "invalid username or password");
  AUTOFREE char *bh = xasprintf("basic %s", good);  /* scheme is case-insensitive */
  AUTOPTR(user) b4 = auth_check_header(a, bh, NULL);
  CHECK(b4 != NULL);

  /* throttling: three free failures per user, then a wait that even the
   * right password must sit out; answered at once, with the time left */
  AUTOPTR(user) carol = make_user(st, "00000000-0000-4000-8000-000000000003", "carol@internal", "pw-c");
  CHECK(carol != NULL);
  for (int i = 0; i < 3; i++)
    CHECK(auth_login(a, "carol", "guess", "192.0.2.1", NULL) == NULL && error_code() == ERR_AUTH);
  int64_t t0 = now_ms();
  CHECK(auth_login(a, "carol", "pw-c", "192.0.2.2", NULL) == NULL && error_code() == ERR_THROTTLED);
  CHECK(now_ms() - t0 < 50 && auth_last_retry_after() == 1);
  CHECK(auth_login(a, "carol", "guess", "192.0.2.3", NULL) == NULL && error_code() == ERR_THROTTLED);
  /* another user from the same address is not slowed by carol's failures */
  AUTOFREE char *tok5 = auth_login(a, "admin", "s3cret", "192.0.2.1", NULL);
  CHECK(tok5 != NULL);
  error_clear();

  /* a password verified lately skips argon2, keyed by the stored hash: a
   * changed password is refused at once, the new one works, a lock holds */
  AUTOPTR(user) changed = user_get(st, admin->id);
  CHECK(changed != NULL);
  if (changed) {
    free(changed->password_hash);
    changed->password_hash = auth_hash_password("n3w");
    CHECK(user_update(st, changed) == 0);
  }
  CHECK(auth_login(a, "admin", "s3cret", NULL, NULL) == NULL && error_code() == ERR_AUTH);
  AUTOFREE char *tok6 = auth_login(a, "admin", "n3w", NULL, NULL);
  AUTOFREE char *tok7 = auth_login(a, "admin", "n3w", NULL, NULL);
  CHECK(tok6 && tok7 && strcmp(tok6, tok7) != 0);
  struct user_lock lk = {.user_id = admin->id, .since_ms = now_ms()};
  CHECK(user_lock_insert(st, &lk) == 0);
  CHECK(auth_login(a, "admin", "n3w", NULL, NULL) == NULL && error_code() != ERR_NONE);
  CHECK(user_lock_delete(st, admin->id) == 0);
  error_clear();
  error_clear();

  auth_free(steal_pointer(&a));
  auth_free(steal_pointer(&cold));
  auth_free(steal_pointer(&brief));
  store_close(st);
}

/* the back-off itself, on a made-up clock: no argon2, no sleeping */
static void test_throttle(void)
{
  AUTOPTR(throttle) t = throttle_new();
  const char *user[] = {"user:u"}, *both[] = {"user:v", "addr:a"};
  const int free_user[] = {3}, free_both[] = {3, 10};
  int64_t now = 1000000;
  for (int i = 0; i < 3; i++) CHECK(throttle_attempt(t, user, free_user, 1, now) == 0);
  CHECK(throttle_attempt(t, user, free_user, 1, now) == 1000);      /* 4th: 1 s after the last */
  CHECK(throttle_attempt(t, user, free_user, 1, now + 999) == 1);
  CHECK(throttle_attempt(t, user, free_user, 1, now + 1000) == 0);  /* let through, counted */
  CHECK(throttle_attempt(t, user, free_user, 1, now + 1000) == 2000);
  for (int i = 0; i < 20; i++) {                                    /* doubling up to the cap */
    now += 120000;
    CHECK(throttle_attempt(t, user, free_user, 1, now) == 0);
  }
  CHECK(throttle_attempt(t, user, free_user, 1, now) == 60000);
  CHECK(throttle_attempt(t, user, free_user, 1, now + 15 * 60000 + 1) == 0);  /* forgotten */
  throttle_reset(t, "user:u");
  CHECK(throttle_attempt(t, user, free_user, 1, now) == 0);
  /* two keys: a waiting one blocks and records nothing on the other */
  for (int i = 0; i < 3; i++) CHECK(throttle_attempt(t, both, free_both, 2, now) == 0);
  CHECK(throttle_attempt(t, both, free_both, 2, now) == 1000);
  char name[16];
  const char *other[] = {name, "addr:a"};
  for (int i = 0; i < 7; i++) {                                     /* other names, same address */
    snprintf(name, sizeof name, "user:w%d", i);
    CHECK(throttle_attempt(t, other, free_both, 2, now) == 0);
  }
  snprintf(name, sizeof name, "user:x");
  CHECK(throttle_attempt(t, other, free_both, 2, now) == 1000);     /* the address's 10 are used */
  throttle_forgive(t, "addr:a");                                    /* one of them succeeded */
  CHECK(throttle_attempt(t, other, free_both, 2, now) == 0);
}

static void test_faults(void)
{
  for (int code = ERR_INVALID; code < ERR_LAST; code++) {
    struct buf x = BUF_INIT, j = BUF_INIT;
    error((enum err_code)code, "cannot do '%s' <now> & later", error_code_name((enum err_code)code));
    int sx = fault_render_current(false, &x);
    int sj = fault_render_current(true, &j);
    int want = error_http_status((enum err_code)code);
    CHECK(sx == want && sj == want);
    const char *reason = want == 401 ? "Unauthorized" : want == 403 ? "Forbidden"
                       : want == 404 ? "Not Found" : want == 429 ? "Too Many Requests" : "Operation Failed";
    AUTOFREE char *rx = xasprintf("<reason>%s</reason>", reason);
    AUTOFREE char *dx = xasprintf("<detail>[cannot do '%s' &lt;now&gt; &amp; later]</detail>",
                                  error_code_name((enum err_code)code));
    /* the apostrophe may or may not be escaped: compare without it */
    CHECK(strstr(buf_str(&x), "<fault>") != NULL);
    CHECK(strstr(buf_str(&x), rx) != NULL);
    if (!strstr(buf_str(&x), dx)) {
      CHECK(strstr(buf_str(&x), "&lt;now&gt; &amp; later]</detail>") != NULL);
    } else {
      CHECK(1);
    }
    json_error_t je;
    json_t *o = json_loads(buf_str(&j), 0, &je);
    CHECK(o && json_is_object(o));
    CHECK_STR(json_string_value(json_object_get(o, "reason")), reason);
    AUTOFREE char *dj = xasprintf("[cannot do '%s' <now> & later]", error_code_name((enum err_code)code));
    CHECK_STR(json_string_value(json_object_get(o, "detail")), dj);
    json_decref(o);
    buf_free(&x);
    buf_free(&j);
  }
  /* -1 without a recorded error is a bug, still answered as a fault */
  error_clear();
  struct buf b = BUF_INIT;
  CHECK(fault_render_current(false, &b) == 500);
  CHECK(strstr(buf_str(&b), "<detail>[internal error: no error recorded]</detail>") != NULL);
  buf_free(&b);
  CHECK(fault_render(ERR_CONFLICT, "Cannot attach Virtual Disk. The disk is already attached to VM.",
                     false, &b) == 409);
  CHECK(strstr(buf_str(&b), "<reason>Operation Failed</reason>") != NULL);
  CHECK(strstr(buf_str(&b), "<detail>[Cannot attach Virtual Disk. The disk is already attached to VM.]</detail>") != NULL);
  buf_free(&b);
}

static int file_mode(const char *dir, const char *name)
{
  AUTOFREE char *p = xasprintf("%s/%s", dir, name);
  struct stat sb;
  return stat(p, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
}

static void check_openssl_verify(const char *dir)
{
  AUTOFREE char *ca = xasprintf("%s/ca.pem", dir);
  AUTOFREE char *srv = xasprintf("%s/server.pem", dir);
  const char *const plain[] = {"openssl", "verify", "-CAfile", ca, srv, NULL};
  const char *const host[] = {"openssl", "verify", "-CAfile", ca, "-verify_hostname", "localhost", srv, NULL};
  const char *const ip4[] = {"openssl", "verify", "-CAfile", ca, "-verify_ip", "127.0.0.1", srv, NULL};
  const char *const ip6[] = {"openssl", "verify", "-CAfile", ca, "-verify_ip", "::1", srv, NULL};
  const char *const other[] = {"openssl", "verify", "-CAfile", ca, "-verify_hostname", "evil.example", srv, NULL};
  const char *const *ok[] = {plain, host, ip4, ip6};
  for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
    struct buf out = BUF_INIT;
    int rc = spawn_run(ok[i], &out, NULL);
    CHECK(rc == 0);
    if (rc) fprintf(stderr, "openssl verify: %s\n", error_message());
    buf_free(&out);
  }
  CHECK(spawn_status(other, NULL, NULL) > 0);
  /* the CA is a CA: it verifies itself as a CA */
  const char *const ca_self[] = {"openssl", "verify", "-CAfile", ca, "-purpose", "sslserver", srv, NULL};
  CHECK(spawn_run(ca_self, NULL, NULL) == 0);
  struct buf text = BUF_INIT;
  const char *const show[] = {"openssl", "x509", "-in", ca, "-noout", "-text", NULL};
  CHECK(spawn_run(show, &text, NULL) == 0);
  CHECK(strstr(buf_str(&text), "CA:TRUE") != NULL);
  CHECK(strstr(buf_str(&text), "Certificate Sign") != NULL);
  buf_free(&text);
}

static void test_pki(const char *base)
{
  AUTOFREE char *dir = xasprintf("%s/pki", base);
  struct pki_pems p = {0};
  CHECK(pki_ensure(dir, &p) == 0);
  CHECK(p.ca_cert && strstr(p.ca_cert, "BEGIN CERTIFICATE"));
  CHECK(p.server_cert && strstr(p.server_cert, "BEGIN CERTIFICATE"));
  CHECK(p.server_key && strstr(p.server_key, "PRIVATE KEY"));
  CHECK(file_mode(base, "pki") == 0700);
  CHECK(file_mode(dir, "ca.key") == 0600);
  CHECK(file_mode(dir, "server.key") == 0600);
  CHECK(file_mode(dir, "ca.pem") == 0644);
  check_openssl_verify(dir);

  /* a second start reuses everything */
  struct pki_pems q = {0};
  CHECK(pki_ensure(dir, &q) == 0);
  CHECK(q.ca_cert && p.ca_cert && strcmp(q.ca_cert, p.ca_cert) == 0);
  CHECK(q.server_cert && p.server_cert && strcmp(q.server_cert, p.server_cert) == 0);
  CHECK(q.server_key && p.server_key && strcmp(q.server_key, p.server_key) == 0);
  pki_pems_clear(&q);

  /* a lost server pair is re-issued by the same CA */
  AUTOFREE char *srv = xasprintf("%s/server.pem", dir);
  unlink(srv);
  CHECK(pki_ensure(dir, &q) == 0);
  CHECK(q.ca_cert && p.ca_cert && strcmp(q.ca_cert, p.ca_cert) == 0);
  CHECK(q.server_cert && p.server_cert && strcmp(q.server_cert, p.server_cert) != 0);
  check_openssl_verify(dir);
  pki_pems_clear(&q);
  pki_pems_clear(&p);
  CHECK(!p.server_key);

  /* a broken file is reported, not silently replaced */
  AUTOFREE char *ca = xasprintf("%s/ca.pem", dir);
  FILE *f = fopen(ca, "w");
  if (f) {
    fputs("garbage\n", f);
    fclose(f);
  }
  CHECK(pki_ensure(dir, &q) == -1 && error_code() == ERR_INTERNAL);
  CHECK(strstr(error_message(), "ca.pem") != NULL);
}

/* Range and Content-Range as imageio's clients send them, and what must be refused */
static void test_ranges(void)
{
  uint64_t a = 0, n = 0;
  CHECK(http_range_parse("bytes=0-511", 1024, &a, &n) == 0 && a == 0 && n == 512);
  CHECK(http_range_parse("bytes=512-", 1024, &a, &n) == 0 && a == 512 && n == 512);
  CHECK(http_range_parse("bytes=1000-5000", 1024, &a, &n) == 0 && a == 1000 && n == 24);
  CHECK(http_range_parse("bytes=-100", 1024, &a, &n) == 0 && a == 924 && n == 100);
  CHECK(http_range_parse("bytes=-5000", 1024, &a, &n) == 0 && a == 0 && n == 1024);
  const char *bad[] = {"bytes=1024-", "bytes=5-4", "bytes=0-1,4-5", "items=0-1", "bytes=-0", "bytes=x-1",
                       "bytes=1-x", "bytes=-", "bytes= 1-2", "bytes=1-2 ", "bytes=--1", "bytes=0--1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    error_clear();
    CHECK(http_range_parse(bad[i], 1024, &a, &n) == -1 && error_code() == ERR_INVALID);
  }
  CHECK(http_range_parse("bytes=0-0", 0, &a, &n) == -1);
  uint64_t s = 0, e = 0;
  CHECK(http_content_range_parse("bytes 0-511/*", &s, &e) == 0 && s == 0 && e == 512);
  CHECK(http_content_range_parse("bytes 512-1023/1024", &s, &e) == 0 && s == 512 && e == 1024);
  const char *badcr[] = {"bytes 5-4/*", "bytes 0-1", "bytes 0-1/x", "bytes -1-2/*", "bytes 0-1/*x", "0-1/*",
                         /* found by fuzz_range: the end wrapped to 0 */
                         "bytes 0-18446744073709551615/*", "bytes 0-99999999999999999999999/*"};
  for (size_t i = 0; i < sizeof badcr / sizeof badcr[0]; i++) {
    error_clear();
    CHECK(http_content_range_parse(badcr[i], &s, &e) == -1 && error_code() == ERR_INVALID);
  }
  error_clear();

  /* imageio PATCH bodies */
  struct imageio_patch p;
  const char *zero = "{\"op\": \"zero\", \"offset\": 512, \"size\": 1024, \"flush\": true}";
  CHECK(imageio_patch_parse(zero, strlen(zero), &p) == 0 && p.zero && p.flush && p.offset == 512 && p.size == 1024);
  CHECK(imageio_patch_parse("{\"op\": \"flush\"}", 15, &p) == 0 && !p.zero && p.flush);
  const char *badp[] = {"", "[]", "{}", "{\"op\": 1}", "{\"op\": \"trim\"}", "{\"op\": \"zero\"}",
                        "{\"op\": \"zero\", \"size\": -1}", "{\"op\": \"zero\", \"size\": 1, \"offset\": \"0\"}"};
  for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
    error_clear();
    CHECK(imageio_patch_parse(badp[i], strlen(badp[i]), &p) == -1 && error_code() == ERR_INVALID);
  }
  error_clear();
}

/* extents: merging, combining base:allocation with a dirty bitmap, JSON */
static void test_extents(void)
{
  struct extent_vec base = VEC_INIT, dirty = VEC_INIT, out = VEC_INIT;
  extent_add(&base, 0, 100, 0);
  extent_add(&base, 100, 50, 0);   /* merged */
  extent_add(&base, 150, 0, 3);    /* empty: nothing */
  extent_add(&base, 150, 250, EXTENT_ZERO | EXTENT_HOLE);
  CHECK(base.len == 2 && base.ptr[0].length == 150 && base.ptr[1].start == 150);
  CHECK(extent_vec_end(&base, 7) == 400 && extent_vec_end(&dirty, 7) == 7);
  extent_add(&dirty, 0, 120, 0);
  extent_add(&dirty, 120, 80, EXTENT_DIRTY);
  extent_add(&dirty, 200, 200, 0);
  /* [0,120) data clean, [120,150) data dirty, [150,200) zero dirty, [200,300) zero clean */
  extents_combine(&base, &dirty, 0, 300, &out);
  CHECK(out.len == 4);
  if (out.len == 4) {
    CHECK(out.ptr[0].start == 0 && out.ptr[0].length == 120 && out.ptr[0].flags == 0);
    CHECK(out.ptr[1].start == 120 && out.ptr[1].length == 30 && out.ptr[1].flags == EXTENT_DIRTY);
    CHECK(out.ptr[2].start == 150 && out.ptr[2].length == 50 &&
          out.ptr[2].flags == (EXTENT_DIRTY | EXTENT_ZERO | EXTENT_HOLE));
    CHECK(out.ptr[3].start == 200 && out.ptr[3].length == 100 && out.ptr[3].flags == (EXTENT_ZERO | EXTENT_HOLE));
  }
  AUTOBUF struct buf j = BUF_INIT;
  for (size_t i = 0; i < out.len; i++) extent_json(&j, &out.ptr[i], i < 2);
  CHECK_STR(buf_str(&j), "{\"start\": 0, \"length\": 120, \"dirty\": false, \"zero\": false}"
                         "{\"start\": 120, \"length\": 30, \"dirty\": true, \"zero\": false}"
                         "{\"start\": 150, \"length\": 50, \"zero\": true, \"hole\": true}"
                         "{\"start\": 200, \"length\": 100, \"zero\": true, \"hole\": true}");
  /* no base:allocation: data everywhere, dirty bits only */
  out.len = 0;
  extents_combine(NULL, &dirty, 100, 250, &out);
  CHECK(out.len == 3 && out.ptr[0].start == 100 && out.ptr[0].length == 20 && out.ptr[1].flags == EXTENT_DIRTY &&
        out.ptr[2].start == 200 && out.ptr[2].length == 50);
  /* no dirty context: base only, starting inside an extent */
  out.len = 0;
  extents_combine(&base, NULL, 140, 160, &out);
  CHECK(out.len == 2 && out.ptr[0].length == 10 && out.ptr[1].start == 150 && out.ptr[1].length == 10);
  free(base.ptr);
  free(dirty.ptr);
  free(out.ptr);
}

static void write_file(const char *dir, const char *name, const char *text)
{
  AUTOFREE char *path = xasprintf("%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

/* %SRI:NAME% becomes NAME's sha384 in HTML; URLs map to flat names only */
static void test_webassets(const char *base)
{
  AUTOFREE char *dir = xasprintf("%s/web", base);
  CHECK(mkdir(dir, 0700) == 0);
  write_file(dir, "app.js", "export const x = 1;\n");
  write_file(dir, "index.html", "<script type=module src=/app.js integrity=\"%SRI:app.js%\"></script>");
  write_file(dir, "notes.bin", "ignored: no known type");
  struct webassets *wa = webassets_load(dir);
  CHECK(wa != NULL);
  const struct webasset *js = webassets_find(wa, "/app.js");
  const struct webasset *html = webassets_find(wa, "/");
  CHECK(js && html && !js->html && html->html);
  if (js && html) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(js->data, js->len, md, &mdlen, EVP_sha384(), NULL);
    char b[100];
    EVP_EncodeBlock((unsigned char *)b, md, (int)mdlen);
    AUTOFREE char *want = xasprintf("<script type=module src=/app.js integrity=\"sha384-%s\"></script>", b);
    CHECK_STR(html->data, want);
    CHECK_STR(js->content_type, "text/javascript; charset=utf-8");
    CHECK(js->etag[0] == '"' && strstr(js->etag, js->integrity));
  }
  CHECK(webassets_find(wa, "/notes.bin") == NULL);
  CHECK(webassets_find(wa, "/../app.js") == NULL);
  CHECK(webassets_find(wa, "/x/app.js") == NULL);
  CHECK(webassets_find(wa, "/console") == NULL);  /* no console.html here */
  webassets_free(wa);

  write_file(dir, "console.html", "<link href=x integrity=\"%SRI:missing.css%\">");
  CHECK(webassets_load(dir) == NULL && error_code() == ERR_INVALID);
  error_clear();
  AUTOFREE char *none = xasprintf("%s/absent", base);
  CHECK(webassets_load(none) == NULL && error_code() == ERR_INTERNAL);
  error_clear();
}

int main(void)
{
  test_ranges();
  test_extents();
  char tmpl[] = "/tmp/test_http.XXXXXX";
  if (!mkdtemp(tmpl)) {
    perror("mkdtemp");
    return 1;
  }
  test_passwords();
  test_usernames_and_basic();
  test_faults();
  test_throttle();
  test_pki(tmpl);
  test_tokens(tmpl);
  test_webassets(tmpl);
  const char *const rm[] = {"rm", "-rf", tmpl, NULL};
  spawn_run(rm, NULL, NULL);
  return tap_done();
}
