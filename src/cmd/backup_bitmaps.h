/* backup_bitmaps.h: which volume layers hold a checkpoint's bitmap, and so
 * whether a disk's backup can be incremental (cmd/backup/bitmaps.c) */
#ifndef SNAPBACK_CMD_BACKUP_BITMAPS_H
#define SNAPBACK_CMD_BACKUP_BITMAPS_H

#include "store/store.h"
#include "hyper/hyper.h"
#include <stdbool.h>

/* the bitmaps of volumes read once for many questions (the start's check of
 * every checkpoint of a VM): paths[i] has b[i], n[i] long */
struct bitmap_cache {
  size_t len;
  char **paths;
  struct volume_bitmap **b;
  size_t *n;
};

void bitmap_cache_clear(struct bitmap_cache *c);

/* The layers of frozen volume top_id that hold bitmap cp (top first) when
 * they describe every change since cp; NULL with *why (caller frees) when
 * the disk must fall back to full, and *lost (unless NULL) true when that is
 * because the bitmap is missing or was not saved cleanly. Volumes are read
 * through cache unless NULL. */
struct volume **bitmap_layers(struct store *st, const char *top_id, const char *cp,
                              const char *created_in, char **why, bool *lost,
                              struct bitmap_cache *cache);

/* the mode (BACKUP_MODE_*) of disk disk_id in backup b (from checkpoint from,
 * or NULL) read from frozen volume vol_id; *why (caller frees) says why a
 * disk asked incremental falls back to full, *lost whether because its
 * bitmap is lost */
int disk_mode(struct store *st, const struct backup *b, const struct checkpoint *from,
              const char *disk_id, const char *vol_id, bool check_layers, char **why, bool *lost);

#endif
