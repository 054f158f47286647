/* imageio.c: the HTTP data path of image transfers (see imageio.h).
 *
 * Every request opens its own NBD connection to the transfer's qemu-nbd
 * (--shared=8) and closes it when MHD completes the request, so nothing is
 * shared between worker threads but the store. A GET streams through MHD's
 * content-reader callback in READ_BLOCK pieces, asking the export's
 * base:allocation block status before each piece: zero and unallocated
 * ranges are filled with zeroes here, never read. A PUT is written as it
 * arrives, gathered in WRITE_BLOCK pieces; an all-zero piece is sent as an
 * NBD zero, so the volume stays sparse.
 *
 * Errors answer as imageio does: the status and a text/plain message. The
 * status comes from the error code (error_http_status, as for faults),
 * except 416 for a range outside the image, which HTTP defines itself. */
#include "http/imageio.h"
#include "cmd/commands.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/vec.h"
#include <inttypes.h>
#include <jansson.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BLOCK (256 * 1024)
#define WRITE_BLOCK (2 * 1024 * 1024)
#define MAX_SMALL_BODY (64 * 1024)
/* the NBD protocol takes 32-bit lengths for block status and zero */
#define NBD_MAX_SPAN ((uint64_t)1 << 30)
#define TOUCH_EVERY_MS 1000
#define STATUS_RANGE_NOT_SATISFIABLE 416

DEFINE_AUTOPTR(nbd_handle, struct nbd_handle, nbd_close)
DEFINE_AUTOPTR(json, json_t, json_decref)

struct imageio_req {
  struct engine *eng;
  int64_t start_ms;            /* monotonic */
  struct image_transfer *t;    /* PUT: looked up at the headers */
  struct nbd_handle *nbd;      /* PUT: open while the body arrives */
  struct buf body;             /* other methods: a small body (PATCH's JSON) */
  bool too_large;
  /* PUT */
  uint64_t size;               /* of the export */
  uint64_t offset;             /* where pending[0] goes */
  uint64_t range_start;        /* where the body starts */
  uint64_t end;                /* end of the Content-Range (exclusive); 0: none given */
  uint64_t received;
  char *pending;
  size_t npending;
  bool flush;
  bool failed;                 /* answer `err` at the end, drop the rest of the body */
  int fail_status;             /* 0: from the error code */
  struct err_saved err;
};

bool imageio_owns(const char *url)
{
  return strncmp(url, IMAGEIO_PREFIX, strlen(IMAGEIO_PREFIX)) == 0;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static const char *query(struct MHD_Connection *c, const char *name)
{
  return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* queues resp with status and logs the request; takes resp over */
static enum MHD_Result queue(struct MHD_Connection *c, struct imageio_req *s, const char *method,
                             const char *url, unsigned status, struct MHD_Response *resp)
{
  if (!resp) return MHD_NO;
  enum MHD_Result rc = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  int64_t ms = mono_ms() - s->start_ms;
  /* the ticket is a credential: log only its first characters */
  log_debug("%s %.16s...: %u in %lld ms", method, url, status, (long long)ms);
  return rc;
}

static struct MHD_Response *text_response(const char *text, const char *ctype)
{
  size_t len = strlen(text);
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)xstrdup(text),
                                                              MHD_RESPMEM_MUST_FREE);
  if (resp && len) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  return resp;
}

/* answers the error recorded on this thread (or status when not 0) as text */
static enum MHD_Result respond_error(struct MHD_Connection *c, struct imageio_req *s,
                                     const char *method, const char *url, int status)
{
  if (error_code() == ERR_NONE) error(ERR_INTERNAL, "internal error: no error recorded");
  if (!status) status = error_http_status(error_code());
  AUTOFREE char *msg = xasprintf("%s\n", error_message());
  if (status >= 500) log_err("%s %.16s...: %d: %s (%s)", method, url, status, error_message(), error_where());
  error_clear();
  return queue(c, s, method, url, (unsigned)status, text_response(msg, "text/plain; charset=utf-8"));
}

