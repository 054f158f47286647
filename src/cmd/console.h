/* console.h: graphics consoles of VMs (oVirt's graphicsconsoles).
 *
 * Every VM started gets a VNC console on the host's console address
 * (snapbackd --console-listen, loopback by default) whose password expired
 * at start: nobody connects until a ticket sets a password for a while.
 * Where the host's QEMU has SPICE (libvirt's domain capabilities), a SPICE
 * console beside it, locked the same way. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct engine;
struct user;

/* oVirt names a console by its protocol in hex: "766e63" is "vnc", "7370696365" "spice" */
#define CONSOLE_VNC_ID "766e63"
#define CONSOLE_SPICE_ID "7370696365"

struct console_info {
  char protocol[16];   /* "vnc", "spice" */
  char address[64];    /* where it listens, "" while the VM is down */
  int port;            /* -1 while the VM is down */
};

/* the consoles of VM vm_id: its configured VNC console, with address and
 * port while it runs. ERR_NOT_FOUND for no such VM. */
int console_list(struct engine *eng, const char *vm_id, struct console_info *out, size_t max, size_t *n);

/* sets a ticket on console PROTOCOL of running VM vm_id: PASSWORD (NULL: a
 * random one, returned in *password_out, caller frees) for EXPIRY seconds.
 * ERR_CONFLICT when the VM is not running; an audit event either way. */
int cmd_console_ticket(struct engine *eng, const struct user *u, const char *vm_id, const char *protocol,
                       const char *password, int64_t expiry, char **password_out);
