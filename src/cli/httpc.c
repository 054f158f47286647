/* httpc.c: the CLI's HTTP/1.1 client (see httpc.h). */
#include "cli/httpc.h"
#include "util/buf.h"
#include "util/err.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS (30 * 1000)
#define IO_TIMEOUT_S 600          /* a read or write that makes no progress for this long fails */
#define MAX_HEAD ((size_t)64 << 10) /* status line and headers */

struct httpc {
  char *cacert;
  SSL_CTX *ctx;   /* made at the first https request */
  int fd;         /* the open connection, or -1 */
  SSL *ssl;       /* its TLS, for https */
  char *where;    /* what it is connected to: "tls host port", "tcp host port" or "unix path" */
  unsigned char in[16 << 10];
  size_t in_pos, in_len;
};

struct httpc *httpc_new(const char *cacert)
{
  struct httpc *h = xcalloc(1, sizeof *h);
  h->cacert = xstrdup(cacert);
  h->fd = -1;
  return h;
}

static void conn_close(struct httpc *h)
{
  if (h->ssl) {
    SSL_free(h->ssl);
    h->ssl = NULL;
  }
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  free(h->where);
  h->where = NULL;
  h->in_pos = h->in_len = 0;
}

void httpc_free(struct httpc *h)
{
  if (!h) return;
  conn_close(h);
  SSL_CTX_free(h->ctx);
  free(h->cacert);
  free(h);
}

void httpc_url_clear(struct httpc_url *u)
{
  free(u->host);
  free(u->port);
  free(u->path);
  memset(u, 0, sizeof *u);
}

int httpc_url_parse(const char *url, struct httpc_url *out)
{
  memset(out, 0, sizeof *out);
  const char *p;
  if (strncmp(url, "https://", 8) == 0) out->tls = true, p = url + 8;
  else if (strncmp(url, "http://", 7) == 0) p = url + 7;
  else return error(ERR_INVALID, "cannot use URL '%s': only http:// and https:// are known", url);
  size_t alen = strcspn(p, "/?#");
  const char *rest = p + alen;
  if (memchr(p, '@', alen)) return error(ERR_INVALID, "cannot use URL '%s': user names go in --user", url);
  const char *host = p, *port = NULL;
  size_t hlen;
  if (*p == '[') {
    const char *close = memchr(p, ']', alen);
    if (!close) return error(ERR_INVALID, "cannot use URL '%s': '[' without ']'", url);
    host = p + 1;
    hlen = (size_t)(close - host);
    if (close + 1 < rest) {
      if (close[1] != ':') return error(ERR_INVALID, "cannot use URL '%s': junk after ']'", url);
      port = close + 2;
    }
  } else {
    const char *colon = memchr(p, ':', alen);
    hlen = colon ? (size_t)(colon - p) : alen;
    if (colon) port = colon + 1;
  }
  size_t plen = port ? (size_t)(rest - port) : 0;
  if (!hlen) return error(ERR_INVALID, "cannot use URL '%s': no host", url);
  for (size_t i = 0; i < plen; i++)
    if (!isdigit((unsigned char)port[i]) || plen > 5)
      return error(ERR_INVALID, "cannot use URL '%s': the port must be a number", url);
  out->host = xasprintf("%.*s", (int)hlen, host);
  out->port = plen ? xasprintf("%.*s", (int)plen, port) : xstrdup(out->tls ? "443" : "80");
  size_t rlen = strcspn(rest, "#");
  out->path = *rest == '/' ? xasprintf("%.*s", (int)rlen, rest) : xasprintf("/%.*s", (int)rlen, rest);
  return 0;
}

/* the OpenSSL errors queued, as one line (cleared) */
static void ssl_why(struct buf *b)
{
  unsigned long e;
  while ((e = ERR_get_error())) {
    char one[256];
    ERR_error_string_n(e, one, sizeof one);
    buf_printf(b, "%s%s", b->len ? "; " : "", one);
  }
}

