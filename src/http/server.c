/* server.c: the HTTP(S) front door on libmicrohttpd (see http.h).
 *
 * One request goes: headers -> body chunks (accumulated up to max_body;
 * beyond it the rest is read and discarded, then answered 413; a body
 * announced as more than 16 x max_body is refused before it is read) ->
 * dispatch by path prefix:
 *   /ovirt-engine/sso/oauth/token     login, JSON answer
 *   /ovirt-engine/services/sso-logout logout, JSON answer
 *   /ovirt-engine/api[/v3], /api[/v3] authenticate, parse, api_handle()
 *   /images/TICKET                    image transfer data (imageio.c: the
 *                                     ticket authorizes; bodies streamed)
 *   /metrics                          Prometheus metrics (util/metrics.c and
 *                                     cmd/core/metrics.c), behind
 *                                     its own --metrics-auth setting
 *   /ovirt-engine/services/pki-resource the CA certificate, no auth (as oVirt)
 *   GET / and /NAME                   the web console's files (webassets.c)
 *   anything else                     404 fault
 * Every answer leaves through respond(), which also logs it and counts it in
 * snapback_http_requests_total and the latency histogram, by route pattern
 * (the ROUTES pattern, never the raw path, so ids do not explode the series).
 * A second MHD daemon serves /images/ alone, in plain HTTP, on a unix socket
 * (http_options.imageio_socket): ovirt-imageio's unix_socket for clients on
 * the host. */
#include "http/http.h"
#include "api/api.h"
#include "cmd/engine.h"
#include "cmd/auth.h"
#include "http/fault.h"
#include "http/imageio.h"
#include "http/pki.h"
#include "http/webassets.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/timeutil.h"
#include "util/vec.h"
#include <jansson.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SSO_TOKEN_PATH "/ovirt-engine/sso/oauth/token"
#define SSO_LOGOUT_PATH "/ovirt-engine/services/sso-logout"
#define METRICS_PATH "/metrics"
#define PKI_RESOURCE_PATH "/ovirt-engine/services/pki-resource"
#define WEB_ROUTE "/ (web console)"
#define CONNECTION_TIMEOUT_S 300u
/* bodies up to DRAIN_FACTOR * max_body are read to the end before the 413 */
#define DRAIN_FACTOR 16

struct http_server {
  struct engine *eng;        /* borrowed */
  struct auth *auth;         /* token and credential caches */
  struct MHD_Daemon *mhd;
  struct pki_pems pems;      /* kept alive while MHD may read them */
  size_t max_body;
  bool tls;                  /* for the URLs the engine hands out (proxy_url) */
  struct imageio_config imageio;
  struct MHD_Daemon *unix_mhd; /* /images/ on imageio.unix_socket, or NULL */
  char *unix_path;           /* the socket file we made, removed at stop */
  int metrics_auth;          /* enum http_metrics_auth; atomic (SIGHUP changes it) */
  struct webassets *web;     /* the console's files, or NULL when not served */
  char *ca_pem;              /* the CA certificate for pki-resource, or NULL */
  /* requests answered on a side thread (see run_deferred) */
  pthread_mutex_t side_mu;
  pthread_cond_t side_cv;
  int side_running;
};

/* an answer computed on a side thread, queued when MHD resumes the connection */
struct deferred {
  bool ready;
  int status;
  struct buf body;
  const char *content_type;  /* a string literal */
  char *location;
  bool challenge;
};

ENUM_IMPL(http_metrics_auth, HTTP_METRICS_AUTH_LAST, "user", "none")

/* per request state, MHD's *con_cls */
struct request {
  struct buf body;
  bool too_large;            /* the body went over max_body: discard the rest */
  size_t discarded;          /* bytes read and thrown away since */
  int64_t start_ms;          /* monotonic */
  struct imageio_req *image; /* a request below /images/: imageio.c's state */
  const char *route;         /* the route pattern for metrics; static; NULL: none matched */
  struct deferred *deferred; /* set while a side thread answers it */
};

/* the request whose answer the calling side thread is computing, or NULL */
static __thread struct request *deferring;

/* the API roots, longest first so that /v3 wins */
static const struct api_root {
  const char *prefix;
  int version;
} api_roots[] = {
  {"/ovirt-engine/api/v3", 3},
  {"/ovirt-engine/api", 4},
  {"/api/v3", 3},
  {"/api", 4},
};

DEFINE_AUTOPTR(json, json_t, json_decref)
DEFINE_VEC(param_vec, struct api_param);

