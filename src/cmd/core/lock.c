/* lock.c: exclusive object locks held by running commands.
 *
 * A command declares the ids it touches (VM, disk ...). They are taken all or
 * none, without waiting: a conflicting command fails at once with a fault that
 * says which command of which user holds the object, as oVirt does. */
#include "cmd/internal.h"
#include "util/err.h"
#include <string.h>

static struct lock_entry *lock_find(struct engine *eng, const char *id)
{
  for (size_t i = 0; i < eng->nlocks; i++)
    if (strcmp(eng->locks[i].id, id) == 0) return &eng->locks[i];
  return NULL;
}

int locks_acquire(struct engine *eng, const char *const *ids, const char *cmd, const struct user *u)
{
  pthread_mutex_lock(&eng->lock_mu);
  for (size_t i = 0; ids[i]; i++) {
    struct lock_entry *held = lock_find(eng, ids[i]);
    if (held) {
      error(ERR_CONFLICT,
            "object '%s' is locked by command '%s' of user '%s'; try again when it has finished",
            ids[i], held->cmd, held->user);
      pthread_mutex_unlock(&eng->lock_mu);
      return -1;
    }
  }
  for (size_t i = 0; ids[i]; i++) {
    bool dup = false;
    for (size_t j = 0; j < i; j++) dup |= strcmp(ids[i], ids[j]) == 0;
    if (dup) continue;
    if (eng->nlocks == eng->cap_locks) {
      eng->cap_locks = eng->cap_locks ? eng->cap_locks * 2 : 16;
      eng->locks = xrealloc(eng->locks, eng->cap_locks * sizeof *eng->locks);
    }
    eng->locks[eng->nlocks++] = (struct lock_entry){
      xstrdup(ids[i]), cmd, xstrdup(u ? u->name : "engine")};
  }
  pthread_mutex_unlock(&eng->lock_mu);
  return 0;
}

void locks_release(struct engine *eng, const char *const *ids)
{
  pthread_mutex_lock(&eng->lock_mu);
  for (size_t i = 0; ids[i]; i++) {
    struct lock_entry *e = lock_find(eng, ids[i]);
    if (!e) continue;
    free(e->id);
    free(e->user);
    *e = eng->locks[--eng->nlocks];
  }
  pthread_mutex_unlock(&eng->lock_mu);
}