static enum MHD_Result respond_json(struct MHD_Connection *c, struct imageio_req *s,
                                    const char *method, const char *url, json_t *j,
                                    const char *allow)
{
  AUTOFREE char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  struct MHD_Response *resp = text_response(text ? text : "null", "application/json");
  if (resp && allow) MHD_add_response_header(resp, "Allow", allow);
  return queue(c, s, method, url, 200, resp);
}

static enum MHD_Result respond_empty(struct MHD_Connection *c, struct imageio_req *s,
                                     const char *method, const char *url)
{
  return queue(c, s, method, url, 200, text_response("", "text/plain"));
}

/* "/images/TICKET[/extents]" -> ticket (caller frees) and the rest ("" or "/extents") */
static char *parse_url(const char *url, const char **rest)
{
  const char *p = url + strlen(IMAGEIO_PREFIX);
  const char *slash = strchr(p, '/');
  *rest = slash ? slash : "";
  struct buf b = BUF_INIT;
  buf_add(&b, p, slash ? (size_t)(slash - p) : strlen(p));
  return buf_detach(&b);
}

/* an NBD connection to transfer t's export, asking for base:allocation */
static struct nbd_handle *export_open(const struct image_transfer *t)
{
  struct nbd_handle *h = nbd_create();
  if (!h) return error(ERR_INTERNAL, "cannot create an NBD handle: %s", nbd_get_error()), NULL;
  if (nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
      nbd_connect_unix(h, t->socket_path) < 0) {
    error(ERR_UNAVAILABLE, "cannot reach the export of image transfer '%s': %s", t->id,
          nbd_get_error());
    nbd_close(h);
    return NULL;
  }
  return h;
}

/* the transfer of the ticket and an open connection to its export; direction
 * `write` needs an upload ticket (ERR_FORBIDDEN otherwise) */
static struct nbd_handle *ticket_open(struct engine *eng, const char *ticket, bool write,
                                      struct image_transfer **out)
{
  AUTOPTR(image_transfer) t = transfer_by_ticket(eng, ticket);
  if (!t) return NULL;
  if (write && t->direction != TRANSFER_UPLOAD)
    return error(ERR_FORBIDDEN, "image transfer '%s' is a download: its ticket does not allow "
                 "writing", t->id), NULL;
  struct nbd_handle *h = export_open(t);
  if (!h) return NULL;
  transfer_touch(eng, t->id, 0);
  *out = steal_pointer(&t);
  return h;
}

/* ---- extents ---- */

struct extent { uint64_t start, length; uint32_t flags; };
DEFINE_VEC(extent_vec, struct extent);

struct extent_collect { struct extent_vec *v; uint64_t limit; };

/* block status callback: appends (merging equal neighbours) up to limit */
static int extent_cb(void *opaque, const char *context, uint64_t offset, uint32_t *entries,
                     size_t nr_entries, int *err)
{
  struct extent_collect *ec = opaque;
  if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) return 0;
  for (size_t i = 0; i + 1 < nr_entries && offset < ec->limit; i += 2) {
    uint64_t len = entries[i];
    uint32_t flags = entries[i + 1] & (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO);
    if (offset + len > ec->limit) len = ec->limit - offset;
    struct extent_vec *v = ec->v;
    if (v->len && v->ptr[v->len - 1].flags == flags &&
        v->ptr[v->len - 1].start + v->ptr[v->len - 1].length == offset)
      v->ptr[v->len - 1].length += len;
    else
      vec_push(v, ((struct extent){offset, len, flags}));
    offset += len;
  }
  return 0;
}

/* the extents of [offset, offset + length) into v; an export without
 * base:allocation is one data extent */
