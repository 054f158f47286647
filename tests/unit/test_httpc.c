/* test_httpc.c: the CLI's HTTP client against a scripted server on a
 * loopback socket and on a unix socket: lengths, chunks, keep-alive and a
 * kept connection the server closed, interim answers, an answer longer than
 * the sink takes, URLs. (TLS is exercised end to end: tests/e2e, the
 * snapback CLI against the engine's https listener.) */
#include "cli/httpc.h"
#include "tap.h"
#include "util/buf.h"
#include "util/err.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* what the server answers to the n-th request, and whether it closes after */
struct reply { const char *raw; bool close; };

struct server {
  int lfd;
  const struct reply *script;
  size_t nscript, served, accepted;
  char last_request[4096];
};

/* reads one request (head and Content-Length body); false at the end */
static bool read_request(int fd, char *out, size_t cap)
{
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t k = recv(fd, out + n, 1, 0);
    if (k <= 0) return false;
    n += (size_t)k;
    out[n] = '\0';
    if (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0) break;
  }
  const char *cl = strcasestr(out, "Content-Length: ");
  size_t body = cl ? (size_t)atol(cl + 16) : 0;
  char sink[256];
  while (body) {
    ssize_t k = recv(fd, sink, body < sizeof sink ? body : sizeof sink, 0);
    if (k <= 0) return false;
    body -= (size_t)k;
  }
  return true;
}

static void *serve(void *arg)
{
  struct server *s = arg;
  while (s->served < s->nscript) {
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) break;
    s->accepted++;
    char req[4096];
    while (s->served < s->nscript && read_request(fd, req, sizeof req)) {
      memcpy(s->last_request, req, sizeof req);
      const struct reply *r = &s->script[s->served++];
      if (send(fd, r->raw, strlen(r->raw), MSG_NOSIGNAL) < 0) break;
      if (r->close) break;
    }
    close(fd);
  }
  return NULL;
}

static int collect(void *opaque, const void *data, size_t len)
{
  buf_add(opaque, data, len);
  return 0;
}

static int small_sink(void *opaque, const void *data, size_t len)
{
  size_t *left = opaque;
  if (len > *left) return -1;
  *left -= len;
  (void)data;
  return 0;
}

static long get(struct httpc *h, const char *url, const char *sock, struct buf *body)
{
  buf_reset(body);
  const char *hdrs[] = {"Accept: application/json", NULL};
  struct httpc_req r = {.method = "GET", .url = url, .unix_socket = sock, .headers = hdrs, .sink = collect,
                        .opaque = body};
  return httpc_do(h, &r);
}

static void test_urls(void)
{
  struct httpc_url u;
  CHECK(httpc_url_parse("https://engine.example:8443/ovirt-engine/api", &u) == 0);
  CHECK(u.tls && strcmp(u.host, "engine.example") == 0 && strcmp(u.port, "8443") == 0 &&
        strcmp(u.path, "/ovirt-engine/api") == 0);
  httpc_url_clear(&u);
  CHECK(httpc_url_parse("http://[::1]:99/x?y=1#frag", &u) == 0);
  CHECK(!u.tls && strcmp(u.host, "::1") == 0 && strcmp(u.port, "99") == 0 && strcmp(u.path, "/x?y=1") == 0);
  httpc_url_clear(&u);
  CHECK(httpc_url_parse("http://h", &u) == 0 && strcmp(u.port, "80") == 0 && strcmp(u.path, "/") == 0);
  httpc_url_clear(&u);
  CHECK(httpc_url_parse("https://h?q", &u) == 0 && strcmp(u.port, "443") == 0 && strcmp(u.path, "/?q") == 0);
  httpc_url_clear(&u);
  const char *bad[] = {"ftp://h/", "h/x", "http://user@h/", "http://h:8x/", "http://:80/", "http://[::1/",
                       "http://h:123456/"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CHECK(httpc_url_parse(bad[i], &u) < 0 && error_code() == ERR_INVALID);
    error_clear();
  }
}

