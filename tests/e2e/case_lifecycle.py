"""3. the main lifecycle, every step checked against libvirt's own view."""
import os
import xml.etree.ElementTree as ET

from harness import (case, text, ids, random_name, GiB, MiB, attachment_xml, domstate,
                     domuuid, domblklist, dom_disks, domains, qemu_img_info)


def check_attachment(env, a, vm_id, disk_id, interface, bootable, active, what):
    env.check(isinstance(a, ET.Element) and a.tag == "disk_attachment",
              "%s: not a <disk_attachment>: %r" % (what, a))
    if not isinstance(a, ET.Element):
        return
    env.check(a.get("id") == disk_id, "%s: attachment id %r != disk id %s" % (what, a.get("id"), disk_id))
    d, v = a.find("disk"), a.find("vm")
    env.check(d is not None and d.get("id") == disk_id, "%s: <disk id> is not %s" % (what, disk_id))
    env.check(v is not None and v.get("id") == vm_id, "%s: <vm id> is not %s" % (what, vm_id))
    env.check(text(a, "interface") == interface, "%s: interface %r != %s" % (what, text(a, "interface"), interface))
    env.check(text(a, "bootable") == bootable, "%s: bootable %r != %s" % (what, text(a, "bootable"), bootable))
    env.check(text(a, "active") == active, "%s: active %r != %s" % (what, text(a, "active"), active))
    env.check(a.get("href", "").endswith("/vms/%s/diskattachments/%s" % (vm_id, disk_id)),
              "%s: href %r" % (what, a.get("href")))


def sources(name):
    bl = domblklist(name)
    return None if bl is None else sorted(d["source"] for d in bl)


