#!/usr/bin/env python3
"""run.py: snapback's end-to-end suite (real daemon, real libvirt/QEMU).

    python3 tests/e2e/run.py --daemon build/src/daemon/snapbackd [-k SUBSTRING]... [--keep]

Prints one line per test, then exactly "N passed, N failed"; exits 1 on any failure.
Details of failures (and the daemon's last log lines) go to stderr.
libvirt not answering is a failure, not a skip: the machine set-up must start it."""
import argparse
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

MODULES = ["case_auth", "case_setup", "case_lifecycle", "case_status", "case_query",
           "case_errors", "case_events", "case_restart", "case_backup", "case_snapshots",
           "case_transfers", "case_ova", "case_backup_app", "case_locks",
           "case_imageio", "case_notify", "case_docs", "case_paths", "case_ops", "case_perm", "case_incremental", "case_web", "case_hardening", "case_conformance", "case_statistics", "case_console", "case_nics", "case_backup_client", "case_bitmaps", "case_hosts", "case_cdrom", "case_guestnet",
           "case_store"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True, help="path to snapbackd")
    ap.add_argument("-k", action="append", default=[], help="run only tests whose title contains this")
    ap.add_argument("--keep", action="store_true", help="keep state and log directories")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--shard", default="1/1", metavar="I/N",
                    help="run only the I-th of N interleaved parts of the cases (1/2 and 2/2 side by side)")
    args = ap.parse_args()
    try:
        shard, nshards = (int(x) for x in args.shard.split("/"))
        if not 1 <= shard <= nshards:
            raise ValueError
    except ValueError:
        ap.error("--shard wants I/N with 1 <= I <= N, e.g. 1/2")

    for m in MODULES:
        importlib.import_module(m)
    cases = [(t, f) for t, f in harness.CASES if not args.k or any(k in t for k in args.k)]
    cases = cases[shard - 1::nshards]
    if args.list:
        for t, _ in cases:
            print(t)
        return 0

    passed = failed = skipped = 0
    t_all = time.monotonic()
    why = harness.virsh_version()
    if why is not None:
        print("FAIL prerequisite: `virsh -c %s version` does not answer (%s); the machine set-up "
              "must start libvirtd and virtlogd" % (harness.VIRSH_URI, why))
        print("0 passed, 1 failed")
        return 1
    daemon = os.path.abspath(args.daemon)
    if not os.access(daemon, os.X_OK):
        print("FAIL prerequisite: %s is not an executable snapbackd" % daemon)
        print("0 passed, 1 failed")
        return 1

    for title, fn in cases:
        t0 = time.monotonic()
        env = harness.Env(daemon, keep=args.keep)
        hard = skip = None
        try:
            env.start()
            fn(env)
        except harness.Skip as e:
            skip = str(e)
        except harness.Failure as e:
            hard = str(e)
        except Exception:
            hard = "exception in the test:\n" + traceback.format_exc()
        problems = list(env.failures) + ([hard] if hard else [])
        log = env.daemon.log_tail() if problems else ""
        state_dir = env.state_dir
        try:
            env.close()
        except Exception:
            problems.append("cleanup failed:\n" + traceback.format_exc())
        problems += ["a sanitizer report in the daemon's output:\n" + r for r in getattr(env, "sanitizer", [])]
        dt = time.monotonic() - t0
        if skip and not problems:
            skipped += 1
            print("skip %s: %s" % (title, skip), flush=True)
        elif problems:
            failed += 1
            first = problems[0].splitlines()[0] if problems[0] else "?"
            more = " (+%d more)" % (len(problems) - 1) if len(problems) > 1 else ""
            print("FAIL %s (%.1fs): %s%s" % (title, dt, first, more), flush=True)
            sys.stderr.write("---- %s\n" % title)
            for p in problems:
                sys.stderr.write("  - " + p.replace("\n", "\n    ") + "\n")
            if args.keep:
                sys.stderr.write("  state dir kept: %s\n" % state_dir)
            sys.stderr.write("  daemon log (last lines):\n    " + log.replace("\n", "\n    ") + "\n")
            sys.stderr.flush()
        else:
            passed += 1
            print("ok   %s (%.1fs)" % (title, dt), flush=True)
    sys.stderr.write("e2e total %.1fs\n" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
