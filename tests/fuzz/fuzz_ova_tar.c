/* the OVA tar index: the member list read from an archive's headers */
#include "fuzz.h"
#include "cmd/ova.h"
#include <sys/mman.h>
#include <unistd.h>

static int fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fd = memfd_create("fuzz-ova", MFD_CLOEXEC);
  return fd < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
  struct tar_members m = VEC_INIT;
  if (tar_index(fd, (int64_t)size, "fuzz.ova", &m) == 0) {
    for (size_t i = 0; i < m.len; i++) {
      if (m.ptr[i].offset < 0 || m.ptr[i].size < 0 || m.ptr[i].offset + m.ptr[i].size > (int64_t)size)
        abort(); /* a member outside the file was accepted */
      tar_find(&m, m.ptr[i].name);
    }
    tar_find(&m, "vm.ovf");
  }
  tar_members_free(&m);
  error_clear();
  return 0;
}