static int extents_get(struct nbd_handle *h, uint64_t offset, uint64_t length, struct extent_vec *v)
{
  uint64_t end = offset + length;
  if (nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1) {
    vec_push(v, ((struct extent){offset, length, 0}));
    return 0;
  }
  while (offset < end) {
    uint64_t span = end - offset < NBD_MAX_SPAN ? end - offset : NBD_MAX_SPAN;
    size_t before = v->len;
    struct extent_collect ec = {v, end};
    nbd_extent_callback cb = {.callback = extent_cb, .user_data = &ec};
    if (nbd_block_status(h, span, offset, cb, 0) < 0)
      return error(ERR_INTERNAL, "cannot read block status at %" PRIu64 ": %s", offset, nbd_get_error());
    uint64_t next = v->len ? v->ptr[v->len - 1].start + v->ptr[v->len - 1].length : offset;
    if (v->len == before && next <= offset)
      return error(ERR_INTERNAL, "the export reports no block status at %" PRIu64, offset);
    if (next <= offset) return error(ERR_INTERNAL, "block status does not advance at %" PRIu64, offset);
    offset = next;
  }
  return 0;
}

static enum MHD_Result do_extents(struct MHD_Connection *c, struct imageio_req *s,
                                  const char *method, const char *url, const char *ticket)
{
  const char *ctx = query(c, "context");
  if (ctx && strcmp(ctx, "zero") != 0) {
    error(ERR_NOT_FOUND, "extents context '%s' is not available: only 'zero' is (dirty extents "
          "need an incremental backup)", ctx);
    return respond_error(c, s, method, url, 0);
  }
  AUTOPTR(image_transfer) t = NULL;
  AUTOPTR(nbd_handle) h = ticket_open(s->eng, ticket, false, &t);
  if (!h) return respond_error(c, s, method, url, 0);
  int64_t size = nbd_get_size(h);
  struct extent_vec v = VEC_INIT;
  if (size < 0) {
    error(ERR_INTERNAL, "cannot read the export size: %s", nbd_get_error());
    return respond_error(c, s, method, url, 0);
  }
  if (extents_get(h, 0, (uint64_t)size, &v) < 0) {
    free(v.ptr);
    return respond_error(c, s, method, url, 0);
  }
  AUTOPTR(json) arr = json_array();
  for (size_t i = 0; i < v.len; i++)
    json_array_append_new(arr, json_pack("{s:I, s:I, s:b, s:b}", "start", (json_int_t)v.ptr[i].start,
                                         "length", (json_int_t)v.ptr[i].length,
                                         "zero", (v.ptr[i].flags & LIBNBD_STATE_ZERO) != 0,
                                         "hole", (v.ptr[i].flags & LIBNBD_STATE_HOLE) != 0));
  free(v.ptr);
  nbd_shutdown(h, 0);
  return respond_json(c, s, method, url, arr, NULL);
}

/* ---- GET ---- */

/* the content reader of one GET: owns its NBD connection */
struct image_reader {
  struct engine *eng;
  char *transfer_id;
  struct nbd_handle *nbd;
  uint64_t start, length;      /* the range answered */
  struct extent_vec ext;       /* extents ahead, from one block status query */
  size_t ext_i;                /* the one holding the current position */
  int64_t moved, untouched;    /* bytes sent; of those, not yet recorded */
  int64_t touched_ms;
};

