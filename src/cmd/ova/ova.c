/* ova.c: the OVA format: ustar headers and an archive's member index. See
 * ova.h; the OVF reader is repr/ovf.c. */
#include "cmd/ova.h"
#include "util/err.h"
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ustar field offsets and lengths */
enum {
  T_NAME = 0, T_NAME_LEN = 100, T_MODE = 100, T_UID = 108, T_GID = 116, T_SIZE = 124,
  T_MTIME = 136, T_CHKSUM = 148, T_TYPE = 156, T_MAGIC = 257, T_VERSION = 263,
  T_UNAME = 265, T_GNAME = 297, T_PREFIX = 345, T_PREFIX_LEN = 155,
};

/* the largest size the 11 octal digits of the size field hold: 8 GiB - 1 */
#define TAR_OCTAL_MAX ((int64_t)077777777777)

static void put_octal(unsigned char *field, size_t len, uint64_t v)
{
  /* len - 1 digits, zero-padded, then NUL */
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%0*" PRIo64, (int)(len - 1), v);
  memcpy(field, tmp, len - 1);
  field[len - 1] = 0;
}

static unsigned header_sum(const unsigned char hdr[TAR_BLOCK])
{
  unsigned sum = 0;
  for (size_t i = 0; i < TAR_BLOCK; i++)
    sum += (i >= T_CHKSUM && i < T_CHKSUM + 8) ? ' ' : hdr[i];
  return sum;
}

/* signed-char sum: some old tars computed it that way; accepted on reading */
static int header_sum_signed(const unsigned char hdr[TAR_BLOCK])
{
  int sum = 0;
  for (size_t i = 0; i < TAR_BLOCK; i++)
    sum += (i >= T_CHKSUM && i < T_CHKSUM + 8) ? ' ' : (signed char)hdr[i];
  return sum;
}

int tar_header_encode(unsigned char hdr[TAR_BLOCK], const char *name, int64_t size, int64_t mtime_s)
{
  memset(hdr, 0, TAR_BLOCK);
  if (size < 0) return error(ERR_INVALID, "cannot store member '%s': negative size", name);
  size_t n = strlen(name);
  if (n == 0) return error(ERR_INVALID, "cannot store a tar member without a name");
  if (n <= T_NAME_LEN) {
    memcpy(hdr + T_NAME, name, n);
  } else {
    /* split at a '/' so that prefix <= 155 and name <= 100 */
    const char *split = NULL;
    for (const char *p = name; *p; p++)
      if (*p == '/' && (size_t)(p - name) <= T_PREFIX_LEN && strlen(p + 1) <= T_NAME_LEN && p[1])
        { split = p; break; }
    if (!split)
      return error(ERR_INVALID, "cannot store member '%s' in a ustar header: the name is too long", name);
    memcpy(hdr + T_PREFIX, name, (size_t)(split - name));
    memcpy(hdr + T_NAME, split + 1, strlen(split + 1));
  }
  put_octal(hdr + T_MODE, 8, 0644);
  put_octal(hdr + T_UID, 8, 0);
  put_octal(hdr + T_GID, 8, 0);
  if (size <= TAR_OCTAL_MAX) {
    put_octal(hdr + T_SIZE, 12, (uint64_t)size);
  } else {
    /* GNU base-256: high bit of the first byte set, big-endian binary */
    uint64_t v = (uint64_t)size;
    hdr[T_SIZE] = 0x80;
    for (int i = 11; i >= 1; i--) {
      hdr[T_SIZE + i] = (unsigned char)(v & 0xff);
      v >>= 8;
    }
  }
  put_octal(hdr + T_MTIME, 12, (uint64_t)(mtime_s < 0 ? 0 : mtime_s));
  hdr[T_TYPE] = '0';
  memcpy(hdr + T_MAGIC, "ustar", 6);  /* with its NUL */
  memcpy(hdr + T_VERSION, "00", 2);
  memcpy(hdr + T_UNAME, "root", 4);
  memcpy(hdr + T_GNAME, "root", 4);
  char chk[8];
  snprintf(chk, sizeof chk, "%06o", header_sum(hdr));
  memcpy(hdr + T_CHKSUM, chk, 6);
  hdr[T_CHKSUM + 6] = 0;
  hdr[T_CHKSUM + 7] = ' ';
  return 0;
}

