"""4. the VM status follows libvirt at once, also when the domain dies behind the engine's back."""
import time

from harness import case, domstate, virsh, text


@case("status: virsh destroy behind the engine's back shows down within 2 s; start works again")
def destroyed_behind_back(env):
    vm_id, name = env.create_vm()
    d = env.create_disk(size=16 * 1024 * 1024)
    env.attach(vm_id, d, "virtio", bootable=True)
    env.start_vm(vm_id, name)
    env.check(env.vm_status(vm_id) == "up", "after start the API shows %r" % env.vm_status(vm_id))

    p = virsh("destroy", name)
    env.require(p.returncode == 0, "virsh destroy %s: %s" % (name, p.stderr.strip()))
    t0 = time.monotonic()
    status = None
    while time.monotonic() - t0 < 2.0:
        status = env.vm_status(vm_id)
        if status == "down":
            break
        time.sleep(0.1)
    env.require(status == "down", "2 s after virsh destroy the API still shows %r" % status)

    # the engine knows it is down: start works again and stop cleans up
    env.start_vm(vm_id, name)
    env.check(env.vm_status(vm_id) == "up", "restart after destroy: the API shows %r" % env.vm_status(vm_id))
    # shutdown is accepted (no guest OS: it will not actually power off); stop then ends it
    r = env.api("POST", "/vms/%s/shutdown" % vm_id, "<action/>")
    env.check(r.status in (200, 201, 202) and getattr(r.body, "tag", None) == "action"
              and r.body.find("fault") is None and text(r.body, "status") == "complete",
              "POST shutdown: " + r.short())
    env.action(vm_id, "stop")
    env.check(domstate(name) is None, "after stop, domain %s is %r" % (name, domstate(name)))
    env.check(env.vm_status(vm_id) == "down", "after stop, the API shows %r" % env.vm_status(vm_id))
