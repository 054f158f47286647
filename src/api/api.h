/* api.h: the oVirt REST resources, independent of the HTTP server.
 *
 * The HTTP layer (src/http) authenticates, parses the body into a node tree,
 * and calls api_handle() with an api_request. api_handle() finds the route in
 * the one route table (routes.c), runs the handler, and fills api_response
 * with a node tree that the HTTP layer renders as XML or JSON. On failure it
 * returns -1 with the error recorded (err.h); the HTTP layer renders that as
 * an oVirt <fault> with the status of the error code, in one place. */
#pragma once
#include <stdbool.h>
#include "repr/node.h"
#include "store/store.h"

struct engine;  /* cmd/engine.h: store, hosts, locks, settings */

struct api_param { const char *name, *value; };

struct api_request {
  const char *method;       /* "GET", "POST", "PUT", "DELETE" */
  const char *path;         /* below the API root, "/vms/ID/start"; "/" or "" for the root */
  const char *root;         /* the API root as the client used it: "/ovirt-engine/api" */
  int version;              /* 4, or 3 for legacy clients */
  const struct user *user;  /* the authenticated user; never NULL here */
  const struct node *body;  /* parsed request body, or NULL when none */
  const struct api_param *query; /* query parameters; NULL-name-terminated */
  bool all_content;         /* ?all_content=true or All-Content: true */
  const char *base_url;     /* "https://HOST:PORT" as the client reached the engine (Host
                               header), for URLs outside the API (image transfer data); may be NULL */
};

struct api_response {
  int status;               /* 200, 201, 202 */
  struct node *body;        /* owned; rendered then freed by the caller */
  char *location;           /* Location header for 201, or NULL; owned */
  const char *route;        /* the ROUTES pattern that matched ("/vms/{}"), for metrics; static */
};

/* returns 0 with resp filled, or -1 with the error recorded */
int api_handle(struct engine *eng, const struct api_request *req, struct api_response *resp);

/* value of query parameter NAME, or NULL */
const char *api_query(const struct api_request *req, const char *name);

/* refuses (ERR_INVALID naming the field) a request whose path, query or body
 * holds a control character anywhere; api_handle() runs it before every handler */
int api_check_input(const struct api_request *req);
