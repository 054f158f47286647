/* http.h: the HTTP(S) front door, built on libmicrohttpd.
 *
 * It owns: listening, TLS (certificates from pki.c), request bodies (size
 * limit -> 413), authentication (auth.c: SSO token endpoint, Bearer tokens,
 * HTTP Basic, logout), content negotiation (XML default, JSON when
 * Accept: application/json), and the rendering of errors as oVirt <fault>s
 * (fault.c) — the only place an error code becomes an HTTP status.
 * Everything below /ovirt-engine/api and /api goes to api_handle(). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct engine;
struct http_server;

struct http_options {
  const char *listen;        /* "HOST:PORT" */
  bool plain_http;           /* --http: no TLS */
  const char *pki_dir;       /* STATE/pki: ca.pem, ca.key, server.pem, server.key */
  int64_t token_ttl_ms;      /* bearer token lifetime */
  size_t max_body;           /* bytes; larger bodies get 413 */
  unsigned threads;          /* worker threads */
};

/* starts serving in background threads; NULL + error when the port is taken etc. */
struct http_server *http_start(struct engine *eng, const struct http_options *opts);
void http_stop(struct http_server *srv);
