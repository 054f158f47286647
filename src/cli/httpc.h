/* httpc.h: the CLI's HTTP/1.1 client: plain HTTP, HTTPS (OpenSSL, the
 * peer's certificate checked against the CA given or the system's, and its
 * name against the URL's host), or plain HTTP over a unix socket.
 *
 * Why not libcurl: the CLI only ever sends a request and reads one answer,
 * on one connection at a time, and libcurl drags in some 16 libraries the
 * CLI never uses (LDAP, Kerberos, SSH, RTMP...). Each is a file the dynamic
 * loader opens and maps at every start: 13 ms of a 300 ms incremental
 * backup, measured with the page cache dropped. No proxy: the engine and
 * its image transfers are reached directly, as ovirt-imageio's client does.
 *
 * A connection stays open for the next request to the same place while the
 * server keeps it (HTTP/1.1 keep-alive). Not thread-safe: one per thread. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "util/cleanup.h"

struct httpc;
/* cacert: a PEM file to trust, or NULL for the system's CAs */
struct httpc *httpc_new(const char *cacert);
void httpc_free(struct httpc *h);
DEFINE_AUTOPTR(httpc, struct httpc, httpc_free)

struct httpc_req {
  const char *method;
  const char *url;               /* http(s)://HOST[:PORT]/PATH[?QUERY] */
  const char *unix_socket;       /* when set: plain HTTP on this socket, for url's path */
  const char *const *headers;    /* "Name: value" lines, NULL-terminated (may be NULL) */
  const void *body;              /* sent as it is, with Content-Length (may be NULL) */
  size_t body_len;
  /* gets the answer's body piece by piece; -1 stops the request */
  int (*sink)(void *opaque, const void *data, size_t len);
  void *opaque;
};

/* One request: its HTTP status, or -1 with the error recorded
 * (ERR_INVALID for a URL it cannot use, ERR_UNAVAILABLE when no answer
 * came: name, connection, TLS, timeout, a sink that stopped it) */
long httpc_do(struct httpc *h, const struct httpc_req *r);

/* the parts of an http(s) URL (path: "/" when it names none, with the
 * query); 0, or -1 with ERR_INVALID recorded. httpc_url_clear frees them */
struct httpc_url { bool tls; char *host; char *port; char *path; };
int httpc_url_parse(const char *url, struct httpc_url *out);
void httpc_url_clear(struct httpc_url *u);
