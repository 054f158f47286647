/* volume.c: disk image files on the local host, made with qemu-img.
 *
 * qemu-img runs through posix_spawn with an argv array (util/spawn.h), so no
 * path or name ever reaches a shell. */
#include "hyper/hyper.h"
#include "util/buf.h"
#include "util/blocking.h"
#include "util/err.h"
#include "util/spawn.h"
#include "util/uuid.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>

DEFINE_AUTOPTR(json, json_t, json_decref)
DEFINE_AUTOPTR(EVP_MD_CTX, EVP_MD_CTX, EVP_MD_CTX_free)

/* qemu-img's names for enum disk_format */
static const char *const qemu_img_format[DISK_FORMAT_LAST] = {"qcow2", "raw"};

static const char *format_name(int format)
{
  return format >= 0 && format < DISK_FORMAT_LAST ? qemu_img_format[format] : NULL;
}

/* mkdir -p of the directory part of path */
static int make_parent_dirs(const char *path)
{
  AUTOFREE char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = '\0';
  for (char *p = dir + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
      return error(ERR_INTERNAL, "cannot create directory '%s': %s", dir, strerror(errno));
    *p = saved;
    if (!saved) break;
  }
  return 0;
}

/* Creates PATH with `qemu-img create`. With a backing file the size may be
 * 0 (inherit the backing size, qemu-img opens the backing file); with a size
 * the backing file is not opened (-u), because it may be the active volume
 * of a running VM whose image lock forbids even a read-only open. */
int volume_create(const char *path, int format, int64_t size, const char *backing, int backing_format)
{
  const char *fmt = format_name(format);
  if (!fmt) return error(ERR_INVALID, "cannot create volume '%s': unknown format %d", path, format);
  if (!backing && size <= 0)
    return error(ERR_INVALID, "cannot create volume '%s': size %lld is not positive", path, (long long)size);
  const char *bfmt = backing ? format_name(backing_format) : NULL;
  if (backing && !bfmt)
    return error(ERR_INVALID, "cannot create volume '%s': unknown backing format %d", path, backing_format);
  if (make_parent_dirs(path) < 0) return error_prefix("cannot create volume '%s': ", path);

  char size_str[32];
  snprintf(size_str, sizeof size_str, "%lld", (long long)size);
  const char *argv[16];
  size_t n = 0;
  argv[n++] = "qemu-img";
  argv[n++] = "create";
  argv[n++] = "-q";
  argv[n++] = "-f";
  argv[n++] = fmt;
  if (backing) {
    argv[n++] = "-b";
    argv[n++] = backing;
    argv[n++] = "-F";
    argv[n++] = bfmt;
    if (size > 0) argv[n++] = "-u";
  }
  argv[n++] = path;
  if (size > 0) argv[n++] = size_str;
  argv[n] = NULL;
  if (spawn_run(argv, NULL, NULL) < 0) return error_prefix("cannot create volume '%s': ", path);
  return 0;
}

int64_t volume_actual_size(const char *path)
{
  struct stat st;
  if (stat(path, &st) < 0)
    return error(errno == ENOENT ? ERR_NOT_FOUND : ERR_INTERNAL, "cannot read the size of volume '%s': %s",
                 path, strerror(errno));
  return (int64_t)st.st_blocks * 512;
}

int volume_remove(const char *path)
{
  if (blocking_check("remove a volume file") < 0) return -1;
  if (unlink(path) < 0 && errno != ENOENT)
    return error(ERR_INTERNAL, "cannot remove volume '%s': %s", path, strerror(errno));
  return 0;
}

/* ERR_NOT_FOUND "<prefix>'path' does not exist" when path is missing */
static int must_exist(const char *path, const char *what)
{
  if (access(path, F_OK) == 0) return 0;
  return error(errno == ENOENT ? ERR_NOT_FOUND : ERR_INTERNAL, "cannot %s '%s': %s", what, path, strerror(errno));
}

/* `-t none`: write base with O_DIRECT as oVirt does, no host page cache
 * filled with data nobody reads again */