/* a numeric field: octal (spaces/NULs around it) or GNU base-256; -1 if malformed */
static int64_t get_number(const unsigned char *f, size_t len)
{
  if (f[0] & 0x80) {
    if (f[0] != 0x80) return -1;  /* negative or > 2^88: not for us */
    uint64_t v = 0;
    for (size_t i = 1; i < len; i++) {
      if (v >> 55) return -1;
      v = (v << 8) | f[i];
    }
    return v > INT64_MAX ? -1 : (int64_t)v;
  }
  size_t i = 0;
  while (i < len && (f[i] == ' ' || f[i] == 0)) i++;
  if (i == len) return 0;
  uint64_t v = 0;
  for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
    if (v >> 60) return -1;
    v = v * 8 + (uint64_t)(f[i] - '0');
  }
  for (; i < len; i++)
    if (f[i] != ' ' && f[i] != 0) return -1;
  return (int64_t)v;
}

static int read_at(int fd, void *dst, size_t len, int64_t off, const char *what)
{
  size_t got = 0;
  while (got < len) {
    ssize_t r = pread(fd, (char *)dst + got, len - got, (off_t)(off + (int64_t)got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return error(ERR_INTERNAL, "cannot read '%s': %s", what, strerror(errno));
    if (r == 0) return error(ERR_INVALID, "invalid OVA '%s': the archive ends inside a member", what);
    got += (size_t)r;
  }
  return 0;
}

void tar_members_free(struct tar_members *m)
{
  for (size_t i = 0; i < m->len; i++) free(m->ptr[i].name);
  free(m->ptr);
  *m = (struct tar_members)VEC_INIT;
}

const struct tar_member *tar_find(const struct tar_members *m, const char *name)
{
  for (size_t i = 0; i < m->len; i++)
    if (strcmp(m->ptr[i].name, name) == 0) return &m->ptr[i];
  return NULL;
}

/* pax records "LEN key=value\n": picks path and size */
static int pax_parse(const char *data, size_t len, char **path, int64_t *size, const char *what)
{
  size_t i = 0;
  while (i < len) {
    char *end;
    unsigned long long rl = strtoull(data + i, &end, 10);
    if (end == data + i || *end != ' ' || rl == 0 || rl > len - i)
      return error(ERR_INVALID, "invalid OVA '%s': malformed pax header", what);
    const char *kv = end + 1, *rec_end = data + i + rl;
    if (rec_end[-1] != '\n') return error(ERR_INVALID, "invalid OVA '%s': malformed pax header", what);
    const char *eq = memchr(kv, '=', (size_t)(rec_end - kv));
    if (!eq) return error(ERR_INVALID, "invalid OVA '%s': malformed pax header", what);
    size_t klen = (size_t)(eq - kv), vlen = (size_t)(rec_end - 1 - (eq + 1));
    if (klen == 4 && memcmp(kv, "path", 4) == 0) {
      free(*path);
      *path = xcalloc(1, vlen + 1);
      memcpy(*path, eq + 1, vlen);
    } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
      char tmp[32];
      if (vlen == 0 || vlen >= sizeof tmp) return error(ERR_INVALID, "invalid OVA '%s': bad pax size", what);
      memcpy(tmp, eq + 1, vlen);
      tmp[vlen] = 0;
      char *e2;
      long long v = strtoll(tmp, &e2, 10);
      if (*e2 || v < 0) return error(ERR_INVALID, "invalid OVA '%s': bad pax size", what);
      *size = v;
    }
    i += rl;
  }
  return 0;
}

int tar_index(int fd, int64_t file_size, const char *what, struct tar_members *out)
{
  *out = (struct tar_members)VEC_INIT;
  int64_t off = 0;
  AUTOFREE char *next_name = NULL;  /* from a pax or GNU long-name header */
  int64_t next_size = -1;
  bool ended = false;
  while (off + TAR_BLOCK <= file_size) {
    unsigned char hdr[TAR_BLOCK];
    if (read_at(fd, hdr, TAR_BLOCK, off, what) < 0) goto fail;
    bool zero = true;
    for (size_t i = 0; i < TAR_BLOCK && zero; i++) zero = hdr[i] == 0;
    if (zero) { ended = true; break; }
    int64_t chk = get_number(hdr + T_CHKSUM, 8);
    if (chk < 0 || (chk != (int64_t)header_sum(hdr) && chk != header_sum_signed(hdr))) {
      error(ERR_INVALID, "invalid OVA '%s': bad tar header checksum at offset %lld; the file is "
            "damaged or not an OVA", what, (long long)off);
      goto fail;
    }
    int64_t size = get_number(hdr + T_SIZE, 12);
    if (size < 0) {
      error(ERR_INVALID, "invalid OVA '%s': bad member size at offset %lld", what, (long long)off);
      goto fail;
    }
    char type = (char)hdr[T_TYPE];
    if (type == 'x' || type == 'L') {
      if (size > (1 << 20) || off + TAR_BLOCK + size > file_size) {
        error(ERR_INVALID, "invalid OVA '%s': bad extended header at offset %lld", what, (long long)off);
        goto fail;
      }
      AUTOFREE char *data = xcalloc(1, (size_t)size + 1);
      if (read_at(fd, data, (size_t)size, off + TAR_BLOCK, what) < 0) goto fail;
      if (type == 'L') {
        free(next_name);
        next_name = xstrdup(data);
      } else if (pax_parse(data, (size_t)size, &next_name, &next_size, what) < 0) {
        goto fail;
      }
      off += TAR_BLOCK + ((size + TAR_BLOCK - 1) / TAR_BLOCK) * TAR_BLOCK;
      continue;
    }
    if (next_size >= 0) size = next_size;
    int64_t data_off = off + TAR_BLOCK;
    if (size > file_size - data_off) {
      error(ERR_INVALID, "invalid OVA '%s': member at offset %lld claims %lld bytes but the file "
            "ends before; it is truncated", what, (long long)off, (long long)size);
      goto fail;
    }
    if (type == '0' || type == 0 || type == '7') {
      char *name;
      if (next_name) {
        name = steal_pointer(&next_name);
      } else {
        char n[T_NAME_LEN + 1] = {0}, p[T_PREFIX_LEN + 1] = {0};
        memcpy(n, hdr + T_NAME, T_NAME_LEN);
        if (memcmp(hdr + T_MAGIC, "ustar", 5) == 0) memcpy(p, hdr + T_PREFIX, T_PREFIX_LEN);
        name = p[0] ? xasprintf("%s/%s", p, n) : xstrdup(n);
      }
      /* "./images/x" and "images/x" name the same member */
      while (name[0] == '.' && name[1] == '/') memmove(name, name + 2, strlen(name + 2) + 1);
      vec_push(out, ((struct tar_member){name, data_off, size}));
    }
    free(next_name);
    next_name = NULL;
    next_size = -1;
    off = data_off + ((size + TAR_BLOCK - 1) / TAR_BLOCK) * TAR_BLOCK;
  }
  if (!ended && off < file_size) {
    error(ERR_INVALID, "invalid OVA '%s': the archive ends inside a header", what);
    goto fail;
  }
  if (out->len == 0) {
    error(ERR_INVALID, "invalid OVA '%s': the archive holds no files", what);
    goto fail;
  }
  return 0;
fail:
  tar_members_free(out);
  return -1;
}