static const char *header(struct MHD_Connection *c, const char *name)
{
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static bool wants_json(struct MHD_Connection *c)
{
  const char *accept = header(c, MHD_HTTP_HEADER_ACCEPT);
  return accept && strstr(accept, "application/json");
}

static void account(struct request *r, const char *method, const char *url, int status);

/* queues STATUS with BODY (taken over) and logs the request; a 5xx is logged
 * with the recorded error, everything else at debug level. Clears the error. */
static enum MHD_Result respond(struct MHD_Connection *c, struct request *r, const char *method,
                               const char *url, int status, struct buf *body,
                               const char *content_type, const char *location, bool challenge)
{
  if (deferring == r) { /* a side thread: keep it for the resumed connection */
    struct deferred *d = r->deferred;
    *d = (struct deferred){.ready = true, .status = status, .body = *body, .content_type = content_type,
                           .location = location ? xstrdup(location) : NULL, .challenge = challenge};
    *body = (struct buf)BUF_INIT;
    if (status >= 500)
      log_err("%s %s: %d: %s (%s)", method, url, status, error_message(), error_where());
    error_clear();
    return MHD_YES;
  }
  size_t len = body->len;
  char *data = buf_detach(body);
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(data);
    return MHD_NO;
  }
  if (len) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (location) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
  if (challenge) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"ENGINE\"");
  if (status == 429) {
    char retry[24];
    snprintf(retry, sizeof retry, "%lld", (long long)auth_last_retry_after());
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
  }
  enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  account(r, method, url, status);
  return rc;
}

/* counts and logs an answered request (respond's and respond_static's
 * common tail); clears the error */
static void account(struct request *r, const char *method, const char *url, int status)
{
  int64_t ms = mono_ms() - r->start_ms;
  const char *route = r->route ? r->route : "unmatched";
  char code[8];
  snprintf(code, sizeof code, "%d", status);
  AUTOFREE char *labels = metrics_labels("route", route, "method", method, "code", code, NULL);
  AUTOFREE char *hlabels = metrics_labels("route", route, "method", method, NULL);
  metrics_counter_add("snapback_http_requests_total", "HTTP requests answered, by route pattern, method "
                      "and status code", labels, 1);
  metrics_histogram_observe("snapback_http_request_duration_seconds", "time from the request's headers "
                            "to its answer, by route pattern and method", hlabels, (double)ms / 1000.0);
  const struct log_fields *prev = log_fields_set(NULL);
  struct log_fields fields = prev ? *prev : (struct log_fields){0};
  fields.code = status >= 400 ? error_code_name(error_code()) : NULL;
  log_fields_set(&fields);
  if (status >= 500)
    log_err("%s %s: %d in %lld ms: %s (%s)", method, url, status, (long long)ms,
            error_message(), error_where());
  else
    log_debug("%s %s: %d in %lld ms", method, url, status, (long long)ms);
  log_fields_set(prev);
  error_clear();  /* answered: a worker thread keeps no stale message */
}

/* answers the error recorded on this thread as a <fault> */
static enum MHD_Result respond_fault(struct MHD_Connection *c, struct request *r,
                                     const char *method, const char *url)
{
  bool json = wants_json(c);
  struct buf out = BUF_INIT;
  int status = fault_render_current(json, &out);
  /* no Basic challenge to a client that sent a Bearer token: a browser would
   * open its password dialog over the web console */
  const char *authz = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
  bool bearer = authz && strncasecmp(authz, "Bearer ", 7) == 0;
  return respond(c, r, method, url, status, &out, json ? "application/json" : "application/xml",
                 NULL, status == 401 && !bearer);
}

static enum MHD_Result respond_json(struct MHD_Connection *c, struct request *r, const char *method,
                                    const char *url, int status, json_t *j)
{
  struct buf out = BUF_INIT;
  char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (s) buf_puts(&out, s);
  free(s);
  return respond(c, r, method, url, status, &out, "application/json", NULL, false);
}

/* an OAuth-style error for the SSO endpoints: the SDK reads "error" */
static enum MHD_Result respond_sso_error(struct MHD_Connection *c, struct request *r,
                                         const char *method, const char *url, int status,
                                         const char *code, const char *description)
{
  AUTOPTR(json) j = json_pack("{s:s, s:s, s:s}", "error", code, "error_code", code,
                              "error_description", description);
  return respond_json(c, r, method, url, status, j);
}

/* value of NAME in an application/x-www-form-urlencoded BODY, decoded, or
 * NULL; caller frees */
