/* auth.c: argon2id passwords, bearer tokens, HTTP Basic, and the in-memory
 * credential caches that keep authenticated requests cheap (see auth.h) */
#include "cmd/auth.h"
#include "cmd/perm.h"
#include "cmd/throttle.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane */
#define ARGON2_T 2
#define ARGON2_M_KIB 19456
#define ARGON2_P 1
#define ARGON2_SALT_LEN 16
#define ARGON2_HASH_LEN 32

#define TOKEN_BYTES 32
#define CACHE_BUCKETS 1024
#define CACHE_MAX 8192
/* how long a verified Basic credential, and a token without a store
 * re-check, stay in memory */
#define BASIC_CACHE_MS (60 * 1000)
/* how long a password that passed argon2 against a stored hash is known to
 * match it (a login, or Basic after its minute): the key names the stored
 * hash, so a changed password misses at once */
#define VERIFIED_CACHE_MS (15 * 60 * 1000)
#define BEARER_RECHECK_MS (5 * 60 * 1000)
/* expired tokens removed from the store per login */
#define TOKEN_PURGE_BATCH 100

struct cache_entry {
  struct cache_entry *next;
  char *key;
  int64_t expires_ms;       /* wall clock; the entry is dead after it */
  char *user_id, *user_name;
};

/* a small chained hash table; the caller holds auth->lock */
struct cache {
  struct cache_entry *buckets[CACHE_BUCKETS];
  size_t count;
};

struct auth {
  struct store *st;          /* borrowed */
  int64_t token_ttl_ms;
  pthread_mutex_t lock;      /* guards both caches */
  struct cache bearer;       /* token -> user */
  struct cache basic;        /* hex SHA-256 of the Basic value -> user */
  struct cache verified;     /* hex HMAC of (stored hash, password) -> user */
  unsigned char verified_key[32]; /* random, this process's only */
  bool verified_on;          /* the key is random: the verified cache is used */
  struct throttle *throttle; /* failed logins per user and per address */
};

/* failed logins without a wait: per user name, and per client address (which
 * may be a NAT with many users behind it) */
#define FREE_FAILS_USER 3
#define FREE_FAILS_ADDR 10

/* the Retry-After of this thread's last ERR_THROTTLED, in seconds */
static _Thread_local int64_t last_retry_after_s;

int64_t auth_last_retry_after(void) { return last_retry_after_s; }

/* ---- the cache ---- */

static size_t cache_hash(const char *key)
{
  uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  return (size_t)(h % CACHE_BUCKETS);
}

static void cache_entry_free(struct cache_entry *e)
{
  if (!e) return;
  free(e->key);
  free(e->user_id);
  free(e->user_name);
  free(e);
}

/* removes entries that match KEY (NULL: none) or are dead at NOW (0: none);
 * ALL removes everything */
static void cache_sweep(struct cache *c, const char *key, int64_t now, bool all)
{
  size_t from = 0, to = CACHE_BUCKETS;
  if (key && !all && !now) {
    from = cache_hash(key);
    to = from + 1;
  }
  for (size_t i = from; i < to; i++) {
    struct cache_entry **pp = &c->buckets[i];
    while (*pp) {
      struct cache_entry *e = *pp;
      if (all || (key && strcmp(e->key, key) == 0) || (now && e->expires_ms <= now)) {
        *pp = e->next;
        cache_entry_free(e);
        c->count--;
      } else {
        pp = &e->next;
      }
    }
  }
}

/* a copy of the cached user for KEY, or NULL when absent or dead */
static struct user *cache_get(struct cache *c, const char *key, int64_t now)
{
  for (struct cache_entry *e = c->buckets[cache_hash(key)]; e; e = e->next) {
    if (!secret_equal(e->key, key)) continue;
    if (e->expires_ms <= now) return NULL;
    struct user *u = xcalloc(1, sizeof *u);
    u->id = xstrdup(e->user_id);
    u->name = xstrdup(e->user_name);
    return u;
  }
  return NULL;
}

