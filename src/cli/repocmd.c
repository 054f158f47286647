/* repocmd.c: the commands that only touch the repository: backups (list),
 * verify, prune, gc. */
#include "cli/cli.h"
#include "cli/progress.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

static void print_json(json_t *j)
{
  json_dumpf(j, stdout, JSON_INDENT(2));
  fputc('\n', stdout);
}

static void local_time(int64_t ms, char out[32])
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}

static uint64_t manifest_size(const struct manifest *m)
{
  uint64_t s = 0;
  for (size_t i = 0; i < m->ndisks; i++) s += m->disks[i].size;
  return s;
}

static void strv_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

static int cmp_start(const void *a, const void *b)
{
  const struct manifest *x = *(struct manifest *const *)a, *y = *(struct manifest *const *)b;
  if (x->start_ms != y->start_ms) return x->start_ms < y->start_ms ? -1 : 1;
  return strcmp(x->name, y->name);
}

int cli_list(struct cli *c)
{
  AUTOPTR(repo) r = cli_repo_open(c, false, REPO_LOCK_SHARED);
  if (!r) return cli_report_error(c, "cannot list backups");
  size_t n;
  char **names = manifest_list(r, &n);
  if (!names) return cli_report_error(c, "cannot list backups");
  AUTOPTR(json) arr = json_array();
  int rc = CLI_OK;
  size_t shown = 0, nm = 0;
  /* oldest first by start time (names sort by the second only) */
  struct manifest **mans = xcalloc(n + 1, sizeof *mans);
  for (size_t i = 0; i < n; i++) {
    if (!(mans[nm] = manifest_read(r, names[i]))) {
      fprintf(stderr, "snapback: %s\n", error_message());
      error_clear();
      rc = CLI_FAILED;
      continue;
    }
    nm++;
  }
  qsort(mans, nm, sizeof *mans, cmp_start);
  for (size_t i = 0; i < nm; i++) {
    AUTOPTR(manifest) m = steal_pointer(&mans[i]);
    if (c->vm && !(m->vm_name && strcmp(m->vm_name, c->vm) == 0) && !(m->vm_id && strcmp(m->vm_id, c->vm) == 0))
      continue;
    if (!c->json && !shown++)
      printf("%-19s  %-24s  %5s  %10s  %-11s  %s\n", "DATE", "VM", "DISKS", "SIZE", "MODE", "BACKUP");
    /* full when every disk was read in full, else incremental */
    const char *mode = "full";
    for (size_t d = 0; d < m->ndisks; d++)
      if (m->disks[d].mode && strcmp(m->disks[d].mode, "incremental") == 0) mode = "incremental";
    char when[32], size[32], iso[32];
    local_time(m->start_ms, when);
    time_format_iso(m->start_ms, iso);
    human_bytes(manifest_size(m), size);
    if (c->json) {
      json_t *disks = json_array();
      for (size_t d = 0; d < m->ndisks; d++) {
        const struct manifest_disk *md = &m->disks[d];
        json_t *jd = json_pack("{s:s, s:s?, s:I, s:s}", "id", md->id, "alias", md->alias, "size",
                               (json_int_t)md->size, "mode", md->mode ? md->mode : "full");
        if (md->digest) json_object_set_new(jd, "digest", json_string(md->digest));
        if (md->sha256) json_object_set_new(jd, "sha256", json_string(md->sha256));
        json_array_append_new(disks, jd);
      }
      json_t *jb = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "backup", m->name, "id", m->id, "vm",
                             m->vm_name, "vm_id", m->vm_id, "time", iso, "size", (json_int_t)manifest_size(m),
                             "mode", mode, "disks", disks);
      json_object_set_new(jb, "checkpoint_id", m->checkpoint_id ? json_string(m->checkpoint_id) : json_null());
      json_array_append_new(arr, jb);
    } else {
      printf("%-19s  %-24s  %5zu  %10s  %-11s  %s\n", when, m->vm_name, m->ndisks, size, mode, m->name);
    }
  }
  free(mans);
  if (c->json) print_json(arr);
  else if (!shown && c->vm) printf("no backups of VM '%s' in %s\n", c->vm, c->repo);
  else if (!shown) printf("no backups in %s\n", c->repo);
  strv_free(names);
  return rc;
}

