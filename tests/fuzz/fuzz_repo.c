/* repository manifests and chunk headers, parsed from memory as if read
 * from a scratch repository's files. The first input byte picks which: even
 * a manifest (backups/NAME.json), odd a chunk file (chunks/XX/ID).
 *
 * The parsers are the ones repo_chunk_get and manifest_read call after
 * reading the file (repo_chunk_decode, manifest_parse), so no input touches
 * the disk: writing and reading a file per input held the target at ~600
 * executions a second, too slow for the by-hand 10 million. The repository
 * itself (its keys, its worker buffers) is made once, then removed at exit. */
#include "fuzz.h"
#include "repo/repo.h"
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#define CHUNK_ID "00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee"

static struct repo *repo;
static struct repo_worker *worker;
static char scratch[] = "/tmp/snapback-fuzz-repo-XXXXXX";
static unsigned char *out;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void remove_scratch(void)
{
  nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  if (!mkdtemp(scratch)) return -1;
  atexit(remove_scratch);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/r", scratch);
  if (repo_init(dir, NULL) < 0 || !(repo = repo_open(dir, NULL)) || !(worker = repo_worker_new(repo))) {
    fprintf(stderr, "fuzz_repo: %s\n", error_message());
    return -1;
  }
  out = malloc(REPO_CHUNK_SIZE);
  return out ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  if (data[0] & 1) {
    size_t len = 0;
    if (repo_chunk_decode(worker, CHUNK_ID, data + 1, size - 1, out, REPO_CHUNK_SIZE, &len) == 0 &&
        len > REPO_CHUNK_SIZE)
      abort();
  } else {
    manifest_free(manifest_parse(repo, "fuzz", data + 1, size - 1));
  }
  error_clear();
  return 0;
}
