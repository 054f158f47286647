/* repo.c: creating and opening a repository, its key, its lock, and the
 * crash-safe file writes every other part of the repository uses. */
#include "repo/internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

void repo_hex(const unsigned char *bin, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bin[i] >> 4];
    out[2 * i + 1] = digits[bin[i] & 15];
  }
  out[2 * n] = '\0';
}

bool repo_is_chunk_name(const char *s)
{
  size_t i = 0;
  for (; s[i]; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return i == REPO_ID_HEX;
}

/* ---- files ---- */

int repo_fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return error(ERR_INTERNAL, "cannot open directory '%s': %s", dir, strerror(errno));
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  if (rc < 0) return error(ERR_INTERNAL, "cannot fsync directory '%s': %s", dir, strerror(e));
  return 0;
}

/* writes len bytes; with O_DIRECT set on fd, data and len must be aligned to
 * REPO_DIO_ALIGN. A file system that refuses direct I/O (EINVAL) gets the
 * rest written through the page cache. */
static int write_all(int fd, const unsigned char *p, size_t len, bool *direct)
{
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && *direct) {
      int fl = fcntl(fd, F_GETFL);
      if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0) return -1;
      *direct = false;
      continue;
    }
    if (n < 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* the common part of the crash-safe writes: temporary file, data, fsync, rename */
static int write_file(const char *dir, const char *name, const void *data, size_t len, size_t padded,
                      bool direct, bool defer_dir_sync)
{
  unsigned char rnd[6];
  char rhex[13];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return error(ERR_INTERNAL, "cannot write '%s': no entropy", name);
  repo_hex(rnd, sizeof rnd, rhex);
  AUTOFREE char *tmp = xasprintf("%s/.tmp-%s-%s", dir, name, rhex);
  AUTOFREE char *final = xasprintf("%s/%s", dir, name);
  int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  int fd = direct ? open(tmp, flags | O_DIRECT, 0600) : -1;
  if (fd < 0) { /* no direct I/O here (tmpfs): the page cache */
    direct = false;
    fd = open(tmp, flags, 0600);
  }
  if (fd < 0) return error(ERR_INTERNAL, "cannot create '%s': %s", tmp, strerror(errno));
  /* direct writes go in whole blocks; the padding is cut off again */
  bool was_direct = direct;
  if (write_all(fd, data, direct ? padded : len, &direct) < 0 ||
      (was_direct && padded != len && ftruncate(fd, (off_t)len) < 0)) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return error(ERR_INTERNAL, "cannot write '%s': %s", tmp, strerror(e));
  }
  if (fsync(fd) < 0) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return error(ERR_INTERNAL, "cannot fsync '%s': %s", tmp, strerror(e));
  }
  if (close(fd) < 0) {
    int e = errno;
    unlink(tmp);
    return error(ERR_INTERNAL, "cannot close '%s': %s", tmp, strerror(e));
  }
  if (rename(tmp, final) < 0) {
    int e = errno;
    unlink(tmp);
    return error(ERR_INTERNAL, "cannot rename '%s' to '%s': %s", tmp, final, strerror(e));
  }
  return defer_dir_sync ? 0 : repo_fsync_dir(dir);
}

int repo_write_file(const char *dir, const char *name, const void *data, size_t len, bool defer_dir_sync)
{
  return write_file(dir, name, data, len, len, false, defer_dir_sync);
}

int repo_write_file_direct(const char *dir, const char *name, unsigned char *data, size_t len, size_t cap,
                           bool defer_dir_sync)
{
  size_t padded = (len + REPO_DIO_ALIGN - 1) / REPO_DIO_ALIGN * REPO_DIO_ALIGN;
  bool direct = ((uintptr_t)data % REPO_DIO_ALIGN) == 0 && padded <= cap;
  if (direct) memset(data + len, 0, padded - len);
  return write_file(dir, name, data, len, padded, direct, defer_dir_sync);
}

