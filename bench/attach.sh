#!/usr/bin/env bash
# Disk-snapshot attach benchmark: how long the Backup API's attach and detach of a disk
# snapshot take through snapbackd, next to doing the same by hand (the floor).
#
#   engine: POST /vms/{agent}/diskattachments <disk id=D><snapshot id=S/></disk> (active,
#           virtio_scsi), then DELETE /vms/{agent}/diskattachments/D; each timed on its own
#   floor:  qemu-img create -f qcow2 -b SNAPVOL -F qcow2 -u OVERLAY SIZE
#           + virsh attach-device --live (virtio-scsi disk XML), then
#           virsh detach-device --live + rm OVERLAY; on a twin of the agent's domain
#
# One data VM (a small disk and one snapshot), one running agent VM with no OS (virtio-scsi
# unplugs without a guest). BENCH_ROUNDS rounds (50) of each, after 3 warm-up rounds.
# Prints median and p99 of attach, detach and attach+detach for both, the ratio
# engine/floor, and "target: engine median <= floor median".
#
# Usage: bench/attach.sh         (as root, libvirtd and virtlogd running)
# Knobs: BENCH_ROUNDS (50), BENCH_DAEMON (a snapbackd to use instead of building
#        build-bench, release), BENCH_DOMAIN_TYPE (qemu). Output kept in bench/out/attach-DATE/.
# Never run in CI: numbers from shared CI machines mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${CI:-}" ]; then echo "bench/attach.sh: skipped (CI is set; benchmarks never run in CI)"; exit 0; fi

ROUNDS=${BENCH_ROUNDS:-50}
DOMTYPE=${BENCH_DOMAIN_TYPE:-qemu}
BUILD=build-bench
HOST=127.0.0.1
PASS="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
TAG=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')

. bench/lib.sh

for tool in meson ninja qemu-img virsh curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh)"
done
virsh -q -c qemu:///system version >/dev/null 2>&1 || die "libvirt does not answer (libvirtd -d; virtlogd -d)"

TMP=$(mktemp -d /tmp/snapback-bench-attach.XXXXXX)
chmod 755 "$TMP"
OUT=bench/out/attach-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$OUT"
DAEMON_PID=
FLOOR_DOM=bench-floor-$TAG
cleanup() {
  local rc=$?
  virsh -q -c qemu:///system destroy "$FLOOR_DOM" >/dev/null 2>&1 || true
  if [ -n "$DAEMON_PID" ]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  # the daemon stops its VMs on SIGTERM only if told to; make sure ours are gone
  for n in "bench-data-$TAG" "bench-agent-$TAG"; do
    virsh -q -c qemu:///system destroy "$n" >/dev/null 2>&1 || true
    virsh -q -c qemu:///system undefine "$n" >/dev/null 2>&1 || true
  done
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ----------------------------------------------------------------------------
bench_build_daemon

# --- snapbackd ------------------------------------------------------------------------
STATE=$TMP/state
bench_start_daemon "$STATE" --domain-type "$DOMTYPE"

# --- set-up and both measurements -----------------------------------------------------
cat >"$TMP/attach.py" <<'PY'
import glob, http.client, json, os, statistics, subprocess, sys, time, urllib.parse
import xml.etree.ElementTree as ET

host, port, password, tag, state, tmp, rounds, floor_dom, out = sys.argv[1:10]
port, rounds = int(port), int(rounds)
WARMUP = 3
SIZE = 64 * 1024 * 1024
V = ["virsh", "-q", "-c", "qemu:///system"]
conn = http.client.HTTPConnection(host, port, timeout=120)

def die(msg):
    sys.exit("bench: error: " + msg)

def call(method, path, body=None, headers=None, ok=(200, 201, 202)):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    if ok and r.status not in ok:
        die("%s %s -> HTTP %d: %s" % (method, path, r.status, data[:500].decode(errors="replace")))
    return r.status, data

form = urllib.parse.urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                               "username": "admin@internal", "password": password})
tok = json.loads(call("POST", "/ovirt-engine/sso/oauth/token", form,
                      {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})[1])