int volume_commit(const char *top, int top_format, const char *base)
{
  const char *fmt = format_name(top_format);
  if (!fmt) return error(ERR_INVALID, "cannot merge volume '%s': unknown format %d", top, top_format);
  if (must_exist(top, "merge volume") < 0 || must_exist(base, "merge into volume") < 0) return -1;
  const char *argv[] = {"qemu-img", "commit", "-q", "-f", fmt, "-t", "none", "-b", base, top, NULL};
  if (spawn_run(argv, NULL, NULL) < 0) return error_prefix("cannot merge volume '%s' into '%s': ", top, base);
  return 0;
}

int volume_rebase_unsafe(const char *path, const char *new_backing, int backing_format)
{
  const char *bfmt = format_name(backing_format);
  if (!bfmt)
    return error(ERR_INVALID, "cannot rebase volume '%s': unknown backing format %d", path, backing_format);
  if (must_exist(path, "rebase volume") < 0) return -1;
  const char *argv[] = {"qemu-img", "rebase", "-q", "-f", "qcow2", "-u", "-b", new_backing, "-F", bfmt, path, NULL};
  if (spawn_run(argv, NULL, NULL) < 0) return error_prefix("cannot rebase volume '%s' onto '%s': ", path, new_backing);
  return 0;
}

char *volume_backing(const char *path)
{
  error_clear();
  if (must_exist(path, "read the backing file of volume") < 0) return NULL;
  /* -U: the volume may be open in a running VM */
  const char *argv[] = {"qemu-img", "info", "-U", "--output=json", path, NULL};
  AUTOBUF struct buf out = BUF_INIT;
  if (spawn_run(argv, &out, NULL) < 0)
    return error_prefix("cannot read the backing file of volume '%s': ", path), NULL;
  json_error_t jerr;
  AUTOPTR(json) info = json_loads(buf_str(&out), 0, &jerr);
  if (!json_is_object(info))
    return error(ERR_INTERNAL, "cannot read the backing file of volume '%s': qemu-img printed no JSON: %s",
                 path, jerr.text), NULL;
  /* full-backing-filename is resolved against path's directory */
  const char *b = json_string_value(json_object_get(info, "full-backing-filename"));
  if (!b) b = json_string_value(json_object_get(info, "backing-filename"));
  return b ? xstrdup(b) : NULL;
}

/* the SHA-256 of a file's bytes, as lowercase hex */
static char *file_sha256(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error(ERR_INTERNAL, "cannot open '%s': %s", path, strerror(errno)), NULL;
  AUTOPTR(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    close(fd);
    return error(ERR_INTERNAL, "cannot start a SHA-256 digest"), NULL;
  }
  enum { CHUNK = 1 << 20 };
  AUTOFREE unsigned char *data = xcalloc(1, CHUNK);
  ssize_t got;
  while ((got = read(fd, data, CHUNK)) > 0) EVP_DigestUpdate(ctx, data, (size_t)got);
  int read_errno = errno;
  close(fd);
  if (got < 0) return error(ERR_INTERNAL, "cannot read '%s': %s", path, strerror(read_errno)), NULL;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  EVP_DigestFinal_ex(ctx, md, &mdlen);
  return hex_of(md, mdlen);
}

/* qemu-img cannot write raw to a pipe, so the guest view goes to a
 * temporary file first (sparse: only written data takes room) */
char *volume_sha256(const char *path, int format)
{
  const char *fmt = format_name(format);
  if (!fmt) return error(ERR_INVALID, "cannot hash volume '%s': unknown format %d", path, format), NULL;
  if (must_exist(path, "hash volume") < 0) return NULL;
  char tmp[] = "/var/tmp/snapback-hash-XXXXXX";
  int fd = mkstemp(tmp);
  if (fd < 0) return error(ERR_INTERNAL, "cannot hash volume '%s': cannot create a temporary file: %s", path,
                           strerror(errno)), NULL;
  close(fd);
  const char *argv[] = {"qemu-img", "convert", "-U", "-f", fmt, "-O", "raw", path, tmp, NULL};
  char *hex = NULL;
  if (spawn_run(argv, NULL, NULL) == 0) hex = file_sha256(tmp);
  if (!hex) error_prefix("cannot hash volume '%s': ", path);
  unlink(tmp);
  return hex;
}

