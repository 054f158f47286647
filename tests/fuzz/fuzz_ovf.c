/* OVF descriptors (of OVA imports and snapshots) into struct ovf_vm */
#include "fuzz.h"
#include "repr/ovf.h"
#include <libxml/parser.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  xmlInitParser();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct ovf_vm *vm = ovf_parse((const char *)data, size);
  ovf_vm_free(vm);
  error_clear();
  return 0;
}