if "access_token" not in tok:
    die("no access_token in SSO answer: %r" % tok)
H = {"Authorization": "Bearer " + tok["access_token"], "Accept": "application/xml",
     "Content-Type": "application/xml", "Version": "4"}
API = "/ovirt-engine/api"

def api(method, path, body=None, ok=(200, 201, 202)):
    st, data = call(method, API + path, body, H, ok)
    return st, (ET.fromstring(data) if data else None)

def vm(name):
    return api("POST", "/vms", "<vm><name>%s</name><cluster><name>Default</name></cluster>"
               "<template><name>Blank</name></template><memory>134217728</memory>"
               "<os><type>other</type></os></vm>" % name)[1].get("id")

def wait(path, field, want, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        el = api("GET", path)[1]
        if el.findtext(field) == want:
            return el
        if time.monotonic() > deadline:
            die("%s: %s is %r after %d s" % (path, field, el.findtext(field), timeout))
        time.sleep(0.1)

# data VM: one small disk, running, one snapshot
data = vm("bench-data-" + tag)
d = api("POST", "/disks", "<disk><alias>bench-%s</alias><provisioned_size>%d</provisioned_size>"
        "<format>cow</format><sparse>true</sparse><storage_domains><storage_domain><name>data"
        "</name></storage_domain></storage_domains></disk>" % (tag, SIZE))[1].get("id")
wait("/disks/" + d, "status", "ok")
api("POST", "/vms/%s/diskattachments" % data, "<disk_attachment><disk id=\"%s\"/><interface>virtio_scsi"
    "</interface><bootable>true</bootable><active>true</active></disk_attachment>" % d)
api("POST", "/vms/%s/start" % data, "<action/>")
p = subprocess.run(V + ["qemu-monitor-command", "bench-data-" + tag, "--hmp",
                        'qemu-io -d ua-%s "write -P 0x22 0 4M"' % d], capture_output=True, text=True)
if p.returncode or p.stdout.strip():
    die("qemu-io write: %s %s" % (p.stdout, p.stderr))
s = api("POST", "/vms/%s/snapshots" % data, "<snapshot><description>bench</description>"
        "<persist_memorystate>false</persist_memorystate></snapshot>")[1].get("id")
wait("/vms/%s/snapshots/%s" % (data, s), "snapshot_status", "ok")
snapvol = None
for ds in api("GET", "/disks/%s/disksnapshots" % d)[1].findall("disk_snapshot"):
    if ds.find("snapshot") is not None and ds.find("snapshot").get("id") == s:
        f = glob.glob(os.path.join(state, "storage", "*", "images", d, ds.get("id")))
        snapvol = f[0] if f else None
if not snapvol:
    die("no volume file of snapshot %s of disk %s" % (s, d))

# agent VM: no OS, running
agent = vm("bench-agent-" + tag)
api("POST", "/vms/%s/start" % agent, "<action/>")
wait("/vms/" + agent, "status", "up")

# the floor's domain: a twin of the agent's (same machine, controllers), without console
p = subprocess.run(V + ["dumpxml", "--inactive", "bench-agent-" + tag], capture_output=True, text=True)
if p.returncode:
    die("virsh dumpxml: " + p.stderr)
dom = ET.fromstring(p.stdout)
dom.find("name").text = floor_dom
for tagname in ("uuid",):
    e = dom.find(tagname)
    if e is not None:
        dom.remove(e)
devs = dom.find("devices")
for e in list(devs):
    if e.tag in ("serial", "console", "disk"):
        devs.remove(e)
with open(os.path.join(tmp, "floor-dom.xml"), "w") as f:
    f.write(ET.tostring(dom, encoding="unicode"))
p = subprocess.run(V + ["create", os.path.join(tmp, "floor-dom.xml")], capture_output=True, text=True)
if p.returncode:
    die("virsh create of the floor domain: " + p.stderr)

def ms(t0):
    return (time.perf_counter() - t0) * 1000.0

# --- engine
att = "/vms/%s/diskattachments" % agent
body = ("<disk_attachment><active>true</active><bootable>false</bootable><interface>virtio_scsi"
        "</interface><disk id=\"%s\"><snapshot id=\"%s\"/></disk></disk_attachment>" % (d, s))
e_att, e_det = [], []
for i in range(WARMUP + rounds):
    t0 = time.perf_counter()
    st, a = api("POST", att, body, ok=(201,))
    t1 = ms(t0)
    t0 = time.perf_counter()
    api("DELETE", "%s/%s" % (att, d), ok=(200,))
    t2 = ms(t0)
    if i >= WARMUP:
        e_att.append(t1); e_det.append(t2)
left = glob.glob(os.path.join(state, "transient", "*", "*"))
if left:
    die("overlays left under STATE/transient after the engine rounds: %r" % left)

# --- floor
disk_xml = os.path.join(tmp, "floor-disk.xml")
ovl = os.path.join(tmp, "floor-overlay.qcow2")
with open(disk_xml, "w") as f:
    f.write("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            "<source file='%s'/><target dev='sda' bus='scsi'/><serial>%s</serial></disk>" % (ovl, d[:20]))

def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode:
        die("%s: %s" % (" ".join(argv), p.stderr.strip()))

f_att, f_det = [], []
for i in range(WARMUP + rounds):
    t0 = time.perf_counter()
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", snapvol, "-F", "qcow2", "-u", ovl, str(SIZE)])
    run(V + ["attach-device", floor_dom, disk_xml, "--live"])
    t1 = ms(t0)
    t0 = time.perf_counter()
    run(V + ["detach-device", floor_dom, disk_xml, "--live"])
    os.unlink(ovl)
    t2 = ms(t0)
    if i >= WARMUP:
        f_att.append(t1); f_det.append(t2)
    if i == 0:   # the detach really completed (not only asked): the disk left the live XML
        p = subprocess.run(V + ["domblklist", floor_dom], capture_output=True, text=True)
        if ovl in p.stdout:
            die("floor: the overlay is still in the live XML after detach-device")

def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]

with open(os.path.join(out, "samples.json"), "w") as f:
    json.dump({"engine_attach": e_att, "engine_detach": e_det, "floor_attach": f_att,
               "floor_detach": f_det}, f)
rows = [("attach", e_att, f_att), ("detach", e_det, f_det),
        ("attach+detach", [a + b for a, b in zip(e_att, e_det)], [a + b for a, b in zip(f_att, f_det)])]
print()
print("disk-snapshot attach/detach, %d rounds (after %d warm-up), ms" % (rounds, WARMUP))
print("%-14s %10s %10s %10s %10s %8s" % ("", "engine med", "engine p99", "floor med", "floor p99", "ratio"))
verdict = None
for name, e, fl in rows:
    em, fm = statistics.median(e), statistics.median(fl)
    print("%-14s %10.1f %10.1f %10.1f %10.1f %8.2f" % (name, em, p99(e), fm, p99(fl), em / fm))
    if name == "attach+detach":
        verdict = em <= fm
print("ratio = engine median / floor median")
print("target: engine median <= floor median: %s" % ("PASS" if verdict else "FAIL"))
sys.exit(0 if verdict else 3)
PY
say "set-up (data VM + snapshot, agent VM, floor domain), then $ROUNDS rounds each"
rc=0
python3 "$TMP/attach.py" "$HOST" "$SPORT" "$PASS" "$TAG" "$STATE" "$TMP" "$ROUNDS" "$FLOOR_DOM" "$OUT" \
  | tee "$OUT/summary.txt" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || die "measurement failed (daemon log: $OUT/snapbackd.log)"
exit "$rc"
