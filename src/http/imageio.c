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
#include "http/patch.h"
#include "http/extent.h"
#include "http/range.h"
#include "cmd/commands.h"
#include "util/blkhash.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/vec.h"
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
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
  const struct imageio_config *cfg;
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

static bool all_zero(const char *p, size_t n)
{
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
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

/* an NBD connection to transfer t's export, asking for base:allocation and,
 * for an incremental backup's transfer, the meta context of its dirty bitmap */
static struct nbd_handle *export_open(const struct image_transfer *t)
{
  struct nbd_handle *h = nbd_create();
  if (!h) return error(ERR_INTERNAL, "cannot create an NBD handle: %s", nbd_get_error()), NULL;
  if (nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
      (t->dirty_context && nbd_add_meta_context(h, t->dirty_context) < 0) ||
      transfer_nbd_connect(t, h) < 0) {
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

_Static_assert(EXTENT_HOLE == LIBNBD_STATE_HOLE && EXTENT_ZERO == LIBNBD_STATE_ZERO,
               "extent flags are base:allocation's");

/* one block status reply: the extents of each context, clipped to limit */
struct extent_collect {
  const char *dirty_context;   /* or NULL */
  struct extent_vec base, dirty;
  uint64_t limit;
};

static int extent_cb(void *opaque, const char *context, uint64_t offset, uint32_t *entries,
                     size_t nr_entries, int *err)
{
  struct extent_collect *ec = opaque;
  struct extent_vec *v;
  uint32_t mask;
  if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0) {
    v = &ec->base;
    mask = LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO;
  } else if (ec->dirty_context && strcmp(context, ec->dirty_context) == 0) {
    v = &ec->dirty;
    mask = 1; /* qemu:dirty-bitmap: bit 0, dirty */
  } else {
    return 0;
  }
  for (size_t i = 0; i + 1 < nr_entries && offset < ec->limit; i += 2) {
    uint64_t len = entries[i];
    if (offset + len > ec->limit) len = ec->limit - offset;
    uint32_t flags = entries[i + 1] & mask;
    extent_add(v, offset, len, v == &ec->dirty && flags ? EXTENT_DIRTY : flags);
    offset += len;
  }
  return 0;
}

/* the extents of [offset, offset + length) appended to v: base:allocation's,
 * combined with the dirty bitmap's (EXTENT_DIRTY) when dirty_context is not
 * NULL. An export without base:allocation is one data extent. */
static int extents_get(struct nbd_handle *h, uint64_t offset, uint64_t length,
                       const char *dirty_context, struct extent_vec *v)
{
  uint64_t end = offset + length;
  bool base = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  if (!base && !dirty_context) {
    extent_add(v, offset, length, 0);
    return 0;
  }
  while (offset < end) {
    uint64_t span = end - offset < NBD_MAX_SPAN ? end - offset : NBD_MAX_SPAN;
    struct extent_collect ec = {.dirty_context = dirty_context, .limit = offset + span};
    nbd_extent_callback cb = {.callback = extent_cb, .user_data = &ec};
    int rc = nbd_block_status(h, span, offset, cb, 0);
    /* the reply covers a prefix of the span: as far as both contexts reach;
     * a missing base:allocation reads as data */
    uint64_t reach = base ? extent_vec_end(&ec.base, offset) : ec.limit;
    if (dirty_context && extent_vec_end(&ec.dirty, offset) < reach) reach = extent_vec_end(&ec.dirty, offset);
    if (rc == 0 && reach > offset)
      extents_combine(base ? &ec.base : NULL, dirty_context ? &ec.dirty : NULL, offset, reach, v);
    free(ec.base.ptr);
    free(ec.dirty.ptr);
    if (rc < 0)
      return error(ERR_INTERNAL, "cannot read block status at %" PRIu64 ": %s", offset, nbd_get_error());
    if (reach <= offset) return error(ERR_INTERNAL, "the export reports no block status at %" PRIu64, offset);
    offset = reach;
  }
  return 0;
}

/* the answer of GET .../extents, written as JSON while the block status
 * queries go on: a big, fragmented disk never sits whole in memory */
struct extents_reader {
  struct engine *eng;
  char *transfer_id;
  struct nbd_handle *nbd;
  char *dirty_context;         /* context=dirty: the bitmap's meta context */
  uint64_t size, queried;      /* the export's size; [0, queried) is known */
  struct extent_vec ext;       /* known extents not yet written, the last one
                                  held back: the next query may extend it */
  struct buf out;              /* JSON not yet handed to MHD */
  size_t out_pos;
  bool opened, finished;       /* "[" and "]" written */
};

static void extents_write(struct extents_reader *er, const struct extent *e)
{
  buf_puts(&er->out, er->opened ? ", " : "[");
  er->opened = true;
  extent_json(&er->out, e, er->dirty_context != NULL);
}

/* queries the next span and writes the extents it completes; 0 or -1 */
static int extents_more(struct extents_reader *er)
{
  if (er->queried < er->size) {
    uint64_t span = er->size - er->queried < NBD_MAX_SPAN ? er->size - er->queried : NBD_MAX_SPAN;
    if (extents_get(er->nbd, er->queried, span, er->dirty_context, &er->ext) < 0) return -1;
    er->queried = er->ext.ptr[er->ext.len - 1].start + er->ext.ptr[er->ext.len - 1].length;
  }
  bool last = er->queried >= er->size;
  size_t n = last ? er->ext.len : er->ext.len - 1;
  for (size_t i = 0; i < n; i++) extents_write(er, &er->ext.ptr[i]);
  memmove(er->ext.ptr, er->ext.ptr + n, (er->ext.len - n) * sizeof *er->ext.ptr);
  er->ext.len -= n;
  if (last) {
    buf_puts(&er->out, er->opened ? "]" : "[]");
    er->finished = true;
  }
  return 0;
}

static ssize_t extents_reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
  struct extents_reader *er = cls;
  (void)pos;
  while (er->out_pos == er->out.len) {
    if (er->finished) return MHD_CONTENT_READER_END_OF_STREAM;
    buf_reset(&er->out);
    er->out_pos = 0;
    if (extents_more(er) < 0) {
      log_warn("image transfer '%s': %s", er->transfer_id, error_message());
      error_clear();
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
  }
  size_t n = er->out.len - er->out_pos;
  if (n > max) n = max;
  memcpy(buf, er->out.data + er->out_pos, n);
  er->out_pos += n;
  return (ssize_t)n;
}

static void extents_reader_free(void *cls)
{
  struct extents_reader *er = cls;
  nbd_shutdown(er->nbd, 0);
  nbd_close(er->nbd);
  free(er->ext.ptr);
  buf_free(&er->out);
  free(er->dirty_context);
  free(er->transfer_id);
  free(er);
}

static enum MHD_Result do_extents(struct MHD_Connection *c, struct imageio_req *s,
                                  const char *method, const char *url, const char *ticket)
{
  const char *ctx = query(c, "context");
  if (!ctx) ctx = "zero";
  if (strcmp(ctx, "zero") != 0 && strcmp(ctx, "dirty") != 0) {
    error(ERR_INVALID, "invalid extents context '%s': use 'zero' or 'dirty'", ctx);
    return respond_error(c, s, method, url, 0);
  }
  bool dirty = strcmp(ctx, "dirty") == 0;
  AUTOPTR(image_transfer) t = NULL;
  AUTOPTR(nbd_handle) h = ticket_open(s->eng, ticket, false, &t);
  if (!h) return respond_error(c, s, method, url, 0);
  if (dirty && !t->dirty_context) {
    error(ERR_NOT_FOUND, "image transfer '%s' has no dirty extents: only a transfer of an "
          "incremental backup has them", t->id);
    return respond_error(c, s, method, url, 0);
  }
  if (dirty && nbd_can_meta_context(h, t->dirty_context) != 1) {
    error(ERR_NOT_FOUND, "the export of image transfer '%s' does not offer its dirty bitmap ('%s')",
          t->id, t->dirty_context);
    return respond_error(c, s, method, url, 0);
  }
  int64_t size = nbd_get_size(h);
  if (size < 0) {
    error(ERR_INTERNAL, "cannot read the export size: %s", nbd_get_error());
    return respond_error(c, s, method, url, 0);
  }
  struct extents_reader *er = xcalloc(1, sizeof *er);
  *er = (struct extents_reader){.eng = s->eng, .transfer_id = xstrdup(t->id), .nbd = steal_pointer(&h),
                                .dirty_context = dirty ? xstrdup(t->dirty_context) : NULL,
                                .size = (uint64_t)size};
  struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                                extents_reader_cb, er, extents_reader_free);
  if (!resp) {
    extents_reader_free(er);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  return queue(c, s, method, url, 200, resp);
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
    if (extents_get(rd->nbd, off, want, NULL, &rd->ext) < 0 || !rd->ext.len) {
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
  if (range && http_range_parse(range, (uint64_t)size, &start, &len) < 0) {
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

/* true when the client connects from an address of this host: the check
 * ovirt-imageio's client makes before it switches to unix_socket (its own
 * address equals the server's); or through the unix socket itself */
static bool client_is_local(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci) return false;
  struct sockaddr_storage self, peer;
  socklen_t sl = sizeof self, pl = sizeof peer;
  if (getsockname(ci->connect_fd, (struct sockaddr *)&self, &sl) < 0 ||
      getpeername(ci->connect_fd, (struct sockaddr *)&peer, &pl) < 0 || self.ss_family != peer.ss_family)
    return false;
  if (self.ss_family == AF_INET)
    return ((struct sockaddr_in *)&self)->sin_addr.s_addr == ((struct sockaddr_in *)&peer)->sin_addr.s_addr;
  if (self.ss_family == AF_INET6)
    return memcmp(&((struct sockaddr_in6 *)&self)->sin6_addr, &((struct sockaddr_in6 *)&peer)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
  return self.ss_family == AF_UNIX; /* on our unix socket */
}

/* the features of imageio's images resource: what a reader and a writer can use */
static json_t *options_features(bool write)
{
  return write ? json_pack("[s,s,s,s]", "checksum", "extents", "flush", "zero")
               : json_pack("[s,s]", "checksum", "extents");
}

static enum MHD_Result do_options(struct MHD_Connection *c, struct imageio_req *s,
                                  const char *method, const char *url, const char *ticket)
{
  AUTOPTR(json) j = json_object();
  bool local = client_is_local(c);
  if (local && s->cfg->unix_socket) json_object_set_new(j, "unix_socket", json_string(s->cfg->unix_socket));
  if (strcmp(ticket, "*") == 0) { /* what the server can do for any image */
    json_object_set_new(j, "features", options_features(true));
    return respond_json(c, s, method, url, j, "OPTIONS,GET,PUT,PATCH");
  }
  AUTOPTR(image_transfer) t = transfer_by_ticket(s->eng, ticket);
  if (!t) return respond_error(c, s, method, url, 0);
  transfer_touch(s->eng, t->id, 0);
  bool write = t->direction == TRANSFER_UPLOAD;
  json_object_set_new(j, "features", options_features(write));
  json_object_set_new(j, "max_readers", json_integer(8));
  json_object_set_new(j, "max_writers", json_integer(write ? 8 : 0));
  if (local) {
    AUTOFREE char *nbd = transfer_nbd_url(t);
    json_object_set_new(j, "nbd_url", json_string(nbd));
  }
  return respond_json(c, s, method, url, j, write ? "OPTIONS,GET,PUT,PATCH" : "OPTIONS,GET");
}

/* ---- checksum ---- */

/* imageio's limits: a quarter to four times the default block, 4 KiB aligned */
#define CHECKSUM_MIN_BLOCK (BLKHASH_DEFAULT_BLOCK_SIZE / 4)
#define CHECKSUM_MAX_BLOCK (BLKHASH_DEFAULT_BLOCK_SIZE * 4)

DEFINE_AUTOPTR(blkhash, struct blkhash, blkhash_free)

/* one block of a checksum: where it is, and for a data block its read in flight */
struct checksum_block {
  uint64_t off;
  size_t len;
  bool zero;                   /* block status says zero: not read */
  int64_t cookie;              /* libnbd's, of the read into buf */
  char *buf;
};

/* waits for block b's read and hashes it */
static int checksum_block_hash(struct nbd_handle *h, struct blkhash *bh, const struct checksum_block *b)
{
  if (!b->zero) {
    int r;
    while ((r = nbd_aio_command_completed(h, (uint64_t)b->cookie)) == 0)
      if (nbd_poll(h, -1) < 0) break;
    if (r != 1)
      return error(ERR_INTERNAL, "cannot read %zu bytes at %" PRIu64 ": %s", b->len, b->off, nbd_get_error());
  }
  if (b->zero || all_zero(b->buf, b->len)) blkhash_zero(bh, b->len);
  else blkhash_update(bh, b->buf, b->len);
  return 0;
}

/* walks the export's zero extents block by block, asking block status for
 * NBD_MAX_SPAN at a time rather than once per block */
struct extent_cursor {
  struct nbd_handle *h;
  uint64_t size, known;        /* [0, known) has been asked */
  struct extent_vec v;         /* from ptr[first] on: the extents not yet passed */
  size_t first;
};

/* *zero: block status reports all of [off, off + len) zero; blocks come in order */
static int extent_cursor_zero(struct extent_cursor *c, uint64_t off, uint64_t len, bool *zero)
{
  while (c->known < off + len) {
    if (c->first) { /* drop the extents passed */
      memmove(c->v.ptr, c->v.ptr + c->first, (c->v.len - c->first) * sizeof *c->v.ptr);
      c->v.len -= c->first;
      c->first = 0;
    }
    uint64_t span = c->size - c->known < NBD_MAX_SPAN ? c->size - c->known : NBD_MAX_SPAN;
    if (extents_get(c->h, c->known, span, NULL, &c->v) < 0) return -1;
    c->known = extent_vec_end(&c->v, c->known + span);
  }
  while (c->first < c->v.len && c->v.ptr[c->first].start + c->v.ptr[c->first].length <= off) c->first++;
  *zero = true;
  for (size_t i = c->first; i < c->v.len && c->v.ptr[i].start < off + len && *zero; i++)
    *zero = (c->v.ptr[i].flags & LIBNBD_STATE_ZERO) != 0;
  return 0;
}

/* the checksum of the whole export, block by block: a block that block
 * status reports zero is never read, and a read block of zeroes hashes as
 * one (the digest is the same; imageio does both). The next block is read
 * while this one is hashed (two buffers). */
static char *checksum_compute(struct engine *eng, const struct image_transfer *t,
                              struct nbd_handle *h, const char *algorithm, size_t block_size)
{
  int64_t size = nbd_get_size(h);
  if (size < 0) return error(ERR_INTERNAL, "cannot read the export size: %s", nbd_get_error()), NULL;
  AUTOPTR(blkhash) bh = blkhash_new(algorithm, block_size);
  if (!bh) return NULL;
  AUTOFREE char *bufs = malloc(2 * block_size);
  if (!bufs) return error(ERR_INTERNAL, "out of memory for two %zu byte blocks", block_size), NULL;
  struct extent_cursor ec = {.h = h, .size = (uint64_t)size};
  struct checksum_block prev = {0}, cur = {0};
  bool have_prev = false, failed = false;
  int64_t touched = mono_ms();
  for (uint64_t off = 0, k = 0; off < (uint64_t)size && !failed; off += block_size, k++) {
    cur = (struct checksum_block){.off = off, .buf = bufs + (k % 2) * block_size};
    cur.len = (uint64_t)size - off < block_size ? (size_t)((uint64_t)size - off) : block_size;
    if (extent_cursor_zero(&ec, off, cur.len, &cur.zero) < 0) {
      failed = true;
      break;
    }
    if (!cur.zero && (cur.cookie = nbd_aio_pread(h, cur.buf, cur.len, off, NBD_NULL_COMPLETION, 0)) < 0) {
      error(ERR_INTERNAL, "cannot read %zu bytes at %" PRIu64 ": %s", cur.len, off, nbd_get_error());
      failed = true;
      break;
    }
    if (have_prev && checksum_block_hash(h, bh, &prev) < 0) failed = true;
    prev = cur;
    have_prev = true;
    if (mono_ms() - touched > TOUCH_EVERY_MS) { /* a long checksum is activity */
      transfer_touch(eng, t->id, 0);
      touched = mono_ms();
    }
  }
  if (!failed && have_prev && checksum_block_hash(h, bh, &prev) < 0) failed = true;
  free(ec.v.ptr);
  if (failed) {
    /* no read may land in the buffers once they are freed */
    while (nbd_aio_in_flight(h) > 0 && nbd_poll(h, -1) >= 0) {}
    return NULL;
  }
  return blkhash_hexdigest(bh);
}

/* GET /images/T/checksum[?algorithm=NAME&block_size=N] ->
 * {"algorithm", "block_size", "checksum"} */
static enum MHD_Result do_checksum(struct MHD_Connection *c, struct imageio_req *s,
                                   const char *method, const char *url, const char *ticket)
{
  const char *algorithm = query(c, "algorithm");
  if (!algorithm) algorithm = BLKHASH_DEFAULT_ALGORITHM;
  if (!blkhash_supported(algorithm)) {
    error(ERR_INVALID, "unsupported checksum algorithm '%s': see checksum/algorithms", algorithm);
    return respond_error(c, s, method, url, 0);
  }
  size_t block_size = BLKHASH_DEFAULT_BLOCK_SIZE;
  const char *bs = query(c, "block_size");
  if (bs) {
    char *end;
    unsigned long long v = strtoull(bs, &end, 10);
    if (!*bs || *end || *bs == '-') {
      error(ERR_INVALID, "invalid block size '%s'", bs);
      return respond_error(c, s, method, url, 0);
    }
    if (v < CHECKSUM_MIN_BLOCK || v > CHECKSUM_MAX_BLOCK) {
      error(ERR_INVALID, "block size out of allowed range: %zu-%zu", CHECKSUM_MIN_BLOCK,
            CHECKSUM_MAX_BLOCK);
      return respond_error(c, s, method, url, 0);
    }
    if (v % 4096) {
      error(ERR_INVALID, "block size %llu is not aligned to 4096", v);
      return respond_error(c, s, method, url, 0);
    }
    block_size = (size_t)v;
  }
  AUTOPTR(image_transfer) t = NULL;
  AUTOPTR(nbd_handle) h = ticket_open(s->eng, ticket, false, &t);
  if (!h) return respond_error(c, s, method, url, 0);
  AUTOFREE char *sum = checksum_compute(s->eng, t, h, algorithm, block_size);
  if (!sum) return respond_error(c, s, method, url, 0);
  nbd_shutdown(h, 0);
  AUTOPTR(json) j = json_pack("{s:s, s:I, s:s}", "algorithm", algorithm, "block_size",
                              (json_int_t)block_size, "checksum", sum);
  return respond_json(c, s, method, url, j, NULL);
}

/* GET /images/T/checksum/algorithms: server information, no ticket needed */
static enum MHD_Result do_checksum_algorithms(struct MHD_Connection *c, struct imageio_req *s,
                                              const char *method, const char *url)
{
  AUTOPTR(json) names = json_array();
  for (const char *const *a = blkhash_algorithms(); *a; a++)
    if (blkhash_supported(*a)) json_array_append_new(names, json_string(*a));
  AUTOPTR(json) j = json_pack("{s:O}", "algorithms", names);
  return respond_json(c, s, method, url, j, NULL);
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
  struct imageio_patch p;
  if (imageio_patch_parse(buf_str(&s->body), s->body.len, &p) < 0) return respond_error(c, s, method, url, 0);
  AUTOPTR(image_transfer) t = NULL;
  AUTOPTR(nbd_handle) h = ticket_open(s->eng, ticket, true, &t);
  if (!h) return respond_error(c, s, method, url, 0);
  bool flush = p.flush;
  if (p.zero) {
    int64_t size = nbd_get_size(h);
    uint64_t off = p.offset, n = p.size;
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
  if (cr && http_content_range_parse(cr, &s->offset, &s->end) < 0) return -1;
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

enum MHD_Result imageio_access(const struct imageio_config *cfg, struct MHD_Connection *c, const char *url,
                               const char *method, const char *upload_data, size_t *upload_size,
                               struct imageio_req **state)
{
  struct imageio_req *s = *state;
  const char *rest;
  AUTOFREE char *ticket = parse_url(url, &rest);
  bool put = strcmp(method, "PUT") == 0;
  if (!s) {
    s = xcalloc(1, sizeof *s);
    s->eng = cfg->eng;
    s->cfg = cfg;
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
  if (!*ticket || (*rest && strcmp(rest, "/extents") != 0 && strcmp(rest, "/checksum") != 0 &&
                    strcmp(rest, "/checksum/algorithms") != 0)) {
    error(ERR_NOT_FOUND, "no such image resource: use %sTICKET, %sTICKET/extents or "
          "%sTICKET/checksum", IMAGEIO_PREFIX, IMAGEIO_PREFIX, IMAGEIO_PREFIX);
    return respond_error(c, s, method, url, 0);
  }
  if (*rest) {
    if (strcmp(method, "GET") != 0) {
      error(ERR_METHOD, "method '%s' is not allowed on '%s': use GET", method, rest + 1);
      return respond_error(c, s, method, url, 0);
    }
    if (strcmp(rest, "/extents") == 0) return do_extents(c, s, method, url, ticket);
    if (strcmp(rest, "/checksum") == 0) return do_checksum(c, s, method, url, ticket);
    return do_checksum_algorithms(c, s, method, url);
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
