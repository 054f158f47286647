/* res_console.c: /vms/{vm}/graphicsconsoles (cmd/vm/console.c): the VNC
 * console, its ticket action, and the remote-viewer connection file. */
#include "api/resources.h"
#include "cmd/console.h"
#include "util/buf.h"
#include "util/err.h"
#include <string.h>

#define DEFAULT_EXPIRY 120  /* seconds, oVirt's default ticket lifetime */

/* oVirt's console id: the protocol's name in hex */
static const char *console_id(const char *protocol)
{
  return strcmp(protocol, "spice") == 0 ? CONSOLE_SPICE_ID : CONSOLE_VNC_ID;
}

static struct node *render_console(struct api_call *c, const struct console_info *ci)
{
  struct node *n = node_new("graphics_console");
  AUTOFREE char *href = render_href(&c->r, "/vms/%s/graphicsconsoles/%s", c->p[0], console_id(ci->protocol));
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", console_id(ci->protocol));
  render_links(n, "/vms/{}/graphicsconsoles/{}", href);
  node_add_text(n, "protocol", ci->protocol);
  if (ci->port > 0) {
    node_add_text(n, "address", ci->address);
    node_add_int(n, "port", ci->port);
  }
  AUTOFREE char *vhref = render_href(&c->r, "/vms/%s", c->p[0]);
  node_add_ref(n, "vm", c->p[0], vhref);
  return n;
}

/* the console the path names ({} after graphicsconsoles), or NULL + 404 */
static int find_console(struct api_call *c, struct console_info *out)
{
  struct console_info ci[2];
  size_t n;
  if (console_list(c->eng, c->p[0], ci, 2, &n) < 0) return -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(c->p[1], console_id(ci[i].protocol)) == 0) {
      *out = ci[i];
      return 0;
    }
  return error(ERR_NOT_FOUND, "graphics console '%s' of VM '%s' does not exist", c->p[1], c->p[0]);
}

int list_vm_consoles(struct api_call *c)
{
  struct console_info ci[2];
  size_t n;
  if (console_list(c->eng, c->p[0], ci, 2, &n) < 0) return -1;
  struct node *list = node_new("graphics_consoles");
  list->is_list = true;
  for (size_t i = 0; i < n; i++) node_append(list, render_console(c, &ci[i]));
  return reply(c, 200, list);
}

int get_vm_console(struct api_call *c)
{
  struct console_info ci;
  if (find_console(c, &ci) < 0) return -1;
  return reply(c, 200, render_console(c, &ci));
}

/* POST .../ticket <action><ticket><value>V</value><expiry>S</expiry></ticket></action>,
 * both optional: a random value, 120 s */
int vm_console_ticket(struct api_call *c)
{
  struct console_info ci;
  if (find_console(c, &ci) < 0) return -1;
  const struct node *b = c->req->body;
  const char *value = b ? node_text(b, "ticket/value") : NULL;
  int64_t expiry = DEFAULT_EXPIRY;
  if (b && node_get_int64(b, "ticket/expiry", &expiry) < 0) return -1;
  AUTOFREE char *made = NULL;
  if (cmd_console_ticket(c->eng, c->req->user, c->p[0], ci.protocol, value, expiry, &made) < 0) return -1;
  struct node *n = node_new("action");
  struct node *t = node_add(n, "ticket");
  node_add_text(t, "value", made);
  node_add_int(t, "expiry", expiry);
  node_add_text(n, "status", "complete");
  return reply(c, 200, n);
}

/* POST .../remoteviewerconnectionfile (an action in oVirt's model): a fresh ticket in a virt-viewer file, as
 * oVirt's action returns it (<action><remote_viewer_connection_file>) */
int vm_console_vv(struct api_call *c)
{
  struct console_info ci;
  if (find_console(c, &ci) < 0) return -1;
  AUTOPTR(vm) vm = vm_get(c->st, c->p[0]);
  if (!vm) return -1;
  AUTOFREE char *made = NULL;
  if (cmd_console_ticket(c->eng, c->req->user, c->p[0], ci.protocol, NULL, DEFAULT_EXPIRY, &made) < 0)
    return -1;
  if (find_console(c, &ci) < 0) return -1;
  struct buf vv = BUF_INIT;
  buf_printf(&vv, "[virt-viewer]\ntype=%s\nhost=%s\nport=%d\npassword=%s\n"
             "# Password is valid for %d seconds.\ndelete-this-file=1\nfullscreen=0\ntitle=%s:%%d\n"
             "toggle-fullscreen=shift+f11\nrelease-cursor=shift+f12\nsecure-attention=ctrl+alt+end\n",
             ci.protocol, ci.address, ci.port, made, DEFAULT_EXPIRY, vm->name);
  struct node *n = node_new("action");
  node_add_text(n, "remote_viewer_connection_file", buf_str(&vv));
  node_add_text(n, "status", "complete");
  buf_free(&vv);
  return reply(c, 200, n);
}
