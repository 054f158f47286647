/* guestinfo.c: a running guest's addresses (see guestinfo.h). Read from
 * libvirt at each request; nothing is stored. */
#include "cmd/guestinfo.h"
#include "cmd/internal.h"
#include "hyper/hyper.h"
#include "util/err.h"

int vm_guest_addresses(struct engine *eng, const char *vm_id, struct hyper_guest_iface **out, size_t *n,
                       const char **from)
{
  *out = NULL;
  *n = 0;
  *from = NULL;
  AUTOPTR(vm) vm = vm_get(eng->st, vm_id);
  if (!vm) return -1;
  if (vm->status == VM_DOWN || !vm->host_id) return 0;
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, vm->host_id, &ops);
  if (!h) return -1;
  if (!ops->guest_addresses) return 0;
  if (ops->guest_addresses(h, vm_id, out, n, from) < 0) {
    if (error_code() != ERR_NOT_FOUND) return -1;
    error_clear(); /* it stopped just now */
  }
  return 0;
}
