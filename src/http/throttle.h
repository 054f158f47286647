/* throttle.h: exponential back-off of failed logins per key (user name,
 * client address); see throttle.c. All functions are thread-safe. */
#pragma once
#include <stdint.h>
#include "util/cleanup.h"

struct throttle;

struct throttle *throttle_new(void);
void throttle_free(struct throttle *t);
DEFINE_AUTOPTR(throttle, struct throttle, throttle_free)

/* milliseconds KEY must still wait before its next attempt (0: may try now);
 * the first FREE_FAILS failures cost no wait, each further one doubles it
 * from 1 s up to 60 s; NOW is the wall clock in ms */
int64_t throttle_wait_ms(struct throttle *t, const char *key, int free_fails, int64_t now);
/* records a failed attempt of KEY at NOW */
void throttle_failed(struct throttle *t, const char *key, int64_t now);
/* forgets KEY's failures (a successful login) */
void throttle_reset(struct throttle *t, const char *key);