int cli_verify(struct cli *c)
{
  AUTOPTR(repo) r = cli_repo_open(c, false, REPO_LOCK_SHARED);
  if (!r) return cli_report_error(c, "cannot verify");
  struct progress p;
  progress_start(&p, !c->json, "verify", 0);
  struct verify_report rep;
  int64_t t0 = mono_ms();
  if (repo_verify(r, c->workers, &rep, progress_cb2, &p) < 0) return cli_report_error(c, "cannot verify");
  progress_end(&p, rep.bytes_checked);
  double secs = (double)(mono_ms() - t0) / 1000.0;
  size_t nbad = 0;
  for (size_t i = 0; rep.bad_manifests && rep.bad_manifests[i]; i++) nbad++;
  if (c->json) {
    json_t *dmg = json_array(), *bad = json_array();
    for (size_t i = 0; i < rep.ndamage; i++) {
      json_t *b = json_array();
      for (size_t k = 0; rep.damage[i].backups[k]; k++) json_array_append_new(b, json_string(rep.damage[i].backups[k]));
      json_array_append_new(dmg, json_pack("{s:s, s:s, s:o}", "chunk", rep.damage[i].chunk, "problem",
                                           rep.damage[i].problem, "backups", b));
    }
    for (size_t i = 0; i < nbad; i++) json_array_append_new(bad, json_string(rep.bad_manifests[i]));
    AUTOPTR(json) j = json_pack("{s:b, s:I, s:I, s:I, s:f, s:o, s:o}", "ok", rep.ndamage == 0 && nbad == 0,
                                "chunks_checked", (json_int_t)rep.chunks_checked, "bytes_checked",
                                (json_int_t)rep.bytes_checked, "backups_checked", (json_int_t)rep.backups_checked,
                                "seconds", secs, "damaged", dmg, "unreadable_backups", bad);
    print_json(j);
  } else {
    for (size_t i = 0; i < rep.ndamage; i++) {
      const struct verify_damage *d = &rep.damage[i];
      printf("damaged chunk %s: %s\n", d->chunk, d->problem);
      if (!d->backups[0]) printf("  no backup uses it (gc removes it; a new backup would not reuse it safely until then)\n");
      for (size_t k = 0; d->backups[k]; k++) printf("  affects backup %s\n", d->backups[k]);
    }
    for (size_t i = 0; i < nbad; i++) printf("unreadable backup: %s\n", rep.bad_manifests[i]);
    char sz[32];
    human_bytes(rep.bytes_checked, sz);
    printf("%s: %llu chunks (%s) of %llu backups checked in %.1f s, %zu damaged, %zu unreadable backups\n",
           rep.ndamage || nbad ? "DAMAGED" : "ok", (unsigned long long)rep.chunks_checked, sz,
           (unsigned long long)rep.backups_checked, secs, rep.ndamage, nbad);
  }
  int rc = rep.ndamage || nbad ? CLI_DAMAGED : CLI_OK;
  verify_report_free(&rep);
  return rc;
}

int cli_prune(struct cli *c)
{
  AUTOPTR(repo) r = cli_repo_open(c, false, REPO_LOCK_EXCLUSIVE);
  if (!r) return cli_report_error(c, "cannot prune");
  size_t n;
  char **names = manifest_list(r, &n);
  if (!names) return cli_report_error(c, "cannot prune");
  struct manifest **mans = xcalloc(n + 1, sizeof *mans);
  struct prune_item *items = xcalloc(n + 1, sizeof *items);
  int rc = CLI_OK;
  for (size_t i = 0; i < n; i++) {
    mans[i] = manifest_read(r, names[i]);
    if (!mans[i]) {
      /* never decide with a backup missing from the picture */
      rc = cli_report_error(c, "cannot prune: nothing was removed");
      goto cleanup;
    }
    items[i] = (struct prune_item){mans[i]->name, mans[i]->vm_id, mans[i]->start_ms, false, NULL};
  }
  prune_decide(&c->policy, items, n);
  json_t *jk = json_array(), *jr = json_array();
  size_t removed = 0;
  for (size_t i = 0; i < n; i++) {
    if (items[i].keep) {
      json_array_append_new(jk, json_pack("{s:s, s:s}", "backup", items[i].name, "reason", items[i].reason));
      if (!c->json) printf("keep    %s (%s)\n", items[i].name, items[i].reason);
      continue;
    }
    if (!c->dry_run && manifest_remove(r, items[i].name) < 0) {
      json_decref(jk);
      json_decref(jr);
      rc = cli_report_error(c, "cannot prune");
      goto cleanup;
    }
    removed++;
    json_array_append_new(jr, json_string(items[i].name));
    if (!c->json) printf("%s %s\n", c->dry_run ? "would remove" : "remove ", items[i].name);
  }
  if (c->json) {
    AUTOPTR(json) j = json_pack("{s:o, s:o, s:b}", "kept", jk, "removed", jr, "dry_run", c->dry_run);
    print_json(j);
  } else {
    json_decref(jk);
    json_decref(jr);
    printf("%zu kept, %zu %s; run 'snapback gc' to free the chunks only they used\n", n - removed, removed,
           c->dry_run ? "would be removed" : "removed");
  }
cleanup:
  for (size_t i = 0; i < n; i++) manifest_free(mans[i]);
  free(mans);
  free(items);
  strv_free(names);
  return rc;
}

static void say_waiting(void *opaque)
{
  cli_note(opaque, "waiting for running backups to finish (the repository lock is held)");
}

int cli_gc(struct cli *c)
{
  if (!c->repo) {
    error(ERR_INVALID, "no repository: give --repo PATH (or SNAPBACK_REPO)");
    return cli_report_error(c, "cannot collect garbage");
  }
  AUTOPTR(repo) r = repo_open(c->repo, c->key_file);
  if (!r || repo_lock(r, REPO_LOCK_EXCLUSIVE, say_waiting, c) < 0)
    return cli_report_error(c, "cannot collect garbage");
  struct gc_stats st;
  int64_t t0 = mono_ms();
  if (repo_gc(r, c->dry_run, &st) < 0) return cli_report_error(c, "cannot collect garbage");
  double secs = (double)(mono_ms() - t0) / 1000.0;
  if (c->json) {
    AUTOPTR(json) j = json_pack("{s:I, s:I, s:I, s:I, s:b, s:f}", "chunks_kept", (json_int_t)st.chunks_kept,
                                "chunks_removed", (json_int_t)st.chunks_removed, "bytes_removed",
                                (json_int_t)st.bytes_removed, "temp_removed", (json_int_t)st.temp_removed,
                                "dry_run", c->dry_run, "seconds", secs);
    print_json(j);
  } else {
    char b[32];
    human_bytes(st.bytes_removed, b);
    printf("%s %llu chunks (%s), %llu stale temporary files; %llu chunks kept\n",
           c->dry_run ? "would remove" : "removed", (unsigned long long)st.chunks_removed, b,
           (unsigned long long)st.temp_removed, (unsigned long long)st.chunks_kept);
  }
  return CLI_OK;
}
