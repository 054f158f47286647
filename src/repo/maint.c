/* maint.c: prune policy, garbage collection and verification.
 *
 * gc and verify both start from the set of chunk ids the complete backups
 * name. gc deletes only under the exclusive lock, so no backup is running
 * (backups hold the shared lock for their whole run), and it refuses to
 * delete anything when one manifest cannot be read: a chunk is never lost
 * because its backup was momentarily unreadable. */
#include "repo/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/vec.h"
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- prune ---- */

static int cmp_newest_first(const void *a, const void *b)
{
  const struct prune_item *x = *(struct prune_item *const *)a, *y = *(struct prune_item *const *)b;
  int c = strcmp(x->vm_id, y->vm_id);
  if (c) return c;
  if (x->time_ms != y->time_ms) return x->time_ms > y->time_ms ? -1 : 1;
  return strcmp(y->name, x->name);
}

static void period_key(int64_t ms, bool weekly, char out[16])
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(out, 16, weekly ? "%G-W%V" : "%Y-%m-%d", &tm);
}

void prune_decide(const struct prune_policy *p, struct prune_item *items, size_t n)
{
  if (!n) return;
  struct prune_item **v = xcalloc(n, sizeof *v);
  for (size_t i = 0; i < n; i++) {
    v[i] = &items[i];
    v[i]->keep = false;
    v[i]->reason = NULL;
  }
  qsort(v, n, sizeof *v, cmp_newest_first);
  for (size_t start = 0; start < n;) {
    size_t end = start;
    while (end < n && strcmp(v[end]->vm_id, v[start]->vm_id) == 0) end++;
    /* within one VM, newest first */
    int last = 0, days = 0, weeks = 0;
    char day[16] = "", week[16] = "";
    for (size_t i = start; i < end; i++) {
      struct prune_item *it = v[i];
      char d[16], w[16];
      period_key(it->time_ms, false, d);
      period_key(it->time_ms, true, w);
      if (last < p->keep_last) {
        last++;
        it->keep = true;
        it->reason = "last";
      }
      if (days < p->keep_daily && strcmp(d, day) != 0) {
        days++;
        snprintf(day, sizeof day, "%s", d);
        if (!it->keep) it->reason = "daily";
        it->keep = true;
      }
      if (weeks < p->keep_weekly && strcmp(w, week) != 0) {
        weeks++;
        snprintf(week, sizeof week, "%s", w);
        if (!it->keep) it->reason = "weekly";
        it->keep = true;
      }
    }
    start = end;
  }
  free(v);
}

/* ---- the referenced set ---- */

/* one (chunk id, backup index) pair per reference, sorted by id */
struct ref { const char *id; size_t backup; };
DEFINE_VEC(refvec, struct ref);

struct refs {
  char **names;            /* manifest names */
  size_t nnames;
  struct manifest **mans;  /* the manifests, owning the id strings */
  struct refvec v;
  char **bad;              /* unreadable manifests: "name: reason" */
  size_t nbad;
};

static void refs_free(struct refs *r)
{
  for (size_t i = 0; i < r->nnames; i++) {
    free(r->names[i]);
    manifest_free(r->mans[i]);
  }
  free(r->names);
  free(r->mans);
  free(r->v.ptr);
  for (size_t i = 0; i < r->nbad; i++) free(r->bad[i]);
  free(r->bad);
}

static int cmp_ref(const void *a, const void *b)
{
  return strcmp(((const struct ref *)a)->id, ((const struct ref *)b)->id);
}

static int refs_load(struct repo *repo, struct refs *r)
{
  memset(r, 0, sizeof *r);
  r->names = manifest_list(repo, &r->nnames);
  if (!r->names) return -1;
  r->mans = xcalloc(r->nnames + 1, sizeof *r->mans);
  for (size_t i = 0; i < r->nnames; i++) {
    r->mans[i] = manifest_read(repo, r->names[i]);
    if (!r->mans[i]) {
      r->bad = xrealloc(r->bad, (r->nbad + 1) * sizeof *r->bad);
      r->bad[r->nbad++] = xasprintf("%s", error_message());
      error_clear();
      continue;
    }
    const struct manifest *m = r->mans[i];
    for (size_t d = 0; d < m->ndisks; d++) {
      for (size_t c = 0; c < m->disks[d].nchunks; c++)
        if (strcmp(m->disks[d].chunks[c], REPO_ZERO_MARK) != 0)
          vec_push(&r->v, ((struct ref){m->disks[d].chunks[c], i}));
      for (size_t c = 0; c < m->disks[d].npatch_chunks; c++)
        vec_push(&r->v, ((struct ref){m->disks[d].patch_chunks[c], i}));
    }
  }
  if (r->v.len) qsort(r->v.ptr, r->v.len, sizeof *r->v.ptr, cmp_ref);
  return 0;
}

