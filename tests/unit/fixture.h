/* fixture.h: an engine on a test store, for the unit tests that drive the
 * API layer in-process (test_api, test_perm, test_hazards). fixture_open()
 * makes a temporary state directory, opens the engine on it with libvirt's
 * test driver (test:///default) as the host, a mock that is fine inside a
 * unit test, and adds the admin user with its SuperUser grant;
 * fixture_call() runs one request as a user, as the HTTP layer would.
 * Header-only, like tap.h: each test is one executable. */
#pragma once
#include "tap.h"
#include "api/api.h"
#include "api/call.h"
#include "cmd/engine.h"
#include "cmd/perm.h"
#include "util/err.h"
#include "util/spawn.h"
#include "util/uuid.h"
#include <stdbool.h>
#include <stdlib.h>

static struct engine *eng;
static struct user admin = {.id = (char *)"11111111-1111-4111-8111-111111111111",
                            .name = (char *)"admin@internal"};
/* the state directory, /tmp/snapback-NAME-XXXXXX */
static char fixture_dir[64];

/* opens the engine on a new state directory and adds admin; false (the
 * error printed) when the engine does not open */
static inline bool fixture_open(const char *name)
{
  snprintf(fixture_dir, sizeof fixture_dir, "/tmp/snapback-%s-XXXXXX", name);
  CHECK(mkdtemp(fixture_dir) != NULL);
  struct engine_options eo = {.state_dir = fixture_dir, .libvirt_uri = "test:///default",
                              .domain_type = DOMAIN_TYPE_QEMU, .detach_timeout_ms = 1000};
  eng = engine_open(&eo, NULL);
  CHECK(eng != NULL);
  if (!eng) {
    fprintf(stderr, "%s\n", error_message());
    return false;
  }
  struct user u = admin;
  u.password_hash = (char *)"x";
  CHECK(user_insert(engine_store(eng), &u) == 0);
  CHECK(perm_ensure_admin(engine_store(eng)) == 0);
  return true;
}

/* closes the engine and removes the state directory */
static inline void fixture_close(void)
{
  engine_close(eng);
  eng = NULL;
  const char *rm[] = {"rm", "-rf", fixture_dir, NULL};
  CHECK(spawn_run(rm, NULL, NULL) == 0);
}

/* Runs one request (XML body or NULL, query Q or NULL) as U; returns the
 * HTTP status it maps to. *OUT (OUT may be NULL) gets the answer's XML, or
 * the error's message.
 * CHECK_ONLY decides only the route's permission (api_check_route): 200
 * when it lets the request through. */
static inline int fixture_call(const struct user *u, const char *method, const char *path, const char *xml,
                               const struct api_param *q, char **out, bool check_only)
{
  AUTOPTR(node) body = xml ? node_from_xml(xml, strlen(xml)) : NULL;
  if (out) *out = NULL;
  if (xml && !body) return error_http_status(error_code());
  struct api_request req = {.method = method, .path = path, .root = "/ovirt-engine/api",
                            .version = 4, .user = u, .body = body, .query = q};
  struct api_response resp = {0};
  error_clear();
  int rc = check_only ? api_check_route(eng, &req) : api_handle(eng, &req, &resp);
  if (rc < 0) {
    if (out) *out = xstrdup(error_message());
    return error_http_status(error_code());
  }
  if (check_only) return 200;
  struct buf b = BUF_INIT;
  if (resp.body) node_to_xml(resp.body, &b);
  if (out) *out = buf_detach(&b);
  else buf_free(&b);
  node_free(resp.body);
  free(resp.location);
  return resp.status;
}

/* the first id="..." of answer X (the entity's own) into OUT; "" when none */
static inline void fixture_first_id(const char *x, char out[UUID_STRLEN + 1])
{
  const char *p = x ? strstr(x, " id=\"") : NULL;
  snprintf(out, UUID_STRLEN + 1, "%s", p ? p + 5 : "");
}