static void cache_put(struct cache *c, const char *key, const struct user *u,
                      int64_t expires_ms, int64_t now)
{
  cache_sweep(c, key, 0, false);
  if (c->count >= CACHE_MAX) cache_sweep(c, NULL, now, false);
  if (c->count >= CACHE_MAX) cache_sweep(c, NULL, 0, true);
  struct cache_entry *e = xcalloc(1, sizeof *e);
  e->key = xstrdup(key);
  e->expires_ms = expires_ms;
  e->user_id = xstrdup(u->id);
  e->user_name = xstrdup(u->name);
  size_t h = cache_hash(key);
  e->next = c->buckets[h];
  c->buckets[h] = e;
  c->count++;
}

/* ---- tokens at rest ---- */

/* tokens an older version stored in the clear are replaced by their digest,
 * so they keep working and the store holds no usable token */
static void hash_legacy_tokens(struct store *st)
{
  AUTOLIST(token) old = token_list_not_like(st, SECRET_DIGEST_PREFIX "%");
  if (!old) goto out;
  if (!old[0]) return;
  if (store_begin(st) < 0) goto out;
  for (size_t i = 0; old[i]; i++) {
    AUTOFREE char *digest = secret_digest(old[i]->token);
    struct token t = {.token = digest, .user_id = old[i]->user_id, .expires_ms = old[i]->expires_ms};
    if (token_delete(st, old[i]->token) < 0 || token_insert(st, &t) < 0) {
      store_rollback(st);
      goto out;
    }
  }
  if (store_commit(st) < 0) goto out;
  size_t n = 0;
  while (old[n]) n++;
  log_info("replaced %zu bearer token(s) stored in the clear by their SHA-256", n);
  return;
out:
  log_err("cannot replace bearer tokens stored in the clear: %s", error_message());
  error_clear();
}

struct auth *auth_new(struct store *st, int64_t token_ttl_ms)
{
  struct auth *a = xcalloc(1, sizeof *a);
  a->st = st;
  a->token_ttl_ms = token_ttl_ms > 0 ? token_ttl_ms : AUTH_TOKEN_TTL_DEFAULT_MS;
  pthread_mutex_init(&a->lock, NULL);
  a->throttle = throttle_new();
  /* no entropy: no key, and every password goes through argon2 */
  a->verified_on = RAND_bytes(a->verified_key, sizeof a->verified_key) == 1;
  hash_legacy_tokens(st);
  return a;
}

void auth_free(struct auth *a)
{
  if (!a) return;
  cache_sweep(&a->bearer, NULL, 0, true);
  cache_sweep(&a->basic, NULL, 0, true);
  cache_sweep(&a->verified, NULL, 0, true);
  OPENSSL_cleanse(a->verified_key, sizeof a->verified_key);
  throttle_free(a->throttle);
  pthread_mutex_destroy(&a->lock);
  free(a);
}

/* ---- passwords ---- */

char *auth_hash_password(const char *password)
{
  unsigned char salt[ARGON2_SALT_LEN];
  if (RAND_bytes(salt, sizeof salt) != 1) {
    error(ERR_INTERNAL, "cannot hash password: no entropy");
    return NULL;
  }
  size_t len = argon2_encodedlen(ARGON2_T, ARGON2_M_KIB, ARGON2_P, sizeof salt,
                                 ARGON2_HASH_LEN, Argon2_id);
  AUTOFREE char *encoded = xcalloc(len + 1, 1);
  int rc = argon2id_hash_encoded(ARGON2_T, ARGON2_M_KIB, ARGON2_P, password, strlen(password),
                                 salt, sizeof salt, ARGON2_HASH_LEN, encoded, len + 1);
  if (rc != ARGON2_OK) {
    error(ERR_INTERNAL, "cannot hash password: %s", argon2_error_message(rc));
    return NULL;
  }
  return steal_pointer(&encoded);
}