static char *form_value(const char *body, const char *name)
{
  size_t nlen = strlen(name);
  for (const char *p = body; p && *p;) {
    const char *end = strchr(p, '&');
    size_t plen = end ? (size_t)(end - p) : strlen(p);
    if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
      struct buf v = BUF_INIT;
      buf_add(&v, p + nlen + 1, plen - nlen - 1);
      for (char *q = v.data; *q; q++)
        if (*q == '+') *q = ' ';
      MHD_http_unescape(v.data);
      return buf_detach(&v);
    }
    p = end ? end + 1 : NULL;
  }
  return NULL;
}

/* a form field from the body, else from the query string (some clients send
 * the token request as query parameters) */
static char *sso_param(struct MHD_Connection *c, struct request *r, const char *name)
{
  char *v = form_value(buf_str(&r->body), name);
  if (v) return v;
  return xstrdup(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name));
}

/* the client's address as text ("127.0.0.1", "::1"), or "" when unknown */
static void client_address(struct MHD_Connection *c, char out[INET6_ADDRSTRLEN])
{
  out[0] = 0;
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  if (sa && sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, INET6_ADDRSTRLEN);
  else if (sa && sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, INET6_ADDRSTRLEN);
}

/* POST /ovirt-engine/sso/oauth/token: grant_type=password, username, password */
static enum MHD_Result handle_token(struct http_server *srv, struct MHD_Connection *c,
                                    struct request *r, const char *method, const char *url)
{
  AUTOFREE char *grant = sso_param(c, r, "grant_type");
  AUTOFREE char *username = sso_param(c, r, "username");
  AUTOFREE char *password = sso_param(c, r, "password");
  if (!grant || strcmp(grant, "password") != 0)
    return respond_sso_error(c, r, method, url, 400, "unsupported_grant_type",
                             "only grant_type 'password' is supported");
  if (!username || !password)
    return respond_sso_error(c, r, method, url, 400, "invalid_request",
                             "username and password are required");
  int64_t exp = 0;
  char client[INET6_ADDRSTRLEN];
  client_address(c, client);
  AUTOFREE char *token = auth_login(srv->auth, username, password, *client ? client : NULL, &exp);
  if (!token) {
    if (error_code() == ERR_AUTH)
      return respond_sso_error(c, r, method, url, 401, "access_denied", error_message());
    if (error_code() == ERR_THROTTLED)
      return respond_sso_error(c, r, method, url, 429, "access_denied", error_message());
    int status = error_http_status(error_code());
    return respond_sso_error(c, r, method, url, status >= 500 ? status : 500, "server_error",
                             error_message());
  }
  char expstr[32];
  snprintf(expstr, sizeof expstr, "%lld", (long long)exp);
  AUTOPTR(json) j = json_pack("{s:s, s:s, s:s, s:s}", "access_token", token,
                              "token_type", "bearer", "exp", expstr, "scope", "ovirt-app-api");
  return respond_json(c, r, method, url, 200, j);
}

/* POST /ovirt-engine/services/sso-logout: scope, token */
static enum MHD_Result handle_logout(struct http_server *srv, struct MHD_Connection *c,
                                     struct request *r, const char *method, const char *url)
{
  AUTOFREE char *token = sso_param(c, r, "token");
  if (auth_logout(srv->auth, token) < 0) {
    int status = error_http_status(error_code());
    return respond_sso_error(c, r, method, url, status >= 500 ? status : 500, "server_error",
                             error_message());
  }
  AUTOPTR(json) j = json_object();
  return respond_json(c, r, method, url, 200, j);
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
  struct param_vec *v = cls;
  struct api_param p = {key, value ? value : ""};
  vec_push(v, p);
  return MHD_YES;
}

static bool is_true(const char *s)
{
  return s && strcasecmp(s, "true") == 0;
}

