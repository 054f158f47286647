/* imageio.c: the imageio data API over httpc (see imageio.h). */
#include "cli/imageio.h"
#include "cli/httpc.h"
#include "util/buf.h"
#include "util/err.h"
#include <jansson.h>
#include <string.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

struct imageio {
  struct httpc *http;
  char *url;
  char *unix_socket; /* when set: plain HTTP on this socket, same path */
  int64_t size;      /* -1 until known */
};

struct imageio *imageio_open(const char *url, const char *cacert)
{
  struct imageio *io = xcalloc(1, sizeof *io);
  io->http = httpc_new(cacert);
  io->url = xstrdup(url);
  io->size = -1;
  return io;
}

void imageio_close(struct imageio *io)
{
  if (!io) return;
  httpc_free(io->http);
  free(io->url);
  free(io->unix_socket);
  free(io);
}

struct sink { unsigned char *buf; size_t cap, len; struct buf *grow; };

static int sink_write(void *opaque, const void *data, size_t got)
{
  struct sink *s = opaque;
  if (s->grow) {
    buf_add(s->grow, data, got);
    return 0;
  }
  if (s->len + got > s->cap) return -1; /* more than asked: fail the transfer */
  memcpy(s->buf + s->len, data, got);
  s->len += got;
  return 0;
}

/* one request; returns the HTTP status or -1. header (may be NULL) is one
 * extra header line; body (blen bytes, may be NULL) is sent as it is */
static long imageio_send(struct imageio *io, const char *method, const char *suffix, const char *header,
                         const void *body, size_t blen, const char *content_type, struct sink *out)
{
  /* on the unix socket, only the URL's path counts */
  AUTOFREE char *url = xasprintf("%s%s", io->url, suffix ? suffix : "");
  AUTOFREE char *ct = content_type ? xasprintf("Content-Type: %s", content_type) : NULL;
  const char *hdrs[3] = {NULL};
  size_t n = 0;
  if (header) hdrs[n++] = header;
  if (body && ct) hdrs[n++] = ct;
  struct httpc_req r = {.method = method, .url = url, .unix_socket = io->unix_socket, .headers = hdrs,
                        .body = body, .body_len = body ? blen : 0, .sink = sink_write, .opaque = out};
  long status = httpc_do(io->http, &r);
  if (status < 0) return error_prefix("cannot %s '%s': ", method, url);
  return status;
}

static long imageio_do(struct imageio *io, const char *method, const char *suffix, const char *range,
                       struct sink *out)
{
  AUTOFREE char *rh = range ? xasprintf("Range: bytes=%s", range) : NULL;
  return imageio_send(io, method, suffix, rh, NULL, 0, NULL, out);
}

static json_t *imageio_json(struct imageio *io, const char *method, const char *suffix)
{
  AUTOBUF struct buf b = BUF_INIT;
  struct sink s = {.grow = &b};
  long st = imageio_do(io, method, suffix, NULL, &s);
  if (st < 0) return NULL;
  if (st == 404) {
    error(ERR_NOT_FOUND, "%s %s%s: not found", method, io->url, suffix ? suffix : "");
    return NULL;
  }
  if (st < 200 || st > 299) {
    error(ERR_UNAVAILABLE, "%s %s%s answered %ld", method, io->url, suffix ? suffix : "", st);
    return NULL;
  }
  json_error_t je;
  json_t *j = json_loadb(buf_str(&b), b.len, 0, &je);
  if (!j) error(ERR_INVALID, "%s %s%s: not JSON: %s", method, io->url, suffix ? suffix : "", je.text);
  return j;
}

int imageio_options(struct imageio *io, char **unix_socket)
{
  *unix_socket = NULL;
  AUTOPTR(json) j = imageio_json(io, "OPTIONS", NULL);
  if (!j) return -1;
  const char *us = json_string_value(json_object_get(j, "unix_socket"));
  if (us && *us) *unix_socket = xstrdup(us);
  return 0;
}

