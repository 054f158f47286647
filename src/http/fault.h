/* fault.h: the one place an error becomes HTTP.
 *
 * An error recorded with error() (util/err.h) carries a code; here the code
 * becomes a status (error_http_status) and the message an oVirt fault:
 *   <fault><reason>Operation Failed</reason><detail>[message]</detail></fault>
 * or, for JSON clients, {"reason": "...", "detail": "[message]"}. */
#pragma once
#include <stdbool.h>
#include "util/buf.h"
#include "util/err.h"
#include "repr/node.h"

/* oVirt's reason text for a status: "Unauthorized" (401), "Forbidden" (403),
 * "Not Found" (404), else "Operation Failed" */
const char *fault_reason(int status);

/* builds <fault> for STATUS with MESSAGE as detail ("[MESSAGE]"); caller frees */
struct node *fault_node(int status, const char *message);

/* renders a fault for CODE/MESSAGE into OUT (XML, or JSON when json) and
 * returns the HTTP status */
int fault_render(enum err_code code, const char *message, bool json, struct buf *out);

/* the same for the error recorded on this thread; a missing error (a bug:
 * -1 without error()) renders as 500 "internal error: no error recorded" */
int fault_render_current(bool json, struct buf *out);