int volume_resize(const char *path, int format, int64_t size)
{
  const char *fmt = format_name(format);
  if (!fmt) return error(ERR_INVALID, "cannot resize volume '%s': unknown format %d", path, format);
  if (must_exist(path, "resize volume") < 0) return -1;
  char sz[32];
  snprintf(sz, sizeof sz, "%lld", (long long)size);
  const char *argv[] = {"qemu-img", "resize", "-q", "-f", fmt, path, sz, NULL};
  if (spawn_run(argv, NULL, NULL) < 0) return error_prefix("cannot resize volume '%s': ", path);
  return 0;
}

int volume_convert(const char *src, int src_format, const char *dst, int dst_format)
{
  const char *sfmt = format_name(src_format), *dfmt = format_name(dst_format);
  if (!sfmt || !dfmt) return error(ERR_INVALID, "cannot copy volume '%s': unknown format", src);
  if (must_exist(src, "copy volume") < 0) return -1;
  if (make_parent_dirs(dst) < 0) return error_prefix("cannot copy volume '%s': ", src);
  if (volume_copy_image(src, src_format, dst, dst_format, false) < 0) {
    error_prefix("cannot copy volume '%s' to '%s': ", src, dst);
    struct err_saved s;
    error_save(&s);
    unlink(dst);
    return error_restore(&s);
  }
  return 0;
}

int volume_preallocate(const char *path, int64_t size)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return error(ERR_INTERNAL, "cannot preallocate '%s': %s", path, strerror(errno));
  int rc = posix_fallocate(fd, 0, (off_t)size);
  close(fd);
  if (rc != 0)
    return error(rc == ENOSPC ? ERR_CONFLICT : ERR_INTERNAL, "cannot preallocate %lld bytes for '%s': %s",
                 (long long)size, path, strerror(rc));
  return 0;
}

/* ---- persistent dirty bitmaps ---- */

void volume_bitmaps_free(struct volume_bitmap *b, size_t n)
{
  for (size_t i = 0; b && i < n; i++) free(b[i].name);
  free(b);
}

/* qcow2's on-disk layout (docs/interop/qcow2.txt in QEMU), big-endian */
#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_AUTOCLEAR_BITMAPS 1u
#define QCOW2_BITMAP_IN_USE 1u
#define QCOW2_MAX_BITMAPS 65535u
#define QCOW2_MAX_DIR_SIZE (1024u * QCOW2_MAX_BITMAPS)

static uint32_t be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
  size_t done = 0;
  while (done < len) {
    ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    done += (size_t)r;
  }
  return 0;
}

/* Reads the bitmap directory of qcow2 PATH itself rather than through
 * `qemu-img info -U` (20-60 ms a run, more when the machine is busy; an
 * incremental backup through a snapshot asked three times before its data
 * could flow). The same rules as QEMU: a file whose autoclear bit says a
 * program without bitmap support changed it has no usable bitmaps (QEMU
 * ignores them); a bitmap whose in-use flag is set was not saved (open for
 * writing now, or a crash). A raw file has none. Like -U, it reads a file a
 * VM may have open: QEMU updates the directory with one write. */
