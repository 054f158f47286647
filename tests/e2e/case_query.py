"""5. search and max, JSON in and out, all_content OVF, jobs."""
import secrets
import xml.etree.ElementTree as ET

from harness import case, text, ids, MiB, domains


def names_of(el):
    return sorted(text(v, "name") for v in el.findall("vm")) if isinstance(el, ET.Element) else None


@case("query: search=name= with wildcards, max, JSON, all_content OVF, jobs")
def query(env):
    tag = secrets.token_hex(3)
    made = {}
    for suffix in ("a1", "a2", "b1"):
        n = "e2e-%s%s" % (tag, suffix)
        made[n] = env.create_vm(n)[0]
    all3 = sorted(made)

    def search(q, extra=""):
        r = env.api("GET", "/vms?search=" + q + extra)
        env.check(r.status == 200, "GET /vms?search=%s%s: %s" % (q, extra, r.short()))
        return names_of(r.body)

    got = search("name%%3De2e-%s*" % tag)
    env.check(got == all3, "search name=e2e-%s*: %r, expected %r" % (tag, got, all3))
    got = search("name%%3De2e-%sa*" % tag)
    env.check(got == all3[:2], "search name=e2e-%sa*: %r" % (tag, got))
    got = search("name%%3De2e-%sb1" % tag)
    env.check(got == ["e2e-%sb1" % tag], "search name=e2e-%sb1 (exact): %r" % (tag, got))
    got = search("name%%3De2e-%sb" % tag)
    env.check(got == [], "search name=e2e-%sb (no wildcard, no such name): %r" % (tag, got))
    got = search("name%%3Dnothing-like-this-%s" % tag)
    env.check(got == [], "search for a name nobody has: %r" % got)
    got = search("name%%3De2e-%s*%%20and%%20name%%3D*1" % tag)
    env.check(got == sorted([all3[0], all3[2]]), "search name=e2e-%s* and name=*1: %r" % (tag, got))
    got = search("name%%3D*%s*" % tag, "&max=2")
    env.check(got is not None and len(got) == 2 and set(got) <= set(all3),
              "search with max=2: %r" % got)

    r = env.api("GET", "/vms?max=1")
    env.check(r.status == 200 and len(names_of(r.body) or []) == 1, "GET /vms?max=1: " + r.short())
    r = env.api("GET", "/vms")
    env.check(r.status == 200 and set(all3) <= set(names_of(r.body) or []), "GET /vms: " + r.short())

    # JSON out: {"vm": [...]} with string values
    r = env.api("GET", "/vms?search=name%%3De2e-%s*" % tag, json=True)
    js = r.body
    env.check(r.status == 200 and "json" in r.headers.get("content-type", ""),
              "GET /vms as JSON: " + r.short())
    env.check(isinstance(js, dict) and isinstance(js.get("vm"), list),
              "GET /vms as JSON is not {\"vm\": [...]}: " + r.short())
    if isinstance(js, dict) and isinstance(js.get("vm"), list):
        env.check(sorted(v.get("name") for v in js["vm"]) == all3, "JSON vm names %r" % [v.get("name") for v in js["vm"]])
        env.check(all(v.get("id") == made.get(v.get("name")) for v in js["vm"]), "JSON vm ids do not match")
        env.check(all(v.get("status") == "down" for v in js["vm"]), "JSON vm status %r" % [v.get("status") for v in js["vm"]])
    r = env.api("GET", "/vms/" + made[all3[0]], json=True)
    env.check(r.status == 200 and isinstance(r.body, dict) and r.body.get("id") == made[all3[0]]
              and r.body.get("name") == all3[0], "GET /vms/{id} as JSON: " + r.short())

    # JSON in
    jname = "e2e-%sjs" % tag
    env.vm_names.add(jname)
    body = {"name": jname, "cluster": {"name": "Default"}, "template": {"name": "Blank"},
            "memory": 128 * MiB, "cpu": {"topology": {"sockets": "1", "cores": "1", "threads": "1"}},
            "os": {"type": "other"}}
    r = env.api("POST", "/vms", body, json=True)
    env.check(r.status == 201 and isinstance(r.body, dict) and r.body.get("name") == jname
              and r.body.get("id") and r.body.get("status") == "down", "POST /vms in JSON: " + r.short())
    jid = r.body.get("id") if isinstance(r.body, dict) else None
    if jid:
        r = env.api("GET", "/vms/" + jid)
        env.check(r.status == 200 and text(r.body, "memory") == str(128 * MiB),
                  "VM made from JSON, read as XML: " + r.short())
    r = env.api("POST", "/disks", {"alias": "e2e-%sjsd" % tag, "provisioned_size": str(16 * MiB),
                                   "format": "cow", "storage_domains": {"storage_domain": [{"name": "data"}]}},
                json=True)
    env.check(r.status == 201 and isinstance(r.body, dict) and r.body.get("id"), "POST /disks in JSON: " + r.short())

    # all_content: the configuration as OVF
    vid = made[all3[0]]
    for how, path, hdr in (("?all_content=true", "/vms/%s?all_content=true" % vid, None),
                           ("All-Content: true", "/vms/" + vid, {"All-Content": "true"})):
        r = env.api("GET", path, headers=hdr)
        env.check(r.status == 200, "GET VM with %s: %s" % (how, r.short()))
        cfg = r.body.find("initialization/configuration") if isinstance(r.body, ET.Element) else None
        env.check(cfg is not None and text(cfg, "type") == "ovf",
                  "GET VM with %s: no initialization/configuration/type=ovf" % how)
        data = text(cfg, "data") if cfg is not None else None
        env.check(data and all3[0] in data, "GET VM with %s: the OVF data does not name the VM: %r"
                  % (how, (data or "")[:200]))
        if data:
            try:
                ET.fromstring(data)
            except ET.ParseError as e:
                env.check(False, "GET VM with %s: the OVF is not XML: %s" % (how, e))
    r = env.api("GET", "/vms?search=name%%3D%s&all_content=true" % all3[0])
    vms = r.body.findall("vm") if isinstance(r.body, ET.Element) else []
    env.check(r.status == 200 and len(vms) == 1 and all3[0] in (text(vms[0], "initialization/configuration/data") or ""),
              "GET /vms?search=name=N&all_content=true has no OVF: " + r.short())

    r = env.api("GET", "/jobs")
    env.check(r.status == 200 and isinstance(r.body, ET.Element) and r.body.tag == "jobs", "GET /jobs: " + r.short())
    env.check(not any(n.startswith("e2e-%s" % tag) for n in domains()),
              "libvirt has domains for VMs that were never started")
