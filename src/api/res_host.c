/* res_host.c: host actions (maintenance on/off). Its routes are in ROUTES (routes.c). */
#include "api/resources.h"
#include "cmd/commands.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int host_deactivate(struct api_call *c)
{
  if (cmd_host_deactivate(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}

int host_activate(struct api_call *c)
{
  if (cmd_host_activate(c->eng, c->req->user, c->p[0]) < 0) return -1;
  return reply_action(c);
}