int volume_bitmaps(const char *path, struct volume_bitmap **out, size_t *n)
{
  *out = NULL;
  *n = 0;
  if (must_exist(path, "read the bitmaps of volume") < 0) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error(ERR_INTERNAL, "cannot read the bitmaps of volume '%s': %s", path, strerror(errno));
  AUTOFREE unsigned char *dir = NULL;
  unsigned char h[104], ext[8], bx[24];
  struct volume_bitmap *b = xcalloc(1, sizeof *b);
  const char *bad = NULL;
  ssize_t got = pread(fd, h, sizeof h, 0);
  uint32_t nb = 0;
  uint64_t dir_size = 0, dir_off = 0;
  if (got < 72 || be32(h) != QCOW2_MAGIC) goto done; /* raw, or too short to be qcow2: no bitmaps */
  uint32_t version = be32(h + 4);
  if (version < 3 || got < 104) goto done; /* version 2 has no bitmaps */
  if (!(be64(h + 88) & QCOW2_AUTOCLEAR_BITMAPS)) goto done;
  /* the header extensions, after the header (its length at 100) */
  uint64_t off = be32(h + 100);
  bool found = false;
  for (int i = 0; i < 1024 && !found; i++) {
    if (pread_all(fd, ext, sizeof ext, off) < 0) { bad = "a header extension cannot be read"; goto done; }
    uint32_t type = be32(ext), len = be32(ext + 4);
    if (type == 0) break;
    if (type == QCOW2_EXT_BITMAPS) {
      if (len < sizeof bx || pread_all(fd, bx, sizeof bx, off + 8) < 0) { bad = "its bitmaps extension is short"; goto done; }
      nb = be32(bx);
      dir_size = be64(bx + 8);
      dir_off = be64(bx + 16);
      found = true;
    }
    off += 8 + (((uint64_t)len + 7) & ~(uint64_t)7);
  }
  if (!found || nb == 0) goto done;
  if (nb > QCOW2_MAX_BITMAPS || dir_size > QCOW2_MAX_DIR_SIZE || dir_size < 24) {
    bad = "its bitmap directory is out of bounds";
    goto done;
  }
  dir = xrealloc(NULL, (size_t)dir_size);
  if (pread_all(fd, dir, (size_t)dir_size, dir_off) < 0) { bad = "its bitmap directory cannot be read"; goto done; }
  free(b);
  b = xcalloc(nb + 1, sizeof *b);
  size_t pos = 0;
  for (uint32_t i = 0; i < nb; i++) {
    /* table offset (8), table size (4), flags (4), type, granularity bits,
     * name size (2), extra data size (4), extra data, name, padding to 8 */
    if (pos + 24 > dir_size) { bad = "its bitmap directory is truncated"; goto done; }
    const unsigned char *e = dir + pos;
    uint32_t flags = be32(e + 12), name_size = (uint32_t)e[18] << 8 | e[19], extra = be32(e + 20);
    uint64_t entry = 24 + (uint64_t)extra + name_size;
    if (name_size == 0 || pos + entry > dir_size) { bad = "a bitmap directory entry is out of bounds"; goto done; }
    struct volume_bitmap *v = &b[(*n)++];
    v->name = xcalloc(1, name_size + 1);
    memcpy(v->name, e + 24 + extra, name_size);
    v->in_use = flags & QCOW2_BITMAP_IN_USE;
    v->inconsistent = false; /* QEMU's word for in use when it opens the file: in_use says it */
    pos += (size_t)((entry + 7) & ~(uint64_t)7);
  }
done:
  close(fd);
  if (bad) {
    volume_bitmaps_free(b, *n);
    *n = 0;
    return error(ERR_INTERNAL, "cannot read the bitmaps of volume '%s': %s", path, bad);
  }
  *out = b;
  return 0;
}

/* 1 when the volume at PATH holds bitmap NAME, 0 when not, -1 + error */
static int bitmap_present(const char *path, const char *name)
{
  struct volume_bitmap *b = NULL;
  size_t n = 0;
  if (volume_bitmaps(path, &b, &n) < 0) return -1;
  bool have = false;
  for (size_t i = 0; i < n; i++) have |= strcmp(b[i].name, name) == 0;
  volume_bitmaps_free(b, n);
  return have;
}

int volume_bitmap_add(const char *path, const char *name)
{
  int have = bitmap_present(path, name);
  if (have != 0) return have < 0 ? -1 : 0;
  const char *argv[] = {"qemu-img", "bitmap", "-f", "qcow2", "--add", path, name, NULL};
  if (spawn_run(argv, NULL, NULL) < 0)
    return error_prefix("cannot add bitmap '%s' to volume '%s': ", name, path);
  return 0;
}

