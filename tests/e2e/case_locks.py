"""commands on the same VM are serialized: a conflicting one answers 409 naming what holds the lock."""
import threading
import time

from harness import case, text, MiB


@case("locks: a command on a VM busy with another answers 409 naming the holder; nothing changes")
def locks(env):
    vm_id, name = env.create_vm(memory=128 * MiB)
    disk = env.create_disk(size=16 * MiB)
    env.attach(vm_id, disk, interface="virtio")  # virtio-blk: with no guest, unplug waits the full timeout
    env.start_vm(vm_id, name)
    result = {}

    def unplug():
        result["r"] = env.api("PUT", "/vms/%s/diskattachments/%s" % (vm_id, disk),
                              "<disk_attachment><active>false</active></disk_attachment>")

    t = threading.Thread(target=unplug)
    t.start()
    time.sleep(1.0)  # the unplug now waits for the guest, holding the VM's lock
    before = env.snapshot()
    r = env.api("POST", "/vms/%s/stop" % vm_id, "<action/>")
    env.check_fault(r, 409, "stop while an unplug holds the VM", names=["locked", "UpdateDiskAttachment"])
    r = env.api("POST", "/vms/%s/snapshots" % vm_id,
                "<snapshot><description>x</description><persist_memorystate>false</persist_memorystate></snapshot>")
    env.check_fault(r, 409, "snapshot while an unplug holds the VM", names=["locked"])
    env.check_unchanged(before, "after the refused commands")
    t.join(60)
    env.check(not t.is_alive(), "the unplug did not return")
    # the unplug itself ends with a fault (no guest released the disk), and the VM is still up
    env.check(result.get("r") is not None and result["r"].status == 409,
              "the virtio unplug without a guest: expected 409, got %s" % (result.get("r").short() if result.get("r") else None))
    env.check(env.vm_status(vm_id) == "up", "the VM is no longer up")
    env.action(vm_id, "stop")
    r = env.api("GET", "/vms/" + vm_id)
    env.check(text(r.body, "status") == "down", "after stop the VM is %r" % text(r.body, "status"))