/* everything below an API root: authenticate, parse, api_handle, render */
static enum MHD_Result handle_api(struct http_server *srv, struct MHD_Connection *c,
                                  struct request *r, const char *method, const char *url,
                                  const struct api_root *root)
{
  char client[INET6_ADDRSTRLEN];
  client_address(c, client);
  AUTOPTR(user) u = auth_check_header(srv->auth, header(c, MHD_HTTP_HEADER_AUTHORIZATION),
                                      *client ? client : NULL);
  if (!u) return respond_fault(c, r, method, url);
  struct log_fields fields = {.user = u->name};
  LOG_FIELDS_SCOPED(&fields);

  AUTOPTR(node) body = NULL;
  if (r->body.len) {
    const char *ct = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    body = ct && strstr(ct, "json") ? node_from_json(r->body.data, r->body.len, "request")
                                    : node_from_xml(r->body.data, r->body.len);
    if (!body) return respond_fault(c, r, method, url);
  }

  struct param_vec params = VEC_INIT;
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &params);
  struct api_param end = {NULL, NULL};
  vec_push(&params, end);

  const char *path = url + strlen(root->prefix);
  const char *host = header(c, MHD_HTTP_HEADER_HOST);
  AUTOFREE char *base_url = host ? xasprintf("%s://%s", srv->tls ? "https" : "http", host)
                                 : xasprintf("%s://127.0.0.1:%d", srv->tls ? "https" : "http",
                                             http_port(srv));
  r->route = "unmatched";
  int version = root->version;
  const char *vh = header(c, "Version");
  if (version == 4 && vh && strcmp(vh, "3") == 0) version = 3;

  struct api_request req = {
    .method = method,
    .path = *path ? path : "/",
    .root = root->prefix,
    .version = version,
    .user = u,
    .body = body,
    .query = params.ptr,
    .all_content = is_true(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "all_content")) ||
                   is_true(header(c, "All-Content")),
    .base_url = base_url,
  };
  struct api_response resp = {0};
  int rc = api_handle(srv->eng, &req, &resp);
  if (resp.route) r->route = resp.route;
  free(params.ptr);
  AUTOPTR(node) out_node = steal_pointer(&resp.body);
  AUTOFREE char *location = steal_pointer(&resp.location);
  if (rc < 0) return respond_fault(c, r, method, url);

  bool json = wants_json(c);
  struct buf out = BUF_INIT;
  if (out_node) {
    if (json) node_to_json(out_node, &out);
    else node_to_xml(out_node, &out);
  }
  return respond(c, r, method, url, resp.status ? resp.status : 200, &out,
                 json ? "application/json" : "application/xml", location, false);
}

/* GET /metrics: the registry (util/metrics.c) and the engine's gauges,
 * behind the --metrics-auth setting */
static enum MHD_Result handle_metrics(struct http_server *srv, struct MHD_Connection *c,
                                      struct request *r, const char *method, const char *url)
{
  if (__atomic_load_n(&srv->metrics_auth, __ATOMIC_RELAXED) != HTTP_METRICS_AUTH_NONE) {
    char client[INET6_ADDRSTRLEN];
    client_address(c, client);
    AUTOPTR(user) u = auth_check_header(srv->auth, header(c, MHD_HTTP_HEADER_AUTHORIZATION),
                                        *client ? client : NULL);
    if (!u) return respond_fault(c, r, method, url);
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    error(ERR_METHOD, "method '%s' is not allowed on '%s': use GET", method, url);
    return respond_fault(c, r, method, url);
  }
  struct buf out = BUF_INIT;
  if (engine_metrics_render(srv->eng, &out) < 0) {
    buf_free(&out);
    return respond_fault(c, r, method, url);
  }
  metrics_render(&out);
  return respond(c, r, method, url, 200, &out, "text/plain; version=0.0.4; charset=utf-8", NULL, false);
}

/* queues a static answer: DATA is not copied and must outlive the response */
static enum MHD_Result respond_static(struct MHD_Connection *c, struct request *r,
                                      const char *method, const char *url, int status,
                                      const char *data, size_t len, const char *content_type,
                                      const char *etag, const char *cache)
{
  bool head = strcmp(method, "HEAD") == 0;
  struct MHD_Response *resp = MHD_create_response_from_buffer(head ? 0 : len, (void *)data,
                                                              MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  if (content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (etag) MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
  MHD_add_response_header(resp, "Content-Security-Policy", WEBASSETS_CSP);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  account(r, method, url, status);
  return rc;
}

/* GET /ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA:
 * the CA certificate, unauthenticated, as oVirt serves it to Ansible,
 * virt-viewer and libgovirt */
static enum MHD_Result handle_pki_resource(struct http_server *srv, struct MHD_Connection *c,
                                           struct request *r, const char *method, const char *url)
{
  const char *res = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "resource");
  const char *fmt = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
  if (!res || strcmp(res, "ca-certificate") != 0) {
    error(ERR_NOT_FOUND, "no pki resource '%s': only 'ca-certificate' is served", res ? res : "");
    return respond_fault(c, r, method, url);
  }
  if (fmt && strcmp(fmt, "X509-PEM-CA") != 0 && strcmp(fmt, "X509-PEM") != 0) {
    error(ERR_INVALID, "unsupported format '%s' for the CA certificate: use 'X509-PEM-CA'", fmt);
    return respond_fault(c, r, method, url);
  }
  if (!srv->ca_pem) {
    error(ERR_NOT_FOUND, "this engine has no CA certificate (its certificate is not its own CA's)");
    return respond_fault(c, r, method, url);
  }
  return respond_static(c, r, method, url, 200, srv->ca_pem, strlen(srv->ca_pem),
                        "application/x-x509-ca-cert", NULL, "no-cache");
}

/* the web console's files: GET and HEAD, strong ETag, 304 when it matches */
static enum MHD_Result handle_web(struct MHD_Connection *c, struct request *r, const char *method,
                                  const char *url, const struct webasset *a)
{
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    error(ERR_METHOD, "method '%s' is not allowed on '%s': use GET", method, url);
    return respond_fault(c, r, method, url);
  }
  const char *inm = header(c, MHD_HTTP_HEADER_IF_NONE_MATCH);
  /* HTML names the current hashes of the scripts: always revalidated; the
   * rest may be reused for an hour and is revalidated by ETag after */
  const char *cache = a->html ? "no-cache" : "public, max-age=3600, must-revalidate";
  if (inm && strstr(inm, a->etag))
    return respond_static(c, r, method, url, 304, "", 0, NULL, a->etag, cache);
  return respond_static(c, r, method, url, 200, a->data, a->len, a->content_type, a->etag, cache);
}

