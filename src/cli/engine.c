/* engine.c: engine calls shared by backup and restore (see engine.h). */
#include "cli/engine.h"
#include "cli/transfer.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SNAPSHOT_WAIT_MS (30 * 60 * 1000)

char *engine_vm_id(struct client *api, const char *name)
{
  AUTOFREE char *q = xasprintf("name=%s", name);
  AUTOFREE char *eq = client_escape(q);
  AUTOFREE char *path = xasprintf("/vms?search=%s", eq);
  AUTOPTR(node) n = NULL;
  if (client_call(api, "GET", path, NULL, &n) < 0) return NULL;
  for (size_t i = 0; n && i < n->nkids; i++) {
    const char *nm = node_text(n->kids[i], "name");
    if (nm && strcmp(nm, name) == 0 && node_attr(n->kids[i], "id")) return xstrdup(node_attr(n->kids[i], "id"));
  }
  error(ERR_NOT_FOUND, "VM '%s' does not exist", name);
  return NULL;
}

void engine_event(struct client *api, const char *vm_id, const char *severity, const char *fmt, ...)
{
  struct buf msg = BUF_INIT, body = BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(&msg, fmt, ap);
  va_end(ap);
  uint32_t rnd = 0;
  if (RAND_bytes((unsigned char *)&rnd, sizeof rnd) != 1) rnd = (uint32_t)now_ms();
  buf_puts(&body, "<event><description>");
  buf_put_xml_escaped(&body, buf_str(&msg));
  buf_printf(&body, "</description><origin>snapback</origin><severity>%s</severity><custom_id>%u</custom_id>",
             severity, rnd & 0x7fffffff);
  if (vm_id) buf_printf(&body, "<vm id=\"%s\"/>", vm_id);
  buf_puts(&body, "</event>");
  struct err_saved saved;
  error_save(&saved);
  if (client_call(api, "POST", "/events", buf_str(&body), NULL) < 0)
    fprintf(stderr, "snapback: warning: cannot record event '%s': %s\n", buf_str(&msg), error_message());
  error_restore(&saved);
  if (saved.code == ERR_NONE) error_clear();
  buf_free(&msg);
  buf_free(&body);
}

int engine_wait_field(struct client *api, const char *path, const char *field, const char *want,
                      int64_t timeout_ms)
{
  int64_t deadline = mono_ms() + timeout_ms;
  struct backoff wait;
  backoff_start(&wait, 100000, 1000000, 0);
  for (;;) {
    AUTOPTR(node) n = NULL;
    if (client_call(api, "GET", path, NULL, &n) < 0) return -1;
    const char *v = node_text(n, field);
    if (v && strcmp(v, want) == 0) return 0;
    if (mono_ms() > deadline)
      return error(ERR_UNAVAILABLE, "%s: '%s' is still '%s' after %lld s", path, field, v ? v : "",
                   (long long)(timeout_ms / 1000));
    if (cli_interrupted) return error(ERR_INTERNAL, "interrupted");
    backoff_sleep(&wait);
  }
}

int engine_snapshot_create(struct client *api, const char *vm_id, const char *description, char **snap_id)
{
  *snap_id = NULL;
  struct buf body = BUF_INIT;
  buf_puts(&body, "<snapshot><description>");
  buf_put_xml_escaped(&body, description);
  buf_puts(&body, "</description><persist_memorystate>false</persist_memorystate></snapshot>");
  AUTOFREE char *path = xasprintf("/vms/%s/snapshots", vm_id);
  AUTOPTR(node) n = NULL;
  int rc = client_call(api, "POST", path, buf_str(&body), &n);
  buf_free(&body);
  if (rc < 0) return error_prefix("cannot create a snapshot: ");
  const char *id = node_attr(n, "id");
  if (!id) return error(ERR_INTERNAL, "cannot create a snapshot: the answer carries no snapshot id");
  *snap_id = xstrdup(id);
  AUTOFREE char *spath = xasprintf("/vms/%s/snapshots/%s", vm_id, id);
  if (engine_wait_field(api, spath, "snapshot_status", "ok", SNAPSHOT_WAIT_MS) < 0)
    return error_prefix("snapshot '%s' did not become ready: ", id);
  return 0;
}

int engine_snapshot_remove(struct client *api, const char *vm_id, const char *snap_id)
{
  AUTOFREE char *path = xasprintf("/vms/%s/snapshots/%s", vm_id, snap_id);
  int64_t deadline = mono_ms() + 120 * 1000;
  /* a snapshot that is still locked (being created, or a transfer letting go) answers 409 */
  for (;;) {
    if (client_call(api, "DELETE", path, NULL, NULL) == 0) break;
    if (error_code() == ERR_NOT_FOUND) {
      error_clear();
      return 0;
    }
    if (error_code() != ERR_CONFLICT || mono_ms() > deadline)
      return error_prefix("cannot remove snapshot '%s': ", snap_id);
    error_clear();
    sleep(1);
  }
  deadline = mono_ms() + SNAPSHOT_WAIT_MS;
  struct backoff wait;
  backoff_start(&wait, 100000, 1000000, 0);
  for (;;) {
    AUTOPTR(node) n = NULL;
    if (client_call(api, "GET", path, NULL, &n) < 0) {
      if (error_code() == ERR_NOT_FOUND) {
        error_clear();
        return 0;
      }
      return error_prefix("cannot remove snapshot '%s': ", snap_id);
    }
    const char *st = node_text(n, "snapshot_status");
    if (st && strcmp(st, "locked") != 0)
      return error(ERR_CONFLICT, "cannot remove snapshot '%s': the merge failed and it is '%s' again (see the "
                   "engine's events)", snap_id, st);
    if (mono_ms() > deadline)
      return error(ERR_UNAVAILABLE, "cannot remove snapshot '%s': still merging after %d s", snap_id,
                   SNAPSHOT_WAIT_MS / 1000);
    backoff_sleep(&wait);
  }
}
