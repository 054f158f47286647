/* throttle.c: failed logins slowed per user name and per client address.
 *
 * Each key ("user:bob@internal", "addr:192.0.2.7") counts its failed logins.
 * After the free ones, every further attempt must wait 2^(n - free) seconds
 * (capped) after the last failure; an attempt that comes too early is
 * refused at once, before any argon2 work, with the time left, so a password
 * guesser gets fast 429 answers and never holds a worker thread or the CPU.
 * An attempt let through counts as a failure until it succeeds, so parallel
 * guesses cannot all pass before the first of them has failed.
 * A key is forgotten once it has been quiet for the forget window. The
 * table is bounded: when full, the key idle longest goes. Thread-safe. */
#include "cmd/throttle.h"
#include "util/buf.h"
#include <pthread.h>
#include <string.h>

#define THROTTLE_MAX_KEYS 16384
#define THROTTLE_CAP_MS (60 * 1000)
#define THROTTLE_FORGET_MS (15 * 60 * 1000)

struct throttle_entry {
  char *key;
  int fails;
  int64_t last_ms;       /* of the last failure */
};

struct throttle {
  pthread_mutex_t lock;
  struct throttle_entry *e;
  size_t n;
};

struct throttle *throttle_new(void)
{
  struct throttle *t = xcalloc(1, sizeof *t);
  pthread_mutex_init(&t->lock, NULL);
  t->e = xcalloc(THROTTLE_MAX_KEYS, sizeof *t->e);
  return t;
}

void throttle_free(struct throttle *t)
{
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) free(t->e[i].key);
  free(t->e);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

/* the entry of KEY or NULL; drops forgotten entries on the way */
static struct throttle_entry *find(struct throttle *t, const char *key, int64_t now)
{
  for (size_t i = 0; i < t->n;) {
    struct throttle_entry *x = &t->e[i];
    if (now - x->last_ms > THROTTLE_FORGET_MS) {
      free(x->key);
      *x = t->e[--t->n];
      continue;
    }
    if (strcmp(x->key, key) == 0) return x;
    i++;
  }
  return NULL;
}

static int64_t delay_ms(int fails, int free_fails)
{
  if (fails < free_fails) return 0;
  int shift = fails - free_fails;
  if (shift > 16) return THROTTLE_CAP_MS;
  int64_t d = (int64_t)1000 << shift;
  return d < THROTTLE_CAP_MS ? d : THROTTLE_CAP_MS;
}

/* the entry of KEY, made when missing (evicting the key idle longest when full) */
static struct throttle_entry *find_or_add(struct throttle *t, const char *key, int64_t now)
{
  struct throttle_entry *x = find(t, key, now);
  if (x) return x;
  if (t->n == THROTTLE_MAX_KEYS) {
    size_t oldest = 0;
    for (size_t i = 1; i < t->n; i++)
      if (t->e[i].last_ms < t->e[oldest].last_ms) oldest = i;
    free(t->e[oldest].key);
    t->e[oldest] = t->e[--t->n];
  }
  x = &t->e[t->n++];
  *x = (struct throttle_entry){.key = xstrdup(key), .last_ms = now};
  return x;
}

int64_t throttle_attempt(struct throttle *t, const char *const *keys, const int *free_fails, size_t n,
                         int64_t now)
{
  int64_t wait = 0;
  pthread_mutex_lock(&t->lock);
  for (size_t i = 0; i < n; i++) {
    struct throttle_entry *x = find(t, keys[i], now);
    int64_t w = x ? x->last_ms + delay_ms(x->fails, free_fails[i]) - now : 0;
    if (w > wait) wait = w;
  }
  /* counted as failed until it succeeds: concurrent guesses cannot all
   * slip through before the first of them fails */
  for (size_t i = 0; i < n && !wait; i++) {
    struct throttle_entry *x = find_or_add(t, keys[i], now);
    if (x->fails < 1000) x->fails++;
    x->last_ms = now;
  }
  pthread_mutex_unlock(&t->lock);
  return wait;
}

void throttle_forgive(struct throttle *t, const char *key)
{
  pthread_mutex_lock(&t->lock);
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->e[i].key, key) == 0) {
      if (t->e[i].fails > 0) t->e[i].fails--;
      break;
    }
  pthread_mutex_unlock(&t->lock);
}

void throttle_reset(struct throttle *t, const char *key)
{
  pthread_mutex_lock(&t->lock);
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->e[i].key, key) == 0) {
      free(t->e[i].key);
      t->e[i] = t->e[--t->n];
      break;
    }
  pthread_mutex_unlock(&t->lock);
}