/* a connected socket to host:port within CONNECT_TIMEOUT_MS; -1 (error recorded) */
static int dial_tcp(const struct httpc_url *u)
{
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
  struct addrinfo *ai = NULL;
  int g = getaddrinfo(u->host, u->port, &hints, &ai);
  if (g != 0)
    return error(ERR_UNAVAILABLE, "cannot resolve '%s': %s", u->host, g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
  int fd = -1, last = 0;
  for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last = errno;
      continue;
    }
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      int n;
      do n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
      while (n < 0 && errno == EINTR);
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      if (n == 0) errno = ETIMEDOUT, rc = -1;
      else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) rc = -1;
      else if (soerr) errno = soerr, rc = -1;
      else rc = 0;
    }
    if (rc < 0) {
      last = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(ai);
  if (fd < 0) return error(ERR_UNAVAILABLE, "cannot connect to %s port %s: %s", u->host, u->port, strerror(last));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int dial_unix(const char *path)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    return error(ERR_INVALID, "cannot connect to '%s': the socket path is too long", path);
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return error(ERR_UNAVAILABLE, "cannot connect to '%s': %s", path, strerror(e));
  }
  return fd;
}

/* TLS over h->fd, the peer's certificate checked for u->host */
static int tls_start(struct httpc *h, const struct httpc_url *u)
{
  if (!h->ctx) {
    h->ctx = SSL_CTX_new(TLS_client_method());
    if (!h->ctx) return error(ERR_INTERNAL, "cannot set up TLS");
    SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, NULL);
    int ok = h->cacert ? SSL_CTX_load_verify_locations(h->ctx, h->cacert, NULL)
                       : SSL_CTX_set_default_verify_paths(h->ctx);
    if (ok != 1) {
      AUTOBUF struct buf why = BUF_INIT;
      ssl_why(&why);
      SSL_CTX_free(h->ctx);
      h->ctx = NULL;
      return h->cacert ? error(ERR_INVALID, "cannot use the CA file '%s': %s", h->cacert, buf_str(&why))
                       : error(ERR_INTERNAL, "cannot load the system's CAs: %s", buf_str(&why));
    }
  }
  h->ssl = SSL_new(h->ctx);
  if (!h->ssl || SSL_set_fd(h->ssl, h->fd) != 1) return error(ERR_INTERNAL, "cannot set up TLS");
  unsigned char ip[16];
  bool literal = inet_pton(AF_INET, u->host, ip) == 1 || inet_pton(AF_INET6, u->host, ip) == 1;
  if (literal) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(h->ssl), u->host);
  } else {
    SSL_set_tlsext_host_name(h->ssl, u->host);
    SSL_set1_host(h->ssl, u->host);
  }
  if (SSL_connect(h->ssl) == 1) return 0;
  AUTOBUF struct buf why = BUF_INIT;
  long v = SSL_get_verify_result(h->ssl);
  if (v != X509_V_OK) buf_printf(&why, "the certificate is not trusted: %s", X509_verify_cert_error_string(v));
  ssl_why(&why);
  return error(ERR_UNAVAILABLE, "cannot talk TLS to %s port %s: %s", u->host, u->port,
               why.len ? buf_str(&why) : strerror(errno));
}

/* the connection for u (or the unix socket): the open one when it goes
 * there (1), else a new one (0); -1 with the error */
static int conn_open(struct httpc *h, const struct httpc_url *u, const char *unix_socket)
{
  AUTOFREE char *where = unix_socket ? xasprintf("unix %s", unix_socket)
                                     : xasprintf("%s %s %s", u->tls ? "tls" : "tcp", u->host, u->port);
  /* bytes past the last answer: not a connection to go on with */
  if (h->fd >= 0 && strcmp(h->where, where) == 0 && h->in_pos == h->in_len) return 1;
  conn_close(h);
  h->fd = unix_socket ? dial_unix(unix_socket) : dial_tcp(u);
  if (h->fd < 0) return -1;
  /* blocking from here, each read and write bounded */
  fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) & ~O_NONBLOCK);
  struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
  setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(h->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  h->where = steal_pointer(&where);
  if (!unix_socket && u->tls && tls_start(h, u) < 0) {
    conn_close(h);
    return -1;
  }
  return 0;
}