static ssize_t reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
  struct image_reader *rd = cls;
  if (pos >= rd->length) return MHD_CONTENT_READER_END_OF_STREAM;
  uint64_t off = rd->start + pos;
  while (rd->ext_i < rd->ext.len &&
         off >= rd->ext.ptr[rd->ext_i].start + rd->ext.ptr[rd->ext_i].length)
    rd->ext_i++;
  if (rd->ext_i >= rd->ext.len || off < rd->ext.ptr[rd->ext_i].start) {
    uint64_t want = rd->start + rd->length - off;
    if (want > NBD_MAX_SPAN) want = NBD_MAX_SPAN;
    rd->ext.len = rd->ext_i = 0;
    if (extents_get(rd->nbd, off, want, &rd->ext) < 0 || !rd->ext.len) {
      if (error_code() == ERR_NONE) error(ERR_INTERNAL, "no block status at %" PRIu64, off);
      log_warn("image transfer '%s': %s", rd->transfer_id, error_message());
      error_clear();
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
  }
  const struct extent *e = &rd->ext.ptr[rd->ext_i];
  uint64_t n = rd->length - pos;
  if (n > max) n = max;
  if (n > e->start + e->length - off) n = e->start + e->length - off;
  if (e->flags & LIBNBD_STATE_ZERO) {
    memset(buf, 0, n);
  } else if (nbd_pread(rd->nbd, buf, n, off, 0) < 0) {
    log_warn("image transfer '%s': cannot read %" PRIu64 " bytes at %" PRIu64 ": %s",
             rd->transfer_id, n, off, nbd_get_error());
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  rd->moved += (int64_t)n;
  rd->untouched += (int64_t)n;
  if (mono_ms() - rd->touched_ms > TOUCH_EVERY_MS) {
    transfer_touch(rd->eng, rd->transfer_id, rd->untouched);
    rd->untouched = 0;
    rd->touched_ms = mono_ms();
  }
  return (ssize_t)n;
}

static void reader_free(void *cls)
{
  struct image_reader *rd = cls;
  transfer_touch(rd->eng, rd->transfer_id, rd->untouched);
  nbd_shutdown(rd->nbd, 0);
  nbd_close(rd->nbd);
  free(rd->ext.ptr);
  free(rd->transfer_id);
  free(rd);
}

/* "bytes=A-B", "bytes=A-", "bytes=-N" of an image of size bytes -> [*start,
 * *start + *len); 0, or -1 for a range HTTP cannot satisfy */
static int parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
  if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
    return error(ERR_INVALID, "unsupported Range '%s': give one range, bytes=START-END", h);
  const char *p = h + 6;
  char *end;
  if (*p == '-') {
    uint64_t n = strtoull(p + 1, &end, 10);
    if (*end || n == 0) return error(ERR_INVALID, "invalid Range '%s'", h);
    if (n > size) n = size;
    *start = size - n;
    *len = n;
    return 0;
  }
  uint64_t a = strtoull(p, &end, 10);
  if (end == p || *end != '-') return error(ERR_INVALID, "invalid Range '%s'", h);
  p = end + 1;
  uint64_t b = size ? size - 1 : 0;
  if (*p) {
    b = strtoull(p, &end, 10);
    if (*end || b < a) return error(ERR_INVALID, "invalid Range '%s'", h);
    if (b >= size) b = size - 1;
  }
  if (a >= size)
    return error(ERR_INVALID, "Range '%s' starts beyond the end of the image (%" PRIu64 " bytes)", h, size);
  *start = a;
  *len = b - a + 1;
  return 0;
}

