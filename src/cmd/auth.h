/* auth.h: passwords, bearer tokens and HTTP Basic, for the HTTP layer,
 * which reads no user or token from the store itself.
 *
 * Passwords are stored as argon2id encoded strings (OWASP's m=19 MiB, t=2,
 * p=1, so a login costs a few tens of milliseconds). A login issues an
 * opaque token (64 hex chars); the store keeps only its SHA-256 (the token
 * is 256 random bits, so no salt or slow hash is needed) with an expiry, and
 * tokens an older version stored in the clear are hashed at start.
 *
 * The hot path (an authenticated GET at high rate) must not run argon2 or
 * touch the store: struct auth keeps two in-memory caches, guarded by one
 * mutex, so every function here is thread-safe:
 *  - bearer tokens -> user, until the token expires (re-read from the store
 *    every few minutes, so a deleted user or token stops working);
 *  - verified Basic credentials, keyed by SHA-256 of the header value, for
 *    one minute (a changed password takes effect within that minute);
 *  - passwords that passed argon2 lately, keyed by an HMAC (under a random
 *    key of the process) of the stored hash and the password, for 15
 *    minutes: a login or a Basic check reads the user from the store, and
 *    a password it verified lately against that same hash skips argon2, so
 *    a changed password misses at once, and a locked user is refused as
 *    before.
 *
 * Errors: wrong or missing credentials are ERR_AUTH ("invalid username or
 * password", "invalid or expired token"); store failures keep their code. */
#pragma once
#include <stdint.h>
#include "store/store.h"
#include "util/cleanup.h"

struct auth;

#define AUTH_DEFAULT_PROFILE "@internal"
#define AUTH_TOKEN_TTL_DEFAULT_MS (24LL * 3600 * 1000)

/* ST is borrowed and must outlive the auth; token_ttl_ms <= 0 means 24 h */
struct auth *auth_new(struct store *st, int64_t token_ttl_ms);
void auth_free(struct auth *a);
DEFINE_AUTOPTR(auth, struct auth, auth_free)

/* argon2id encoded hash of PASSWORD with a fresh random salt; caller frees;
 * NULL + ERR_INTERNAL when no entropy */
char *auth_hash_password(const char *password);
/* 0 when PASSWORD matches ENCODED; -1 with ERR_AUTH when it does not, or
 * ERR_INTERNAL when ENCODED is not an argon2id hash */
int auth_verify_password(const char *encoded, const char *password);

/* "admin" -> "admin@internal"; names with '@' are kept; caller frees */
char *auth_full_username(const char *username);

/* checks USERNAME/PASSWORD and issues a token (caller frees); *expires_ms
 * (may be NULL) gets its wall-clock expiry. NULL + error on failure.
 * CLIENT is the client's address (may be NULL). Failed logins are slowed per
 * user name and per address (throttle.c): while either must wait, the answer
 * is ERR_THROTTLED at once, and auth_last_retry_after() tells how long. */
char *auth_login(struct auth *a, const char *username, const char *password, const char *client,
                 int64_t *expires_ms);
/* seconds to wait after this thread's last ERR_THROTTLED (for Retry-After) */
int64_t auth_last_retry_after(void);
/* deletes TOKEN from the store and the cache; an unknown token is fine */
int auth_logout(struct auth *a, const char *token);

/* the user a token belongs to (caller frees with user_free; password_hash is
 * NULL), or NULL + ERR_AUTH when unknown or expired */
struct user *auth_check_bearer(struct auth *a, const char *token);
/* the same for the base64 part of "Authorization: Basic B64" from CLIENT
 * (an address or NULL; throttled like auth_login, except for credentials
 * verified within the last minute) */
struct user *auth_check_basic(struct auth *a, const char *b64, const char *client);
/* the same for a whole Authorization header value (Bearer or Basic; NULL or
 * another scheme -> ERR_AUTH "authentication required") */
struct user *auth_check_header(struct auth *a, const char *authorization, const char *client);

/* decodes the base64 "user:password" of a Basic header; *user and
 * *password are malloc'd; -1 + ERR_AUTH when malformed */
int auth_parse_basic(const char *b64, char **user, char **password);