int imageio_extents(struct imageio *io, const char *context, struct extentlist *out)
{
  AUTOFREE char *suffix = xasprintf("/extents?context=%s", context);
  AUTOPTR(json) j = imageio_json(io, "GET", suffix);
  if (!j) return -1;
  if (!json_is_array(j)) return error(ERR_INVALID, "extents of '%s': not a JSON list", io->url);
  bool dirty = strcmp(context, "dirty") == 0;
  uint64_t end = 0;
  size_t i;
  json_t *e;
  json_array_foreach(j, i, e) {
    json_int_t start = -1, length = -1;
    int zero = 0, flag = 0;
    if (json_unpack(e, "{s:I, s:I, s?b, s?b}", "start", &start, "length", &length, "zero", &zero,
                    dirty ? "dirty" : "hole", &flag) < 0 ||
        start < 0 || length <= 0)
      return error(ERR_INVALID, "extents of '%s': entry %zu lacks start or length", io->url, i);
    if ((uint64_t)(start + length) > end) end = (uint64_t)(start + length);
    if (dirty && !flag) continue;
    vec_push(out, ((struct data_extent){(uint64_t)start, (uint64_t)length, zero}));
  }
  if (!dirty) io->size = (int64_t)end;
  return 0;
}

void imageio_use_unix_socket(struct imageio *io, const char *path)
{
  free(io->unix_socket);
  io->unix_socket = xstrdup(path);
}

int64_t imageio_size(struct imageio *io)
{
  if (io->size >= 0) return io->size;
  struct extentlist v = VEC_INIT;
  int rc = imageio_extents(io, "zero", &v);
  free(v.ptr);
  return rc < 0 ? -1 : io->size;
}

int imageio_pread(struct imageio *io, void *buf, size_t len, uint64_t off)
{
  char range[64];
  snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)off, (unsigned long long)(off + len - 1));
  struct sink s = {.buf = buf, .cap = len};
  long st = imageio_do(io, "GET", NULL, range, &s);
  if (st < 0) return -1;
  if ((st != 206 && st != 200) || s.len != len)
    return error(ERR_INTERNAL, "cannot read %zu bytes at %llu from '%s': status %ld, %zu bytes", len,
                 (unsigned long long)off, io->url, st, s.len);
  return 0;
}

/* the message of a failed write request: status and the server's own words */
static int write_failed(struct imageio *io, const char *what, long st, struct buf *answer)
{
  return error(st == 404 ? ERR_NOT_FOUND : ERR_UNAVAILABLE, "cannot %s '%s': status %ld%s%.200s", what, io->url, st,
               answer->len ? ": " : "", answer->len ? buf_str(answer) : "");
}

int imageio_pwrite(struct imageio *io, const void *buf, size_t len, uint64_t off, bool flush)
{
  char cr[96];
  snprintf(cr, sizeof cr, "Content-Range: bytes %llu-%llu/*", (unsigned long long)off,
           (unsigned long long)(off + len - 1));
  AUTOBUF struct buf answer = BUF_INIT;
  struct sink s = {.grow = &answer};
  long st = imageio_send(io, "PUT", flush ? NULL : "?flush=n", cr, buf, len, "application/octet-stream", &s);
  if (st < 0) return -1;
  if (st != 200 && st != 204) {
    char what[64];
    snprintf(what, sizeof what, "write %zu bytes at %llu to", len, (unsigned long long)off);
    return write_failed(io, what, st, &answer);
  }
  return 0;
}

/* PATCH with a JSON body (imageio's zero and flush) */
static int imageio_patch(struct imageio *io, const char *what, json_t *body)
{
  AUTOFREE char *text = json_dumps(body, JSON_COMPACT);
  AUTOBUF struct buf answer = BUF_INIT;
  struct sink s = {.grow = &answer};
  long st = imageio_send(io, "PATCH", NULL, NULL, text, strlen(text), "application/json", &s);
  if (st < 0) return -1;
  if (st != 200 && st != 204) return write_failed(io, what, st, &answer);
  return 0;
}

int imageio_zero(struct imageio *io, uint64_t off, uint64_t len, bool flush)
{
  AUTOPTR(json) j = json_pack("{s:s, s:I, s:I, s:b}", "op", "zero", "offset", (json_int_t)off, "size",
                              (json_int_t)len, "flush", flush);
  return imageio_patch(io, "zero a range of", j);
}

int imageio_flush(struct imageio *io)
{
  AUTOPTR(json) j = json_pack("{s:s}", "op", "flush");
  return imageio_patch(io, "flush", j);
}