/* index of the first reference to id, or -1 */
static ssize_t refs_find(const struct refs *r, const char *id)
{
  size_t lo = 0, hi = r->v.len;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (strcmp(r->v.ptr[mid].id, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo < r->v.len && strcmp(r->v.ptr[lo].id, id) == 0 ? (ssize_t)lo : -1;
}

/* ---- walking the chunk files ---- */

struct chunk_file { char *id; uint64_t size; };
DEFINE_VEC(chunkvec, struct chunk_file);

/* lists chunks/xx/<id>; temp files go to tmp (if not NULL) as full paths */
static int chunks_list(struct repo *r, struct chunkvec *out, struct strvec *tmp)
{
  for (int i = 0; i < 256; i++) {
    AUTOFREE char *dir = xasprintf("%s/chunks/%02x", r->path, i);
    DIR *d = opendir(dir);
    if (!d) {
      if (errno == ENOENT) continue;
      return error(ERR_INTERNAL, "cannot list '%s': %s", dir, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strncmp(e->d_name, ".tmp-", 5) == 0) {
        if (tmp) vec_push(tmp, xasprintf("%s/%s", dir, e->d_name));
        continue;
      }
      if (!repo_is_chunk_name(e->d_name)) continue;
      struct stat st;
      AUTOFREE char *p = xasprintf("%s/%s", dir, e->d_name);
      uint64_t size = stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
      vec_push(out, ((struct chunk_file){xstrdup(e->d_name), size}));
    }
    closedir(d);
  }
  return 0;
}

static void chunkvec_free(struct chunkvec *v)
{
  for (size_t i = 0; i < v->len; i++) free(v->ptr[i].id);
  free(v->ptr);
}

/* ---- gc ---- */

int repo_gc(struct repo *r, bool dry_run, struct gc_stats *st)
{
  memset(st, 0, sizeof *st);
  struct refs refs;
  if (refs_load(r, &refs) < 0) return -1;
  if (refs.nbad) {
    error(ERR_CONFLICT, "garbage collection refused: %zu backup%s cannot be read (%s); nothing was removed",
          refs.nbad, refs.nbad == 1 ? "" : "s", refs.bad[0]);
    refs_free(&refs);
    return -1;
  }
  struct chunkvec files = VEC_INIT;
  struct strvec tmp = VEC_INIT;
  int rc = chunks_list(r, &files, &tmp);
  bool touched[256] = {false};
  for (size_t i = 0; rc == 0 && i < files.len; i++) {
    if (refs_find(&refs, files.ptr[i].id) >= 0) {
      st->chunks_kept++;
      continue;
    }
    if (!dry_run) {
      AUTOFREE char *p = xasprintf("%s/chunks/%.2s/%s", r->path, files.ptr[i].id, files.ptr[i].id);
      if (unlink(p) < 0 && errno != ENOENT) {
        rc = error(ERR_INTERNAL, "cannot remove chunk '%s': %s", files.ptr[i].id, strerror(errno));
        break;
      }
      unsigned idx = 0;
      sscanf(files.ptr[i].id, "%2x", &idx);
      touched[idx & 255] = true;
    }
    st->chunks_removed++;
    st->bytes_removed += files.ptr[i].size;
  }
  /* temporary files: under the exclusive lock no writer is running, so each
   * one is left over from a writer that died */
  for (size_t i = 0; rc == 0 && i < tmp.len; i++) {
    if (!dry_run && unlink(tmp.ptr[i]) < 0 && errno != ENOENT) {
      rc = error(ERR_INTERNAL, "cannot remove '%s': %s", tmp.ptr[i], strerror(errno));
      break;
    }
    st->temp_removed++;
  }
  for (int i = 0; rc == 0 && i < 256; i++) {
    if (!touched[i]) continue;
    AUTOFREE char *d = xasprintf("%s/chunks/%02x", r->path, i);
    rc = repo_fsync_dir(d);
  }
  chunkvec_free(&files);
  strvec_free(&tmp);
  refs_free(&refs);
  return rc;
}

/* ---- verify ---- */

struct verify_job {
  struct repo *r;
  struct chunkvec *files;
  atomic_size_t next;
  char **problems;             /* per file: NULL when intact */
  pthread_mutex_t lock;        /* serializes progress */
  uint64_t done, total;
  void (*progress)(void *, uint64_t, uint64_t);
  void *opaque;
  int fail;                    /* a worker could not start */
};

static void *verify_thread(void *arg)
{
  struct verify_job *j = arg;
  AUTOPTR(repo_worker) w = repo_worker_new(j->r);
  if (!w) {
    pthread_mutex_lock(&j->lock);
    j->fail = 1;
    pthread_mutex_unlock(&j->lock);
    return NULL;
  }
  AUTOFREE unsigned char *out = xalloc_large(REPO_CHUNK_SIZE);
  for (;;) {
    size_t i = atomic_fetch_add(&j->next, 1);
    if (i >= j->files->len) break;
    size_t len;
    if (repo_chunk_get(w, j->files->ptr[i].id, out, REPO_CHUNK_SIZE, &len) < 0) {
      const char *msg = error_message();
      /* drop the "chunk 'ID' is damaged: " prefix: the report names the chunk */
      const char *colon = strstr(msg, "damaged: ");
      j->problems[i] = xstrdup(colon ? colon + 9 : msg);
      error_clear();
    }
    pthread_mutex_lock(&j->lock);
    j->done += j->files->ptr[i].size;
    if (j->progress) j->progress(j->opaque, j->done, j->total);
    pthread_mutex_unlock(&j->lock);
  }
  return NULL;
}

void verify_report_free(struct verify_report *v)
{
  if (!v) return;
  for (size_t i = 0; i < v->ndamage; i++) {
    free(v->damage[i].chunk);
    free(v->damage[i].problem);
    for (size_t k = 0; v->damage[i].backups && v->damage[i].backups[k]; k++) free(v->damage[i].backups[k]);
    free(v->damage[i].backups);
  }
  free(v->damage);
  for (size_t i = 0; v->bad_manifests && v->bad_manifests[i]; i++) free(v->bad_manifests[i]);
  free(v->bad_manifests);
  memset(v, 0, sizeof *v);
}

static void add_damage(struct verify_report *rep, const struct refs *refs, const char *id, const char *problem)
{
  rep->damage = xrealloc(rep->damage, (rep->ndamage + 1) * sizeof *rep->damage);
  struct verify_damage *d = &rep->damage[rep->ndamage++];
  d->chunk = xstrdup(id);
  d->problem = xstrdup(problem);
  struct strvec b = VEC_INIT;
  ssize_t k = refs_find(refs, id);
  for (size_t i = k < 0 ? refs->v.len : (size_t)k; i < refs->v.len && strcmp(refs->v.ptr[i].id, id) == 0; i++) {
    const char *name = refs->names[refs->v.ptr[i].backup];
    if (b.len && strcmp(b.ptr[b.len - 1], name) == 0) continue;
    bool seen = false;
    for (size_t x = 0; x < b.len && !seen; x++) seen = strcmp(b.ptr[x], name) == 0;
    if (!seen) vec_push(&b, xstrdup(name));
  }
  vec_push(&b, NULL);
  d->backups = b.ptr;
}

int repo_verify(struct repo *r, int threads, struct verify_report *rep,
                void (*progress)(void *, uint64_t, uint64_t), void *opaque)
{
  memset(rep, 0, sizeof *rep);
  struct refs refs;
  if (refs_load(r, &refs) < 0) return -1;
  struct chunkvec files = VEC_INIT;
  if (chunks_list(r, &files, NULL) < 0) {
    refs_free(&refs);
    return -1;
  }
  if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (threads <= 0) threads = 1;
  if (threads > 16) threads = 16;
  struct verify_job j = {.r = r, .files = &files, .progress = progress, .opaque = opaque};
  atomic_init(&j.next, 0);
  pthread_mutex_init(&j.lock, NULL);
  j.problems = xcalloc(files.len + 1, sizeof *j.problems);
  for (size_t i = 0; i < files.len; i++) j.total += files.ptr[i].size;
  pthread_t *t = xcalloc((size_t)threads, sizeof *t);
  int started = 0;
  for (; started < threads; started++)
    if (pthread_create(&t[started], NULL, verify_thread, &j) != 0) break;
  if (started == 0) verify_thread(&j);
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  free(t);
  pthread_mutex_destroy(&j.lock);
  int rc = 0;
  if (j.fail && started <= 1) rc = error(ERR_INTERNAL, "cannot verify: cannot start a worker");
  rep->chunks_checked = files.len;
  rep->bytes_checked = j.total;
  rep->backups_checked = refs.nnames - refs.nbad;
  for (size_t i = 0; rc == 0 && i < files.len; i++)
    if (j.problems[i]) add_damage(rep, &refs, files.ptr[i].id, j.problems[i]);
  if (rc == 0) {
    /* every referenced id must have a file */
    const char *prev = NULL;
    for (size_t i = 0; i < refs.v.len; i++) {
      const char *id = refs.v.ptr[i].id;
      if (prev && strcmp(prev, id) == 0) continue;
      prev = id;
      if (!repo_chunk_exists(r, id)) add_damage(rep, &refs, id, "missing");
    }
    if (refs.nbad) {
      rep->bad_manifests = xcalloc(refs.nbad + 1, sizeof *rep->bad_manifests);
      for (size_t i = 0; i < refs.nbad; i++) rep->bad_manifests[i] = xstrdup(refs.bad[i]);
    }
  }
  for (size_t i = 0; i < files.len; i++) free(j.problems[i]);
  free(j.problems);
  chunkvec_free(&files);
  refs_free(&refs);
  return rc;
}