static void test_tcp(void)
{
  static const struct reply script[] = {
      /* 1, 2: one connection, kept */
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", false},
      {"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n",
       true},
      /* 3: after the server closed it: a new connection; an interim answer first */
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno", false},
      /* 4: the kept connection, which the server then drops without answering:
       * see 5 */
      {"", true},
      /* 5: the retry on a new connection, no length: until the end */
      {"HTTP/1.0 200 OK\r\n\r\nuntil the end", true},
      /* 6: longer than the sink takes */
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", false},
      /* 7: not HTTP */
      {"SSH-2.0-OpenSSH\r\n\r\n", true},
  };
  struct server s = {.script = script, .nscript = sizeof script / sizeof *script};
  s.lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  CHECK(bind(s.lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s.lfd, 4) == 0 &&
        getsockname(s.lfd, (struct sockaddr *)&sa, &sl) == 0);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, serve, &s) == 0);
  AUTOFREE char *url = xasprintf("http://127.0.0.1:%d/api/x?y=1", ntohs(sa.sin_port));
  AUTOPTR(httpc) h = httpc_new(NULL);
  AUTOBUF struct buf body = BUF_INIT;

  CHECK(get(h, url, NULL, &body) == 200 && strcmp(buf_str(&body), "hello") == 0);
  CHECK(strstr(s.last_request, "GET /api/x?y=1 HTTP/1.1\r\n") == s.last_request);
  CHECK(strstr(s.last_request, "\r\nAccept: application/json\r\n") != NULL);
  CHECK(strstr(s.last_request, "\r\nHost: 127.0.0.1:") != NULL);
  /* a POST with a body, on the same connection */
  buf_reset(&body);
  struct httpc_req post = {.method = "POST", .url = url, .body = "<action/>", .body_len = 9, .sink = collect,
                           .opaque = &body};
  CHECK(httpc_do(h, &post) == 201 && strcmp(buf_str(&body), "abcdefg") == 0);
  CHECK(strstr(s.last_request, "POST /api/x?y=1 HTTP/1.1\r\n") && strstr(s.last_request, "Content-Length: 9\r\n"));
  CHECK(s.accepted == 1);
  CHECK(get(h, url, NULL, &body) == 404 && strcmp(buf_str(&body), "no") == 0);
  CHECK(s.accepted == 2);
  CHECK(get(h, url, NULL, &body) == 200 && strcmp(buf_str(&body), "until the end") == 0);
  CHECK(s.accepted == 3);
  size_t room = 4;
  struct httpc_req small = {.method = "GET", .url = url, .sink = small_sink, .opaque = &room};
  CHECK(httpc_do(h, &small) == -1 && error_code() == ERR_UNAVAILABLE && strstr(error_message(), "longer"));
  error_clear();
  CHECK(get(h, url, NULL, &body) == -1 && strstr(error_message(), "not an HTTP answer"));
  error_clear();
  pthread_join(t, NULL);
  close(s.lfd);
  /* nobody listens there any more */
  CHECK(get(h, url, NULL, &body) == -1 && error_code() == ERR_UNAVAILABLE && strstr(error_message(), "refused"));
  error_clear();
}

static void test_unix(const char *dir)
{
  static const struct reply script[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false},
  };
  struct server s = {.script = script, .nscript = 1};
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s/io.sock", dir);
  s.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(bind(s.lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s.lfd, 4) == 0);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, serve, &s) == 0);
  AUTOPTR(httpc) h = httpc_new(NULL);
  AUTOBUF struct buf body = BUF_INIT;
  /* the URL's host is not dialed: only its path counts */
  CHECK(get(h, "https://engine.invalid:54322/images/ticket", sa.sun_path, &body) == 200 &&
        strcmp(buf_str(&body), "{}") == 0);
  CHECK(strstr(s.last_request, "GET /images/ticket HTTP/1.1\r\nHost: localhost\r\n") == s.last_request);
  pthread_join(t, NULL);
  close(s.lfd);
  unlink(sa.sun_path);
}

int main(void)
{
  char tmpl[] = "/tmp/snapback-test-httpc-XXXXXX";
  const char *dir = mkdtemp(tmpl);
  CHECK(dir != NULL);
  test_urls();
  test_tcp();
  if (dir) test_unix(dir);
  if (dir) rmdir(dir);
  return tap_done();
}
