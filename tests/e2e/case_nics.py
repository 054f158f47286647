"""19. Networks and NICs: ovirtmgmt at first start, a network the test creates (an
isolated libvirt network with no addresses, so no traffic leaves it), NICs with MACs
from oVirt's default pool range, cold-plugged at start and hot-plugged while running,
checked against libvirt's own view (virsh domiflist).
"""
import re
import subprocess
import xml.etree.ElementTree as ET

from harness import case, text, virsh, random_name


def domiflist(name):
    p = virsh("domiflist", name)
    out = {}
    for line in p.stdout.splitlines()[2:]:
        f = line.split()
        if len(f) >= 5:
            out[f[4].lower()] = {"type": f[1], "source": f[2], "model": f[3]}
    return out


@case("nics: ovirtmgmt, a test network, NICs with pool MACs cold- and hot-plugged, remove")
def nics(env):
    r = env.api("GET", "/networks")
    nets = r.body.findall("network") if isinstance(r.body, ET.Element) else []
    env.check([text(n, "name") for n in nets] == ["ovirtmgmt"], "networks at first start: " + r.short())
    r = env.api("GET", "/vnicprofiles")
    env.check(isinstance(r.body, ET.Element) and [text(p, "name") for p in r.body.findall("vnic_profile")] == ["ovirtmgmt"],
              "vNIC profiles at first start: " + r.short())
    r = env.api("GET", "/macpools")
    pool = r.body.find("mac_pool") if isinstance(r.body, ET.Element) else None
    env.require(pool is not None, "GET /macpools: " + r.short())
    lo, hi = text(pool, "ranges/range/from", ""), text(pool, "ranges/range/to", "")
    env.check(re.match(r"^56:6f:[0-9a-f]{2}:[0-9a-f]{2}:00:00$", lo) and hi == lo[:-5] + "ff:ff",
              "the Default MAC pool's range is %r-%r, not oVirt's 56:6f:XX:YY:00:00-ff:ff" % (lo, hi))
    cl = env.api("GET", "/clusters").body.find("cluster").get("id")
    r = env.api("GET", "/clusters/%s/networks" % cl)
    env.check(isinstance(r.body, ET.Element) and len(r.body.findall("network")) == 1,
              "the Default cluster's networks: " + r.short())

    lvnet = random_name("net")
    xml = "<network><name>%s</name></network>" % lvnet   # isolated, no IP: nothing leaves it
    p = subprocess.run(["virsh", "-c", "qemu:///system", "net-create", "/dev/stdin"], input=xml,
                       capture_output=True, text=True)
    env.require(p.returncode == 0, "virsh net-create %s: %s" % (lvnet, p.stderr))
    try:
        r = env.api("POST", "/networks", "<network><name>%s</name><libvirt_network>%s</libvirt_network></network>"
                    % (lvnet, lvnet))
        net = env.expect(r, 201, "add network").get("id")
        r = env.api("POST", "/networks", "<network><name>%s</name><libvirt_network>%s</libvirt_network></network>"
                    % (lvnet, lvnet))
        env.check_fault(r, 409, "a second network of the same name", [lvnet])
        r = env.api("POST", "/networks", "<network><name>x%s</name></network>" % lvnet)
        env.check_fault(r, 400, "a network with neither bridge nor libvirt network", ["bridge"])

        vm_id, name = env.create_vm()
        r = env.api("POST", "/vms/%s/nics" % vm_id,
                    '<nic><name>nic1</name><interface>virtio</interface><vnic_profile id="%s"/></nic>' % net)
        n1 = env.expect(r, 201, "add nic1")
        mac1 = text(n1, "mac/address", "")
        env.check(mac1.startswith(lo[:-5]), "nic1 MAC %r is outside the pool %s-%s" % (mac1, lo, hi))
        r = env.api("POST", "/vms/%s/nics" % vm_id, "<nic><name>nic1</name></nic>")
        env.check_fault(r, 409, "a second NIC named nic1", ["nic1"])
        r = env.api("POST", "/vms/%s/nics" % vm_id, "<nic><name>nic9</name><interface>ne2k</interface></nic>")
        env.check_fault(r, 400, "an unknown NIC interface", ["ne2k"])

        env.start_vm(vm_id, name)
        got = domiflist(name)
        env.check(got.get(mac1, {}).get("model") == "virtio" and got.get(mac1, {}).get("source") == lvnet,
                  "nic1 in the running domain: %r" % got)
        r = env.api("POST", "/vms/%s/nics" % vm_id,
                    '<nic><name>nic2</name><interface>e1000</interface><vnic_profile><name>%s</name></vnic_profile></nic>' % lvnet)
        n2 = env.expect(r, 201, "hot-plug nic2")
        mac2 = text(n2, "mac/address", "")
        env.check(mac2 and mac2 != mac1, "nic2 MAC %r (nic1 %r)" % (mac2, mac1))
        got = domiflist(name)
        env.check(got.get(mac2, {}).get("model") == "e1000", "hot-plugged nic2 in the running domain: %r" % got)
        r = env.api("PUT", "/vms/%s/nics/%s" % (vm_id, n2.get("id")), "<nic><interface>rtl8139</interface></nic>")
        env.check_fault(r, 409, "changing a plugged NIC of a running VM", ["unplug"])
        r = env.api("GET", "/vms/%s/nics" % vm_id)
        env.check(isinstance(r.body, ET.Element) and sorted(text(n, "name") for n in r.body.findall("nic")) == ["nic1", "nic2"],
                  "GET nics: " + r.short())
        env.action(vm_id, "stop")
        r = env.api("PUT", "/vms/%s/nics/%s" % (vm_id, n2.get("id")), "<nic><interface>rtl8139</interface></nic>")
        env.check(r.status == 200 and text(r.body, "interface") == "rtl8139", "update nic2 while down: " + r.short())
        r = env.api("DELETE", "/vms/%s/nics/%s" % (vm_id, n1.get("id")))
        env.expect(r, 200, "remove nic1")
        r = env.api("GET", "/vms/%s/nics/%s" % (vm_id, n1.get("id")))
        env.check_fault(r, 404, "a removed NIC")
        # the freed MAC is the next one handed out; MACs stay unique across VMs
        other, _ = env.create_vm()
        r = env.api("POST", "/vms/%s/nics" % other, '<nic><name>nic1</name><vnic_profile id="%s"/></nic>' % net)
        mac3 = text(env.expect(r, 201, "add a NIC to another VM"), "mac/address")
        env.check(mac3 != mac2, "a MAC in use was handed out again: %s" % mac3)
        env.check(mac3 == mac1, "the freed MAC %s was not reused first (got %s)" % (mac1, mac3))
    finally:
        subprocess.run(["virsh", "-c", "qemu:///system", "net-destroy", lvnet], capture_output=True)
