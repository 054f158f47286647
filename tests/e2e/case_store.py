"""The store behind the engine (issue 14): on PostgreSQL one engine per database, whatever its
state directory; the whole suite runs on either store (SNAPBACK_E2E_DB, tests/pg/with-pg.sh)."""
import os
import subprocess
import tempfile
import shutil

from harness import case, ADMIN_PASSWORD


@case("store: a second snapbackd on the same PostgreSQL database, from another state dir, is refused "
      "with a clear message; a kill -9 of the first frees it", store="postgresql")
def second_engine_same_database(env):
    vm = env.create_vm()
    other_state = tempfile.mkdtemp(prefix="snapback-e2e-state-")
    try:
        argv = [env.binary, "--config", "/dev/null", "--http", "--listen", "127.0.0.1:1",
                "--state-dir", other_state, "--domain-type", "qemu", *env.daemon.db_args()]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, SNAPBACK_ADMIN_PASSWORD=ADMIN_PASSWORD))
        out = p.stdout + p.stderr
        env.check(p.returncode != 0, "the second daemon exited %d" % p.returncode)
        env.check("is in use by another snapbackd (snapback pid %d" % env.daemon.proc.pid in out,
                  "the second daemon's message does not name the first: %r" % out)
        env.check("one engine per store" in out, "the refusal does not say why: %r" % out)
        env.check(env.daemon.alive(), "the first daemon died")
        env.expect(env.api("GET", "/vms/" + vm[0]), 200, "the first daemon still answers")
        # the server drops the lock with the dead engine's connection: the next one starts
        env.daemon.stop(9)
        env.daemon.start()
        env._token = None
        env.expect(env.api("GET", "/vms/" + vm[0]), 200, "the engine after a kill -9")
    finally:
        shutil.rmtree(other_state, ignore_errors=True)