/* writes all of data; -1 with errno (EPIPE for a closed TLS session) */
static int conn_write(struct httpc *h, const void *data, size_t len)
{
  const unsigned char *p = data;
  while (len) {
    ssize_t n;
    if (h->ssl) {
      int k = SSL_write(h->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
      if (k <= 0) {
        if (errno == 0) errno = EPIPE;
        ERR_clear_error();
        return -1;
      }
      n = k;
    } else {
      n = send(h->fd, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* reads what comes into buf; 0 at the end, -1 with errno */
static ssize_t conn_read(struct httpc *h, void *buf, size_t len)
{
  if (h->ssl) {
    errno = 0;
    int k = SSL_read(h->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (k > 0) return k;
    int e = SSL_get_error(h->ssl, k);
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    if (e == SSL_ERROR_SYSCALL && errno == 0) return 0; /* closed without close_notify */
    if (errno == 0) errno = EPROTO;
    return -1;
  }
  for (;;) {
    ssize_t n = recv(h->fd, buf, len, 0);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

/* at least one byte in h->in; 0 at the end, -1 with errno */
static int fill(struct httpc *h)
{
  if (h->in_pos < h->in_len) return 1;
  ssize_t n = conn_read(h, h->in, sizeof h->in);
  if (n <= 0) return (int)n;
  h->in_pos = 0;
  h->in_len = (size_t)n;
  return 1;
}

/* one line (without CRLF) into line; 1, 0 at the end before any byte, -1 */
static int read_line(struct httpc *h, struct buf *line, size_t max)
{
  buf_reset(line);
  for (;;) {
    int f = fill(h);
    if (f <= 0) return f < 0 ? -1 : line->len ? (errno = EPROTO, -1) : 0;
    unsigned char *s = h->in + h->in_pos, *nl = memchr(s, '\n', h->in_len - h->in_pos);
    size_t take = nl ? (size_t)(nl - s) + 1 : h->in_len - h->in_pos;
    buf_add(line, s, take);
    h->in_pos += take;
    if (line->len > max) return errno = EMSGSIZE, -1;
    if (nl) {
      while (line->len && (line->data[line->len - 1] == '\n' || line->data[line->len - 1] == '\r'))
        line->data[--line->len] = '\0';
      return 1;
    }
  }
}

/* hands len body bytes (or, len -1, all until the end) to the sink; -1 with
 * errno (ECANCELED when the sink stopped) */
static int read_body(struct httpc *h, const struct httpc_req *r, int64_t len)
{
  while (len != 0) {
    int f = fill(h);
    if (f < 0) return -1;
    if (f == 0) return len < 0 ? 0 : (errno = EPROTO, -1);
    size_t take = h->in_len - h->in_pos;
    if (len >= 0 && (uint64_t)len < take) take = (size_t)len;
    if (r->sink && r->sink(r->opaque, h->in + h->in_pos, take) < 0) return errno = ECANCELED, -1;
    h->in_pos += take;
    if (len > 0) len -= (int64_t)take;
  }
  return 0;
}

static int read_chunked(struct httpc *h, const struct httpc_req *r)
{
  AUTOBUF struct buf line = BUF_INIT;
  for (;;) {
    if (read_line(h, &line, 1024) <= 0) return errno = errno ? errno : EPROTO, -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(buf_str(&line), &end, 16);
    if (end == line.data || errno || (*end && *end != ';' && *end != ' ')) return errno = EPROTO, -1;
    if (n == 0) break;
    if (read_body(h, r, (int64_t)n) < 0) return -1;
    if (read_line(h, &line, 2) <= 0 || line.len) return errno = EPROTO, -1;
  }
  /* trailers, up to the empty line */
  do if (read_line(h, &line, MAX_HEAD) <= 0) return errno = EPROTO, -1;
  while (line.len);
  return 0;
}

static bool header_is(const char *line, const char *name, const char **value)
{
  size_t n = strlen(name);
  if (strncasecmp(line, name, n) != 0 || line[n] != ':') return false;
  const char *v = line + n + 1;
  while (*v == ' ' || *v == '\t') v++;
  *value = v;
  return true;
}

/* one exchange on the open connection: the status, 0 when the connection
 * ended before any answer (a kept connection the server had closed), or -1
 * with errno. *keep says whether the connection may serve the next one. */
static long exchange(struct httpc *h, const struct httpc_req *r, const struct buf *head, bool *keep)
{
  *keep = false;
  if (conn_write(h, head->data, head->len) < 0 || (r->body_len && conn_write(h, r->body, r->body_len) < 0))
    return errno == EPIPE || errno == ECONNRESET ? 0 : -1;
  AUTOBUF struct buf line = BUF_INIT;
  long status;
  bool http10;
  for (;;) { /* 1xx answers come before the real one */
    int l = read_line(h, &line, MAX_HEAD);
    if (l == 0 || (l < 0 && errno == ECONNRESET)) return 0;
    if (l < 0) return -1;
    int major = 0, minor = 0, code = 0;
    if (sscanf(buf_str(&line), "HTTP/%d.%d %3d", &major, &minor, &code) != 3 || code < 100 || code > 999)
      return errno = EPROTO, -1;
    status = code;
    http10 = major == 1 && minor == 0;
    if (status >= 200) break;
    do if (read_line(h, &line, MAX_HEAD) <= 0) return errno = EPROTO, -1;
    while (line.len);
  }
  int64_t length = -1;
  bool chunked = false, close_after = http10;
  size_t total = line.len;
  for (;;) {
    if (read_line(h, &line, MAX_HEAD) <= 0) return errno = EPROTO, -1;
    if (!line.len) break;
    if ((total += line.len) > MAX_HEAD) return errno = EMSGSIZE, -1;
    const char *v;
    if (header_is(buf_str(&line), "Content-Length", &v)) {
      char *end;
      long long n = strtoll(v, &end, 10);
      if (end == v || n < 0) return errno = EPROTO, -1;
      length = n;
    } else if (header_is(buf_str(&line), "Transfer-Encoding", &v)) {
      chunked = strcasestr(v, "chunked") != NULL;
    } else if (header_is(buf_str(&line), "Connection", &v)) {
      if (strcasestr(v, "close")) close_after = true;
      else if (strcasestr(v, "keep-alive")) close_after = false;
    }
  }
  bool bodyless = status == 204 || status == 304;
  int rc = bodyless ? 0 : chunked ? read_chunked(h, r) : read_body(h, r, length);
  if (rc < 0) return -1;
  *keep = !close_after && (bodyless || chunked || length >= 0);
  return status;
}

long httpc_do(struct httpc *h, const struct httpc_req *r)
{
  struct httpc_url u;
  if (httpc_url_parse(r->url, &u) < 0) return -1;
  AUTOBUF struct buf head = BUF_INIT;
  bool v6 = strchr(u.host, ':') != NULL;
  buf_printf(&head, "%s %s HTTP/1.1\r\n", r->method, u.path);
  if (r->unix_socket) buf_puts(&head, "Host: localhost\r\n");
  else buf_printf(&head, "Host: %s%s%s:%s\r\n", v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
  for (const char *const *l = r->headers; l && *l; l++) buf_printf(&head, "%s\r\n", *l);
  bool with_body = r->body || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
                   strcmp(r->method, "PATCH") == 0;
  if (with_body) buf_printf(&head, "Content-Length: %zu\r\n", r->body ? r->body_len : 0);
  buf_puts(&head, "\r\n");
  long status = -1;
  for (int attempt = 0; attempt < 2; attempt++) {
    int reused = conn_open(h, &u, r->unix_socket);
    if (reused < 0) break;
    bool keep;
    status = exchange(h, r, &head, &keep);
    int e = errno;
    if (status <= 0 || !keep) conn_close(h);
    if (status > 0) break;
    /* a kept connection the server had closed meanwhile: once more on a new one */
    if (status == 0 && reused && attempt == 0) continue;
    const char *what = r->unix_socket ? r->unix_socket : u.host;
    status = error(ERR_UNAVAILABLE, "%s %s on %s: %s", r->method, u.path, what,
                   status == 0 ? "the connection closed without an answer"
                   : e == ECANCELED ? "the answer is longer than asked for"
                   : e == EAGAIN || e == EWOULDBLOCK ? "timed out"
                   : e == EPROTO ? "not an HTTP answer" : strerror(e));
    break;
  }
  httpc_url_clear(&u);
  return status;
}
