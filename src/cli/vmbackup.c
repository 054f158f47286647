/* vmbackup.c: the engine's VM backup API (see vmbackup.h). */
#include "cli/vmbackup.h"
#include "cli/transfer.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <string.h>
#include <unistd.h>

#define BACKUP_WAIT_MS (30 * 60 * 1000)

void vm_backup_clear(struct vm_backup *b)
{
  free(b->id);
  free(b->vm_id);
  free(b->phase);
  free(b->from_checkpoint);
  free(b->to_checkpoint);
  free(b->snapshot_id);
  memset(b, 0, sizeof *b);
}

static void take(char **slot, const char *v)
{
  if (!v) return;
  free(*slot);
  *slot = xstrdup(v);
}

static void backup_update(struct vm_backup *b, const struct node *n)
{
  take(&b->phase, node_text(n, "phase"));
  take(&b->to_checkpoint, node_text(n, "to_checkpoint_id"));
  take(&b->snapshot_id, node_attr(node_child(n, "snapshot"), "id"));
}

static int backup_refresh(struct client *api, struct vm_backup *b)
{
  AUTOFREE char *path = xasprintf("/vms/%s/backups/%s", b->vm_id, b->id);
  AUTOPTR(node) n = NULL;
  if (client_call(api, "GET", path, NULL, &n) < 0) return -1;
  backup_update(b, n);
  return 0;
}

/* polls until the phase is want; fails on failed (or succeeded when want is
 * ready) */
static int backup_wait(struct client *api, struct vm_backup *b, const char *want)
{
  int64_t deadline = mono_ms() + BACKUP_WAIT_MS;
  struct backoff poll;
  poller_start(&poll);
  for (;;) {
    if (b->phase && strcmp(b->phase, want) == 0) return 0;
    if (b->phase && (strcmp(b->phase, "failed") == 0 || strcmp(b->phase, "succeeded") == 0))
      return error(ERR_INTERNAL, "backup '%s' of VM '%s' is '%s' instead of '%s' (the engine's events say why)",
                   b->id, b->vm_id, b->phase, want);
    if (cli_interrupted) return error(ERR_INTERNAL, "interrupted");
    if (mono_ms() > deadline)
      return error(ERR_UNAVAILABLE, "backup '%s' did not become '%s' within %d s (phase '%s')", b->id, want,
                   BACKUP_WAIT_MS / 1000, b->phase ? b->phase : "?");
    poller_sleep(&poll);
    if (backup_refresh(api, b) < 0) return -1;
  }
}

int vm_backup_start(struct client *api, const char *vm_id, char **disk_ids, size_t n, const char *from_checkpoint,
                    bool use_active, const char *description, struct vm_backup *b)
{
  memset(b, 0, sizeof *b);
  struct buf body = BUF_INIT;
  buf_puts(&body, "<backup><disks>");
  for (size_t i = 0; i < n; i++) buf_printf(&body, "<disk id=\"%s\"/>", disk_ids[i]);
  buf_puts(&body, "</disks>");
  if (from_checkpoint) buf_printf(&body, "<from_checkpoint_id>%s</from_checkpoint_id>", from_checkpoint);
  buf_puts(&body, "<description>");
  buf_put_xml_escaped(&body, description);
  buf_puts(&body, "</description></backup>");
  AUTOFREE char *path = xasprintf("/vms/%s/backups%s", vm_id, use_active ? "?use_active=true" : "");
  AUTOPTR(node) ans = NULL;
  int rc = client_call(api, "POST", path, buf_str(&body), &ans);
  buf_free(&body);
  if (rc < 0) {
    long st = client_last_status(api);
    if (st == 404 && !strstr(error_message(), "checkpoint")) {
      error_clear();
      return error(ERR_UNSUPPORTED, "the engine offers no VM backup API (POST %s answered 404)", path);
    }
    return error_prefix("cannot start a %s backup of VM '%s': ", from_checkpoint ? "incremental" : "full", vm_id);
  }
  const char *id = node_attr(ans, "id");
  if (!id) return error(ERR_INTERNAL, "the engine's answer to POST %s carries no backup id", path);
  b->id = xstrdup(id);
  b->vm_id = xstrdup(vm_id);
  b->from_checkpoint = xstrdup(from_checkpoint);
  backup_update(b, ans);
  if (backup_wait(api, b, "ready") < 0) {
    vm_backup_abort(api, b);
    return -1;
  }
  return 0;
}

