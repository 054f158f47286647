/* children.c: no child outlives the engine.
 *
 * qemu-img runs through spawn_status, whose child is killed by the kernel
 * when the engine dies (PR_SET_PDEATHSIG). This start-up sweep covers what
 * that cannot: a child that was between fork and prctl, one left by an older
 * engine, or a qemu-nbd whose transfer row is gone. A leftover is a qemu-img
 * or qemu-nbd that init has adopted (its engine is dead) and that names a
 * path of this engine's state directory or storage domains in its argv. The
 * state-directory lock makes this engine the only one that may own them. */
#include "cmd/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/spawn.h"
#include <string.h>

static void sweep_program(struct engine *eng, const char *prog, const char *needle)
{
  size_t n = 0;
  AUTOFREE pid_t *pids = process_find(prog, needle, &n);
  for (size_t i = 0; i < n; i++) {
    if (process_parent(pids[i]) != 1) continue; /* someone alive runs it: not ours */
    if (spawn_stop(pids[i], 2000) < 0) {
      log_err("%s", error_message());
      error_clear();
      continue;
    }
    engine_event(eng, SEVERITY_WARNING, EV_RECONCILED, NULL, NULL,
                 "stopped %s (pid %d) left running by an engine that died", prog, (int)pids[i]);
  }
}

void engine_sweep_children(struct engine *eng)
{
  static const char *const progs[] = {"qemu-img", "qemu-nbd"};
  AUTOLIST(storage_domain) sds = storage_domain_list_all(eng->st);
  if (!sds) { log_err("%s", error_message()); error_clear(); }
  for (size_t p = 0; p < ARRAY_SIZE(progs); p++) {
    sweep_program(eng, progs[p], eng->state_dir);
    for (size_t i = 0; sds && sds[i]; i++)
      if (strncmp(sds[i]->path, eng->state_dir, strlen(eng->state_dir)) != 0)
        sweep_program(eng, progs[p], sds[i]->path);
  }
}