int auth_verify_password(const char *encoded, const char *password)
{
  if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0)
    return error(ERR_INTERNAL, "stored password hash is not an argon2id hash");
  int rc = argon2id_verify(encoded, password, strlen(password));
  if (rc == ARGON2_OK) return 0;
  if (rc == ARGON2_VERIFY_MISMATCH) return error(ERR_AUTH, "invalid username or password");
  return error(ERR_INTERNAL, "cannot verify password: %s", argon2_error_message(rc));
}

char *auth_full_username(const char *username)
{
  if (strchr(username, '@')) return xstrdup(username);
  return xasprintf("%s%s", username, AUTH_DEFAULT_PROFILE);
}

static struct user *check_password_once(struct auth *a, const char *username, const char *password);

/* the user with USERNAME and PASSWORD, or NULL + ERR_AUTH, or ERR_THROTTLED
 * at once (no argon2 work) while the user name or CLIENT (an address, may be
 * NULL) must wait after failed logins; the same for a user that does not exist */
static struct user *check_password(struct auth *a, const char *username, const char *password,
                                   const char *client)
{
  AUTOFREE char *full = auth_full_username(username && *username ? username : "?");
  AUTOFREE char *full_digest = secret_digest(full);  /* a bounded key for any name */
  AUTOFREE char *ukey = xasprintf("user:%s", full_digest);
  AUTOFREE char *akey = client ? xasprintf("addr:%s", client) : NULL;
  const char *keys[] = {ukey, akey};
  static const int free_fails[] = {FREE_FAILS_USER, FREE_FAILS_ADDR};
  int64_t wait = throttle_attempt(a->throttle, keys, free_fails, akey ? 2 : 1, now_ms());
  if (wait) {
    last_retry_after_s = (wait + 999) / 1000;
    return error(ERR_THROTTLED, "too many failed logins for this user or from this address: try "
                 "again in %lld s", (long long)last_retry_after_s), NULL;
  }
  struct user *u = check_password_once(a, username, password);
  /* the attempt counted as a failure until now: a success clears the user's
   * count, a failure of the store is not the caller's */
  if (u) throttle_reset(a->throttle, ukey);
  else if (error_code() != ERR_AUTH) throttle_forgive(a->throttle, ukey);
  if (akey && (u || error_code() != ERR_AUTH)) throttle_forgive(a->throttle, akey);
  return u;
}

/* the key under which PASSWORD is known to match ENCODED: an HMAC under a
 * random key of this process, so that nothing outside its memory can test
 * guesses against it at SHA-256 speed; NULL when the key is not random */
static char *verified_digest(const struct auth *a, const char *encoded, const char *password)
{
  if (!a->verified_on) return NULL;
  AUTOFREE char *msg = xasprintf("%s%c%s", encoded, 0, password);
  size_t len = strlen(encoded) + 1 + strlen(password);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!HMAC(EVP_sha256(), a->verified_key, (int)sizeof a->verified_key, (const unsigned char *)msg, len, md,
            &mdlen)) {
    OPENSSL_cleanse(msg, len);
    return NULL;
  }
  OPENSSL_cleanse(msg, len);
  return hex_of(md, mdlen);
}

/* 0 when PASSWORD matches u's stored hash: from the cache when it passed
 * argon2 against that same hash lately (a cron job logging in for each VM
 * pays argon2 once), else by argon2, then cached */
static int verify_cached(struct auth *a, const struct user *u, const char *password)
{
  AUTOFREE char *key = verified_digest(a, u->password_hash, password);
  int64_t now = now_ms();
  if (key) {
    pthread_mutex_lock(&a->lock);
    AUTOPTR(user) hit = cache_get(&a->verified, key, now);
    pthread_mutex_unlock(&a->lock);
    if (hit && strcmp(hit->id, u->id) == 0) return 0;
  }
  if (auth_verify_password(u->password_hash, password) < 0) return -1;
  if (key) {
    pthread_mutex_lock(&a->lock);
    cache_put(&a->verified, key, u, now + VERIFIED_CACHE_MS, now);
    pthread_mutex_unlock(&a->lock);
  }
  return 0;
}

