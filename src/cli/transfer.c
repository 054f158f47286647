/* transfer.c: the image transfer lifecycle, through the public API.
 *
 *   POST /imagetransfers  <image_transfer><direction>..</direction><format>raw</format>
 *                         <snapshot id=VOLUME/> | <disk id=DISK/></image_transfer>
 *   GET  /imagetransfers/{id}          until <phase> is transferring
 *   POST /imagetransfers/{id}/finalize until finished_success
 *   POST /imagetransfers/{id}/cancel   on failure */
#include "cli/transfer.h"
#include "cli/cli.h"
#include "cli/imageio.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <libnbd.h>
#include <string.h>
#include <unistd.h>

#define TRANSFER_WAIT_MS (10 * 60 * 1000)

volatile sig_atomic_t cli_interrupted;

void transfer_clear(struct transfer *t)
{
  free(t->id);
  free(t->url);
  free(t->http_url);
  free(t->phase);
  memset(t, 0, sizeof *t);
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

void poller_start(struct backoff *p)
{
  backoff_start(p, POLL_FAST_MS * 1000, POLL_MAX_MS * 1000, POLL_FAST_FOR_MS);
}

void poller_sleep(struct backoff *p)
{
  if (mono_ms() - p->start_ms < POLL_QUICK_FOR_MS) usleep(POLL_QUICK_US);
  else backoff_sleep(p);
}

/* the NBD URL of a transfer: snapback's nbd_url (transfer_url is the HTTPS
 * imageio URL), or an older engine's nbd:// transfer_url */
static const char *transfer_nbd(const struct node *n)
{
  const char *url = node_text(n, "nbd_url");
  return url ? url : node_text(n, "transfer_url");
}

/* the imageio HTTP(S) URL of a transfer, when it has one: transfer_url, or
 * the engine's proxy_url beside an NBD transfer_url */
static void transfer_take_http(struct transfer *t, const struct node *n)
{
  const char *url = node_text(n, "transfer_url");
  if (!url || strncmp(url, "http", 4) != 0) url = node_text(n, "proxy_url");
  if (url && strncmp(url, "http", 4) == 0 && (!t->http_url || strcmp(url, t->http_url) != 0)) {
    free(t->http_url);
    t->http_url = xstrdup(url);
  }
}

/* reads phase (and the NBD URL) of t; ERR_NOT_FOUND when it is gone */
static int transfer_refresh(struct client *c, struct transfer *t)
{
  AUTOFREE char *path = xasprintf("/imagetransfers/%s", t->id);
  AUTOPTR(node) n = NULL;
  if (client_call(c, "GET", path, NULL, &n) < 0) return -1;
  const char *phase = node_text(n, "phase"), *url = transfer_nbd(n);
  transfer_take_http(t, n);
  free(t->phase);
  t->phase = xstrdup(phase ? phase : "unknown");
  if (url && (!t->url || strcmp(url, t->url) != 0)) {
    free(t->url);
    t->url = xstrdup(url);
  }
  return 0;
}

static int transfer_open(struct client *c, bool upload, const char *image_id, const char *disk_id,
                         const char *backup_id, struct transfer *t)
{
  memset(t, 0, sizeof *t);
  struct buf body = BUF_INIT;
  buf_printf(&body, "<image_transfer><direction>%s</direction><format>raw</format>",
             upload ? "upload" : "download");
  if (image_id) buf_printf(&body, "<snapshot id=\"%s\"/>", image_id);
  if (disk_id) buf_printf(&body, "<disk id=\"%s\"/>", disk_id);
  if (backup_id) buf_printf(&body, "<backup id=\"%s\"/>", backup_id);
  buf_puts(&body, "<inactivity_timeout>120</inactivity_timeout></image_transfer>");
  AUTOPTR(node) n = NULL;
  int rc = client_call(c, "POST", "/imagetransfers", buf_str(&body), &n);
  buf_free(&body);
  if (rc < 0) {
    if (error_code() == ERR_NOT_FOUND && client_last_status(c) == 404 && !strstr(error_message(), "disk") &&
        !strstr(error_message(), "snapshot") && !strstr(error_message(), "volume"))
      error_prefix("the engine offers no image transfers: ");
    return error_prefix("cannot start the %s of %s '%s': ", upload ? "upload" : "download",
                        upload ? "disk" : "volume", upload ? disk_id : image_id);
  }
  const char *id = node_attr(n, "id");
  if (!id) return error(ERR_INTERNAL, "cannot start a transfer: the engine's answer has no transfer id");
  t->id = xstrdup(id);
  const char *phase = node_text(n, "phase"), *url = transfer_nbd(n);
  t->phase = xstrdup(phase ? phase : "initializing");
  t->url = xstrdup(url);
  transfer_take_http(t, n);
  int64_t deadline = mono_ms() + TRANSFER_WAIT_MS;
  struct backoff poll;
  poller_start(&poll);
  while (strcmp(t->phase, "transferring") != 0) {
    if (strcmp(t->phase, "initializing") != 0 && strcmp(t->phase, "resuming") != 0) {
      error(ERR_CONFLICT, "transfer '%s' is '%s' instead of transferring", t->id, t->phase);
      goto cancel;
    }
    if (cli_interrupted) {
      error(ERR_INTERNAL, "interrupted");
      goto cancel;
    }
    if (mono_ms() > deadline) {
      error(ERR_UNAVAILABLE, "transfer '%s' did not start within %d s", t->id, TRANSFER_WAIT_MS / 1000);
      goto cancel;
    }
    poller_sleep(&poll);
    if (transfer_refresh(c, t) < 0) goto cancel;
  }
  if ((!t->url || strncmp(t->url, "nbd", 3) != 0) && !t->http_url) {
    error(ERR_UNSUPPORTED, "transfer '%s' has neither an NBD nor an HTTP URL (got '%s')", t->id,
          t->url ? t->url : "");
    goto cancel;
  }
  return 0;
cancel:
  transfer_cancel(c, t);
  return -1;
}

int transfer_start(struct client *c, bool upload, const char *image_id, const char *disk_id, struct transfer *t)
{
  return transfer_open(c, upload, image_id, disk_id, NULL, t);
}

int transfer_start_backup(struct client *c, const char *backup_id, const char *disk_id, struct transfer *t)
{
  return transfer_open(c, false, NULL, disk_id, backup_id, t);
}

int transfer_finalize(struct client *c, struct transfer *t)
{
  AUTOFREE char *path = xasprintf("/imagetransfers/%s/finalize", t->id);
  if (client_call(c, "POST", path, "<action/>", NULL) < 0)
    return error_prefix("cannot finalize transfer '%s': ", t->id);
  int64_t deadline = mono_ms() + TRANSFER_WAIT_MS;
  struct backoff poll;
  poller_start(&poll);
  for (;;) {
    if (transfer_refresh(c, t) < 0) {
      if (error_code() == ERR_NOT_FOUND) {
        error_clear(); /* the engine forgot it once finished */
        return 0;
      }
      return error_prefix("cannot finalize transfer '%s': ", t->id);
    }
    if (strcmp(t->phase, "finished_success") == 0) return 0;
    if (strncmp(t->phase, "finished_", 9) == 0 || strcmp(t->phase, "cancelled") == 0 ||
        strncmp(t->phase, "cancelled_", 10) == 0)
      return error(ERR_INTERNAL, "transfer '%s' ended as '%s'", t->id, t->phase);
    if (mono_ms() > deadline)
      return error(ERR_UNAVAILABLE, "transfer '%s' did not finish within %d s (phase '%s')", t->id,
                   TRANSFER_WAIT_MS / 1000, t->phase);
    poller_sleep(&poll);
  }
}

void transfer_cancel(struct client *c, struct transfer *t)
{
  if (!t->id) return;
  struct err_saved saved;
  error_save(&saved);
  AUTOFREE char *path = xasprintf("/imagetransfers/%s/cancel", t->id);
  if (client_call(c, "POST", path, "<action/>", NULL) == 0) {
    /* wait (briefly) until the engine has let go of the volume */
    for (int i = 0; i < 100; i++) {
      if (transfer_refresh(c, t) < 0) break;
      if (strncmp(t->phase, "finished_", 9) == 0 || strncmp(t->phase, "cancelled", 9) == 0) break;
      sleep_ms(100);
    }
  }
  error_restore(&saved);
  transfer_clear(t);
}

struct nbd_handle *transfer_nbd_try(const char *url, char **why)
{
  struct nbd_handle *h = nbd_create();
  /* buffers are used only after a read succeeded (see nbd_open_url) */
  if (h && nbd_set_pread_initialize(h, false) == 0 && nbd_connect_uri(h, url) == 0) return h;
  free(*why);
  *why = xasprintf("cannot reach '%s': %s", url, nbd_get_error());
  nbd_close(h);
  return NULL;
}

int transfer_data_open(const struct cli *c, const struct transfer *t, const char *disk, const char *verb,
                       char **nbd_url, struct imageio **io)
{
  AUTOFREE char *nbd_why = NULL;
  if (t->url && strncmp(t->url, "nbd", 3) == 0) {
    struct nbd_handle *probe = transfer_nbd_try(t->url, &nbd_why);
    if (probe) {
      nbd_close(probe);
      *nbd_url = xstrdup(t->url);
    }
  }
  if (t->http_url) {
    *io = imageio_open(t->http_url, c->conf.cacert);
    if (!*io) return -1;
    AUTOFREE char *sock = NULL;
    if (imageio_options(*io, &sock) < 0) return error_prefix("cannot use transfer '%s': ", t->id);
    if (sock) {
      AUTOFREE char *again = NULL;
      imageio_use_unix_socket(*io, sock);
      if (imageio_options(*io, &again) < 0) {
        cli_note(c, "cannot use the engine's unix socket '%s' (%s): HTTP to '%s'", sock, error_message(),
                 t->http_url);
        error_clear();
        imageio_use_unix_socket(*io, NULL);
      }
    }
  }
  if (!*nbd_url && !*io)
    return error(ERR_UNAVAILABLE, "cannot use disk '%s': %s, and the transfer has no HTTP URL", disk,
                 nbd_why ? nbd_why : "no NBD URL");
  if (!*nbd_url && nbd_why) cli_note(c, "disk '%s': %s: %s over HTTP", disk, nbd_why, verb);
  return 0;
}
