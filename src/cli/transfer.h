/* transfer.h: image transfers (POST /imagetransfers) and moving a disk's
 * bytes between an NBD transfer URL and the repository. */
#pragma once
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "cli/client.h"
#include "repo/repo.h"
#include "util/timeutil.h"

/* how the CLI polls the engine for a phase: every POLL_QUICK_US for the
 * first POLL_QUICK_FOR_MS, every POLL_FAST_MS until POLL_FAST_FOR_MS, then
 * twice as long each time up to POLL_MAX_MS. The phases of an incremental
 * backup change within tens of ms (ready 0.12-0.15 s after the start, most
 * of it libvirt's; a transfer's start; succeeded 0.05 s after finalize):
 * a doubling delay from the start saw each change up to 160 ms late
 * (measured: 0.3 s of a 1.3 s incremental backup), and a 10 ms one still
 * 5 ms late on average, twice per backup of 0.4 s. A GET costs the engine
 * well under a ms, and a slow phase still costs a request only every
 * POLL_MAX_MS. */
#define POLL_QUICK_US 2000
#define POLL_QUICK_FOR_MS 300
#define POLL_FAST_MS 10
#define POLL_FAST_FOR_MS 2000
#define POLL_MAX_MS 200
/* starts polling now; poller_sleep waits for the next poll */
void poller_start(struct backoff *p);
void poller_sleep(struct backoff *p);

/* set by the SIGINT/SIGTERM handler; long loops check it and fail cleanly */
extern volatile sig_atomic_t cli_interrupted;

struct transfer {
  char *id;
  char *url;       /* its NBD export: nbd_url, nbd+unix:///?socket=... */
  char *http_url;  /* the imageio HTTP(S) URL: transfer_url, else proxy_url; or NULL */
  char *phase;     /* the last phase seen */
};
void transfer_clear(struct transfer *t);

/* POSTs a transfer (download of snapshot volume image_id, or upload into
 * disk_id) and waits until it is transferring; it has an NBD url, an
 * http_url, or both. On failure a transfer that was created is cancelled. */
int transfer_start(struct client *c, bool upload, const char *image_id, const char *disk_id,
                   struct transfer *t) WARN_UNUSED;
/* POSTs a download transfer of disk_id in engine backup backup_id and waits
 * until it is transferring; it has an NBD url, an http_url, or both */
int transfer_start_backup(struct client *c, const char *backup_id, const char *disk_id,
                          struct transfer *t) WARN_UNUSED;
/* finalizes and waits until the engine says finished_success (or the transfer
 * is gone); fails on finished_failure */
int transfer_finalize(struct client *c, struct transfer *t) WARN_UNUSED;
/* cancels (best effort; keeps the current error) and clears t */
void transfer_cancel(struct client *c, struct transfer *t);

struct cli;
struct imageio;
struct nbd_handle;
/* an NBD connection to url, or NULL with *why set to the reason (caller
 * frees; no error is recorded: the caller falls back) */
struct nbd_handle *transfer_nbd_try(const char *url, char **why);
/* where the data of the open transfer t goes or comes from: *nbd_url when
 * this host reaches its NBD export; *io on its imageio URL when it has one
 * (through the unix socket OPTIONS offers on the engine's host, when that
 * answers). At least one is set; a fallback to HTTP is noted as "disk
 * 'DISK': why: VERB over HTTP". Both are the caller's to free. */
int transfer_data_open(const struct cli *c, const struct transfer *t, const char *disk, const char *verb,
                       char **nbd_url, struct imageio **io) WARN_UNUSED;

struct copy_stats {
  uint64_t bytes_read;    /* bytes read from NBD (allocated extents) */
  uint64_t bytes_stored;  /* bytes written into the repository */
  uint64_t chunks_new, chunks_reused, chunks_zero;
};

/* called from the calling thread with bytes of the disk done so far */
typedef void (*copy_progress_fn)(void *opaque, uint64_t done);

/* Reads the NBD export at url into the repository and appends it to m as a
 * new disk (its size is the export's); *disk_index gets its index. Zero and
 * unallocated extents (base:allocation) are not read; QUEUE reads of 4 MiB
 * are in flight while workers threads hash, compress and store chunks. */
int nbd_to_repo(struct repo *r, const char *url, struct manifest *m, size_t *disk_index, int workers,
                struct copy_stats *st, copy_progress_fn progress, void *opaque) WARN_UNUSED;

/* Where an incremental backup reads a disk: an NBD handle (the transfer's
 * NBD URL, or the unix_socket imageio's OPTIONS offers on the same host), else
 * HTTP GET with Range on the imageio URL (a remote engine). */
struct disk_source { const char *what; struct nbd_handle *nbd; struct imageio *http; };
/* a dirty (or, for zero, zeroed) extent of a disk */
struct data_extent { uint64_t off, len; bool zero; };

/* Backs up only the extents in dirty (sorted, from extents?context=dirty;
 * the list is consumed: extents are cut at block boundaries)
 * into d, whose layout starts as prev's: changed bytes become patches, and a
 * block that would collect too many patches, or changed by half or more, is
 * read and stored whole (compaction).
 * It returns once every read is done. The last chunks may still be hashed
 * and stored by the writer's threads: *pending gets the writer, which
 * incremental_finish (then d is complete, and st counts what was stored) or
 * patch_writer_free must end. st counts the bytes read. */
int source_to_repo_incremental(struct repo *r, struct disk_source *src, struct data_extent *dirty,
                               size_t ndirty, const struct manifest_disk *prev, struct manifest_disk *d,
                               struct copy_stats *st, struct patch_writer **pending, copy_progress_fn progress,
                               void *opaque) WARN_UNUSED;
int incremental_finish(struct patch_writer *pending, struct copy_stats *st) WARN_UNUSED;
/* Backs up every allocated extent of an HTTP source in full (zero extents
 * from extents?context=zero are not read) */
int http_to_repo(struct repo *r, struct imageio *io, struct manifest *m, size_t *disk_index, struct copy_stats *st,
                 copy_progress_fn progress, void *opaque) WARN_UNUSED;

/* Writes disk d from the repository to the upload transfer's NBD export at
 * nbd_url, else (nbd_url NULL) to its imageio URL io. The target must be at
 * least d->size bytes and read as zeros (a fresh disk): zero ranges are not
 * written. workers threads read and check the blocks (restoreio.c). A
 * version 1 manifest's SHA-256 of the whole disk is checked. */
int repo_to_disk(struct repo *r, const struct manifest_disk *d, const char *nbd_url, struct imageio *io,
                 int workers, struct copy_stats *st, copy_progress_fn progress, void *opaque) WARN_UNUSED;