/* the user with USERNAME and PASSWORD, or NULL + ERR_AUTH (same message for
 * an unknown user and a wrong password, and the same argon2 cost) */
static struct user *check_password_once(struct auth *a, const char *username, const char *password)
{
  /* a real hash of a password nobody has, so that an unknown user costs the
   * same argon2 work as a wrong password */
  static const char dummy[] =
      "$argon2id$v=19$m=19456,t=2,p=1$c25hcGJhY2tkdW1teXNhbHQ$"
      "SBULAKMZrtd/K0S/776nlkQdSnd8QZDlNWgzdntZHsg";
  if (!username || !*username || !password)
    return error(ERR_AUTH, "invalid username or password"), NULL;
  AUTOFREE char *full = auth_full_username(username);
  AUTOPTR(user) u = user_get_by_name(a->st, full);
  if (!u) {
    if (error_code() != ERR_NOT_FOUND) return NULL;
    (void)argon2id_verify(dummy, password, strlen(password));
    return error(ERR_AUTH, "invalid username or password"), NULL;
  }
  if (verify_cached(a, u, password) < 0) return NULL;
  free(u->password_hash);
  u->password_hash = NULL;
  /* a locked user, or one without LOGIN anywhere, gets no token */
  if (perm_can_login(a->st, u) < 0) return NULL;
  return steal_pointer(&u);
}

/* best effort: drops a batch of expired tokens from the store */
static void purge_expired_tokens(struct auth *a, int64_t now)
{
  AUTOLIST(token) old = token_list_expired(a->st, now, TOKEN_PURGE_BATCH);
  for (size_t i = 0; old && old[i]; i++)
    if (token_delete(a->st, old[i]->token) < 0) break;
  if (!old || error_code() != ERR_NONE)
    log_debug("cannot purge expired tokens: %s", error_message());
  error_clear();
}

char *auth_login(struct auth *a, const char *username, const char *password, const char *client,
                 int64_t *expires_ms)
{
  AUTOPTR(user) u = check_password(a, username, password, client);
  if (!u) return NULL;
  AUTOFREE char *tok = random_hex(TOKEN_BYTES);
  if (!tok) return NULL;
  AUTOFREE char *digest = secret_digest(tok);
  int64_t now = now_ms();
  struct token t = {.token = digest, .user_id = u->id, .expires_ms = now + a->token_ttl_ms};
  if (token_insert(a->st, &t) < 0) return NULL;
  pthread_mutex_lock(&a->lock);
  int64_t until = t.expires_ms < now + BEARER_RECHECK_MS ? t.expires_ms : now + BEARER_RECHECK_MS;
  cache_put(&a->bearer, digest, u, until, now);
  pthread_mutex_unlock(&a->lock);
  purge_expired_tokens(a, now);
  if (expires_ms) *expires_ms = t.expires_ms;
  return steal_pointer(&tok);
}

int auth_logout(struct auth *a, const char *token)
{
  if (!token || !*token) return 0;
  AUTOFREE char *digest = secret_digest(token);
  pthread_mutex_lock(&a->lock);
  cache_sweep(&a->bearer, digest, 0, false);
  pthread_mutex_unlock(&a->lock);
  if (token_delete(a->st, digest) < 0) {
    if (error_code() != ERR_NOT_FOUND) return -1;
    error_clear();
  }
  return 0;
}

struct user *auth_check_bearer(struct auth *a, const char *token)
{
  if (!token || !*token) return error(ERR_AUTH, "invalid or expired token"), NULL;
  /* only the digest is kept, in memory and in the store */
  AUTOFREE char *digest = secret_digest(token);
  int64_t now = now_ms();
  pthread_mutex_lock(&a->lock);
  struct user *cached = cache_get(&a->bearer, digest, now);
  pthread_mutex_unlock(&a->lock);
  if (cached) return cached;

