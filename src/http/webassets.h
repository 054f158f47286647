/* webassets.h: the web console's static files, served by snapbackd under /.
 *
 * webassets_load() reads every regular file of one flat directory (web/ in
 * the source tree, /usr/share/snapback/web when installed) into memory once,
 * at start, and computes each file's SHA-384. In the HTML files the token
 * "%SRI:NAME%" becomes the Subresource Integrity value ("sha384-BASE64") of
 * asset NAME, so every <script type=module> and modulepreload carries an
 * integrity hash that always matches what is served. Files never change
 * while the daemon runs: the hash doubles as a strong ETag (304 on
 * If-None-Match). Every answer carries a content-security policy that allows
 * no inline script, and cache headers. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct webassets;

/* loads DIR; NULL + error when it cannot be read or holds a broken %SRI%
 * reference. The result is read-only and safe to share between threads. */
struct webassets *webassets_load(const char *dir);
void webassets_free(struct webassets *wa); /* NULL-safe */

/* the asset served at URL ("/" is index.html, "/console" is console.html,
 * "/NAME" is NAME), or NULL when there is none */
struct webasset {
  const char *name;
  const char *content_type;
  const char *data;
  size_t len;
  const char *etag;      /* "\"sha384-...\"" */
  const char *integrity; /* "sha384-..." */
  bool html;
};
const struct webasset *webassets_find(const struct webassets *wa, const char *url);

/* the content-security policy every asset is served with */
#define WEBASSETS_CSP                                                                    \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "      \
  "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "          \
  "frame-ancestors 'none'"
