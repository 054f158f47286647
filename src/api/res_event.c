/* res_event.c: events: list, get, and those a backup application adds. Its
 * routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* an event is visible to whoever sees its VM, to the user it names, and to
 * system administrators */
static bool event_visible(struct api_call *c, const struct event *e)
{
  if (perm_is_system_admin(c->pv)) return true;
  if (e->user_id && strcmp(e->user_id, c->req->user->id) == 0) return true;
  return e->vm_id && api_visible(c, OBJ_VM, e->vm_id);
}

int list_events(struct api_call *c)
{
  int max;
  if (query_max(c, &max) < 0) return -1;
  const char *from = api_query(c->req, "from");
  char *end = NULL;
  long long from_id = from ? strtoll(from, &end, 10) : 0;
  if (from && (*end || from_id < 0))
    return error(ERR_INVALID, "invalid value '%s' for parameter 'from': expected an event id", from);
  /* without from, every event: ids start at 1 */
  AUTOLIST(event) l = event_list_after(c->st, from_id, max);
  if (!l) return -1;
  struct node *n = node_new("events");
  n->is_list = true;
  for (size_t i = 0; l[i]; i++)
    if (event_visible(c, l[i])) node_append(n, render_event(&c->r, l[i]));
  return reply(c, 200, n);
}

int get_event(struct api_call *c)
{
  char *end;
  long long id = strtoll(c->p[0], &end, 10);
  if (*end || id <= 0) return error(ERR_NOT_FOUND, "event '%s' does not exist", c->p[0]);
  AUTOPTR(event) e = event_get(c->st, id);
  if (!e) return -1;
  if (!event_visible(c, e)) return error(ERR_NOT_FOUND, "event '%s' does not exist", c->p[0]);
  return reply(c, 200, render_event(&c->r, e));
}

int add_event(struct api_call *c)
{
  const struct node *b = body_required(c, "event");
  if (!b) return -1;
  struct event ev = {.custom_id = -1, .severity = SEVERITY_NORMAL};
  if (node_get_int64(b, "custom_id", &ev.custom_id) < 0) return -1;
  ev.description = (char *)node_text(b, "description");
  ev.origin = (char *)node_text(b, "origin");
  const char *sev = node_text(b, "severity");
  if (sev && (ev.severity = event_severity_from_str(sev)) < 0)
    return error(ERR_INVALID, "invalid severity '%s': use normal, warning, error or alert", sev);
  const struct node *vmref = node_child(b, "vm");
  if (vmref) {
    ev.vm_id = (char *)node_attr(vmref, "id");
    if (!ev.vm_id) return error(ERR_INVALID, "missing VM id: give <vm id=\"...\"/>");
  }
  if (cmd_event_add(c->eng, c->req->user, &ev) < 0) return -1;
  AUTOPTR(event) e = event_get(c->st, ev.id);
  if (!e) return -1;
  return reply_created(c, render_event(&c->r, e));
}
