/* client.c: the REST client of the snapback CLI, over httpc. */
#include "cli/client.h"
#include "cli/httpc.h"
#include "util/buf.h"
#include "util/err.h"
#include <jansson.h>
#include <string.h>

struct client {
  struct httpc *http;
  struct client_conf conf;
  char *token;
  char *origin;    /* scheme://host[:port] */
  long last_status;
};

void client_conf_clear(struct client_conf *c)
{
  free(c->url);
  free(c->user);
  if (c->password) {
    memset(c->password, 0, strlen(c->password));
    free(c->password);
  }
  free(c->cacert);
  memset(c, 0, sizeof *c);
}

static int collect(void *opaque, const void *data, size_t len)
{
  buf_add(opaque, data, len);
  return 0;
}

char *client_escape(const char *s)
{
  struct buf b = BUF_INIT;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch))
      buf_putc(&b, (char)ch);
    else
      buf_printf(&b, "%%%02X", ch);
  }
  return buf_detach(&b);
}

/* one HTTP exchange; returns the status, or -1 (error recorded) when no answer came */
static long http_do(struct client *c, const char *method, const char *url, const char *const *hdrs,
                    const char *body, struct buf *resp)
{
  struct httpc_req r = {.method = method, .url = url, .headers = hdrs, .body = body,
                        .body_len = body ? strlen(body) : 0, .sink = collect, .opaque = resp};
  long status = httpc_do(c->http, &r);
  c->last_status = status > 0 ? status : 0;
  if (status < 0) return error_prefix("cannot reach the engine at '%s': ", url);
  return status;
}

static int login(struct client *c)
{
  AUTOFREE char *url = xasprintf("%s/ovirt-engine/sso/oauth/token", c->origin);
  AUTOFREE char *u = client_escape(c->conf.user);
  AUTOFREE char *p = client_escape(c->conf.password);
  AUTOFREE char *form = xasprintf("grant_type=password&scope=ovirt-app-api&username=%s&password=%s", u, p);
  memset(p, 0, strlen(p));
  const char *hdrs[] = {"Accept: application/json", "Content-Type: application/x-www-form-urlencoded", NULL};
  AUTOBUF struct buf resp = BUF_INIT;
  long st = http_do(c, "POST", url, hdrs, form, &resp);
  memset(form, 0, strlen(form));
  if (st < 0) return -1;
  json_error_t je;
  json_t *j = json_loadb(buf_str(&resp), resp.len, 0, &je);
  const char *tok = j ? json_string_value(json_object_get(j, "access_token")) : NULL;
  if (!tok) {
    const char *why = j ? json_string_value(json_object_get(j, "error_description")) : NULL;
    int rc = error(ERR_AUTH, "cannot log in to '%s' as '%s': %s", c->origin, c->conf.user,
                   why ? why : st == 200 ? "no access_token in the answer" : "the token endpoint refused");
    json_decref(j);
    return rc;
  }
  free(c->token);
  c->token = xstrdup(tok);
  json_decref(j);
  return 0;
}

struct client *client_open(const struct client_conf *conf)
{
  if (!conf->url || !conf->user || !conf->password) {
    error(ERR_INVALID, "no engine to talk to: give --url, --user and --password-file (or SNAPBACK_URL, "
          "SNAPBACK_USER, SNAPBACK_PASSWORD, or ~/.config/snapback.conf)");
    return NULL;
  }
  const char *sep = strstr(conf->url, "://");
  if (!sep || (strncmp(conf->url, "http://", 7) != 0 && strncmp(conf->url, "https://", 8) != 0)) {
    error(ERR_INVALID, "invalid engine URL '%s': expected https://HOST[:PORT]/ovirt-engine/api", conf->url);
    return NULL;
  }
  struct client *c = xcalloc(1, sizeof *c);
  c->http = httpc_new(conf->cacert);
  c->conf.url = xstrdup(conf->url);
  size_t n = strlen(c->conf.url);
  while (n && c->conf.url[n - 1] == '/') c->conf.url[--n] = '\0';
  c->conf.user = xstrdup(conf->user);
  c->conf.password = xstrdup(conf->password);
  const char *slash = strchr(strstr(c->conf.url, "://") + 3, '/');
  c->origin = slash ? xasprintf("%.*s", (int)(slash - c->conf.url), c->conf.url) : xstrdup(c->conf.url);
  if (login(c) < 0) {
    client_close(c);
    return NULL;
  }
  return c;
}

void client_close(struct client *c)
{
  if (!c) return;
  if (c->token) {
    AUTOFREE char *url = xasprintf("%s/ovirt-engine/services/sso-logout", c->origin);
    AUTOFREE char *form = xasprintf("scope=ovirt-app-api&token=%s", c->token);
    const char *hdrs[] = {"Accept: application/json", "Content-Type: application/x-www-form-urlencoded", NULL};
    AUTOBUF struct buf resp = BUF_INIT;
    if (http_do(c, "POST", url, hdrs, form, &resp) < 0) error_clear();
    memset(c->token, 0, strlen(c->token));
    free(c->token);
  }
  httpc_free(c->http);
  client_conf_clear(&c->conf);
  free(c->origin);
  free(c);
}

long client_last_status(const struct client *c) { return c->last_status; }

static enum err_code code_of(long st)
{
  switch (st) {
  case 400: return ERR_INVALID;
  case 401: return ERR_AUTH;
  case 403: return ERR_FORBIDDEN;
  case 404: return ERR_NOT_FOUND;
  case 405: return ERR_METHOD;
  case 409: return ERR_CONFLICT;
  case 413: return ERR_TOO_LARGE;
  case 501: return ERR_UNSUPPORTED;
  case 503: return ERR_UNAVAILABLE;
  default: return ERR_INTERNAL;
  }
}

int client_call(struct client *c, const char *method, const char *path, const char *body, struct node **out)
{
  if (out) *out = NULL;
  AUTOFREE char *url = xasprintf("%s%s", c->conf.url, path);
  AUTOBUF struct buf resp = BUF_INIT;
  long st = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    AUTOFREE char *auth = xasprintf("Authorization: Bearer %s", c->token);
    const char *hdrs[] = {auth, "Version: 4", "Accept: application/xml", "Content-Type: application/xml", NULL};
    buf_reset(&resp);
    st = http_do(c, method, url, hdrs, body, &resp);
    memset(auth, 0, strlen(auth));
    if (st < 0) return -1;
    if (st != 401 || attempt == 1) break;
    if (login(c) < 0) return -1;
  }
  struct node *n = NULL;
  if (resp.len) {
    n = node_from_xml(resp.data, resp.len);
    if (!n) error_clear();
  }
  if (st >= 200 && st < 300) {
    if (out) *out = n;
    else node_free(n);
    return 0;
  }
  const char *detail = n ? node_text(n, "detail") : NULL;
  const char *reason = n ? node_text(n, "reason") : NULL;
  AUTOFREE char *why = NULL;
  if (detail) {
    size_t dl = strlen(detail);
    why = (detail[0] == '[' && dl >= 2 && detail[dl - 1] == ']') ? xasprintf("%.*s", (int)dl - 2, detail + 1)
                                                                   : xstrdup(detail);
  } else {
    why = xstrdup(reason ? reason : resp.len && resp.len < 300 ? buf_str(&resp) : "no details");
  }
  node_free(n);
  return error(code_of(st), "%s %s: %ld %s", method, path, st, why);
}
