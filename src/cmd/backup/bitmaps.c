/* bitmaps.c: which layers of a frozen volume chain hold a checkpoint's
 * bitmap, read from the qcow2 files, and so each disk's backup mode */

#include "cmd/backup_bitmaps.h"
#include "cmd/internal.h"
#include "util/err.h"
#include <stdio.h>
#include <string.h>

/* the layers of a chain from volume top_id down, top first (caller frees) */
static struct volume **chain_down(struct store *st, const char *top_id)
{
  struct volume **out = xcalloc(1, sizeof *out);
  size_t n = 0;
  AUTOFREE char *cur = xstrdup(top_id);
  while (cur && n < 4096) {
    struct volume *v = volume_get(st, cur);
    if (!v) { volume_list_free(out); return NULL; }
    out = xrealloc(out, (n + 2) * sizeof *out);
    out[n++] = v;
    out[n] = NULL;
    free(cur);
    cur = xstrdup(v->parent_id);
  }
  return out;
}

static bool has_bitmap(const struct volume_bitmap *b, size_t n, const char *name, bool *usable)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(b[i].name, name) == 0) {
      *usable = !b[i].in_use && !b[i].inconsistent;
      return true;
    }
  return false;
}

void bitmap_cache_clear(struct bitmap_cache *c)
{
  for (size_t i = 0; i < c->len; i++) {
    free(c->paths[i]);
    volume_bitmaps_free(c->b[i], c->n[i]);
  }
  free(c->paths);
  free(c->b);
  free(c->n);
  *c = (struct bitmap_cache){0};
}

/* the bitmaps of qcow2 PATH in *b (*nb long): kept by cache when given,
 * else the caller's to free */
static int layer_bitmaps(struct bitmap_cache *cache, const char *path, struct volume_bitmap **b, size_t *nb)
{
  for (size_t i = 0; cache && i < cache->len; i++)
    if (strcmp(cache->paths[i], path) == 0) {
      *b = cache->b[i];
      *nb = cache->n[i];
      return 0;
    }
  if (volume_bitmaps(path, b, nb) < 0) return -1;
  if (!cache) return 0;
  size_t k = cache->len++;
  cache->paths = xrealloc(cache->paths, cache->len * sizeof *cache->paths);
  cache->b = xrealloc(cache->b, cache->len * sizeof *cache->b);
  cache->n = xrealloc(cache->n, cache->len * sizeof *cache->n);
  cache->paths[k] = xstrdup(path);
  cache->b[k] = *b;
  cache->n[k] = *nb;
  return 0;
}

struct volume **bitmap_layers(struct store *st, const char *top_id, const char *cp,
                              const char *created_in, char **why, bool *lost,
                              struct bitmap_cache *cache)
{
  bool lost_unused;
  if (!lost) lost = &lost_unused;
  *lost = false;
  AUTOLIST(volume) chain = chain_down(st, top_id);
  if (!chain) {
    *why = xasprintf("its volume chain cannot be read: %s", error_message());
    error_clear();
    return NULL;
  }
  struct volume **out = xcalloc(1, sizeof *out);
  size_t n = 0;
  bool below = false;
  for (size_t i = 0; chain[i]; i++) {
    bool usable = false, have = false;
    if (chain[i]->format == DISK_FORMAT_COW && !below) {
      struct volume_bitmap *b = NULL;
      size_t nb = 0;
      if (layer_bitmaps(cache, chain[i]->path, &b, &nb) < 0) {
        *why = xasprintf("the bitmaps of volume '%s' cannot be read: %s", chain[i]->id, error_message());
        error_clear();
        volume_list_free(out);
        return NULL;
      }
      have = has_bitmap(b, nb, cp, &usable);
      if (!cache) volume_bitmaps_free(b, nb);
    }
    if (have && !usable) {
      *why = xasprintf("bitmap '%s' in volume '%s' was not saved cleanly (in use or inconsistent, "
                       "e.g. after a crash of the VM)", cp, chain[i]->id);
      *lost = true;
      volume_list_free(out);
      return NULL;
    }
    if (!have && n == 0) {
      *why = xasprintf("bitmap '%s' is missing from volume '%s'", cp, chain[i]->id);
      *lost = true;
      volume_list_free(out);
      return NULL;
    }
    if (!have) {
      below = true;
      /* the layer the checkpoint started in must not lie below the run */
      if (created_in && strcmp(chain[i]->id, created_in) == 0) {
        *why = xasprintf("bitmap '%s' is missing from volume '%s', where it started", cp, chain[i]->id);
        *lost = true;
        volume_list_free(out);
        return NULL;
      }
      continue;
    }
    out = xrealloc(out, (n + 2) * sizeof *out);
    out[n++] = steal_pointer(&chain[i]);
    out[n] = NULL;
  }
  return out;
}

int disk_mode(struct store *st, const struct backup *b, const struct checkpoint *from,
              const char *disk_id, const char *vol_id, bool check_layers, char **why, bool *lost)
{
  *why = NULL;
  *lost = false;
  if (!b->from_checkpoint_id) return BACKUP_MODE_FULL;
  AUTOPTR(disk) d = disk_get(st, disk_id);
  if (!d) { *why = xstrdup(error_message()); error_clear(); return BACKUP_MODE_FULL; }
  if (d->backup != DISK_BACKUP_INCREMENTAL || d->format != DISK_FORMAT_COW) {
    *why = xasprintf("disk '%s' has backup=%s (format %s); only qcow2 disks with backup=incremental "
                     "keep bitmaps", d->alias, disk_backup_to_str(d->backup), disk_format_to_str(d->format));
    return BACKUP_MODE_FULL;
  }
  if (!from) {
    *why = xasprintf("checkpoint '%s' is gone", b->from_checkpoint_id);
    return BACKUP_MODE_FULL;
  }
  if (from->state == CHECKPOINT_INVALID) {
    *why = xasprintf("checkpoint '%s' is invalid: %s", from->id, from->message ? from->message : "");
    return BACKUP_MODE_FULL;
  }
  AUTOFREE char *cdid = xasprintf("%s/%s", from->id, disk_id);
  AUTOPTR(checkpoint_disk) cd = checkpoint_disk_get(st, cdid);
  if (!cd) {
    error_clear();
    *why = xasprintf("disk '%s' was not part of checkpoint '%s' (added or made incremental later)",
                     d->alias, from->id);
    return BACKUP_MODE_FULL;
  }
  if (!check_layers) return BACKUP_MODE_INCREMENTAL; /* libvirt checks the bitmaps of a live chain */
  AUTOLIST(volume) layers = bitmap_layers(st, vol_id, from->id, cd->volume_id, why, lost, NULL);
  if (!layers) return BACKUP_MODE_FULL;
  return BACKUP_MODE_INCREMENTAL;
}
