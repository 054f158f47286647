/* volume.c: disk image files on the local host, made with qemu-img.
 *
 * qemu-img runs through posix_spawn with an argv array (util/spawn.h), so no
 * path or name ever reaches a shell. */
#include "hyper/hyper.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/spawn.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
  if (unlink(path) < 0 && errno != ENOENT)
    return error(ERR_INTERNAL, "cannot remove volume '%s': %s", path, strerror(errno));
  return 0;
}
