/* http.h: the HTTP(S) front door, built on libmicrohttpd.
 *
 * It owns: listening, TLS (certificates from pki.c), request bodies (size
 * limit -> 413), authentication (the SSO token endpoint, Bearer tokens, HTTP
 * Basic and logout, checked by cmd/auth.h), content negotiation (XML default, JSON when
 * Accept: application/json), and the rendering of errors as oVirt <fault>s
 * (fault.c) — the only place an error code becomes an HTTP status.
 * Everything below /ovirt-engine/api and /api goes to api_handle(). */
#pragma once
#include "util/enumstr.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;
struct http_server;

#define HTTP_DEFAULT_MAX_BODY ((size_t)1 << 20)
#define HTTP_DEFAULT_THREADS 16u

/* who may read /metrics (--metrics-auth) */
enum http_metrics_auth {
  HTTP_METRICS_AUTH_USER,  /* any engine user, Basic or Bearer (default) */
  HTTP_METRICS_AUTH_NONE,  /* anyone who reaches the port */
  HTTP_METRICS_AUTH_LAST
};
ENUM_DECL(http_metrics_auth); /* "user", "none" */

/* zero fields take the defaults noted */
struct http_options {
  const char *listen;        /* "HOST:PORT", "[::1]:PORT" or ":PORT" (all IPv4
                                addresses); port 0 picks a free one (http_port) */
  bool plain_http;           /* --http: no TLS */
  const char *pki_dir;       /* STATE/pki: ca.pem, ca.key, server.pem, server.key
                                (created at first start, see pki.h) */
  int64_t token_ttl_ms;      /* bearer token lifetime; 0: 24 h */
  size_t max_body;           /* bytes; larger bodies get 413; 0: 1 MiB */
  unsigned threads;          /* worker threads; 0: 16 */
  const char *imageio_socket;/* a unix socket serving the image data URLs (/images/) in
                                plain HTTP to clients on this host, as ovirt-imageio's
                                unix_socket; NULL: none */
  const char *tls_cert;      /* a PEM certificate chain file instead of pki_dir's */
  const char *tls_key;       /* its PEM private key file; both or neither */
  enum http_metrics_auth metrics_auth;
  const char *web_dir;       /* the web console's files (webassets.h), served under /;
                                NULL: none */
};

/* starts serving in background threads; NULL + error when the port is taken,
 * the address is malformed, the certificates cannot be made etc.
 * ENG is borrowed and must outlive the server. */
struct http_server *http_start(struct engine *eng, const struct http_options *opts);
/* stops listening, waits for the worker threads, frees; NULL-safe */
void http_stop(struct http_server *srv);
/* checks a listen address as http_start would, without listening: 0, or
 * -1 + ERR_INVALID saying what is wrong */
int http_check_listen(const char *listen);
/* changes who may read /metrics in a running server (SIGHUP) */
void http_set_metrics_auth(struct http_server *srv, enum http_metrics_auth mode);
/* the port actually bound (useful with port 0) */
int http_port(const struct http_server *srv);
