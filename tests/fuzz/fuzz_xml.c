/* XML request bodies into the node tree (repr/xml.c, libxml2 without entities) */
#include "fuzz.h"
#include "repr/node.h"
#include <libxml/parser.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  xmlInitParser();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct node *n = node_from_xml((const char *)data, size);
  if (n) {
    /* what parses must render again, both ways */
    struct buf out = BUF_INIT;
    node_to_xml(n, &out);
    node_to_json(n, &out);
    buf_free(&out);
  }
  node_free(n);
  error_clear();
  return 0;
}