char *vm_backup_disk_mode(struct client *api, const struct vm_backup *b, const char *disk_id, char **reason)
{
  *reason = NULL;
  AUTOFREE char *path = xasprintf("/vms/%s/backups/%s/disks", b->vm_id, b->id);
  AUTOPTR(node) n = NULL;
  if (client_call(api, "GET", path, NULL, &n) < 0) {
    error_clear();
    return xstrdup(b->from_checkpoint ? "incremental" : "full");
  }
  for (size_t i = 0; n && i < n->nkids; i++) {
    const char *id = node_attr(n->kids[i], "id"), *mode = node_text(n->kids[i], "backup_mode");
    if (id && strcmp(id, disk_id) == 0 && mode) {
      *reason = xstrdup(node_text(n->kids[i], "backup_mode_reason"));
      return xstrdup(mode);
    }
  }
  return xstrdup(b->from_checkpoint ? "incremental" : "full");
}

int vm_backup_finalize_send(struct client *api, struct vm_backup *b)
{
  AUTOFREE char *path = xasprintf("/vms/%s/backups/%s/finalize", b->vm_id, b->id);
  if (client_call(api, "POST", path, "<action/>", NULL) < 0)
    return error_prefix("cannot finalize backup '%s': ", b->id);
  return 0;
}

int vm_backup_finalized(struct client *api, struct vm_backup *b)
{
  if (backup_refresh(api, b) < 0) return error_prefix("cannot finalize backup '%s': ", b->id);
  return backup_wait(api, b, "succeeded");
}

int vm_backup_finalize(struct client *api, struct vm_backup *b)
{
  return vm_backup_finalize_send(api, b) < 0 ? -1 : vm_backup_finalized(api, b);
}

static bool id_in(const char *id, const struct node *list)
{
  for (size_t i = 0; id && list && i < list->nkids; i++)
    if (node_attr(list->kids[i], "id") && strcmp(node_attr(list->kids[i], "id"), id) == 0) return true;
  return false;
}

int vm_backup_end_stale(struct client *api, const char *vm_id, const char *backup_id)
{
  struct vm_backup b = {.id = xstrdup(backup_id), .vm_id = xstrdup(vm_id)};
  /* the transfers it left open first (those naming the backup, or, where the
   * engine does not say, those of its disks): the engine keeps the disks
   * until they end */
  AUTOFREE char *dpath = xasprintf("/vms/%s/backups/%s/disks", vm_id, backup_id);
  AUTOPTR(node) disks = NULL;
  if (client_call(api, "GET", dpath, NULL, &disks) < 0) error_clear();
  AUTOPTR(node) ts = NULL;
  if (client_call(api, "GET", "/imagetransfers", NULL, &ts) < 0) error_clear();
  for (size_t i = 0; ts && i < ts->nkids; i++) {
    const struct node *t = ts->kids[i];
    const char *phase = node_text(t, "phase"), *id = node_attr(t, "id"),
               *bid = node_attr(node_child(t, "backup"), "id"), *did = node_attr(node_child(t, "disk"), "id");
    if (!id || (bid ? strcmp(bid, backup_id) != 0 : !id_in(did, disks))) continue;
    if (phase && (strncmp(phase, "finished", 8) == 0 || strncmp(phase, "cancelled", 9) == 0)) continue;
    struct transfer tr = {.id = xstrdup(id)};
    transfer_cancel(api, &tr);
  }
  int rc = backup_refresh(api, &b);
  if (rc == 0 && b.phase && (strcmp(b.phase, "initializing") == 0 || strcmp(b.phase, "starting") == 0))
    rc = backup_wait(api, &b, "ready");
  if (rc == 0 && b.phase && strcmp(b.phase, "ready") == 0) rc = vm_backup_finalize(api, &b);
  else if (rc == 0 && b.phase && strcmp(b.phase, "finalizing") == 0) rc = backup_wait(api, &b, "succeeded");
  if (rc < 0 && b.phase && strcmp(b.phase, "failed") == 0) {
    error_clear(); /* ended: that is all we wanted */
    rc = 0;
  }
  vm_backup_clear(&b);
  return rc;
}

void vm_backup_abort(struct client *api, struct vm_backup *b)
{
  if (!b->id) return;
  struct err_saved saved;
  error_save(&saved);
  AUTOFREE char *path = xasprintf("/vms/%s/backups/%s/finalize", b->vm_id, b->id);
  if (client_call(api, "POST", path, "<action/>", NULL) < 0) error_clear();
  error_restore(&saved);
}
