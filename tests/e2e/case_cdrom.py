"""20. CD-ROMs and boot order: an ISO built from the appliance (isolinux, xorriso) is
uploaded into the data domain as a disk of content_type iso through an image transfer,
listed as a file of the storage domain, put into a VM's CD-ROM, and booted with boot order
cdrom first: the serial console shows isolinux's mark and then the appliance. The CD is
ejected and inserted live (current=true, libvirt change-media) while the persistent one
stays; bad inputs change nothing.
"""
import os
import tempfile
import time
import xml.etree.ElementTree as ET

import appliance
from case_backup import appliance_files, console
from case_transfers import create_transfer, data_path, action, check_closed
from harness import case, text, http_request, dumpxml, MiB

CDROM = "00000000-0000-0000-0000-000000000000"
CHUNK = 4 * MiB


def iso_disk_xml(alias, size):
    return ("<disk><alias>%s</alias><provisioned_size>%d</provisioned_size><format>raw</format>"
            "<content_type>iso</content_type><sparse>true</sparse><storage_domains><storage_domain>"
            "<name>data</name></storage_domain></storage_domains></disk>" % (alias, size))


def upload_iso(env, alias):
    """builds the appliance ISO and uploads it as a new ISO disk; returns (disk id, ISO bytes)"""
    kernel, _ = appliance_files(env)
    fd, iso = tempfile.mkstemp(prefix="snapback-e2e-", suffix=".iso")
    os.close(fd)
    try:
        appliance.build_iso(os.path.dirname(kernel), iso)
        with open(iso, "rb") as f:
            data = f.read()
    finally:
        os.unlink(iso)
    r = env.api("POST", "/disks", iso_disk_xml(alias, len(data)))
    d = env.expect(r, 201, "create ISO disk")
    env.check(text(d, "content_type") == "iso", "new ISO disk: content_type %r" % text(d, "content_type"))
    disk_id = d.get("id")
    env.wait_disk_ok(disk_id)
    t = create_transfer(env, "upload", disk_id=disk_id)
    for off in range(0, len(data), CHUNK):
        chunk = data[off:off + CHUNK]
        r = http_request(env.port, "PUT", data_path(t) + "?flush=n", chunk,
                         {"Content-Range": "bytes %d-%d/*" % (off, off + len(chunk) - 1),
                          "Content-Type": "application/octet-stream"})
        env.require(r.status == 200, "PUT of the ISO at %d: %s" % (off, r.short()))
    action(env, t.get("id"), "finalize")
    check_closed(env, t, "finished_success", "ISO upload finalized")
    env.wait_disk_ok(disk_id)
    return disk_id, data


def cdrom_file(env, vm_id, current=False):
    r = env.api("GET", "/vms/%s/cdroms%s" % (vm_id, "?current=true" if current else ""))
    cds = env.expect(r, 200, "GET cdroms").findall("cdrom")
    env.require(len(cds) == 1 and cds[0].get("id") == CDROM, "a VM has one CD-ROM %s: %s" % (CDROM, r.short()))
    f = cds[0].find("file")
    return f.get("id") if f is not None else None


def live_cdrom_source(name):
    dom = dumpxml(name)
    for d in dom.findall("devices/disk"):
        if d.get("device") == "cdrom":
            src = d.find("source")
            boot = d.find("boot")
            return (src.get("file") if src is not None else None), (boot.get("order") if boot is not None else None)
    return None, None


