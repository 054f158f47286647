#!/usr/bin/env python3
"""run.py: build the libFuzzer targets (clang, ASan+UBSan) and run each for a bounded time.

    python3 tests/fuzz/run.py [--seconds 8] [--runs N] [-t TARGET]... [--build-dir DIR]

Builds BUILD-DIR (default build-fuzz next to the sources) with CC=clang -Dfuzz=true
-Db_sanitize=address,undefined (the whole tree, so clang's warnings fail it too), then runs
every target (or the -t ones) on a scratch copy of its committed seeds (tests/fuzz/corpus/TARGET), either for --seconds each or for --runs
executions each (the by-hand 10 million). Prints one line per target with the executions,
then "N passed, N failed"; a crash, a sanitizer report, a leak or a timeout fails the target
and keeps the reproducer (crash-*, leak-*, timeout-*) in BUILD-DIR/fuzz-findings/TARGET."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TARGETS = ["xml", "json", "search", "routes", "range", "sso_form", "ovf", "ova_tar", "repo", "patch"]


def build(build_dir, targets):
    if not shutil.which("clang"):
        print("FAIL prerequisite: clang is missing; scripts/setup.sh installs clang and libclang-rt-14-dev")
        return False
    env = dict(os.environ, CC="clang")
    if not os.path.exists(os.path.join(build_dir, "meson-private", "coredata.dat")):
        p = subprocess.run(["meson", "setup", build_dir, ROOT, "-Dfuzz=true", "-Db_sanitize=address,undefined",
                            "-Db_lundef=false", "-Dbuildtype=debugoptimized", "-Dwerror=true"],
                           env=env, capture_output=True, text=True)
        if p.returncode != 0:
            print("FAIL meson setup %s:\n%s%s" % (build_dir, p.stdout[-3000:], p.stderr[-3000:]))
            return False
    # the whole tree, not only the targets: clang with -Werror sees what gcc does not (an unsequenced
    # n++ in a unit test, an unused variable), and this is the test command's one clang build
    p = subprocess.run(["meson", "compile", "-C", build_dir], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        print("FAIL building the fuzz targets:\n%s%s" % (p.stdout[-4000:], p.stderr[-3000:]))
        return False
    return True


def run_target(build_dir, target, seconds, runs):
    exe = os.path.join(build_dir, "tests", "fuzz", "fuzz_" + target)
    seeds = os.path.join(HERE, "corpus", target)
    findings = os.path.join(build_dir, "fuzz-findings", target)
    os.makedirs(findings, exist_ok=True)
    work = tempfile.mkdtemp(prefix="snapback-fuzz-%s-" % target)
    supp = os.path.join(ROOT, "tests", "lsan.supp")
    env = dict(os.environ,
               ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
               LSAN_OPTIONS=("suppressions=%s:" % supp if os.path.exists(supp) else "") + "print_suppressions=0")
    argv = [exe, "-timeout=10", "-rss_limit_mb=2048", "-max_len=65536", "-print_final_stats=1",
            "-artifact_prefix=%s/" % findings]
    argv += ["-runs=%d" % runs] if runs else ["-max_total_time=%d" % seconds]
    argv += [work, seeds]
    t0 = time.monotonic()
    # bounded: libFuzzer stops itself; the wait is a backstop
    limit = (seconds + 120) if not runs else None
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=limit)
        out, rc = p.stderr + p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stderr or b"").decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or ""), -1
    shutil.rmtree(work, ignore_errors=True)
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    execs = int(m.group(1)) if m else 0
    secs = time.monotonic() - t0
    return rc, execs, secs, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8, help="run time per target (default 8)")
    ap.add_argument("--runs", type=int, default=0, help="executions per target instead of a time")
    ap.add_argument("-t", action="append", default=[], choices=TARGETS, help="only this target")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-fuzz"))
    args = ap.parse_args()
    targets = args.t or TARGETS
    if not build(args.build_dir, targets):
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for t in targets:
        rc, execs, secs, out = run_target(args.build_dir, t, args.seconds, args.runs)
        if rc == 0 and execs > 0:
            passed += 1
            print("ok   fuzz_%s: %d executions in %.0f s (%.0f/s), 0 crashes, 0 leaks, 0 timeouts"
                  % (t, execs, secs, execs / max(secs, 0.001)))
        else:
            failed += 1
            print("FAIL fuzz_%s: exit %s after %d executions; reproducer in %s" %
                  (t, rc, execs, os.path.join(args.build_dir, "fuzz-findings", t)))
            sys.stderr.write("---- fuzz_%s\n%s\n" % (t, "\n".join(out.splitlines()[-60:])))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
