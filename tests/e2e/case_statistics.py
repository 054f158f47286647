"""17. Statistics of VMs, hosts and disks, measured from libvirt, with oVirt's names.

The appliance boots with a disk that it reads (to hash it) and writes: while it
runs, the VM's CPU statistics move and the disk's read and write counters grow; a
VM that is down reports zeros; the host reports its memory and CPU split.
"""
import time
import xml.etree.ElementTree as ET

import appliance
from harness import case, text, random_name
from case_backup import create_agent, boot_agent, wait_line, AGENT_MEMORY

DISK_SIZE = 8 * 1024 * 1024   # the appliance hashes all of it under TCG: keep it small


def stats(env, path):
    r = env.api("GET", path + "/statistics")
    env.require(r.status == 200 and isinstance(r.body, ET.Element) and r.body.tag == "statistics",
                "GET %s/statistics: %s" % (path, r.short()))
    out = {}
    for s in r.body.findall("statistic"):
        env.check(s.get("id") and s.get("href", "").endswith("/statistics/" + s.get("id")),
                  "statistic %s has no id/href" % text(s, "name"))
        env.check(all(text(s, f) for f in ("description", "kind", "type", "unit")),
                  "statistic %s lacks description/kind/type/unit" % text(s, "name"))
        out[text(s, "name")] = float(text(s, "values/value/datum", "nan"))
    return out, r.body


@case("statistics: a running guest's CPU and disk counters move; host memory and CPU; zeros when down")
def statistics(env):
    vm_id, name = create_agent(env)
    d = env.create_disk(random_name("stat-disk"), size=DISK_SIZE)
    env.attach(vm_id, d, "virtio")

    down, _ = stats(env, "/vms/" + vm_id)
    env.check(down.get("memory.installed") == AGENT_MEMORY, "memory.installed of a down VM: %r" % down)
    env.check(down.get("cpu.current.total") == 0 and down.get("memory.used") == 0,
              "a down VM reports non-zero use: %r" % down)
    for want in ("cpu.current.guest", "cpu.current.hypervisor", "memory.free", "network.current.total"):
        env.check(want in down, "VM statistics lack %s: %r" % (want, sorted(down)))

    t0 = time.monotonic()
    log = boot_agent(env, vm_id, name)
    t1 = time.monotonic()
    wait_line(env, log, appliance.WROTE_RE, 120, name,
              "the appliance did not write its disk")
    t2 = time.monotonic()
    s1, body = stats(env, "/vms/" + vm_id)
    s2, _ = stats(env, "/vms/" + vm_id)
    env.check(s1.get("cpu.current.total", 0) > 0, "cpu.current.total of a running guest: %r" % s1)
    env.check(s2.get("cpu.usage.time", 0) > s1.get("cpu.usage.time", 0) > 0,
              "cpu.usage.time does not grow: %r then %r" % (s1.get("cpu.usage.time"), s2.get("cpu.usage.time")))
    env.check(0 < s1.get("memory.used", 0) <= AGENT_MEMORY, "memory.used of a running guest: %r" % s1)
    st = body.find("statistic")
    env.check(st is not None and st.find("vm") is not None and st.find("vm").get("id") == vm_id,
              "a VM statistic does not name its <vm>")
    # one statistic by id
    if st is not None:
        r = env.api("GET", "/vms/%s/statistics/%s" % (vm_id, st.get("id")))
        env.check(r.status == 200 and text(r.body, "name") == text(st, "name"),
                  "GET one statistic: " + r.short())

    ds, _ = stats(env, "/disks/" + d)
    for want in ("data.current.read", "data.current.write", "disk.read.latency", "disk.write.latency",
                 "disk.flush.latency"):
        env.check(want in ds, "disk statistics lack %s: %r" % (want, sorted(ds)))
    env.check(ds.get("data.total.read", 0) >= DISK_SIZE,
              "the guest hashed the whole disk, but data.total.read is %r" % ds.get("data.total.read"))
    env.check(ds.get("data.total.write", 0) >= 1024 * 1024,
              "the guest wrote 1 MiB, but data.total.write is %r" % ds.get("data.total.write"))

    host = env.api("GET", "/vms/" + vm_id).body.find("host")
    env.require(host is not None, "a running VM has no <host>")
    hs, _ = stats(env, "/hosts/" + host.get("id"))
    env.check(hs.get("memory.total", 0) > hs.get("memory.used", -1) > 0, "host memory: %r" % hs)
    cpu = sum(hs.get(k, 0) for k in ("cpu.current.user", "cpu.current.system", "cpu.current.idle"))
    env.check(95 <= cpu <= 100.5, "host CPU user+system+idle is %r%%: %r" % (cpu, hs))

    print("  boot %.1fs, disk hashed and written %.1fs, statistics %.1fs" % (t1 - t0, t2 - t1, time.monotonic() - t2))
    env.action(vm_id, "stop")
    after, _ = stats(env, "/disks/" + d)
    env.check(after.get("data.current.read") == 0, "a disk plugged nowhere reads: %r" % after)
    r = env.api("GET", "/vms/00000000-0000-0000-0000-00000000dead/statistics")
    env.check_fault(r, 404, "statistics of a VM that does not exist", ["00000000-0000-0000-0000-00000000dead"])