@case("lifecycle: disk, VM, attach, start, hot-plug, unplug, re-plug, detach, stop, remove")
def lifecycle(env):
    # --- a disk
    alias1 = random_name("boot")
    r = env.api("POST", "/disks",
                "<disk><alias>%s</alias><provisioned_size>%d</provisioned_size><format>cow</format>"
                "<sparse>true</sparse><storage_domains><storage_domain><name>data</name>"
                "</storage_domain></storage_domains></disk>" % (alias1, GiB))
    d = env.expect(r, 201, "POST /disks")
    d1 = d.get("id")
    env.require(d1, "POST /disks: no id: " + r.short())
    env.check(text(d, "status") == "ok", "POST /disks: status %r, not ok" % text(d, "status"))
    env.check(text(d, "alias") == alias1, "POST /disks: alias %r" % text(d, "alias"))
    env.check(text(d, "provisioned_size") == str(GiB), "POST /disks: provisioned_size %r" % text(d, "provisioned_size"))
    env.check(text(d, "format") == "cow", "POST /disks: format %r" % text(d, "format"))
    env.wait_disk_ok(d1)
    f1 = env.disk_file(d1)
    info = qemu_img_info(f1)
    env.check(info.get("format") == "qcow2", "volume %s is %r, not qcow2" % (f1, info.get("format")))
    env.check(info.get("virtual-size") == GiB, "volume %s virtual size %r" % (f1, info.get("virtual-size")))
    r = env.api("GET", "/disks/" + d1)
    env.check(r.status == 200 and text(r.body, "alias") == alias1, "GET /disks/{id}: " + r.short())
    sdref = r.body.find("storage_domains/storage_domain") if isinstance(r.body, ET.Element) else None
    env.check(sdref is not None and sdref.get("id") and sdref.get("id") in f1,
              "GET /disks/{id}: <storage_domains><storage_domain id> does not match the volume path %s" % f1)

    # --- a VM
    name = random_name()
    vm_id, _ = env.create_vm(name, memory=128 * MiB)
    r = env.api("GET", "/vms/" + vm_id)
    vm = env.expect(r, 200, "GET /vms/{id}")
    env.check(text(vm, "name") == name, "GET VM: name %r" % text(vm, "name"))
    env.check(text(vm, "status") == "down", "new VM status %r, not down" % text(vm, "status"))
    env.check(text(vm, "memory") == str(128 * MiB), "new VM memory %r" % text(vm, "memory"))
    env.check(vm.get("href", "").endswith("/vms/" + vm_id), "VM href %r" % vm.get("href"))
    env.check(domstate(name) is None, "libvirt has a domain %s for a VM that is down" % name)
    # PUT: a description change reads back
    r = env.api("PUT", "/vms/" + vm_id, "<vm><description>e2e lifecycle</description></vm>")
    env.check(r.status == 200 and text(r.body, "description") == "e2e lifecycle", "PUT /vms/{id}: " + r.short())
    env.check(text(env.api("GET", "/vms/" + vm_id).body, "description") == "e2e lifecycle",
              "PUT /vms/{id}: the description did not stick")

    # --- attach, bootable virtio
    a = env.attach(vm_id, d1, "virtio", bootable=True)
    check_attachment(env, a, vm_id, d1, "virtio", "true", "true", "attach d1")
    r = env.api("GET", "/vms/%s/diskattachments" % vm_id)
    env.check(r.status == 200 and ids(r.body, "disk_attachment") == [d1],
              "GET diskattachments after attach: " + r.short())
    r = env.api("GET", "/vms/%s/diskattachments/%s" % (vm_id, d1))
    check_attachment(env, r.body, vm_id, d1, "virtio", "true", "true", "GET attachment d1")

    # --- start
    env.start_vm(vm_id, name)
    env.check(domuuid(name) == vm_id, "domain %s has UUID %r, not the VM id %s" % (name, domuuid(name), vm_id))
    env.check(env.vm_status(vm_id) == "up", "after start, the API shows %r" % env.vm_status(vm_id))
    env.check(sources(name) == [f1], "after start, domblklist shows %r, expected [%s]" % (sources(name), f1))
    dd = dom_disks(name) or []
    env.check([x["serial"] for x in dd] == [d1[:20]],
              "after start, serials in the live XML are %r, expected [%s]" % ([x["serial"] for x in dd], d1[:20]))
    env.check([x["bus"] for x in dd] == ["virtio"], "disk d1 bus %r, not virtio" % [x["bus"] for x in dd])

    # --- hot-plug a second disk through virtio_scsi
    d2 = env.create_disk(random_name("data"), size=64 * MiB)
    f2 = env.disk_file(d2)
    a = env.attach(vm_id, d2, "virtio_scsi", bootable=False)
    check_attachment(env, a, vm_id, d2, "virtio_scsi", "false", "true", "hot-plug d2")
    env.check(sources(name) == sorted([f1, f2]), "after hot-plug, domblklist shows %r" % sources(name))
    dd = {x["serial"]: x for x in dom_disks(name) or []}
    env.check(d2[:20] in dd, "after hot-plug, no disk with serial %s in the live XML (%r)" % (d2[:20], list(dd)))
    if d2[:20] in dd:
        env.check(dd[d2[:20]]["bus"] == "scsi", "hot-plugged d2 bus %r, not scsi" % dd[d2[:20]]["bus"])
        env.check(dd[d2[:20]]["source"] == f2, "hot-plugged d2 source %r != %s" % (dd[d2[:20]]["source"], f2))
        env.check(dd[d2[:20]]["alias"] == "ua-" + d2, "hot-plugged d2 alias %r" % dd[d2[:20]]["alias"])

    # --- hot-unplug with PUT active=false
    r = env.api("PUT", "/vms/%s/diskattachments/%s" % (vm_id, d2),
                "<disk_attachment><active>false</active></disk_attachment>")
    env.expect(r, 200, "PUT active=false")
    env.check(text(r.body, "active") == "false", "PUT active=false answers active=%r" % text(r.body, "active"))
    env.check(sources(name) == [f1], "after unplug, domblklist shows %r, expected [%s]" % (sources(name), f1))
    r = env.api("GET", "/vms/%s/diskattachments/%s" % (vm_id, d2))
    check_attachment(env, r.body, vm_id, d2, "virtio_scsi", "false", "false", "GET attachment after unplug")
    env.check(env.vm_status(vm_id) == "up", "after unplug the VM is %r" % env.vm_status(vm_id))

    # --- re-plug
    r = env.api("PUT", "/vms/%s/diskattachments/%s" % (vm_id, d2),
                "<disk_attachment><active>true</active></disk_attachment>")
    env.expect(r, 200, "PUT active=true")
    env.check(text(r.body, "active") == "true", "PUT active=true answers active=%r" % text(r.body, "active"))
    env.check(sources(name) == sorted([f1, f2]), "after re-plug, domblklist shows %r" % sources(name))

    # --- detach (detach_only defaults to true)
    r = env.api("DELETE", "/vms/%s/diskattachments/%s" % (vm_id, d2))
    env.expect(r, 200, "DELETE attachment d2")
    env.check(sources(name) == [f1], "after DELETE attachment, domblklist shows %r" % sources(name))
    r = env.api("GET", "/vms/%s/diskattachments/%s" % (vm_id, d2))
    env.check_fault(r, 404, "GET a deleted attachment", names=[d2])
    r = env.api("GET", "/vms/%s/diskattachments" % vm_id)
    env.check(r.status == 200 and ids(r.body, "disk_attachment") == [d1],
              "attachments after DELETE: " + r.short())
    r = env.api("GET", "/disks/" + d2)
    env.check(r.status == 200, "the detached disk is gone from /disks: " + r.short())
    env.check(os.path.exists(f2), "the detached disk's file %s is gone" % f2)

    # --- stop
    env.action(vm_id, "stop")
    env.check(domstate(name) is None and name not in domains(),
              "after stop, libvirt still has domain %s (%r)" % (name, domstate(name)))
    env.check(env.vm_status(vm_id) == "down", "after stop, the API shows %r" % env.vm_status(vm_id))
    r = env.api("GET", "/vms/%s/diskattachments" % vm_id)
    env.check(r.status == 200 and ids(r.body, "disk_attachment") == [d1],
              "attachments after stop: " + r.short())

    # --- remove the VM, then the disks
    r = env.api("DELETE", "/vms/" + vm_id)
    env.expect(r, 200, "DELETE VM")
    r = env.api("GET", "/vms/" + vm_id)
    env.check_fault(r, 404, "GET a removed VM", names=[vm_id])
    env.check(name not in domains(), "removing the VM left a libvirt domain %s" % name)
    for did in (d1, d2):
        r = env.api("GET", "/disks/" + did)
        if r.status == 200:
            env.expect(env.api("DELETE", "/disks/" + did), 200, "DELETE disk " + did)
        elif r.status != 404:
            env.check(False, "GET /disks/%s after removing the VM: %s" % (did, r.short()))
        r = env.api("GET", "/disks/" + did)
        env.check_fault(r, 404, "GET a removed disk", names=[did])
    for f in (f1, f2):
        env.check(not os.path.exists(f), "removed disk's file %s still exists" % f)
    r = env.api("GET", "/disks")
    env.check(r.status == 200 and ids(r.body, "disk") == [], "disks left after removal: " + r.short())


