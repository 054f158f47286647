/* console.c: graphics consoles and their tickets (see console.h).
 *
 * A ticket is a password set on the running domain's console with an expiry
 * (libvirt passwd + passwdValidTo): nothing is stored, nothing survives the
 * VM, and a crash leaves at worst a password that expires by itself. */
#include "cmd/console.h"
#include "cmd/internal.h"
#include "hyper/hyper.h"
#include "util/err.h"
#include "util/uuid.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

int console_list(struct engine *eng, const char *vm_id, struct console_info *out, size_t max, size_t *n)
{
  *n = 0;
  AUTOPTR(vm) vm = vm_get(eng->st, vm_id);
  if (!vm) return -1;
  if (max == 0) return 0;
  out[(*n)++] = (struct console_info){.protocol = "vnc", .port = -1};
  /* SPICE where the host's QEMU has it (a VM started before that knew only VNC) */
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, vm->host_id ? vm->host_id : eng->host_id, &ops);
  if (!h) {
    if (vm->status == VM_DOWN) error_clear();
    return vm->status == VM_DOWN ? 0 : -1;
  }
  if (*n < max && ops->graphics_supported && ops->graphics_supported(h, "spice") == 1)
    out[(*n)++] = (struct console_info){.protocol = "spice", .port = -1};
  error_clear();
  if (vm->status == VM_DOWN || !vm->host_id) return 0;
  if (!ops->graphics_list) return 0;
  struct hyper_graphics g[4];
  size_t ng = 0;
  if (ops->graphics_list(h, vm->id, g, ARRAY_SIZE(g), &ng) < 0) {
    if (error_code() != ERR_NOT_FOUND) return -1;
    error_clear(); /* it stopped just now */
    return 0;
  }
  for (size_t i = 0; i < ng; i++)
    for (size_t k = 0; k < *n; k++) {
      struct console_info *c = &out[k];
      if (strcmp(g[i].type, c->protocol) != 0) continue;
      c->port = g[i].port;
      snprintf(c->address, sizeof c->address, "%s", g[i].listen);
    }
  return 0;
}

struct ticket_args {
  const char *vm_id, *protocol, *password;
  int64_t expiry;
  struct vm *vm;
  char *made;          /* the password set */
};

static int ticket_validate(struct cmd_ctx *c)
{
  struct ticket_args *a = c->data;
  bool vnc = strcmp(a->protocol, "vnc") == 0;
  if (!vnc && strcmp(a->protocol, "spice") != 0)
    return error(ERR_NOT_FOUND, "VM '%s' has no %s console: vnc and spice are offered", a->vm_id, a->protocol);
  if (!(a->vm = vm_get(c->eng->st, a->vm_id))) return -1;
  if (a->vm->status == VM_DOWN || !a->vm->host_id)
    return error(ERR_CONFLICT, "cannot set a console ticket for VM '%s': it is not running", a->vm->name);
  if (a->expiry < 1 || a->expiry > 86400 * 7)
    return error(ERR_INVALID, "invalid ticket expiry %lld: give 1 to 604800 seconds", (long long)a->expiry);
  /* VNC authentication knows passwords of at most 8 characters */
  if (vnc && a->password && (strlen(a->password) < 6 || strlen(a->password) > 8))
    return error(ERR_INVALID, "invalid ticket value: give 6 to 8 characters (VNC reads no more)");
  if (!vnc && a->password && (strlen(a->password) < 6 || strlen(a->password) > 60))
    return error(ERR_INVALID, "invalid ticket value: give 6 to 60 characters (SPICE reads no more)");
  return 0;
}

static int ticket_execute(struct cmd_ctx *c)
{
  struct ticket_args *a = c->data;
  /* VNC authentication reads 8 characters of a password: 8 random ones */
  a->made = a->password ? xstrdup(a->password) : random_hex(strcmp(a->protocol, "vnc") == 0 ? 4 : 12);
  if (!a->made) return -1;
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(c->eng, a->vm->host_id, &ops);
  if (!h) return -1;
  if (!ops->graphics_ticket) return error(ERR_UNSUPPORTED, "the host's hypervisor has no consoles");
  return ops->graphics_ticket(h, a->vm->id, a->protocol, a->made, (int64_t)time(NULL) + a->expiry);
}

static char *ticket_describe(struct cmd_ctx *c, bool ok)
{
  struct ticket_args *a = c->data;
  const char *name = a->vm ? a->vm->name : a->vm_id;
  return ok ? xasprintf("User %s set a %s console ticket for VM %s, valid %lld s", c->user->name,
                        a->protocol, name, (long long)a->expiry)
            : xasprintf("Failed to set a %s console ticket for VM %s", a->protocol, name);
}

static const struct cmd_def ticket_def = {
  "SetVmTicket", EV_CONSOLE_TICKET, ticket_validate, ticket_execute, NULL, ticket_describe,
};

int cmd_console_ticket(struct engine *eng, const struct user *u, const char *vm_id, const char *protocol,
                       const char *password, int64_t expiry, char **password_out)
{
  struct ticket_args a = {.vm_id = vm_id, .protocol = protocol, .password = password, .expiry = expiry};
  struct cmd_ctx c = {.eng = eng, .user = u, .vm_id = vm_id, .data = &a};
  int rc = cmd_run(&ticket_def, &c);
  vm_free(a.vm);
  if (rc == 0) *password_out = a.made;
  else free(a.made);
  return rc;
}