static enum MHD_Result dispatch(struct http_server *srv, struct MHD_Connection *c,
                                struct request *r, const char *method, const char *url)
{
  if (strcmp(url, SSO_TOKEN_PATH) == 0) {
    r->route = SSO_TOKEN_PATH;
    return handle_token(srv, c, r, method, url);
  }
  if (strcmp(url, SSO_LOGOUT_PATH) == 0) {
    r->route = SSO_LOGOUT_PATH;
    return handle_logout(srv, c, r, method, url);
  }
  if (strcmp(url, METRICS_PATH) == 0) {
    r->route = METRICS_PATH;
    return handle_metrics(srv, c, r, method, url);
  }
  for (size_t i = 0; i < ARRAY_SIZE(api_roots); i++) {
    size_t len = strlen(api_roots[i].prefix);
    if (strncmp(url, api_roots[i].prefix, len) == 0 && (url[len] == 0 || url[len] == '/'))
      return handle_api(srv, c, r, method, url, &api_roots[i]);
  }
  if (strcmp(url, PKI_RESOURCE_PATH) == 0) {
    r->route = PKI_RESOURCE_PATH;
    return handle_pki_resource(srv, c, r, method, url);
  }
  const struct webasset *asset = webassets_find(srv->web, url);
  if (asset) {
    r->route = WEB_ROUTE;
    return handle_web(c, r, method, url, asset);
  }
  error(ERR_NOT_FOUND, "no resource at '%s'", url);
  return respond_fault(c, r, method, url);
}

/* how much of an oversized body is read (and discarded) to answer 413 */
static size_t drain_limit(const struct http_server *srv)
{
  return srv->max_body * DRAIN_FACTOR;
}

/* Requests that may wait long for a guest (a hot-unplug waits up to
 * --detach-timeout for the device to go; a shutdown for the guest) must not
 * hold one of the few HTTP threads meanwhile: they run on a side thread with
 * the connection suspended, and MHD's thread serves others. */
static bool may_wait_long(const char *method, const char *url)
{
  if (strcmp(method, "DELETE") == 0 || strcmp(method, "PUT") == 0) return true;
  if (strcmp(method, "POST") != 0) return false;
  size_t n = strlen(url);
  return (n > 9 && strcmp(url + n - 9, "/shutdown") == 0) || (n > 5 && strcmp(url + n - 5, "/stop") == 0);
}

#define SIDE_THREADS_MAX 64

struct side_job {
  struct http_server *srv;
  struct MHD_Connection *c;
  struct request *r;
  char *method, *url;
};

static enum MHD_Result dispatch(struct http_server *srv, struct MHD_Connection *c,
                                struct request *r, const char *method, const char *url);

static void *side_main(void *p)
{
  struct side_job *j = p;
  deferring = j->r;
  dispatch(j->srv, j->c, j->r, j->method, j->url);
  deferring = NULL;
  error_clear();
  struct http_server *srv = j->srv;
  MHD_resume_connection(j->c);
  free(j->method);
  free(j->url);
  free(j);
  pthread_mutex_lock(&srv->side_mu);
  srv->side_running--;
  pthread_cond_broadcast(&srv->side_cv);
  pthread_mutex_unlock(&srv->side_mu);
  return NULL;
}

