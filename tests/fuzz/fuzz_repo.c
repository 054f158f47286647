/* repository manifests and chunk headers, read back from files in a scratch
 * repository. The first input byte picks which: even a manifest
 * (backups/NAME.json), odd a chunk file (chunks/XX/ID). */
#include "fuzz.h"
#include "repo/repo.h"
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_ID "00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee"

static struct repo *repo;
static struct repo_worker *worker;
static char manifest_path[4096], chunk_path[4096];
static unsigned char *out;

static void write_file(const char *path, const uint8_t *data, size_t size)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
  close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  char tmpl[] = "/tmp/snapback-fuzz-repo-XXXXXX";
  if (!mkdtemp(tmpl)) return -1;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/r", tmpl);
  if (repo_init(dir, NULL) < 0 || !(repo = repo_open(dir, NULL)) || !(worker = repo_worker_new(repo))) {
    fprintf(stderr, "fuzz_repo: %s\n", error_message());
    return -1;
  }
  snprintf(manifest_path, sizeof manifest_path, "%s/backups/fuzz.json", dir);
  char cdir[4096];
  snprintf(cdir, sizeof cdir, "%s/chunks/%.2s", dir, CHUNK_ID);
  mkdir(cdir, 0700);
  snprintf(chunk_path, sizeof chunk_path, "%s/%s", cdir, CHUNK_ID);
  out = malloc(REPO_CHUNK_SIZE);
  return out ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1) return 0;
  if (data[0] & 1) {
    write_file(chunk_path, data + 1, size - 1);
    size_t len = 0;
    if (repo_chunk_get(worker, CHUNK_ID, out, REPO_CHUNK_SIZE, &len) == 0 && len > REPO_CHUNK_SIZE)
      abort();
  } else {
    write_file(manifest_path, data + 1, size - 1);
    manifest_free(manifest_read(repo, "fuzz"));
  }
  error_clear();
  return 0;
}