static enum MHD_Result do_get(struct MHD_Connection *c, struct imageio_req *s, const char *method,
                              const char *url, const char *ticket)
{
  AUTOPTR(image_transfer) t = NULL;
  AUTOPTR(nbd_handle) h = ticket_open(s->eng, ticket, false, &t);
  if (!h) return respond_error(c, s, method, url, 0);
  int64_t size = nbd_get_size(h);
  if (size < 0) {
    error(ERR_INTERNAL, "cannot read the export size: %s", nbd_get_error());
    return respond_error(c, s, method, url, 0);
  }
  uint64_t start = 0, len = (uint64_t)size;
  const char *range = header(c, "Range");
  if (range && parse_range(range, (uint64_t)size, &start, &len) < 0) {
    AUTOFREE char *msg = xasprintf("%s\n", error_message());
    error_clear();
    struct MHD_Response *resp = text_response(msg, "text/plain; charset=utf-8");
    AUTOFREE char *cr = xasprintf("bytes */%" PRId64, size);
    if (resp) MHD_add_response_header(resp, "Content-Range", cr);
    return queue(c, s, method, url, STATUS_RANGE_NOT_SATISFIABLE, resp);
  }
  struct image_reader *rd = xcalloc(1, sizeof *rd);
  *rd = (struct image_reader){.eng = s->eng, .transfer_id = xstrdup(t->id), .nbd = steal_pointer(&h),
                              .start = start, .length = len, .touched_ms = mono_ms()};
  struct MHD_Response *resp = MHD_create_response_from_callback(len, READ_BLOCK, reader_cb, rd,
                                                                reader_free);
  if (!resp) {
    reader_free(rd);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
  MHD_add_response_header(resp, "Accept-Ranges", "bytes");
  if (range) {
    AUTOFREE char *cr = xasprintf("bytes %" PRIu64 "-%" PRIu64 "/%" PRId64, start, start + len - 1, size);
    MHD_add_response_header(resp, "Content-Range", cr);
  }
  return queue(c, s, method, url, range ? 206 : 200, resp);
}

/* ---- OPTIONS ---- */

static enum MHD_Result do_options(struct MHD_Connection *c, struct imageio_req *s,
                                  const char *method, const char *url, const char *ticket)
{
  bool write = true;
  if (strcmp(ticket, "*") != 0) {
    AUTOPTR(image_transfer) t = transfer_by_ticket(s->eng, ticket);
    if (!t) return respond_error(c, s, method, url, 0);
    transfer_touch(s->eng, t->id, 0);
    write = t->direction == TRANSFER_UPLOAD;
  }
  AUTOPTR(json) j = write ? json_pack("{s:[s,s,s], s:i, s:i}", "features", "extents", "zero", "flush",
                                      "max_readers", 8, "max_writers", 8)
                          : json_pack("{s:[s], s:i, s:i}", "features", "extents", "max_readers", 8,
                                      "max_writers", 0);
  return respond_json(c, s, method, url, j, write ? "OPTIONS,GET,PUT,PATCH" : "OPTIONS,GET");
}

/* ---- PATCH: zero, flush ---- */

static int zero_range(struct nbd_handle *h, uint64_t offset, uint64_t size)
{
  while (size) {
    uint64_t n = size < NBD_MAX_SPAN ? size : NBD_MAX_SPAN;
    if (nbd_zero(h, n, offset, 0) < 0)
      return error(ERR_INTERNAL, "cannot zero %" PRIu64 " bytes at %" PRIu64 ": %s", n, offset,
                   nbd_get_error());
    offset += n;
    size -= n;
  }
  return 0;
}

static enum MHD_Result do_patch(struct MHD_Connection *c, struct imageio_req *s,
                                const char *method, const char *url, const char *ticket)
{
  json_error_t jerr;
  AUTOPTR(json) j = json_loadb(buf_str(&s->body), s->body.len, 0, &jerr);
  const char *op = j ? json_string_value(json_object_get(j, "op")) : NULL;
  if (!op) {
    error(ERR_INVALID, "invalid PATCH body: give JSON {\"op\": \"zero\", \"offset\": N, \"size\": N} "
          "or {\"op\": \"flush\"}");
    return respond_error(c, s, method, url, 0);
  }
  if (strcmp(op, "zero") != 0 && strcmp(op, "flush") != 0) {
    error(ERR_INVALID, "unsupported PATCH op '%s': use 'zero' or 'flush'", op);
    return respond_error(c, s, method, url, 0);
  }
  AUTOPTR(image_transfer) t = NULL;
  AUTOPTR(nbd_handle) h = ticket_open(s->eng, ticket, true, &t);
  if (!h) return respond_error(c, s, method, url, 0);
  bool flush = strcmp(op, "flush") == 0 || json_is_true(json_object_get(j, "flush"));
  if (strcmp(op, "zero") == 0) {
    json_t *jo = json_object_get(j, "offset"), *js = json_object_get(j, "size");
    int64_t size = nbd_get_size(h);
    if (!json_is_integer(js) || (jo && !json_is_integer(jo)) || json_integer_value(js) < 0 ||
        json_integer_value(jo) < 0) {
      error(ERR_INVALID, "invalid zero request: give integer \"offset\" and \"size\"");
      return respond_error(c, s, method, url, 0);
    }
    uint64_t off = (uint64_t)json_integer_value(jo), n = (uint64_t)json_integer_value(js);
    if (off + n > (uint64_t)size) {
      error(ERR_INVALID, "cannot zero %" PRIu64 " bytes at %" PRIu64 ": beyond the end of the "
            "image (%" PRId64 " bytes)", n, off, size);
      return respond_error(c, s, method, url, STATUS_RANGE_NOT_SATISFIABLE);
    }
    if (zero_range(h, off, n) < 0) return respond_error(c, s, method, url, 0);
  }
  if (flush && nbd_flush(h, 0) < 0) {
    error(ERR_INTERNAL, "cannot flush: %s", nbd_get_error());
    return respond_error(c, s, method, url, 0);
  }
  nbd_shutdown(h, 0);
  return respond_empty(c, s, method, url);
}

/* ---- PUT ---- */

static bool all_zero(const char *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* records a failure of the PUT: the rest of the body is dropped, the error answered at the end */
static void put_fail(struct imageio_req *s, int status)
{
  if (s->failed) { error_clear(); return; }
  s->failed = true;
  s->fail_status = status;
  error_save(&s->err);
}

static int put_write_pending(struct imageio_req *s)
{
  size_t n = s->npending;
  if (!n) return 0;
  if (s->offset + n > s->size) {
    error(ERR_INVALID, "cannot write %zu bytes at %" PRIu64 ": beyond the end of the image "
          "(%" PRIu64 " bytes)", n, s->offset, s->size);
    put_fail(s, STATUS_RANGE_NOT_SATISFIABLE);
    return -1;
  }
  int rc = all_zero(s->pending, n) ? nbd_zero(s->nbd, n, s->offset, 0)
                                   : nbd_pwrite(s->nbd, s->pending, n, s->offset, 0);
  if (rc < 0) {
    error(ERR_INTERNAL, "cannot write %zu bytes at %" PRIu64 ": %s", n, s->offset, nbd_get_error());
    put_fail(s, 0);
    return -1;
  }
  s->offset += n;
  s->npending = 0;
  return 0;
}

/* "bytes A-B/TOTAL" or "bytes A-B/(star)" -> [A, B + 1) */
static int parse_content_range(const char *h, uint64_t *start, uint64_t *end)
{
  unsigned long long a, b;
  int used = 0;
  if (sscanf(h, "bytes %llu-%llu/%n", &a, &b, &used) != 2 || used == 0 || b < a)
    return error(ERR_INVALID, "invalid Content-Range '%s': give bytes START-END/*", h);
  *start = a;
  *end = b + 1;
  return 0;
}

/* at the headers: the ticket, the export, where the body goes. -1 with the
 * error recorded and *status the answer's (0: from the error code) */
static int put_begin(struct MHD_Connection *c, struct imageio_req *s, const char *ticket, int *status)
{
  *status = 0;
  if (!(s->nbd = ticket_open(s->eng, ticket, true, &s->t))) return -1;
  int64_t size = nbd_get_size(s->nbd);
  if (size < 0) return error(ERR_INTERNAL, "cannot read the export size: %s", nbd_get_error());
  s->size = (uint64_t)size;
  const char *cr = header(c, "Content-Range");
  if (cr && parse_content_range(cr, &s->offset, &s->end) < 0) return -1;
  s->range_start = s->offset;
  if (s->end > s->size) {
    *status = STATUS_RANGE_NOT_SATISFIABLE;
    return error(ERR_INVALID, "Content-Range '%s' goes beyond the end of the image (%" PRIu64 " bytes)",
                 cr, s->size);
  }
  const char *flush = query(c, "flush");
  s->flush = !flush || strcmp(flush, "n") != 0;
  s->pending = malloc(WRITE_BLOCK);
  if (!s->pending) return error(ERR_INTERNAL, "out of memory for a %d byte buffer", WRITE_BLOCK);
  return 0;
}

static void put_data(struct imageio_req *s, const char *data, size_t len)
{
  if (s->failed) return;
  s->received += len;
  if (s->end && s->range_start + s->received > s->end) {
    error(ERR_INVALID, "the body is longer than its Content-Range (%" PRIu64 " bytes)",
          s->end - s->range_start);
    put_fail(s, 0);
    return;
  }
  while (len) {
    size_t n = WRITE_BLOCK - s->npending;
    if (n > len) n = len;
    memcpy(s->pending + s->npending, data, n);
    s->npending += n;
    data += n;
    len -= n;
    if (s->npending == WRITE_BLOCK && put_write_pending(s) < 0) return;
  }
}

static enum MHD_Result put_finish(struct MHD_Connection *c, struct imageio_req *s,
                                  const char *method, const char *url)
{
  if (!s->failed) put_write_pending(s);
  if (!s->failed && s->end && s->range_start + s->received != s->end) {
    error(ERR_INVALID, "incomplete body: %" PRIu64 " of the %" PRIu64 " bytes its Content-Range "
          "announces", s->received, s->end - s->range_start);
    put_fail(s, 0);
  }
  if (!s->failed && s->flush && nbd_flush(s->nbd, 0) < 0) {
    error(ERR_INTERNAL, "cannot flush: %s", nbd_get_error());
    put_fail(s, 0);
  }
  transfer_touch(s->eng, s->t->id, (int64_t)s->received);
  if (s->failed) {
    error_restore(&s->err);
    return respond_error(c, s, method, url, s->fail_status);
  }
  return respond_empty(c, s, method, url);
}

/* ---- the handler ---- */

enum MHD_Result imageio_access(struct engine *eng, struct MHD_Connection *c, const char *url,
                               const char *method, const char *upload_data, size_t *upload_size,
                               struct imageio_req **state)
{
  struct imageio_req *s = *state;
  const char *rest;
  AUTOFREE char *ticket = parse_url(url, &rest);
  bool put = strcmp(method, "PUT") == 0;
  if (!s) {
    s = xcalloc(1, sizeof *s);
    s->eng = eng;
    s->start_ms = mono_ms();
    *state = s;
    error_clear();
    int status;
    if (put && !*rest && put_begin(c, s, ticket, &status) < 0) {
      s->failed = true; /* answered now: any body that still arrives is dropped */
      return respond_error(c, s, method, url, status);
    }
    return MHD_YES;
  }
  if (*upload_size) {
    if (put && s->nbd) {
      put_data(s, upload_data, *upload_size);
    } else if (!s->too_large) {
      if (s->body.len + *upload_size > MAX_SMALL_BODY) s->too_large = true;
      else buf_add(&s->body, upload_data, *upload_size);
    }
    *upload_size = 0;
    return MHD_YES;
  }
  error_clear();
  if (s->too_large) {
    error(ERR_TOO_LARGE, "request body over %d bytes: only PUT carries image data", MAX_SMALL_BODY);
    return respond_error(c, s, method, url, 0);
  }
  if (!*ticket || (*rest && strcmp(rest, "/extents") != 0)) {
    error(ERR_NOT_FOUND, "no such image resource: use %sTICKET or %sTICKET/extents",
          IMAGEIO_PREFIX, IMAGEIO_PREFIX);
    return respond_error(c, s, method, url, 0);
  }
  if (*rest) {
    if (strcmp(method, "GET") != 0) {
      error(ERR_METHOD, "method '%s' is not allowed on extents: use GET", method);
      return respond_error(c, s, method, url, 0);
    }
    return do_extents(c, s, method, url, ticket);
  }
  if (put) return put_finish(c, s, method, url);
  if (strcmp(method, "GET") == 0) return do_get(c, s, method, url, ticket);
  if (strcmp(method, "OPTIONS") == 0) return do_options(c, s, method, url, ticket);
  if (strcmp(method, "PATCH") == 0) return do_patch(c, s, method, url, ticket);
  error(ERR_METHOD, "method '%s' is not allowed on an image: use OPTIONS, GET, PUT or PATCH", method);
  return respond_error(c, s, method, url, 0);
}

void imageio_done(struct imageio_req *s)
{
  if (!s) return;
  if (s->nbd) {
    nbd_shutdown(s->nbd, 0);
    nbd_close(s->nbd);
  }
  image_transfer_free(s->t);
  buf_free(&s->body);
  free(s->pending);
  free(s->err.msg);
  free(s);
}