unsigned char *repo_read_file(const char *path, size_t max, size_t *len)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      error(ERR_NOT_FOUND, "'%s' does not exist", path);
      return NULL;
    }
    error(ERR_INTERNAL, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > max) {
    if (st.st_size > 0 && (uint64_t)st.st_size > max)
      error(ERR_INVALID, "'%s' is too large (%lld bytes)", path, (long long)st.st_size);
    else
      error(ERR_INTERNAL, "cannot stat '%s': %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  size_t size = (size_t)st.st_size;
  unsigned char *data = xrealloc(NULL, size + 1);
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, data + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) error(ERR_INTERNAL, "cannot read '%s': %s", path, strerror(errno));
      else error(ERR_INVALID, "'%s' shrank while being read", path);
      close(fd);
      free(data);
      return NULL;
    }
    got += (size_t)n;
  }
  close(fd);
  data[size] = '\0';
  *len = size;
  return data;
}

/* ---- encryption ---- */

DEFINE_AUTOPTR(EVP_CIPHER_CTX, EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)

int repo_seal(const struct repo *r, const void *aad, size_t aadlen, const void *in, size_t len,
              unsigned char *out)
{
  unsigned char *nonce = out, *ct = out + ENVELOPE_NONCE, *tag = out + ENVELOPE_NONCE + len;
  if (RAND_bytes(nonce, ENVELOPE_NONCE) != 1) return error(ERR_INTERNAL, "cannot encrypt: no entropy");
  AUTOPTR(EVP_CIPHER_CTX) ctx = EVP_CIPHER_CTX_new();
  int n = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, r->enc_key, nonce) != 1 ||
      EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1 ||
      EVP_EncryptUpdate(ctx, ct, &n, in, (int)len) != 1 || EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ENVELOPE_TAG, tag) != 1)
    return error(ERR_INTERNAL, "cannot encrypt: AES-256-GCM failed");
  return 0;
}

int repo_open_sealed(const struct repo *r, const void *aad, size_t aadlen, const unsigned char *in,
                     size_t len, unsigned char *out)
{
  if (len < ENVELOPE_NONCE + ENVELOPE_TAG) return error(ERR_INVALID, "encrypted data is truncated");
  size_t ctlen = len - ENVELOPE_NONCE - ENVELOPE_TAG;
  AUTOPTR(EVP_CIPHER_CTX) ctx = EVP_CIPHER_CTX_new();
  int n = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, r->enc_key, in) != 1 ||
      EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1 ||
      EVP_DecryptUpdate(ctx, out, &n, in + ENVELOPE_NONCE, (int)ctlen) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ENVELOPE_TAG,
                          (void *)(in + ENVELOPE_NONCE + ctlen)) != 1)
    return error(ERR_INTERNAL, "cannot decrypt: AES-256-GCM failed");
  if (EVP_DecryptFinal_ex(ctx, out + n, &n) != 1)
    return error(ERR_INVALID, "authentication failed (wrong key, or the data was altered)");
  return 0;
}

/* ---- the key ---- */

/* reads a key file: 64 hex digits (256 bits), surrounding white space allowed */
static int key_read(const char *key_file, unsigned char master[REPO_KEY_LEN])
{
  size_t len;
  AUTOFREE unsigned char *data = repo_read_file(key_file, 4096, &len);
  if (!data) return error_prefix("cannot read key file: ");
  char *s = (char *)data;
  while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
  size_t n = 0;
  while (s[n] && s[n] != ' ' && s[n] != '\n' && s[n] != '\r' && s[n] != '\t') n++;
  bool ok = n == 2 * REPO_KEY_LEN;
  for (size_t i = 0; ok && i < REPO_KEY_LEN; i++) {
    unsigned int b;
    if (sscanf(s + 2 * i, "%2x", &b) != 1) ok = false;
    master[i] = (unsigned char)b;
  }
  for (size_t i = 0; ok && i < n; i++)
    if (!strchr("0123456789abcdefABCDEF", s[i])) ok = false;
  OPENSSL_cleanse(data, len);
  if (!ok) return error(ERR_INVALID, "key file '%s' does not hold a key: expected 64 hex digits", key_file);
  return 0;
}

