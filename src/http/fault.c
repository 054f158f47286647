/* fault.c: errors to HTTP statuses and oVirt <fault> bodies (see fault.h) */
#include "http/fault.h"

const char *fault_reason(int status)
{
  switch (status) {
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 429: return "Too Many Requests";
  default: return "Operation Failed";
  }
}

struct node *fault_node(int status, const char *message)
{
  struct node *f = node_new("fault");
  node_add_text(f, "reason", fault_reason(status));
  node_add_textf(f, "detail", "[%s]", message && *message ? message : fault_reason(status));
  return f;
}

int fault_render(enum err_code code, const char *message, bool json, struct buf *out)
{
  if (code == ERR_NONE) {
    code = ERR_INTERNAL;
    message = "internal error: no error recorded";
  }
  int status = error_http_status(code);
  AUTOPTR(node) f = fault_node(status, message);
  if (json) node_to_json(f, out);
  else node_to_xml(f, out);
  return status;
}

int fault_render_current(bool json, struct buf *out)
{
  return fault_render(error_code(), error_message(), json, out);
}