@case("lifecycle: inline disk creation in an attachment; detach_only=false removes disk and file")
def inline_and_remove(env):
    vm_id, name = env.create_vm()
    alias = random_name("inline")
    r = env.api("POST", "/vms/%s/diskattachments" % vm_id,
                "<disk_attachment><interface>virtio_scsi</interface><bootable>false</bootable>"
                "<active>true</active><disk><alias>%s</alias><provisioned_size>%d</provisioned_size>"
                "<format>cow</format><storage_domains><storage_domain><name>data</name>"
                "</storage_domain></storage_domains></disk></disk_attachment>" % (alias, 32 * MiB))
    a = env.expect(r, 201, "inline attach")
    did = a.get("id") if isinstance(a, ET.Element) else None
    env.require(did, "inline attach: no id: " + r.short())
    check_attachment(env, a, vm_id, did, "virtio_scsi", "false", "true", "inline attach")
    env.wait_disk_ok(did)
    r = env.api("GET", "/disks/" + did)
    env.check(r.status == 200 and text(r.body, "alias") == alias, "GET inline disk: " + r.short())
    f = env.disk_file(did)
    env.check(qemu_img_info(f).get("virtual-size") == 32 * MiB, "inline disk virtual size")

    # started with it: the disk is in the domain from the start
    env.start_vm(vm_id, name)
    env.check(sources(name) == [f], "started VM's domblklist %r, expected [%s]" % (sources(name), f))
    r = env.api("DELETE", "/vms/%s/diskattachments/%s?detach_only=false" % (vm_id, did))
    env.expect(r, 200, "DELETE attachment ?detach_only=false")
    env.check(sources(name) == [], "after detach_only=false, domblklist shows %r" % sources(name))
    env.check_fault(env.api("GET", "/disks/" + did), 404, "GET a disk removed by detach_only=false", names=[did])
    env.check(not os.path.exists(f), "detach_only=false left the file %s" % f)
    env.action(vm_id, "stop")
    env.check(domstate(name) is None, "after stop, domain %s is %r" % (name, domstate(name)))