@case("cdroms: an ISO uploaded with content_type=iso boots from the CD with boot order cdrom first; live eject and insert")
def iso_boot(env):
    iso, data = upload_iso(env, "appliance-iso")
    sd = env.api("GET", "/storagedomains").body.find("storage_domain").get("id")
    r = env.api("GET", "/storagedomains/%s/files" % sd)
    files = env.expect(r, 200, "GET files").findall("file")
    env.check([(f.get("id"), text(f, "name"), text(f, "type")) for f in files] == [(iso, "appliance-iso", "iso")],
              "the storage domain's files: " + r.short())
    env.expect(env.api("GET", "/storagedomains/%s/files/%s" % (sd, iso)), 200, "GET the ISO file")

    vm_id, name = env.create_vm(memory=256 * MiB)
    data_disk = env.create_disk(size=64 * MiB)
    env.attach(vm_id, data_disk, bootable=True)
    env.check(cdrom_file(env, vm_id) is None, "a new VM's CD-ROM is empty")
    # bad inputs change nothing
    env.check_fault(env.api("POST", "/vms/%s/diskattachments" % vm_id,
                            '<disk_attachment><disk id="%s"/><interface>virtio</interface></disk_attachment>' % iso),
                    400, "attaching an ISO as a disk", ["ISO"])
    env.check_fault(env.api("PUT", "/vms/%s/cdroms/%s" % (vm_id, CDROM), '<cdrom><file id="%s"/></cdrom>' % data_disk),
                    400, "a data disk as the CD", ["ISO"])
    env.check_fault(env.api("PUT", "/vms/%s/cdroms/%s?current=true" % (vm_id, CDROM), '<cdrom><file id="%s"/></cdrom>' % iso),
                    409, "current=true on a VM that does not run", ["not running"])
    env.check_fault(env.api("PUT", "/vms/%s/cdroms/%s" % (vm_id, CDROM), "<cdrom/>"), 400, "no <file>", ["file"])
    env.check_fault(env.api("PUT", "/vms/" + vm_id, "<vm><os><boot><devices><device>floppy</device></devices></boot></os></vm>"),
                    400, "an unknown boot device", ["floppy"])
    env.check_fault(env.api("PUT", "/vms/" + vm_id, "<vm><os><boot><devices><device>hd</device><device>hd</device>"
                            "</devices></boot></os></vm>"), 400, "a boot device twice", ["hd"])
    env.check(cdrom_file(env, vm_id) is None, "the CD-ROM after refused changes")

    r = env.api("PUT", "/vms/%s/cdroms/%s" % (vm_id, CDROM), '<cdrom><file id="%s"/></cdrom>' % iso)
    env.check(r.status == 200 and r.body.find("file") is not None and r.body.find("file").get("id") == iso,
              "PUT the ISO into the CD-ROM: " + r.short())
    r = env.api("PUT", "/vms/" + vm_id, "<vm><os><boot><devices><device>cdrom</device><device>hd</device>"
                "</devices></boot></os></vm>")
    env.expect(r, 200, "boot order cdrom, hd")
    devs = [d.text for d in r.body.findall("os/boot/devices/device")]
    env.check(devs == ["cdrom", "hd"], "os/boot/devices after the update: %r" % devs)
    env.check_fault(env.api("DELETE", "/disks/" + iso), 409, "removing the ISO in a CD", [name])

    log = console(env, vm_id)
    t0 = time.monotonic()
    env.start_vm(vm_id, name)
    path = env.disk_file(iso)
    src, order = live_cdrom_source(name)
    env.check(src == path and order == "1", "the domain's CD-ROM: source %r boot order %r" % (src, order))
    log.wait_for(appliance.ISO_RE, 120)
    t1 = time.monotonic()
    log.wait_for(appliance.READY_RE, 180)
    print("# booted from the ISO in %.1f s (isolinux had loaded the kernel after %.1f s)"
          % (time.monotonic() - t0, t1 - t0))
    env.check(cdrom_file(env, vm_id, current=True) == iso, "the current CD of the running VM")

    # live: eject, then insert again; the VM's configured CD stays
    r = env.api("PUT", "/vms/%s/cdroms/%s?current=true" % (vm_id, CDROM), '<cdrom><file id=""/></cdrom>')
    env.check(r.status == 200 and r.body.find("file") is None, "live eject: " + r.short())
    env.check(live_cdrom_source(name)[0] is None, "libvirt's CD-ROM after a live eject: %r" % (live_cdrom_source(name),))
    env.check(cdrom_file(env, vm_id) == iso, "the persistent CD after a live eject")
    env.check(cdrom_file(env, vm_id, current=True) is None, "the current CD after a live eject")
    r = env.api("PUT", "/vms/%s/cdroms/%s?current=true" % (vm_id, CDROM), '<cdrom><file id="%s"/></cdrom>' % iso)
    env.check(r.status == 200 and live_cdrom_source(name)[0] == path, "live insert: " + r.short())
    env.action(vm_id, "stop")
    # persistent eject
    r = env.api("PUT", "/vms/%s/cdroms/%s" % (vm_id, CDROM), '<cdrom><file id=""/></cdrom>')
    env.check(r.status == 200 and cdrom_file(env, vm_id) is None, "eject: " + r.short())
    env.expect(env.api("DELETE", "/disks/" + iso), 200, "remove the ejected ISO")
