#!/usr/bin/env python3
"""load.py: many concurrent clients against one real snapbackd over loopback (issue 13).

    python3 tests/load/load.py --daemon build/src/daemon/snapbackd [--clients 200] [--seconds 60]

Starts the daemon (tests/e2e/harness.py: own state dir, free port), creates VMs with disks
and spare disks, then runs CLIENTS threads for SECONDS. Each loops over a weighted mix of
request kinds: list VMs, search VMs, read a VM's disk attachments, post an event, create and
remove a snapshot (offline, waiting for each to finish), open and close an image transfer.
Every loop is bounded in time and count. It reports per kind: count, p50 and p99 latency,
statuses; and the daemon's RSS at the 10th second and at the end.

It fails on: any 5xx or unanswered request; any 409 that does not name a lock holder or a
state; a lock still held once the load is over (a 409 naming a holder that no longer
exists); RSS growth of 5% or more between the 10th second and the end (enforced for runs of
60 s or more, reported otherwise). Last line: "N passed, N failed"."""
import argparse
import http.client
import os
import random
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

import harness  # noqa: E402
from harness import API, text  # noqa: E402

KINDS = [  # (kind, weight)
    ("list_vms", 25), ("search_vms", 20), ("get_attachments", 20), ("post_event", 20),
    ("snapshot", 8), ("transfer", 7),
]
MAX_REQUESTS_PER_CLIENT = 100000
OP_WAIT_S = 90           # how long one snapshot/transfer step may take (a loaded 2-core box is slow)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = {}        # kind -> [seconds]
        self.status = {}     # kind -> {status: count}
        self.bad = []        # failure descriptions
        self.conflicts = {}  # 409 detail -> count

    def add(self, kind, status, secs, body=b""):
        with self.lock:
            self.lat.setdefault(kind, []).append(secs)
            st = self.status.setdefault(kind, {})
            st[status] = st.get(status, 0) + 1
            if status == 0 or status >= 500:
                if len(self.bad) < 50:
                    self.bad.append("%s: %s %s" % (kind, status, body[:300].decode("utf-8", "replace")))
            elif status == 409:
                m = re.search(rb"<detail>(.*?)</detail>", body, re.S)
                detail = (m.group(1) if m else body[:200]).decode("utf-8", "replace")
                detail = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "ID", detail)
                self.conflicts[detail] = self.conflicts.get(detail, 0) + 1


