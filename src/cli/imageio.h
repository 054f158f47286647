/* imageio.h: the imageio data API of an image transfer, as ovirt-imageio
 * serves it (over httpc.h): OPTIONS for the features and a unix_socket for
 * clients on the same host, extents?context=zero|dirty, GET with Range;
 * PUT with Content-Range and PATCH zero/flush for uploads.
 * Not thread-safe: one per thread. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "cli/transfer.h"
#include "util/cleanup.h"
#include "util/vec.h"

struct imageio;
/* url: the transfer_url (https://HOST:PORT/images/TICKET); cacert may be NULL */
struct imageio *imageio_open(const char *url, const char *cacert);
void imageio_close(struct imageio *io);
DEFINE_AUTOPTR(imageio, struct imageio, imageio_close)

/* OPTIONS: the unix_socket the server offers to local clients (NULL when
 * none; caller frees). Fails when the server does not answer. */
int imageio_options(struct imageio *io, char **unix_socket) WARN_UNUSED;
/* sends the requests over the unix socket path (the same API in plain HTTP,
 * as OPTIONS offers it to clients on the engine's host); NULL goes back to
 * the URL's own host */
void imageio_use_unix_socket(struct imageio *io, const char *path);
/* the disk's size (from extents?context=zero) */
int64_t imageio_size(struct imageio *io);
DEFINE_VEC(extentlist, struct data_extent);
/* GET extents?context=CONTEXT ("zero" or "dirty"): for dirty, the dirty
 * extents only (zero says whether they read as zeros); for zero, every
 * extent. A 404 for dirty fails with ERR_NOT_FOUND (the transfer is not part
 * of an incremental backup). */
int imageio_extents(struct imageio *io, const char *context, struct extentlist *out) WARN_UNUSED;
/* the dirty extents of an NBD export with a dirty bitmap (the first
 * qemu:dirty-bitmap:NAME it lists, as qemu-nbd --bitmap or libvirt's pull
 * backup export it); *context gets its name (caller frees). ERR_NOT_FOUND when
 * the export has no dirty bitmap. */
int nbd_dirty_extents(const char *url, struct extentlist *out, char **context) WARN_UNUSED;
/* GET with Range: exactly len bytes at off into buf */
int imageio_pread(struct imageio *io, void *buf, size_t len, uint64_t off) WARN_UNUSED;
/* PUT with Content-Range: len bytes of buf at off; without flush the server
 * may keep them in its cache until imageio_flush (?flush=n, as
 * ovirt-imageio's client sends) */
int imageio_pwrite(struct imageio *io, const void *buf, size_t len, uint64_t off, bool flush) WARN_UNUSED;
/* PATCH {"op":"zero"}: len bytes at off read as zeros afterwards */
int imageio_zero(struct imageio *io, uint64_t off, uint64_t len, bool flush) WARN_UNUSED;
/* PATCH {"op":"flush"}: everything written is durable */
int imageio_flush(struct imageio *io) WARN_UNUSED;
