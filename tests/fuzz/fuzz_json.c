/* JSON request bodies into the node tree (repr/json.c, jansson) */
#include "fuzz.h"
#include "repr/node.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct node *n = node_from_json((const char *)data, size, "request");
  if (n) {
    struct buf out = BUF_INIT;
    node_to_json(n, &out);
    node_to_xml(n, &out);
    buf_free(&out);
  }
  node_free(n);
  error_clear();
  return 0;
}
