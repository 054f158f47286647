/* res_template.c: templates: add from a VM, remove, their disk attachments.
 * Its routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int add_template(struct api_call *c)
{
  const struct node *b = body_required(c, "template");
  if (!b) return -1;
  const char *name;
  if (need_text(b, "name", "template", &name) < 0) return -1;
  const struct node *vref = node_child(b, "vm");
  if (!vref) return error(ERR_INVALID, "missing required field 'template.vm': give <vm id=\"...\"/>");
  AUTOPTR(vm) vm = resolve_vm(c, vref, "vm");
  if (!vm) return -1;
  AUTOFREE char *id = NULL;
  if (cmd_template_add(c->eng, c->req->user, name, node_text(b, "description"), vm->id, &id) < 0) return -1;
  AUTOPTR(template) t = template_get(c->st, id);
  if (!t) return -1;
  return reply_created(c, render_template(&c->r, t));
}

int remove_template(struct api_call *c)
{
  if (cmd_template_remove(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply(c, 200, NULL);
}

int list_template_attachments(struct api_call *c)
{
  AUTOPTR(template) t = template_get(c->st, c->p[0]);
  if (!t) return -1;
  AUTOLIST(attachment) l = attachment_list_by_vm(c->st, t->id);
  if (!l) return -1;
  struct node *n = node_new("disk_attachments");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++) node_append(n, render_template_attachment(&c->r, l[i]));
  return reply(c, 200, n);
}