  AUTOPTR(token) t = token_get(a->st, digest);
  if (!t) {
    if (error_code() != ERR_NOT_FOUND) return NULL;
    return error(ERR_AUTH, "invalid or expired token"), NULL;
  }
  if (!secret_equal(t->token, digest))
    return error(ERR_AUTH, "invalid or expired token"), NULL;
  if (t->expires_ms <= now) {
    pthread_mutex_lock(&a->lock);
    cache_sweep(&a->bearer, digest, 0, false);
    pthread_mutex_unlock(&a->lock);
    return error(ERR_AUTH, "invalid or expired token"), NULL;
  }
  AUTOPTR(user) u = user_get(a->st, t->user_id);
  if (!u) {
    if (error_code() != ERR_NOT_FOUND) return NULL;
    return error(ERR_AUTH, "invalid or expired token"), NULL;
  }
  free(u->password_hash);
  u->password_hash = NULL;
  int64_t until = t->expires_ms < now + BEARER_RECHECK_MS ? t->expires_ms : now + BEARER_RECHECK_MS;
  pthread_mutex_lock(&a->lock);
  cache_put(&a->bearer, digest, u, until, now);
  pthread_mutex_unlock(&a->lock);
  return steal_pointer(&u);
}

int auth_parse_basic(const char *b64, char **user, char **password)
{
  *user = *password = NULL;
  while (*b64 == ' ') b64++;
  size_t len = strlen(b64);
  while (len && (b64[len - 1] == ' ' || b64[len - 1] == '\r' || b64[len - 1] == '\n')) len--;
  if (!len || len % 4 || len > 8192)
    return error(ERR_AUTH, "malformed Basic credentials");
  AUTOFREE unsigned char *raw = xcalloc(len / 4 * 3 + 1, 1);
  int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
  if (n < 0) return error(ERR_AUTH, "malformed Basic credentials");
  /* EVP_DecodeBlock counts the padding as zero bytes */
  if (b64[len - 1] == '=') n--;
  if (b64[len - 2] == '=') n--;
  if (memchr(raw, 0, (size_t)n)) return error(ERR_AUTH, "malformed Basic credentials");
  raw[n] = 0;
  char *colon = strchr((char *)raw, ':');
  if (!colon) return error(ERR_AUTH, "malformed Basic credentials");
  *colon = 0;
  *user = xstrdup((char *)raw);
  *password = xstrdup(colon + 1);
  OPENSSL_cleanse(raw, (size_t)n);
  return 0;
}

struct user *auth_check_basic(struct auth *a, const char *b64, const char *client)
{
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)b64, strlen(b64), md);
  AUTOFREE char *key = hex_of(md, sizeof md);
  int64_t now = now_ms();
  pthread_mutex_lock(&a->lock);
  struct user *cached = cache_get(&a->basic, key, now);
  pthread_mutex_unlock(&a->lock);
  if (cached) return cached;

  AUTOFREE char *name = NULL;
  AUTOFREE char *password = NULL;
  if (auth_parse_basic(b64, &name, &password) < 0) return NULL;
  AUTOPTR(user) u = check_password(a, name, password, client);
  OPENSSL_cleanse(password, strlen(password));
  if (!u) return NULL;
  pthread_mutex_lock(&a->lock);
  cache_put(&a->basic, key, u, now + BASIC_CACHE_MS, now);
  pthread_mutex_unlock(&a->lock);
  return steal_pointer(&u);
}

struct user *auth_check_header(struct auth *a, const char *authorization, const char *client)
{
  if (!authorization) return error(ERR_AUTH, "authentication required"), NULL;
  while (*authorization == ' ') authorization++;
  if (strncasecmp(authorization, "Bearer ", 7) == 0) {
    const char *t = authorization + 7;
    while (*t == ' ') t++;
    return auth_check_bearer(a, t);
  }
  if (strncasecmp(authorization, "Basic ", 6) == 0) return auth_check_basic(a, authorization + 6, client);
  return error(ERR_AUTH, "authentication required"), NULL;
}
