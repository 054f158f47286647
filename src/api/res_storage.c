/* res_storage.c: adding and removing storage domains. Its routes are in ROUTES
 * (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int add_storage_domain(struct api_call *c)
{
  const struct node *b = body_required(c, "storage_domain");
  if (!b) return -1;
  const char *name, *path;
  if (need_text(b, "name", "storage_domain", &name) < 0 ||
      need_text(b, "storage/path", "storage_domain", &path) < 0)
    return -1;
  const char *type = node_text(b, "type");
  if (type && strcmp(type, "data") != 0)
    return error(ERR_INVALID, "unsupported storage domain type '%s': only 'data' is supported", type);
  const char *stype = node_text(b, "storage/type");
  if (stype && strcmp(stype, "localfs") != 0 && strcmp(stype, "posixfs") != 0 && strcmp(stype, "nfs") != 0)
    return error(ERR_INVALID, "unsupported storage type '%s': use 'localfs' with a directory path", stype);
  AUTOFREE char *id = NULL;
  if (cmd_sd_add(c->eng, c->req->user, name, path, &id) < 0) return -1;
  AUTOPTR(storage_domain) sd = storage_domain_get(c->st, id);
  if (!sd) return -1;
  return reply_created(c, render_storage_domain(&c->r, sd));
}

int remove_storage_domain(struct api_call *c)
{
  if (cmd_sd_remove(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply(c, 200, NULL);
}
