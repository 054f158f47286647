/* sizecache.c: sizes of volume files and free space of storage domains,
 * measured off the request path.
 *
 * A GET that called stat() or statvfs() itself would hang with a hung mount
 * (NFS, a dying disk) and take an HTTP worker with it. Renders ask this cache
 * instead: a known value comes back at once; an unknown path is registered,
 * the housekeeping thread is woken to measure it, and the render waits for
 * that at most SIZE_CACHE_WAIT_MS (a healthy stat takes microseconds). Past
 * that it renders without the value, as oVirt does for a size it has not
 * measured yet. Every path asked for recently is measured again each period. Paths not asked for in
 * SIZE_CACHE_IDLE_MS are forgotten, so the cache stays as large as what is
 * being looked at. */
#include "cmd/internal.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define SIZE_CACHE_BUCKETS 1024
#define SIZE_CACHE_IDLE_MS (10 * 60 * 1000)
#define SIZE_CACHE_WAIT_MS 200
#define SIZE_CACHE_MAX_AGE_MS (10 * 1000)

enum size_kind { SIZE_FILE, SIZE_FS };

struct size_entry {
  struct size_entry *next;
  char *path;
  enum size_kind kind;
  bool measured;            /* tried at least once */
  bool known;               /* the last try worked: a and b hold its result */
  int64_t a, b;             /* FILE: allocated bytes; FS: available, used bytes */
  int64_t last_asked_ms;    /* monotonic */
  int64_t measured_ms;      /* monotonic */
};

struct size_cache {
  pthread_mutex_t mu;
  pthread_cond_t measured;  /* broadcast after each measurement */
  struct size_entry *buckets[SIZE_CACHE_BUCKETS];
};

/* created by engine_open (size_cache_init), before any thread asks */
static struct size_cache *cache_of(struct engine *eng) { return eng->sizes; }

void size_cache_init(struct engine *eng)
{
  eng->sizes = xcalloc(1, sizeof *eng->sizes);
  pthread_mutex_init(&eng->sizes->mu, NULL);
  pthread_cond_init(&eng->sizes->measured, NULL);
}

static size_t bucket_of(const char *path, enum size_kind kind)
{
  uint64_t h = 1469598103934665603ull ^ (uint64_t)kind; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) h = (h ^ *p) * 1099511628211ull;
  return (size_t)(h % SIZE_CACHE_BUCKETS);
}

/* the entry of (path, kind), created unknown when absent; under c->mu */
static struct size_entry *entry_get(struct size_cache *c, const char *path, enum size_kind kind, bool create)
{
  size_t b = bucket_of(path, kind);
  for (struct size_entry *e = c->buckets[b]; e; e = e->next)
    if (e->kind == kind && strcmp(e->path, path) == 0) return e;
  if (!create) return NULL;
  struct size_entry *e = xcalloc(1, sizeof *e);
  e->path = xstrdup(path);
  e->kind = kind;
  e->next = c->buckets[b];
  c->buckets[b] = e;
  return e;
}

static bool cached(struct engine *eng, const char *path, enum size_kind kind, int64_t *a, int64_t *b)
{
  struct size_cache *c = cache_of(eng);
  pthread_mutex_lock(&c->mu);
  struct size_entry *e = entry_get(c, path, kind, true);
  e->last_asked_ms = mono_ms();
  if (!e->measured && eng->housekeeping) {
    housekeeping_wake(eng);
    struct timespec ts;
    cond_deadline_after(&ts, SIZE_CACHE_WAIT_MS);
    /* e stays valid: only refresh frees entries, and not ones asked for now */
    while (!e->measured && pthread_cond_timedwait(&c->measured, &c->mu, &ts) == 0) {}
  }
  bool known = e->known;
  if (known) {
    *a = e->a;
    if (b) *b = e->b;
  }
  pthread_mutex_unlock(&c->mu);
  return known;
}

bool engine_file_size(struct engine *eng, const char *path, int64_t *allocated)
{
  return cached(eng, path, SIZE_FILE, allocated, NULL);
}

bool engine_fs_space(struct engine *eng, const char *path, int64_t *available, int64_t *used)
{
  return cached(eng, path, SIZE_FS, available, used);
}

/* measures one path; false when it cannot be measured (gone, no access) */
static bool measure(const char *path, enum size_kind kind, int64_t *a, int64_t *b)
{
  if (kind == SIZE_FILE) {
    struct stat st;
    if (stat(path, &st) < 0) return false;
    *a = (int64_t)st.st_blocks * 512;
    *b = 0;
    return true;
  }
  struct statvfs vfs;
  if (statvfs(path, &vfs) < 0) return false;
  *a = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
  *b = ((int64_t)vfs.f_blocks - (int64_t)vfs.f_bfree) * (int64_t)vfs.f_frsize;
  return true;
}

void size_cache_refresh(struct engine *eng)
{
  struct size_cache *c = cache_of(eng);
  struct todo { char *path; enum size_kind kind; };
  DEFINE_VEC(todo_vec, struct todo);
  struct todo_vec todo = VEC_INIT;
  int64_t now = mono_ms();
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < SIZE_CACHE_BUCKETS; i++) {
    for (struct size_entry **pe = &c->buckets[i]; *pe;) {
      struct size_entry *e = *pe;
      if (now - e->last_asked_ms > SIZE_CACHE_IDLE_MS) { /* nobody looks at it any more */
        *pe = e->next;
        free(e->path);
        free(e);
        continue;
      }
      if (!e->measured || now - e->measured_ms >= SIZE_CACHE_MAX_AGE_MS) {
        struct todo t = {xstrdup(e->path), e->kind};
        vec_push(&todo, t);
      }
      pe = &e->next;
    }
  }
  pthread_mutex_unlock(&c->mu);
  /* the slow part, with no lock held: a hung mount stalls only this thread */
  for (size_t i = 0; i < todo.len; i++) {
    int64_t a = 0, b = 0;
    bool ok = measure(todo.ptr[i].path, todo.ptr[i].kind, &a, &b);
    pthread_mutex_lock(&c->mu);
    struct size_entry *e = entry_get(c, todo.ptr[i].path, todo.ptr[i].kind, false);
    if (e && !ok && e->measured && !e->known) {
      /* gone twice (a removed volume): forget it now, not after SIZE_CACHE_IDLE_MS */
      size_t bk = bucket_of(e->path, e->kind);
      for (struct size_entry **pe = &c->buckets[bk]; *pe; pe = &(*pe)->next)
        if (*pe == e) { *pe = e->next; break; }
      free(e->path);
      free(e);
      e = NULL;
    }
    if (e) {
      e->measured = true;
      e->measured_ms = mono_ms();
      e->known = ok;
      e->a = a;
      e->b = b;
    }
    pthread_cond_broadcast(&c->measured);
    pthread_mutex_unlock(&c->mu);
    free(todo.ptr[i].path);
  }
  free(todo.ptr);
}

void size_cache_free(struct engine *eng)
{
  struct size_cache *c = eng->sizes;
  if (!c) return;
  for (size_t i = 0; i < SIZE_CACHE_BUCKETS; i++) {
    while (c->buckets[i]) {
      struct size_entry *e = c->buckets[i];
      c->buckets[i] = e->next;
      free(e->path);
      free(e);
    }
  }
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->measured);
  free(c);
  eng->sizes = NULL;
}