@case("lifecycle: virtio-blk hot-unplug with no guest to release it: the API never disagrees with libvirt")
def unplug_without_guest(env):
    """MACHINE-NOTES: with no guest OS only virtio-scsi unplugs; a virtio-blk detach that
    libvirt 'accepts' has not happened. Either the engine manages it or refuses, but
    what it reports must be what libvirt has."""
    vm_id, name = env.create_vm()
    d1 = env.create_disk(size=16 * MiB)
    env.attach(vm_id, d1, "virtio_scsi", bootable=True)
    env.start_vm(vm_id, name)
    d2 = env.create_disk(size=16 * MiB)
    env.attach(vm_id, d2, "virtio")
    f2 = env.disk_file(d2)
    env.require(f2 in (sources(name) or []), "virtio hot-plug: domblklist %r lacks %s" % (sources(name), f2))

    for what, method, path, body in (
            ("PUT active=false", "PUT", "/vms/%s/diskattachments/%s" % (vm_id, d2),
             "<disk_attachment><active>false</active></disk_attachment>"),
            ("DELETE attachment", "DELETE", "/vms/%s/diskattachments/%s" % (vm_id, d2), None)):
        r = env.api(method, path, body)
        in_libvirt = f2 in (sources(name) or [])
        a = env.api("GET", "/vms/%s/diskattachments/%s" % (vm_id, d2))
        if r.status == 200:
            env.check(not in_libvirt, "%s of a virtio-blk disk with no guest answered 200, but libvirt "
                      "still has it: %r" % (what, sources(name)))
        else:
            env.check_fault(r, (409, 500, 503, 504), "%s of a virtio-blk disk with no guest" % what)
            env.check(in_libvirt, "%s was refused (%d), yet the disk left libvirt" % (what, r.status))
            env.check(a.status == 200 and text(a.body, "active") == "true",
                      "%s was refused, but the attachment now reads: %s" % (what, a.short()))
        if r.status == 200:
            break
    env.action(vm_id, "stop")
    env.check(domstate(name) is None, "stop: domain %s is %r" % (name, domstate(name)))
    r = env.api("DELETE", "/vms/%s/diskattachments/%s" % (vm_id, d2))
    env.check(r.status in (200, 404), "DELETE the attachment of a down VM: " + r.short())
    r = env.api("GET", "/disks/" + d2)
    env.check(r.status == 200, "the disk is gone after detaching it: " + r.short())
