"""2. what a first start creates: DC and cluster Default, template Blank, host up, SD data."""
import os
import xml.etree.ElementTree as ET

from harness import case, text, by_name, BLANK_ID, virsh


def _num(el, path):
    v = text(el, path)
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


@case("first start: api root, datacenter/cluster Default, template Blank, host up, storage domain data")
def first_start(env):
    r = env.api("GET", "/")
    root = env.expect(r, 200, "GET /")
    env.require(isinstance(root, ET.Element) and root.tag == "api", "GET / is not <api>: " + r.short())
    env.check(root.find("product_info") is not None, "GET /: no <product_info>")
    env.check(text(root, "product_info/name"), "GET /: no <product_info><name>")
    rels = {l.get("rel"): l.get("href") for l in root.findall("link")}
    for rel in ("vms", "disks", "clusters", "datacenters", "hosts", "storagedomains", "templates",
                "events", "jobs"):
        env.check(rel in rels, "GET /: no <link rel=%r> (has %s)" % (rel, sorted(rels)))
    if "vms" in rels:
        env.check(rels["vms"] == "/ovirt-engine/api/vms", "GET /: link vms href is %r" % rels["vms"])
    r = env.api("GET", "/", json=True)
    env.check(r.status == 200 and isinstance(r.body, dict) and "product_info" in r.body,
              "GET / as JSON: " + r.short())

    r = env.api("GET", "/datacenters")
    dcs = env.expect(r, 200, "GET /datacenters")
    dc = by_name(dcs, "data_center", "Default")
    env.require(dc is not None, "GET /datacenters: no data_center named Default: " + r.short())
    env.check(dc.get("id") and dc.get("href"), "data_center Default lacks id/href")
    r = env.api("GET", "/datacenters/" + (dc.get("id") or "x"))
    env.check(r.status == 200 and text(r.body, "name") == "Default", "GET /datacenters/{id}: " + r.short())

    r = env.api("GET", "/clusters")
    cl = by_name(env.expect(r, 200, "GET /clusters"), "cluster", "Default")
    env.require(cl is not None, "GET /clusters: no cluster named Default: " + r.short())
    dcref = cl.find("data_center")
    env.check(dcref is not None and dcref.get("id") == dc.get("id"),
              "cluster Default does not reference data_center %s" % dc.get("id"))

    r = env.api("GET", "/templates")
    tpl = by_name(env.expect(r, 200, "GET /templates"), "template", "Blank")
    env.require(tpl is not None, "GET /templates: no template Blank: " + r.short())
    env.check(tpl.get("id") == BLANK_ID, "template Blank has id %r, not %s" % (tpl.get("id"), BLANK_ID))
    r = env.api("GET", "/templates/" + BLANK_ID)
    env.check(r.status == 200 and text(r.body, "name") == "Blank", "GET /templates/%s: %s" % (BLANK_ID, r.short()))

    r = env.api("GET", "/hosts")
    host = by_name(env.expect(r, 200, "GET /hosts"), "host", "localhost")
    env.require(host is not None, "GET /hosts: no host localhost: " + r.short())
    env.check(text(host, "status") == "up", "host localhost status is %r, not up" % text(host, "status"))
    # libvirt's view of the host: it answers, and the figures, where shown, are the node's
    info = virsh("nodeinfo")
    env.check(info.returncode == 0, "virsh nodeinfo failed: " + info.stderr)
    cpus = _num(host, "cpu/topology/cores")
    mem = _num(host, "memory")
    if info.returncode == 0:
        fields = dict(l.split(":", 1) for l in info.stdout.splitlines() if ":" in l)
        ncpu = int(fields.get("CPU(s)", "0").strip() or 0)
        kib = int(fields.get("Memory size", "0 KiB").split()[0])
        if mem is not None:
            env.check(abs(mem - kib * 1024) <= kib * 1024 // 10,
                      "host memory %d is not libvirt's %d KiB" % (mem, kib))
        if cpus is not None and text(host, "cpu/topology/sockets") in (None, "1"):
            env.check(cpus <= ncpu, "host shows %d cores, libvirt %d CPUs" % (cpus, ncpu))

    r = env.api("GET", "/storagedomains")
    sd = by_name(env.expect(r, 200, "GET /storagedomains"), "storage_domain", "data")
    env.require(sd is not None, "GET /storagedomains: no storage domain data: " + r.short())
    nums = {k: _num(sd, k) for k in ("available", "used", "committed")}
    for k, v in nums.items():
        env.check(v is not None and v >= 0, "storage domain data: <%s> is %r" % (k, text(sd, k)))
    env.check(text(sd, "type") in (None, "data"), "storage domain data: type %r" % text(sd, "type"))
    sd_dir = os.path.join(env.state_dir, "storage", sd.get("id") or "?")
    env.check(os.path.isdir(sd_dir), "storage domain directory %s does not exist" % sd_dir)
    if os.path.isdir(sd_dir) and nums["available"]:
        st = os.statvfs(sd_dir)
        free = st.f_bavail * st.f_frsize
        env.check(abs(nums["available"] - free) <= max(free // 10, 1 << 30),
                  "storage domain available=%d, but the file system has %d bytes free"
                  % (nums["available"], free))
    r = env.api("GET", "/storagedomains/" + (sd.get("id") or "x"))
    env.check(r.status == 200 and text(r.body, "name") == "data", "GET /storagedomains/{id}: " + r.short())

    r = env.api("GET", "/vms")
    env.check(r.status == 200 and isinstance(r.body, ET.Element) and r.body.tag == "vms"
              and len(r.body.findall("vm")) == 0, "a fresh engine lists VMs: " + r.short())
    r = env.api("GET", "/disks")
    env.check(r.status == 200 and isinstance(r.body, ET.Element) and r.body.tag == "disks"
              and len(r.body.findall("disk")) == 0, "a fresh engine lists disks: " + r.short())
