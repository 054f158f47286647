/* throttle.h: exponential back-off of failed logins per key (user name,
 * client address); see throttle.c. All functions are thread-safe. */
#pragma once
#include <stdint.h>
#include "util/cleanup.h"

struct throttle;

struct throttle *throttle_new(void);
void throttle_free(struct throttle *t);
DEFINE_AUTOPTR(throttle, struct throttle, throttle_free)

/* an attempt on behalf of KEYS[0..N): when any of them must still wait,
 * returns the milliseconds left (the longest) and records nothing; else
 * returns 0 and counts the attempt as a failure of every key until
 * throttle_forgive()/throttle_reset() says otherwise. Each key's first
 * FREE_FAILS[i] failures cost no wait; each further one doubles the wait,
 * from 1 s up to 60 s after the last failure. NOW is the wall clock in ms. */
int64_t throttle_attempt(struct throttle *t, const char *const *keys, const int *free_fails, size_t n,
                         int64_t now);
/* takes back one counted failure of KEY (an attempt that succeeded) */
void throttle_forgive(struct throttle *t, const char *key);
/* forgets KEY's failures (a successful login for a user name) */
void throttle_reset(struct throttle *t, const char *key);