class Client:
    """one keep-alive HTTP/1.1 connection, reopened after an error"""

    def __init__(self, port, token):
        self.port, self.token, self.conn = port, token, None

    def request(self, method, path, body=None, timeout=60):
        headers = {"Version": "4", "Accept": "application/xml", "Content-Type": "application/xml",
                   "Authorization": "Bearer " + self.token}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            t0 = time.monotonic()
            try:
                self.conn.request(method, API + path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data, time.monotonic() - t0
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # a keep-alive connection the server closed between requests: once more
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0, str(e).encode(), time.monotonic() - t0
            except OSError as e:
                self.conn.close()
                self.conn = None
                return 0, str(e).encode(), time.monotonic() - t0
        return 0, b"unreachable", 0.0


def wait_until(client, stats, kind, path, done, deadline):
    """polls GET path until done(status, element) or the deadline; True when done"""
    while time.monotonic() < deadline:
        st, data, secs = client.request("GET", path)
        stats.add(kind, st, secs, data)
        el = None
        if st == 200:
            try:
                el = ET.fromstring(data)
            except ET.ParseError:
                pass
        if done(st, el):
            return True
        time.sleep(0.2)
    return False


def op_snapshot(c, stats, fx, rnd):
    vm = rnd.choice(fx["vms"])
    st, data, secs = c.request("POST", "/vms/%s/snapshots" % vm,
                               "<snapshot><description>load</description>"
                               "<persist_memorystate>false</persist_memorystate></snapshot>")
    stats.add("snapshot_create", st, secs, data)
    if st not in (200, 201, 202):
        return
    sid = ET.fromstring(data).get("id")
    deadline = time.monotonic() + OP_WAIT_S
    if not wait_until(c, stats, "get_snapshot", "/vms/%s/snapshots/%s" % (vm, sid),
                      lambda s, el: s == 200 and text(el, "snapshot_status") == "ok", deadline):
        stats.bad.append("snapshot %s of VM %s not ok in %d s" % (sid, vm, OP_WAIT_S))
        return
    while time.monotonic() < deadline:
        st, data, secs = c.request("DELETE", "/vms/%s/snapshots/%s" % (vm, sid))
        stats.add("snapshot_remove", st, secs, data)
        if st != 409:
            break
        time.sleep(0.2)  # another removal of this VM runs: its holder is real, wait
    if st in (200, 202):
        if not wait_until(c, stats, "get_snapshot", "/vms/%s/snapshots/%s" % (vm, sid),
                          lambda s, el: s == 404, time.monotonic() + OP_WAIT_S):
            stats.bad.append("snapshot %s of VM %s not removed in %d s" % (sid, vm, OP_WAIT_S))


def op_transfer(c, stats, fx, rnd):
    disk = rnd.choice(fx["spare_disks"])
    st, data, secs = c.request("POST", "/imagetransfers",
                               '<image_transfer><direction>download</direction><format>raw</format>'
                               '<disk id="%s"/></image_transfer>' % disk)
    stats.add("transfer_open", st, secs, data)
    if st != 201:
        return
    tid = ET.fromstring(data).get("id")
    verb = rnd.choice(("finalize", "cancel"))
    st, data, secs = c.request("POST", "/imagetransfers/%s/%s" % (tid, verb), "<action/>")
    stats.add("transfer_close", st, secs, data)
    wait_until(c, stats, "get_transfer", "/imagetransfers/" + tid,
               lambda s, el: s == 404 or (s == 200 and text(el, "phase", "").startswith(("finished", "cancelled"))),
               time.monotonic() + OP_WAIT_S)


def client_main(port, token, fx, stats, deadline, seed):
    rnd = random.Random(seed)
    c = Client(port, token)
    kinds, weights = zip(*KINDS)
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= deadline:
            break
        kind = rnd.choices(kinds, weights)[0]
        if kind == "list_vms":
            st, data, secs = c.request("GET", "/vms")
        elif kind == "search_vms":
            st, data, secs = c.request("GET", "/vms?search=name%%3D%s*" % fx["prefix"])
        elif kind == "get_attachments":
            st, data, secs = c.request("GET", "/vms/%s/diskattachments" % rnd.choice(fx["vms"]))
        elif kind == "post_event":
            st, data, secs = c.request("POST", "/events",
                                       "<event><description>load %d</description><severity>normal"
                                       "</severity><origin>load</origin><custom_id>%d</custom_id></event>"
                                       % (seed, rnd.randrange(1 << 30)))
        elif kind == "snapshot":
            op_snapshot(c, stats, fx, rnd)
            continue
        else:
            op_transfer(c, stats, fx, rnd)
            continue
        stats.add(kind, st, secs, data)


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else 0.0


def setup(env, nvms, nspare):
    prefix = harness.random_name("ld")
    fx = {"prefix": prefix, "vms": [], "spare_disks": []}
    for i in range(nvms):
        vm_id, _ = env.create_vm("%s-%d" % (prefix, i))
        disk = env.create_disk(harness.random_name("ld-disk"), size=64 * harness.MiB)
        env.attach(vm_id, disk)
        fx["vms"].append(vm_id)
    for i in range(nspare):
        fx["spare_disks"].append(env.create_disk(harness.random_name("ld-spare"), size=64 * harness.MiB))
    return fx


def settle(env, fx, stats):
    """after the load: no lock may still be held. Each VM takes a snapshot (then loses it) and
    each spare disk opens a transfer; a 409 there names a holder that no longer runs."""
    c = Client(env.port, env.bearer_token())
    for vm in fx["vms"]:
        deadline = time.monotonic() + OP_WAIT_S
        while True:  # snapshots the clients left running finish first
            st, data, _ = c.request("GET", "/vms/%s/snapshots" % vm)
            if st == 200 and b"<snapshot_status>locked" not in data:
                break
            if time.monotonic() > deadline:
                stats.bad.append("VM %s still has a locked snapshot %d s after the load" % (vm, OP_WAIT_S))
                break
            time.sleep(0.2)
        before = stats.status.get("snapshot_create", {}).get(409, 0)
        op_snapshot(c, stats, {"vms": [vm]}, random.Random(0))
        if stats.status.get("snapshot_create", {}).get(409, 0) != before:
            stats.bad.append("after the load, VM %s still refuses a snapshot with 409" % vm)
    for disk in fx["spare_disks"]:
        st, data, _ = c.request("POST", "/imagetransfers",
                                '<image_transfer><direction>download</direction><format>raw</format>'
                                '<disk id="%s"/></image_transfer>' % disk)
        if st != 201:
            stats.bad.append("after the load, disk %s cannot be transferred: %s %s"
                             % (disk, st, data[:300].decode("utf-8", "replace")))
            continue
        tid = ET.fromstring(data).get("id")
        c.request("POST", "/imagetransfers/%s/cancel" % tid, "<action/>")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--vms", type=int, default=8)
    ap.add_argument("--spare-disks", type=int, default=8)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    env = harness.Env(os.path.abspath(args.daemon), keep=args.keep)
    env.daemon.extra_args = ["--threads", "16"]
    failures = []
    try:
        env.start()
        fx = setup(env, args.vms, args.spare_disks)
        token = env.bearer_token()
        stats = Stats()
        pid = env.daemon.proc.pid
        t_start = time.monotonic()
        deadline = t_start + args.seconds
        threads = [threading.Thread(target=client_main, args=(env.port, token, fx, stats, deadline, i),
                                    daemon=True) for i in range(args.clients)]
        for t in threads:
            t.start()
        rss = []  # (second, kB)
        while time.monotonic() < deadline:
            rss.append((time.monotonic() - t_start, rss_kb(pid)))
            time.sleep(1)
        for t in threads:
            t.join(OP_WAIT_S * 3 + 60)  # bounded: a hung client is a failure below
        hung = sum(t.is_alive() for t in threads)
        rss.append((time.monotonic() - t_start, rss_kb(pid)))
        settle(env, fx, stats)

        print("%-16s %8s %9s %9s  statuses" % ("kind", "count", "p50 ms", "p99 ms"))
        total = 0
        for kind in sorted(stats.lat):
            lat = stats.lat[kind]
            total += len(lat)
            print("%-16s %8d %9.1f %9.1f  %s" % (kind, len(lat), pct(lat, 50) * 1000, pct(lat, 99) * 1000,
                                                 " ".join("%s:%d" % kv for kv in sorted(stats.status[kind].items()))))
        print("total requests: %d in %d s (%.0f/s) by %d clients" % (total, args.seconds, total / args.seconds,
                                                                     args.clients))
        at10 = next((kb for s, kb in rss if s >= min(10, args.seconds / 2)), rss[0][1])
        end = rss[-1][1]
        growth = 100.0 * (end - at10) / at10 if at10 else 0.0
        print("RSS: %d kB at %ds, %d kB at the end: %+.1f%%" % (at10, min(10, args.seconds // 2), end, growth))
        print("RSS every 10 s (kB): " + " ".join("%d" % kb for s, kb in rss if int(s) % 10 == 0 and s < args.seconds)
              + " %d" % end)
        for detail, n in sorted(stats.conflicts.items(), key=lambda kv: -kv[1]):
            print("409 x%d: %s" % (n, detail))

        if hung:
            failures.append("%d client(s) did not finish" % hung)
        failures += stats.bad
        for detail in stats.conflicts:
            if "locked by command" not in detail and "cannot" not in detail:
                failures.append("a 409 that names neither a holder nor a state: " + detail)
        if args.seconds >= 60 and growth >= 5.0:
            failures.append("RSS grew %.1f%% between the 10th second and the end" % growth)
        if not env.daemon.alive():
            failures.append("snapbackd died")
    except harness.Failure as e:
        failures.append(str(e))
    finally:
        env.close()
    for f in failures:
        print("FAIL " + f)
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
