/* res_disk.c: disks: add, update, move, remove. Its routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fills d from a <disk> node; required fields checked here */
int disk_from_node(struct api_call *c, const struct node *b, struct disk *d,
                   struct storage_domain **sd)
{
  *d = (struct disk){.format = DISK_FORMAT_COW, .sparse = true};
  d->alias = (char *)node_text(b, "alias");
  if (!d->alias) d->alias = (char *)node_text(b, "name");
  if (!d->alias)
    return error(ERR_INVALID, "missing required field 'disk.alias': name the disk with <alias>");
  d->description = (char *)node_text(b, "description");
  int r = node_get_int64(b, "provisioned_size", &d->provisioned_size);
  if (r < 0) return -1;
  if (r == 0 && node_get_int64(b, "size", &d->provisioned_size) <= 0)
    return error(ERR_INVALID, "missing required field 'disk.provisioned_size': give the size in bytes");
  const char *fmt = node_text(b, "format");
  if (fmt && (d->format = disk_format_from_str(fmt)) < 0)
    return error(ERR_INVALID, "invalid disk format '%s': use 'cow' or 'raw'", fmt);
  if (node_get_bool(b, "sparse", &d->sparse) < 0 || node_get_bool(b, "shareable", &d->shareable) < 0)
    return -1;
  if (d->shareable && d->format == DISK_FORMAT_COW)
    return error(ERR_INVALID, "a shareable disk must use format 'raw'");
  if (disk_backup_from_node(b, &d->backup) < 0) return -1;
  if (d->backup < 0) d->backup = DISK_BACKUP_NONE;
  const char *content = node_text(b, "content_type");
  if (content && (d->content_type = disk_content_from_str(content)) < 0)
    return error(ERR_INVALID, "invalid disk content_type '%s': use 'data' or 'iso'", content);
  const struct node *sds = node_child(b, "storage_domains");
  const struct node *sdref = sds ? node_child(sds, "storage_domain") : node_child(b, "storage_domain");
  if (!sdref)
    return error(ERR_INVALID, "missing required field 'disk.storage_domains': add "
                 "<storage_domains><storage_domain><name>data</name></storage_domain></storage_domains>");
  if (!(*sd = resolve_storage_domain(c, sdref, "storage_domain"))) return -1;
  d->storage_domain_id = (*sd)->id;
  return 0;
}

int add_disk(struct api_call *c)
{
  const struct node *b = body_required(c, "disk");
  if (!b) return -1;
  struct disk d;
  AUTOPTR(storage_domain) sd = NULL;
  if (disk_from_node(c, b, &d, &sd) < 0) return -1;
  AUTOFREE char *id = NULL;
  if (cmd_disk_add(c->eng, c->req->user, &d, &id) < 0) return -1;
  AUTOPTR(disk) disk = disk_get(c->st, id);
  if (!disk) return -1;
  return reply_created(c, render_disk(&c->r, disk));
}

int update_disk(struct api_call *c)
{
  const struct node *b = body_required(c, "disk");
  if (!b) return -1;
  int64_t size = 0;
  int r = node_get_int64(b, "provisioned_size", &size);
  if (r < 0) return -1;
  if (r == 1 && size <= 0)
    return error(ERR_INVALID, "invalid provisioned_size %lld: give a positive number of bytes", (long long)size);
  int backup;
  if (disk_backup_from_node(b, &backup) < 0) return -1;
  if (cmd_disk_update(c->eng, c->req->user, c->p[0], node_text(b, "alias"), node_text(b, "description"),
                      size, backup) < 0)
    return -1;
  AUTOPTR(disk) d = disk_get(c->st, c->p[0]);
  if (!d) return -1;
  return reply(c, 200, render_disk(&c->r, d));
}

int move_disk(struct api_call *c)
{
  const struct node *b = body_required(c, "action");
  if (!b) return -1;
  const struct node *sdref = node_child(b, "storage_domain");
  if (!sdref) return error(ERR_INVALID, "missing required field 'action.storage_domain': name the target domain");
  AUTOPTR(storage_domain) sd = resolve_storage_domain(c, sdref, "storage_domain");
  if (!sd) return -1;
  if (cmd_disk_move(c->eng, c->req->user, c->p[0], sd->id) < 0) return -1;
  return reply_action(c);
}

int remove_disk(struct api_call *c)
{
  if (cmd_disk_remove(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply(c, 200, NULL);
}
