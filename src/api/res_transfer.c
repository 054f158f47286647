/* res_transfer.c: image transfers (cmd/transfer/transfer.c; the data path is
 * http/imageio.c). Its routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <string.h>

/* <image_transfer><direction>download</direction><format>raw</format>
 * <snapshot id="VOLUME"/> | <disk id="DISK"/> [<inactivity_timeout>S</...>] */
int add_image_transfer(struct api_call *c)
{
  const struct node *b = body_required(c, "image_transfer");
  if (!b) return -1;
  struct transfer_spec spec = {.direction = TRANSFER_UPLOAD, .format = DISK_FORMAT_RAW};
  const char *dir = node_text(b, "direction");
  if (dir && (spec.direction = transfer_direction_from_str(dir)) < 0)
    return error(ERR_INVALID, "invalid direction '%s': use 'download' or 'upload'", dir);
  const char *fmt = node_text(b, "format");
  if (fmt && (spec.format = disk_format_from_str(fmt)) < 0)
    return error(ERR_INVALID, "invalid format '%s': use 'raw'", fmt);
  int r = node_get_int64(b, "inactivity_timeout", &spec.inactivity_timeout);
  if (r < 0) return -1;
  if (r == 1 && spec.inactivity_timeout <= 0)
    return error(ERR_INVALID, "invalid inactivity_timeout %lld: give a positive number of seconds",
                 (long long)spec.inactivity_timeout);
  const struct node *backup = node_child(b, "backup");
  const char *backup_id = backup ? node_attr(backup, "id") : NULL;
  if (backup && !backup_id) return error(ERR_INVALID, "missing backup id: give <backup id=\"...\"/>");
  const struct node *snap = node_child(b, "snapshot");
  if (snap && !(spec.volume_id = node_attr(snap, "id")))
    return error(ERR_INVALID, "missing disk snapshot id: give <snapshot id=\"...\"/>");
  const struct node *disk = node_child(b, "disk");
  if (!disk) disk = node_child(b, "image"); /* oVirt 4.0's name for the disk */
  if (disk && !(spec.disk_id = node_attr(disk, "id")))
    return error(ERR_INVALID, "missing disk id: give <disk id=\"...\"/>");
  if (!spec.volume_id && !spec.disk_id)
    return error(ERR_INVALID, "missing required field 'image_transfer.disk' or "
                 "'image_transfer.snapshot': give <disk id=\"...\"/> or <snapshot id=\"...\"/>");
  AUTOFREE char *id = NULL;
  if (backup_id ? cmd_backup_transfer(c->eng, c->req->user, backup_id, &spec, &id) < 0
                : cmd_transfer_create(c->eng, c->req->user, &spec, &id) < 0)
    return -1;
  AUTOPTR(image_transfer) t = image_transfer_get(c->st, id);
  if (!t) return -1;
  return reply_created(c, render_image_transfer(&c->r, t, c->req->base_url));
}

int list_image_transfers(struct api_call *c)
{
  int max;
  if (query_max(c, &max) < 0) return -1;
  AUTOLIST(image_transfer) l = image_transfer_list_all(c->st);
  if (!l) return -1;
  struct node *n = node_new("image_transfers");
  n->is_list = true;
  int count = 0;
  for (size_t i = 0; l[i] && (max <= 0 || count < max); i++) {
    if (!api_owned(c, l[i]->user_id)) continue;
    node_append(n, render_image_transfer(&c->r, l[i], c->req->base_url));
    count++;
  }
  return reply(c, 200, n);
}

/* an image transfer and its ticket belong to the user who made it */
static struct image_transfer *own_transfer(struct api_call *c, const char *action)
{
  AUTOPTR(image_transfer) t = image_transfer_get(c->st, c->p[0]);
  if (!t) return NULL;
  if (!api_owned(c, t->user_id)) {
    engine_event(c->eng, SEVERITY_WARNING, EV_PERMISSION_DENIED, c->req->user, NULL,
                 "permission denied: user '%s' may not %s image transfer '%s' of another user",
                 c->req->user->name, action, c->p[0]);
    return error(ERR_NOT_FOUND, "image transfer '%s' does not exist", c->p[0]), NULL;
  }
  return steal_pointer(&t);
}

int get_image_transfer(struct api_call *c)
{
  AUTOPTR(image_transfer) t = own_transfer(c, "read");
  if (!t) return -1;
  return reply(c, 200, render_image_transfer(&c->r, t, c->req->base_url));
}

int image_transfer_finalize(struct api_call *c)
{
  AUTOPTR(image_transfer) t = own_transfer(c, "finalize");
  if (!t || cmd_transfer_finalize(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

int image_transfer_cancel(struct api_call *c)
{
  AUTOPTR(image_transfer) t = own_transfer(c, "cancel");
  if (!t || cmd_transfer_cancel(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}