int volume_bitmap_remove(const char *path, const char *name)
{
  int have = bitmap_present(path, name);
  if (have <= 0) return have;
  const char *argv[] = {"qemu-img", "bitmap", "-f", "qcow2", "--remove", path, name, NULL};
  if (spawn_run(argv, NULL, NULL) < 0)
    return error_prefix("cannot remove bitmap '%s' from volume '%s': ", name, path);
  return 0;
}

int volume_bitmap_merge(const char *dst_path, const char *dst_name, const char *src_path,
                        const char *src_name)
{
  if (must_exist(src_path, "merge a bitmap of volume") < 0) return -1;
  const char *argv[] = {"qemu-img", "bitmap", "-f", "qcow2", "--merge", src_name, "-b", src_path,
                        "-F", "qcow2", dst_path, dst_name, NULL};
  if (spawn_run(argv, NULL, NULL) < 0)
    return error_prefix("cannot merge bitmap '%s' of '%s' into '%s': ", src_name, src_path, dst_path);
  return 0;
}

/* ---- images inside other files, and NBD exports ---- */

/* QEMU's raw layer takes only sizes in whole 512-byte sectors: a qcow2 member
 * of another size is read through its tar padding (zeros, which qcow2
 * ignores past its last cluster); a raw member's size is its disk's size and
 * stays exact. */
char *volume_range_image(const char *path, int64_t offset, int64_t size, bool qcow2)
{
  if (qcow2 && size >= 0) size = (size + 511) / 512 * 512;
  json_t *file = json_pack("{s:s,s:s}", "driver", "file", "filename", path);
  json_t *raw = json_pack("{s:s,s:I,s:o}", "driver", "raw", "offset", (json_int_t)offset, "file", file);
  if (size >= 0) json_object_set_new(raw, "size", json_integer(size));
  AUTOPTR(json) top = qcow2 ? json_pack("{s:s,s:n,s:o}", "driver", "qcow2", "backing", "file", raw) : raw;
  AUTOFREE char *s = json_dumps(top, JSON_COMPACT);
  return xasprintf("json:%s", s);
}

int volume_info(const char *filename, int format, struct volume_info *out)
{
  memset(out, 0, sizeof *out);
  const char *argv[8];
  size_t n = 0;
  argv[n++] = "qemu-img";
  argv[n++] = "info";
  argv[n++] = "-U";
  argv[n++] = "--output=json";
  if (format >= 0) {
    const char *fmt = format_name(format);
    if (!fmt) return error(ERR_INVALID, "cannot read image '%s': unknown format", filename);
    argv[n++] = "-f";
    argv[n++] = fmt;
  }
  argv[n++] = filename;
  argv[n] = NULL;
  AUTOBUF struct buf text = BUF_INIT;
  if (spawn_run(argv, &text, NULL) < 0) return -1;
  json_error_t jerr;
  AUTOPTR(json) info = json_loads(buf_str(&text), 0, &jerr);
  if (!json_is_object(info)) return error(ERR_INTERNAL, "qemu-img info printed no JSON: %s", jerr.text);
  json_t *fs = json_object_get(json_object_get(info, "format-specific"), "data");
  out->virtual_size = (int64_t)json_integer_value(json_object_get(info, "virtual-size"));
  out->has_backing = json_object_get(info, "backing-filename") != NULL;
  out->has_data_file = json_object_get(fs, "data-file") != NULL;
  out->corrupt = json_is_true(json_object_get(fs, "corrupt"));
  return 0;
}

int64_t volume_measure(const char *path, int format)
{
  const char *fmt = format_name(format);
  if (!fmt) return error(ERR_INVALID, "cannot measure volume '%s': unknown format", path);
  const char *argv[] = {"qemu-img", "measure", "-U", "--output=json", "-O", "qcow2", "-f", fmt, path, NULL};
  AUTOBUF struct buf text = BUF_INIT;
  if (spawn_run(argv, &text, NULL) < 0) return error_prefix("cannot measure volume '%s': ", path);
  AUTOPTR(json) m = json_loads(buf_str(&text), 0, NULL);
  json_t *req = json_object_get(m, "required");
  if (!json_is_integer(req)) return error(ERR_INTERNAL, "cannot measure volume '%s': no size", path);
  return (int64_t)json_integer_value(req);
}