static int key_create(const char *key_file)
{
  unsigned char master[REPO_KEY_LEN];
  char hex[2 * REPO_KEY_LEN + 2];
  if (RAND_bytes(master, sizeof master) != 1) return error(ERR_INTERNAL, "cannot make a key: no entropy");
  repo_hex(master, sizeof master, hex);
  strcat(hex, "\n");
  int fd = open(key_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return error(ERR_INTERNAL, "cannot create key file '%s': %s", key_file, strerror(errno));
  ssize_t n = write(fd, hex, strlen(hex));
  int rc = n == (ssize_t)strlen(hex) && fsync(fd) == 0 ? 0 : -1;
  int e = errno;
  close(fd);
  OPENSSL_cleanse(master, sizeof master);
  OPENSSL_cleanse(hex, sizeof hex);
  if (rc < 0) {
    unlink(key_file);
    return error(ERR_INTERNAL, "cannot write key file '%s': %s", key_file, strerror(e));
  }
  return 0;
}

static void key_derive(const unsigned char master[REPO_KEY_LEN], const char *label, unsigned char out[32])
{
  unsigned int n = 32;
  HMAC(EVP_sha256(), master, REPO_KEY_LEN, (const unsigned char *)label, strlen(label), out, &n);
}

/* ---- config.json ---- */

static const char CONFIG_FORMAT[] = "snapback-repository";

bool repo_exists(const char *path)
{
  AUTOFREE char *p = xasprintf("%s/config.json", path);
  return access(p, F_OK) == 0;
}

int repo_init(const char *path, const char *key_file)
{
  if (mkdir(path, 0700) < 0 && errno != EEXIST)
    return error(ERR_INTERNAL, "cannot create repository '%s': %s", path, strerror(errno));
  if (repo_exists(path)) return error(ERR_CONFLICT, "repository '%s' exists already", path);
  unsigned char master[REPO_KEY_LEN];
  char check[65] = "";
  if (key_file) {
    if (access(key_file, F_OK) != 0 && key_create(key_file) < 0) return -1;
    if (key_read(key_file, master) < 0) return -1;
    unsigned char kc[32];
    key_derive(master, "snapback key check", kc);
    repo_hex(kc, sizeof kc, check);
    OPENSSL_cleanse(master, sizeof master);
  }
  static const char *const dirs[] = {"chunks", "backups"};
  for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
    AUTOFREE char *d = xasprintf("%s/%s", path, dirs[i]);
    if (mkdir(d, 0700) < 0 && errno != EEXIST)
      return error(ERR_INTERNAL, "cannot create '%s': %s", d, strerror(errno));
  }
  for (int i = 0; i < 256; i++) {
    AUTOFREE char *d = xasprintf("%s/chunks/%02x", path, i);
    if (mkdir(d, 0700) < 0 && errno != EEXIST)
      return error(ERR_INTERNAL, "cannot create '%s': %s", d, strerror(errno));
  }
  AUTOFREE char *lock = xasprintf("%s/lock", path);
  int fd = open(lock, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return error(ERR_INTERNAL, "cannot create '%s': %s", lock, strerror(errno));
  close(fd);
  char id[UUID_STRLEN + 1], created[32];
  if (uuid_generate_str(id) < 0) return -1;
  time_format_iso(now_ms(), created);
  AUTOPTR(json) cfg = json_pack("{s:s, s:i, s:s, s:s, s:I, s:s, s:i, s:s, s:s}", "format", CONFIG_FORMAT,
                                "version", REPO_FORMAT_VERSION, "id", id, "created", created,
                                "chunk_size", (json_int_t)REPO_CHUNK_SIZE, "compression", "zstd",
                                "compression_level", REPO_ZSTD_LEVEL, "encryption",
                                key_file ? "aes-256-gcm" : "none", "chunk_id",
                                key_file ? "hmac-sha256-pages" : "sha256-pages");
  if (key_file) json_object_set_new(cfg, "key_check", json_string(check));
  AUTOFREE char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
  /* every directory above is fsynced by the config's own directory fsync
   * only for the entry; sync the subdirectories' parent explicitly */
  AUTOFREE char *chunks = xasprintf("%s/chunks", path);
  if (repo_fsync_dir(chunks) < 0) return -1;
  return repo_write_file(path, "config.json", text, strlen(text), false);
}

struct repo *repo_open(const char *path, const char *key_file)
{
  AUTOFREE char *cfgpath = xasprintf("%s/config.json", path);
  size_t len;
  AUTOFREE unsigned char *text = repo_read_file(cfgpath, 1 << 20, &len);
  if (!text) {
    if (error_code() == ERR_NOT_FOUND)
      error(ERR_NOT_FOUND, "'%s' is not a snapback repository (no config.json)", path);
    return NULL;
  }
  json_error_t je;
  AUTOPTR(json) cfg = json_loadb((const char *)text, len, 0, &je);
  const char *format = NULL, *enc = NULL, *check = NULL, *chunk_id = NULL;
  json_int_t version = 0, chunk_size = 0;
  if (!cfg || json_unpack(cfg, "{s:s, s:I, s:I, s:s, s?s, s?s}", "format", &format, "version", &version,
                          "chunk_size", &chunk_size, "encryption", &enc, "key_check", &check, "chunk_id",
                          &chunk_id) < 0 ||
      strcmp(format, CONFIG_FORMAT) != 0) {
    error(ERR_INVALID, "'%s' is not a snapback repository configuration", cfgpath);
    return NULL;
  }
  if (version < 1 || version > REPO_FORMAT_VERSION || chunk_size != (json_int_t)REPO_CHUNK_SIZE) {
    error(ERR_UNSUPPORTED, "repository '%s' has format version %lld and chunk size %lld: this snapback "
          "reads versions 1 to %d with %zu-byte chunks", path, (long long)version, (long long)chunk_size,
          REPO_FORMAT_VERSION, REPO_CHUNK_SIZE);
    return NULL;
  }
  /* version 3 names its page-skipping ids; older ones hash whole chunks */
  bool encrypted = strcmp(enc, "aes-256-gcm") == 0;
  const char *want_pages = encrypted ? "hmac-sha256-pages" : "sha256-pages";
  const char *want_whole = encrypted ? "hmac-sha256" : "sha256";
  bool page_ids = version >= 3;
  if (chunk_id && strcmp(chunk_id, page_ids ? want_pages : want_whole) != 0) {
    error(ERR_UNSUPPORTED, "repository '%s' (format version %lld) names chunk ids '%s', which this snapback "
          "does not know (it expects '%s')", path, (long long)version, chunk_id, page_ids ? want_pages : want_whole);
    return NULL;
  }
  struct repo *r = xcalloc(1, sizeof *r);
  r->path = xstrdup(path);
  r->version = (int)version;
  r->page_ids = page_ids;
  r->lock_fd = -1;
  pthread_mutex_init(&r->dirty_lock, NULL);
  if (encrypted) {
    r->encrypted = true;
    if (!key_file) {
      error(ERR_AUTH, "repository '%s' is encrypted: give its key with --key-file", path);
      repo_close(r);
      return NULL;
    }
    unsigned char master[REPO_KEY_LEN], kc[32];
    char hex[65];
    if (key_read(key_file, master) < 0) {
      repo_close(r);
      return NULL;
    }
    key_derive(master, "snapback key check", kc);
    key_derive(master, "snapback encryption key", r->enc_key);
    key_derive(master, "snapback chunk id key", r->mac_key);
    OPENSSL_cleanse(master, sizeof master);
    repo_hex(kc, sizeof kc, hex);
    if (!check || CRYPTO_memcmp(hex, check, 64) != 0) {
      error(ERR_AUTH, "wrong key for repository '%s': key file '%s' is not the one it was made with",
            path, key_file);
      repo_close(r);
      return NULL;
    }
  } else if (strcmp(enc, "none") != 0) {
    error(ERR_UNSUPPORTED, "repository '%s' uses encryption '%s', which this snapback does not know", path, enc);
    repo_close(r);
    return NULL;
  }
  return r;
}

void repo_close(struct repo *r)
{
  if (!r) return;
  repo_writers_stop(r);                   /* before the lock goes */
  if (r->lock_fd >= 0) close(r->lock_fd); /* releases the flock */
  OPENSSL_cleanse(r->enc_key, sizeof r->enc_key);
  OPENSSL_cleanse(r->mac_key, sizeof r->mac_key);
  pthread_mutex_destroy(&r->dirty_lock);
  free(r->path);
  free(r);
}

const char *repo_path(const struct repo *r) { return r->path; }
bool repo_encrypted(const struct repo *r) { return r->encrypted; }

int repo_lock(struct repo *r, enum repo_lock_mode mode, void (*on_wait)(void *), void *opaque)
{
  if (r->lock_fd >= 0) return error(ERR_INTERNAL, "repository '%s' is locked already", r->path);
  AUTOFREE char *p = xasprintf("%s/lock", r->path);
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return error(ERR_INTERNAL, "cannot open '%s': %s", p, strerror(errno));
  int op = mode == REPO_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH;
  if (flock(fd, op | LOCK_NB) < 0) {
    if (errno != EWOULDBLOCK) {
      int e = errno;
      close(fd);
      return error(ERR_INTERNAL, "cannot lock '%s': %s", p, strerror(e));
    }
    if (on_wait) on_wait(opaque);
    while (flock(fd, op) < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return error(ERR_INTERNAL, "cannot lock '%s': %s", p, strerror(e));
    }
  }
  r->lock_fd = fd;
  return 0;
}

void repo_mark_dirty(struct repo *r, const char *id)
{
  unsigned idx = 0;
  sscanf(id, "%2x", &idx);
  pthread_mutex_lock(&r->dirty_lock);
  r->dirty[idx & 255] = true;
  pthread_mutex_unlock(&r->dirty_lock);
}

int repo_sync(struct repo *r)
{
  if (repo_writers_drain(r) < 0) return -1;
  bool dirty[256];
  pthread_mutex_lock(&r->dirty_lock);
  memcpy(dirty, r->dirty, sizeof dirty);
  memset(r->dirty, 0, sizeof r->dirty);
  pthread_mutex_unlock(&r->dirty_lock);
  for (int i = 0; i < 256; i++) {
    if (!dirty[i]) continue;
    AUTOFREE char *d = xasprintf("%s/chunks/%02x", r->path, i);
    if (repo_fsync_dir(d) < 0) {
      pthread_mutex_lock(&r->dirty_lock);
      r->dirty[i] = true;
      pthread_mutex_unlock(&r->dirty_lock);
      return -1;
    }
  }
  return 0;
}

int repo_config_upgrade(struct repo *r)
{
  if (r->version >= REPO_MANIFEST2_VERSION) return 0;
  AUTOFREE char *cfgpath = xasprintf("%s/config.json", r->path);
  size_t len;
  AUTOFREE unsigned char *text = repo_read_file(cfgpath, 1 << 20, &len);
  if (!text) return -1;
  json_error_t je;
  AUTOPTR(json) cfg = json_loadb((const char *)text, len, 0, &je);
  if (!cfg) return error(ERR_INVALID, "'%s' is not a snapback repository configuration", cfgpath);
  json_object_set_new(cfg, "version", json_integer(REPO_MANIFEST2_VERSION));
  AUTOFREE char *out = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (repo_write_file(r->path, "config.json", out, strlen(out), false) < 0) return -1;
  r->version = REPO_MANIFEST2_VERSION;
  return 0;
}