/* answers r on a side thread; false (nothing done) when too many run already */
static bool run_deferred(struct http_server *srv, struct MHD_Connection *c, struct request *r,
                         const char *method, const char *url)
{
  pthread_mutex_lock(&srv->side_mu);
  bool room = srv->side_running < SIDE_THREADS_MAX;
  if (room) srv->side_running++;
  pthread_mutex_unlock(&srv->side_mu);
  if (!room) return false;
  struct side_job *j = xcalloc(1, sizeof *j);
  *j = (struct side_job){srv, c, r, xstrdup(method), xstrdup(url)};
  r->deferred = xcalloc(1, sizeof *r->deferred);
  MHD_suspend_connection(c);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  bool started = pthread_create(&t, &attr, side_main, j) == 0;
  pthread_attr_destroy(&attr);
  if (started) return true;
  MHD_resume_connection(c);
  free(r->deferred);
  r->deferred = NULL;
  free(j->method);
  free(j->url);
  free(j);
  pthread_mutex_lock(&srv->side_mu);
  srv->side_running--;
  pthread_mutex_unlock(&srv->side_mu);
  return false;
}

static bool announces_body(struct MHD_Connection *c)
{
  const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
  return (cl && strtoull(cl, NULL, 10) > 0) || header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* whether a request's body means anything: GET and HEAD never; DELETE only
 * for API version 3 (<action><detach>true</detach></action>) */
static bool uses_body(struct MHD_Connection *c, const char *method, const char *url)
{
  if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) return false;
  if (strcmp(method, "DELETE") != 0) return true;
  for (size_t i = 0; i < ARRAY_SIZE(api_roots); i++) {
    size_t len = strlen(api_roots[i].prefix);
    if (strncmp(url, api_roots[i].prefix, len) != 0 || (url[len] && url[len] != '/')) continue;
    const char *vh = header(c, "Version");
    return api_roots[i].version == 3 || (vh && strcmp(vh, "3") == 0);
  }
  return false;
}

/* MHD's access handler: called once at the headers, once per body chunk, and
 * once more when the body is complete */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
  struct http_server *srv = cls;
  struct request *r = *con_cls;
  if (imageio_owns(url)) {
    if (!r) {
      r = xcalloc(1, sizeof *r);
      r->start_ms = mono_ms();
      *con_cls = r;
    }
    return imageio_access(&srv->imageio, c, url, method, upload_data, upload_size, &r->image);
  }
  if (r && r->deferred) { /* resumed: the side thread's answer */
    if (!r->deferred->ready) return MHD_YES;
    struct deferred *d = r->deferred;
    r->deferred = NULL;
    enum MHD_Result rc = respond(c, r, method, url, d->status, &d->body, d->content_type, d->location,
                                 d->challenge);
    buf_free(&d->body);
    free(d->location);
    free(d);
    return rc;
  }
  if (!r) {
    r = xcalloc(1, sizeof *r);
    r->start_ms = mono_ms();
    *con_cls = r;
    const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > drain_limit(srv)) {
      /* far too large to read: answer before the body, MHD then closes the
       * connection (a client still sending may see a reset instead) */
      error(ERR_TOO_LARGE, "request body of %s bytes is over the limit of %zu bytes", cl,
            srv->max_body);
      return respond_fault(c, r, method, url);
    }
    /* a body the method does not use is not waited for: a client that
     * retries after a 401 may announce one and never send it */
    if (announces_body(c) && !uses_body(c, method, url)) {
      if (may_wait_long(method, url) && run_deferred(srv, c, r, method, url)) return MHD_YES;
      return dispatch(srv, c, r, method, url);
    }
    return MHD_YES;
  }
  if (*upload_size) {
    /* over the limit: stop buffering but keep reading, so that the client,
     * which sends the whole body before it reads, gets the 413 */
    if (!r->too_large && r->body.len + *upload_size > srv->max_body) {
      r->too_large = true;
      buf_free(&r->body);
    }
    if (r->too_large) {
      r->discarded += *upload_size;
      if (r->discarded > drain_limit(srv)) return MHD_NO;  /* drop the connection */
    } else {
      buf_add(&r->body, upload_data, *upload_size);
    }
    *upload_size = 0;
    return MHD_YES;
  }
  error_clear();
  if (r->too_large) {
    error(ERR_TOO_LARGE, "request body is over the limit of %zu bytes", srv->max_body);
    return respond_fault(c, r, method, url);
  }
  if (may_wait_long(method, url) && run_deferred(srv, c, r, method, url)) return MHD_YES;
  return dispatch(srv, c, r, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct request *r = *con_cls;
  if (!r) return;
  imageio_done(r->image);
  if (r->deferred) {
    buf_free(&r->deferred->body);
    free(r->deferred->location);
    free(r->deferred);
  }
  buf_free(&r->body);
  free(r);
  *con_cls = NULL;
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
  struct buf b = BUF_INIT;
  buf_vprintf(&b, fmt, ap);
  while (b.len && b.data[b.len - 1] == '\n') b.data[--b.len] = 0;
  log_warn("http: %s", buf_str(&b));
  buf_free(&b);
}