int volume_copy_image(const char *src, int src_format, const char *dst, int dst_format, bool into_zeroed)
{
  const char *dfmt = format_name(dst_format), *sfmt = src_format >= 0 ? format_name(src_format) : NULL;
  if (!dfmt || (src_format >= 0 && !sfmt)) return error(ERR_INVALID, "cannot copy image '%s': unknown format", src);
  const char *argv[16];
  size_t n = 0;
  argv[n++] = "qemu-img";
  argv[n++] = "convert";
  argv[n++] = "-q";
  if (into_zeroed) {
    argv[n++] = "-n";
    argv[n++] = "--target-is-zero";
  }
  argv[n++] = "-U";
  if (sfmt) {
    argv[n++] = "-f";
    argv[n++] = sfmt;
  }
  /* -O matters for a json: target too: without it qemu-img opens it as raw */
  argv[n++] = "-O";
  argv[n++] = dfmt;
  argv[n++] = src;
  argv[n++] = dst;
  argv[n] = NULL;
  return spawn_run(argv, NULL, NULL);
}

/* whether PATH's file system takes O_DIRECT (tmpfs, for one, refuses it) */
static bool direct_io_works(const char *path)
{
  int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

int volume_nbd_serve(const struct volume_nbd *o, pid_t *pid)
{
  const char *fmt = format_name(o->format);
  if (!fmt) return error(ERR_INVALID, "cannot serve volume '%s': unknown format", o->path);
  AUTOFREE char *sock = xasprintf("--socket=%s", o->socket);
  AUTOFREE char *format = xasprintf("--format=%s", fmt);
  AUTOFREE char *bitmap = o->bitmap ? xasprintf("--bitmap=%s", o->bitmap) : NULL;
  const char *argv[16];
  size_t n = 0;
  argv[n++] = "qemu-nbd";
  argv[n++] = sock;
  argv[n++] = format;
  argv[n++] = "--shared=8";
  argv[n++] = "--persistent";
  if (bitmap) argv[n++] = bitmap;
  if (o->read_only) {
    argv[n++] = "--read-only";
  } else {
    /* zeroes the client writes become holes again */
    argv[n++] = "--discard=unmap";
    argv[n++] = "--detect-zeroes=unmap";
    /* writes bypass the page cache (O_DIRECT), as oVirt's hosts serve
     * uploads: copying into fresh page-cache pages, with qemu-nbd's threads
     * spinning on the file's lock, then writing them back took most of an
     * upload's time. A restore of the bench's 2 GiB took 3.5 s against
     * 7.6-8.9 s through the page cache (nbdcopy alone: 3.9-4.4 s against
     * 5.1-5.3 s). Reads of a download stay cached. */
    if (direct_io_works(o->path)) argv[n++] = "--cache=none";
  }
  argv[n++] = o->path;
  argv[n] = NULL;
  unlink(o->socket);
  /* qemu-nbd allocates a fresh buffer for each request; above glibc's mmap
   * threshold (256 KiB requests are) each is a new mapping, faulted in and
   * zeroed page by page: writing a disk through it took ~35% longer
   * (measured with nbdcopy, 2 GiB into a new qcow2). A fixed threshold of
   * 4 MiB keeps the buffers in the heap for reuse. */
  const char *env[] = {"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=67108864",
                       NULL};
  return spawn_start_env(argv, env, o->log, pid);
}

int volume_writeback_start(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error(ERR_INTERNAL, "cannot open volume '%s': %s", path, strerror(errno));
  int rc = sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE), e = errno;
  close(fd);
  if (rc < 0) return error(ERR_INTERNAL, "cannot start writing volume '%s' back: %s", path, strerror(e));
  return 0;
}
