/* client.h: the engine's REST API as the snapback CLI sees it (httpc.h).
 *
 * Logs in like an oVirt SDK: POST the SSO token form to
 * scheme://host/ovirt-engine/sso/oauth/token, then every request carries
 * Authorization: Bearer, Version: 4 and XML. A 401 fetches a new token and
 * retries once. Not thread-safe: one client per thread. */
#pragma once
#include <stdbool.h>
#include "repr/node.h"
#include "util/cleanup.h"

struct client_conf {
  char *url;       /* the API root, e.g. https://engine:8443/ovirt-engine/api */
  char *user;      /* e.g. admin@internal */
  char *password;
  char *cacert;    /* PEM file to trust, or NULL for the system's CAs */
};
void client_conf_clear(struct client_conf *c);

struct client;
/* logs in; NULL with the error (ERR_AUTH for refused credentials) */
struct client *client_open(const struct client_conf *conf);
/* logs out (best effort) and frees */
void client_close(struct client *c);
DEFINE_AUTOPTR(client, struct client, client_close)

/* One request. path is below the API root ("/vms?search=...") ; body is XML
 * or NULL. On 2xx returns 0 and *out (if not NULL) gets the parsed answer
 * (NULL when there is none). Otherwise -1 with the error recorded: the code
 * follows the status (404 -> ERR_NOT_FOUND, 409 -> ERR_CONFLICT, ...) and the
 * message names the request and the engine's fault detail. */
int client_call(struct client *c, const char *method, const char *path, const char *body,
                struct node **out) WARN_UNUSED;
/* the HTTP status of the last request (0 when no answer came) */
long client_last_status(const struct client *c);

/* percent-encodes s for a query string; caller frees */
char *client_escape(const char *s);