/* the access handler of the unix socket: image data only, as imageio's */
static enum MHD_Result on_unix_request(void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_size, void **con_cls)
{
  if (imageio_owns(url))
    return on_request(cls, c, url, method, version, upload_data, upload_size, con_cls);
  static const char msg[] = "only image data (/images/TICKET) is served on this socket\n";
  struct MHD_Response *resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg,
                                                              MHD_RESPMEM_PERSISTENT);
  if (!resp) return MHD_NO;
  enum MHD_Result rc = MHD_queue_response(c, 404, resp);
  MHD_destroy_response(resp);
  return rc;
}

/* listens on the unix socket at path (a stale socket file from a crash is
 * replaced; anything else there is refused) and serves /images/ on it */
static int unix_start(struct http_server *srv, const char *path)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    return error(ERR_INVALID, "the image data socket path '%s' is too long for a unix socket", path);
  strcpy(sa.sun_path, path);
  struct stat sb;
  if (lstat(path, &sb) == 0) {
    if (!S_ISSOCK(sb.st_mode))
      return error(ERR_CONFLICT, "cannot listen on '%s': it exists and is no socket", path);
    unlink(path);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error(ERR_INTERNAL, "cannot create a unix socket: %s", strerror(errno));
  mode_t old = umask(0077);
  int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  umask(old);
  if (rc < 0 || listen(fd, 64) < 0) {
    error(ERR_UNAVAILABLE, "cannot listen on '%s': %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  srv->unix_path = xstrdup(path);
  srv->unix_mhd = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
      on_unix_request, srv,
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
      MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_THREAD_POOL_SIZE, 4u,
      MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_END);
  if (!srv->unix_mhd) {
    close(fd);
    return error(ERR_UNAVAILABLE, "cannot serve image data on '%s'", path);
  }
  srv->imageio.unix_socket = srv->unix_path;
  return 0;
}

/* "HOST:PORT", "[V6]:PORT", ":PORT" -> a socket address; every check of a
 * listen address is here, so that http_check_listen() is exactly as strict */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen)
{
  AUTOFREE char *host = NULL;
  const char *port;
  if (listen[0] == '[') {
    const char *close = strchr(listen, ']');
    if (!close || close[1] != ':')
      return error(ERR_INVALID, "invalid listen address '%s': expected [ADDRESS]:PORT", listen);
    host = xstrdup(listen + 1);
    host[close - listen - 1] = 0;
    port = close + 2;
  } else {
    const char *colon = strrchr(listen, ':');
    if (!colon || strchr(listen, ':') != colon)
      return error(ERR_INVALID, "invalid listen address '%s': expected HOST:PORT", listen);
    host = xstrdup(listen);
    host[colon - listen] = 0;
    port = colon + 1;
  }
  if (!*port || strspn(port, "0123456789") != strlen(port) || strtol(port, NULL, 10) > 65535)
    return error(ERR_INVALID, "invalid listen address '%s': bad port", listen);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
  hints.ai_family = *host ? AF_UNSPEC : AF_INET;
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
  if (rc != 0 || !res)
    return error(ERR_INVALID, "invalid listen address '%s': %s", listen, gai_strerror(rc));
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sslen = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

int http_check_listen(const char *listen)
{
  struct sockaddr_storage ss;
  socklen_t sslen;
  return parse_listen(listen ? listen : "127.0.0.1:8443", &ss, &sslen);
}

void http_set_metrics_auth(struct http_server *srv, enum http_metrics_auth mode)
{
  __atomic_store_n(&srv->metrics_auth, (int)mode, __ATOMIC_RELAXED);
}

struct http_server *http_start(struct engine *eng, const struct http_options *opts)
{
  struct sockaddr_storage ss = {0};
  socklen_t sslen = 0;
  if (parse_listen(opts->listen ? opts->listen : "127.0.0.1:8443", &ss, &sslen) < 0) return NULL;

  struct http_server *srv = xcalloc(1, sizeof *srv);
  pthread_mutex_init(&srv->side_mu, NULL);
  pthread_cond_init(&srv->side_cv, NULL);
  srv->eng = eng;
  srv->max_body = opts->max_body ? opts->max_body : HTTP_DEFAULT_MAX_BODY;
  srv->metrics_auth = (int)opts->metrics_auth;
  unsigned threads = opts->threads ? opts->threads : HTTP_DEFAULT_THREADS;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                   MHD_ALLOW_SUSPEND_RESUME;
  if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  if (!opts->plain_http) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      error(ERR_UNSUPPORTED, "libmicrohttpd was built without TLS: use plain HTTP");
      http_stop(srv);
      return NULL;
    }
    if (!opts->pki_dir && !opts->tls_cert) {
      error(ERR_INVALID, "TLS needs a PKI directory");
      http_stop(srv);
      return NULL;
    }
    if (opts->tls_cert ? pki_load(opts->tls_cert, opts->tls_key, &srv->pems) < 0
                       : pki_ensure(opts->pki_dir, &srv->pems) < 0) {
      http_stop(srv);
      return NULL;
    }
    flags |= MHD_USE_TLS;
    srv->tls = true;
  }
  srv->auth = auth_new(engine_store(eng), opts->token_ttl_ms);
  srv->imageio.eng = eng;
  if (!srv->tls && opts->pki_dir) {
    /* plain HTTP still publishes the engine's CA (pki-resource), for the
     * clients that later talk HTTPS to it */
    if (pki_ensure(opts->pki_dir, &srv->pems) < 0) {
      log_warn("%s; the CA certificate is not served", error_message());
      error_clear();
    }
  }
  srv->ca_pem = xstrdup(srv->pems.ca_cert);
  if (opts->web_dir) {
    srv->web = webassets_load(opts->web_dir);
    if (!srv->web) {
      /* the API works without the console: say why it is missing */
      log_warn("%s; the web console is not served", error_message());
      error_clear();
    }
  }

  struct MHD_OptionItem tls_opts[] = {
    {MHD_OPTION_HTTPS_MEM_KEY, 0, srv->pems.server_key},
    {MHD_OPTION_HTTPS_MEM_CERT, 0, srv->pems.server_cert},
    {MHD_OPTION_END, 0, NULL},
  };
  if (opts->plain_http) tls_opts[0].option = MHD_OPTION_END;
  uint16_t port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  srv->mhd = MHD_start_daemon(
      flags, port, NULL, NULL, on_request, srv,
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,  /* first, so MHD logs nothing itself */
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_THREAD_POOL_SIZE, threads,
      MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_ARRAY, tls_opts,
      MHD_OPTION_END);
  if (!srv->mhd) {
    error(ERR_UNAVAILABLE, "cannot listen on '%s': address in use, not permitted, or TLS set-up failed",
          opts->listen ? opts->listen : "127.0.0.1:8443");
    http_stop(srv);
    return NULL;
  }
  if (opts->imageio_socket && unix_start(srv, opts->imageio_socket) < 0) {
    /* the TCP data URLs still work: local clients lose only a shortcut */
    log_warn("%s; image data is served over TCP only", error_message());
    error_clear();
  }
  log_info("listening on %s, bound to port %d (%s, %u threads)",
           opts->listen ? opts->listen : "127.0.0.1:8443", http_port(srv), opts->plain_http ? "http" : "https",
           threads);
  return srv;
}

int http_port(const struct http_server *srv)
{
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
  return info ? info->port : -1;
}

void http_stop(struct http_server *srv)
{
  if (!srv) return;
  /* MHD must not stop with a connection suspended: side threads end first */
  pthread_mutex_lock(&srv->side_mu);
  while (srv->side_running > 0) pthread_cond_wait(&srv->side_cv, &srv->side_mu);
  pthread_mutex_unlock(&srv->side_mu);
  if (srv->unix_mhd) MHD_stop_daemon(srv->unix_mhd);
  if (srv->unix_path) unlink(srv->unix_path);
  free(srv->unix_path);
  if (srv->mhd) MHD_stop_daemon(srv->mhd);
  auth_free(srv->auth);
  pki_pems_clear(&srv->pems);
  webassets_free(srv->web);
  free(srv->ca_pem);
  pthread_mutex_destroy(&srv->side_mu);
  pthread_cond_destroy(&srv->side_cv);
  free(srv);
}
