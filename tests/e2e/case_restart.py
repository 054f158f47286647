"""8. restarting the engine does not disturb a running VM, and the new engine adopts it."""
from harness import case, text, ids, MiB, domstate, domid, domblklist, dom_disks, virsh


@case("restart: SIGTERM the daemon and restart it on the same state dir; the running VM is untouched")
def restart(env):
    vm_id, name = env.create_vm()
    d1 = env.create_disk(size=16 * MiB)
    d2 = env.create_disk(size=16 * MiB)
    env.attach(vm_id, d1, "virtio", bootable=True)
    env.start_vm(vm_id, name)
    env.attach(vm_id, d2, "virtio_scsi")
    blk, dom, disks = domblklist(name), domid(name), dom_disks(name)
    env.require(blk is not None and len(blk) == 2, "before the restart, domblklist %r" % blk)

    rc = env.daemon.stop()
    env.check(rc == 0, "snapbackd exited with %r on SIGTERM, not 0" % (rc,))
    env.check(domstate(name) == "running", "with the daemon stopped, domain %s is %r" % (name, domstate(name)))
    env._token = None
    env.daemon.start()

    env.check(domstate(name) == "running", "after the restart, domain %s is %r" % (name, domstate(name)))
    env.check(domid(name) == dom, "after the restart the domain id is %r, was %r (the domain was restarted)"
              % (domid(name), dom))
    env.check(domblklist(name) == blk, "after the restart domblklist is %r, was %r" % (domblklist(name), blk))
    env.check(dom_disks(name) == disks, "after the restart the live disks differ")
    env.check(env.vm_status(vm_id) == "up", "after the restart the API shows %r" % env.vm_status(vm_id))
    r = env.api("GET", "/vms/%s/diskattachments" % vm_id)
    env.check(r.status == 200 and sorted(ids(r.body, "disk_attachment")) == sorted([d1, d2]),
              "attachments after the restart: " + r.short())
    for a in r.body.findall("disk_attachment") if r.status == 200 else []:
        env.check(text(a, "active") == "true", "attachment %s active=%r after the restart" % (a.get("id"), text(a, "active")))

    # the new engine really drives it: unplug, then stop
    r = env.api("PUT", "/vms/%s/diskattachments/%s" % (vm_id, d2),
                "<disk_attachment><active>false</active></disk_attachment>")
    env.check(r.status == 200, "unplug after the restart: " + r.short())
    env.check(len(domblklist(name) or []) == 1, "unplug after the restart: domblklist %r" % domblklist(name))
    env.action(vm_id, "stop")
    env.check(domstate(name) is None, "stop after the restart: domain %s is %r" % (name, domstate(name)))
    env.check(env.vm_status(vm_id) == "down", "stop after the restart: the API shows %r" % env.vm_status(vm_id))


@case("restart: a VM destroyed while the engine was down shows down after the restart")
def died_while_down(env):
    vm_id, name = env.create_vm()
    d1 = env.create_disk(size=16 * MiB)
    env.attach(vm_id, d1, "virtio", bootable=True)
    env.start_vm(vm_id, name)
    env.daemon.stop()
    p = virsh("destroy", name)
    env.require(p.returncode == 0, "virsh destroy %s: %s" % (name, p.stderr.strip()))
    env._token = None
    env.daemon.start()
    env.check(env.vm_status(vm_id) == "down", "after the restart the API shows %r for a destroyed domain"
              % env.vm_status(vm_id))
    env.start_vm(vm_id, name)
    env.check(env.vm_status(vm_id) == "up", "start after the restart: the API shows %r" % env.vm_status(vm_id))
    env.action(vm_id, "stop")
    env.check(domstate(name) is None, "stop after the restart: domain %s is %r" % (name, domstate(name)))
