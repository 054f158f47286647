"""21. The appliance carries data out over a network the test creates: an isolated libvirt
network with its own subnet and DHCP (no forward: nothing leaves the host), a snapback
network on it, and a NIC on the appliance. The appliance (snapback.send=HOST:PORT) sends
the bytes of the disk snapshot attached to it to a TCP service the test runs on the
network's host address; the bytes must be the snapshot's. The guest's DHCP address shows
in /vms/{id}/reporteddevices (libvirt's leases: this appliance runs no guest agent).
A second appliance with a static address on a network without DHCP starts the appliance's tiny
guest agent (snapback.agent=1): its address shows through the agent, as no lease exists.
"""
import hashlib
import random
import socket
import subprocess
import threading
import time

import appliance
from case_backup import (appliance_files, console, wait_line, take_snapshot, snap_attach_xml, AGENT_MEMORY)
from case_snapshots import offline_write, active_path, last_events
from harness import case, text, random_name, MiB

DATA_SIZE = 16 * MiB
SENT_RE = r"^SNAPBACK-SENT dev=(?P<dev>\S+) to=(?P<to>\S+)\r?$"
NET_RE = r"^SNAPBACK-NET dev=eth0 ip=(?P<ip>[0-9.]+)\r?$"


def create_test_network(env):
    """an isolated libvirt network on a free 10.213.N.0/24; returns (name, host address)"""
    name = random_name("net")
    for _ in range(20):
        n = random.randint(1, 254)
        xml = ("<network><name>%s</name><bridge name='vb%s'/><ip address='10.213.%d.1' netmask='255.255.255.0'>"
               "<dhcp><range start='10.213.%d.10' end='10.213.%d.99'/></dhcp></ip></network>"
               % (name, name[-8:], n, n, n))
        p = subprocess.run(["virsh", "-c", "qemu:///system", "net-create", "/dev/stdin"], input=xml,
                           capture_output=True, text=True)
        if p.returncode == 0:
            return name, "10.213.%d.1" % n
    env.require(False, "virsh net-create %s: %s" % (name, p.stderr))


class Receiver:
    """a TCP service on the host's side of the test network: each connection brings one line
    'SNAPBACK-DATA ... bytes=N' and then N bytes, whose sha256 it keeps"""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((address, 0))
        self.sock.listen(4)
        self.sock.settimeout(1)
        self.port = self.sock.getsockname()[1]
        self.got, self.peers, self.stop = [], [], False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                c, peer = self.sock.accept()
            except socket.timeout:
                continue
            with c:
                c.settimeout(60)
                f = c.makefile("rb")
                header = f.readline().decode("ascii", "replace").split()
                fields = dict(x.split("=", 1) for x in header[1:] if "=" in x)
                size, h, left = int(fields.get("bytes", "0")), hashlib.sha256(), int(fields.get("bytes", "0"))
                while left > 0:
                    b = f.read(min(left, 1 << 20))
                    if not b:
                        break
                    h.update(b)
                    left -= len(b)
                self.peers.append(peer[0])
                self.got.append((fields, size - left, h.hexdigest()))
                f.close()
                c.shutdown(socket.SHUT_RDWR)   # the appliance's nc ends when we close

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


@case("nics: the appliance sends a disk snapshot's bytes over a test network to a host service; its address is reported")
def appliance_sends(env):
    kernel, initrd = appliance_files(env)
    lvnet, host_ip = create_test_network(env)
    rx = None
    try:
        rx = Receiver(host_ip)
        net = env.expect(env.api("POST", "/networks", "<network><name>%s</name><libvirt_network>%s</libvirt_network>"
                                 "</network>" % (lvnet, lvnet)), 201, "add the test network").get("id")
        # the data: a down VM's disk with a pattern, frozen by a snapshot, then changed
        data_vm, _ = env.create_vm(random_name("data"))
        disk = env.create_disk(random_name("data-disk"), size=DATA_SIZE)
        env.attach(data_vm, disk, "virtio_scsi", bootable=True)
        offline_write(env, env.disk_file(disk), 0x5a, 3 * MiB, MiB)
        want = bytearray(DATA_SIZE)
        want[3 * MiB:4 * MiB] = b"\x5a" * MiB
        want = hashlib.sha256(bytes(want)).hexdigest()
        snap = take_snapshot(env, data_vm)
        offline_write(env, active_path(env, data_vm, disk), 0x11, 0, MiB)   # after the snapshot: must not leave

        name = random_name("agent")
        env.vm_names.add(name)
        cmdline = "console=ttyS0 panic=-1 snapback.send=%s:%d" % (host_ip, rx.port)
        r = env.api("POST", "/vms", "<vm><name>%s</name><cluster><name>Default</name></cluster><memory>%d</memory>"
                    "<os><type>other</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>%s</cmdline></os></vm>"
                    % (name, AGENT_MEMORY, kernel, initrd, cmdline))
        agent = env.expect(r, 201, "create the appliance VM").get("id")
        nic = env.expect(env.api("POST", "/vms/%s/nics" % agent, '<nic><name>nic1</name><interface>virtio</interface>'
                                 '<vnic_profile id="%s"/></nic>' % net), 201, "add the appliance's NIC")
        mac = text(nic, "mac/address")
        env.expect(env.api("POST", "/vms/%s/diskattachments" % agent, snap_attach_xml(disk, snap, "virtio")), 201,
                   "attach the disk snapshot to the appliance")
        log = console(env, agent)
        t0 = time.monotonic()
        env.start_vm(agent, name)
        ip = wait_line(env, log, appliance.re.compile(NET_RE, appliance.re.M), 120, name,
                       "the appliance got no address on %s" % lvnet).group("ip")
        wait_line(env, log, appliance.re.compile(SENT_RE, appliance.re.M), 120, name, "the appliance sent nothing")
        print("# the appliance booted, got %s and sent %d MiB in %.1f s" % (ip, DATA_SIZE // MiB, time.monotonic() - t0))
        deadline = time.monotonic() + 10
        while not rx.got and time.monotonic() < deadline:
            time.sleep(0.1)
        env.require(len(rx.got) == 1, "the host service received %d disks, not 1: %r" % (len(rx.got), rx.got))
        fields, n, digest = rx.got[0]
        env.check(rx.peers == [ip], "the data came from %r, not from the appliance's %s" % (rx.peers, ip))
        env.check(n == DATA_SIZE and digest == want,
                  "received %d bytes with sha256 %s; the snapshot holds %d bytes with %s" % (n, digest, DATA_SIZE, want))
        env.check(fields.get("sha256") == want, "the appliance hashed %s, the snapshot is %s" % (fields.get("sha256"), want))

        # what the guest reports: its address on the NIC with the pool's MAC
        deadline = time.monotonic() + 30
        while True:
            r = env.api("GET", "/vms/%s/reporteddevices" % agent)
            devs = env.expect(r, 200, "GET reporteddevices").findall("reported_device")
            addrs = [(text(d, "mac/address"), [text(i, "address") for i in d.findall("ips/ip")]) for d in devs]
            if (mac, [ip]) in addrs or time.monotonic() > deadline:
                break
            time.sleep(1)
        env.check((mac, [ip]) in addrs, "reported devices %r lack %s with %s" % (addrs, mac, ip))
        r = env.api("GET", "/vms/%s?follow=reported_devices" % agent)
        env.check(r.status == 200 and ip in [text(i, "address") for i in r.body.findall("reported_devices/reported_device/ips/ip")],
                  "GET the VM with follow=reported_devices lacks %s: %s" % (ip, r.short()))
        if devs:
            d = devs[0]
            env.check(text(d, "type") == "network", "reported device type %r" % text(d, "type"))
            r = env.api("GET", "/vms/%s/reporteddevices/%s" % (agent, d.get("id")))
            env.expect(r, 200, "GET one reported device")
        env.action(agent, "stop")
        r = env.api("GET", "/vms/%s/reporteddevices" % agent)
        env.check(r.status == 200 and not r.body.findall("reported_device"), "a stopped VM reports nothing: " + r.short())
    finally:
        if rx:
            rx.close()
        subprocess.run(["virsh", "-c", "qemu:///system", "net-destroy", lvnet], capture_output=True)


def create_static_network(env):
    """an isolated libvirt network on a free 10.214.N.0/24 without DHCP: no lease can name a
    guest's address there; returns (name, prefix 'N.N.N.')"""
    name = random_name("net")
    for _ in range(20):
        n = random.randint(1, 254)
        xml = ("<network><name>%s</name><bridge name='vb%s'/><ip address='10.214.%d.1' netmask='255.255.255.0'/>"
               "</network>" % (name, name[-8:], n))
        p = subprocess.run(["virsh", "-c", "qemu:///system", "net-create", "/dev/stdin"], input=xml,
                           capture_output=True, text=True)
        if p.returncode == 0:
            return name, "10.214.%d." % n
    env.require(False, "virsh net-create %s: %s" % (name, p.stderr))


@case("nics: a guest agent reports the appliance's static address (no DHCP lease exists for it)")
def agent_reports_address(env):
    kernel, initrd = appliance_files(env)
    lvnet, prefix = create_static_network(env)
    try:
        net = env.expect(env.api("POST", "/networks", "<network><name>%s</name><libvirt_network>%s</libvirt_network>"
                                 "</network>" % (lvnet, lvnet)), 201, "add the test network").get("id")
        ip = prefix + str(random.randint(100, 250))
        name = random_name("agent")
        env.vm_names.add(name)
        cmdline = "console=ttyS0 panic=-1 snapback.agent=1 snapback.ip=%s/24" % ip
        r = env.api("POST", "/vms", "<vm><name>%s</name><cluster><name>Default</name></cluster><memory>%d</memory>"
                    "<os><type>other</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>%s</cmdline></os></vm>"
                    % (name, AGENT_MEMORY, kernel, initrd, cmdline))
        vm = env.expect(r, 201, "create the appliance VM").get("id")
        nic = env.expect(env.api("POST", "/vms/%s/nics" % vm, '<nic><name>nic1</name><interface>virtio</interface>'
                                 '<vnic_profile id="%s"/></nic>' % net), 201, "add the appliance's NIC")
        mac = text(nic, "mac/address")
        disk = env.create_disk(random_name("agent-disk"), size=MiB)
        env.attach(vm, disk, "virtio", bootable=False)
        log = console(env, vm)
        t0 = time.monotonic()
        env.start_vm(vm, name)
        wait_line(env, log, appliance.re.compile(r"^SNAPBACK-AGENT port=\S+\r?$", appliance.re.M), 120, name,
                  "the appliance's guest agent did not start")
        t_agent = time.monotonic() - t0
        def seen():   # the agent also reports the NIC's IPv6 link-local address once it has one
            return any(m == mac and ip in ips for m, ips in addrs)
        addrs = []
        deadline = time.monotonic() + 30
        while not seen() and time.monotonic() < deadline:
            r = env.api("GET", "/vms/%s/reporteddevices" % vm)
            addrs = [(text(d, "mac/address"), [text(i, "address") for i in d.findall("ips/ip")])
                     for d in env.expect(r, 200, "GET reporteddevices").findall("reported_device")]
            if not seen():
                time.sleep(0.5)
        print("# the agent opened its port %.1f s and reported %s %.1f s after the start"
              % (t_agent, ip, time.monotonic() - t0))
        env.check(seen(), "reported devices %r lack %s with %s" % (addrs, mac, ip))
        r = env.api("GET", "/vms/%s?follow=reported_devices" % vm)
        env.check(r.status == 200 and ip in [text(i, "address") for i in r.body.findall("reported_devices/reported_device/ips/ip")],
                  "GET the VM with follow=reported_devices lacks %s: %s" % (ip, r.short()))
        # the proof that it came from the agent: libvirt's leases know nothing of this guest
        p = subprocess.run(["virsh", "-c", "qemu:///system", "domifaddr", name, "--source", "lease"],
                           capture_output=True, text=True)
        env.check(ip not in p.stdout, "libvirt has a lease for %s: %s" % (ip, p.stdout))
        p = subprocess.run(["virsh", "-c", "qemu:///system", "domifaddr", name, "--source", "agent"],
                           capture_output=True, text=True)
        env.check(p.returncode == 0 and ip in p.stdout, "virsh domifaddr --source agent: %s %s" % (p.stdout, p.stderr))
        for cmd, want in (("guest-ping", '{"return":{}}'), ("guest-info", '"version":"snapback-appliance"')):
            p = subprocess.run(["virsh", "-c", "qemu:///system", "qemu-agent-command", name, '{"execute":"%s"}' % cmd],
                               capture_output=True, text=True)
            env.check(p.returncode == 0 and want in p.stdout, "%s: %s %s" % (cmd, p.stdout, p.stderr))
        # anything else is refused as a real agent refuses an unknown command: no fs freeze
        p = subprocess.run(["virsh", "-c", "qemu:///system", "domfsfreeze", name], capture_output=True, text=True)
        env.check(p.returncode != 0, "the appliance's agent claimed to freeze file systems: %s" % p.stdout)
        # so a live snapshot cannot be quiesced: it is taken crash-consistent, as without an agent
        take_snapshot(env, vm, "agent")
        evs = last_events(env, 4)
        env.check(any("crash-consistent" in (e or "") for e in evs),
                  "no event says the snapshot of the agent's appliance is crash-consistent: %r" % evs)
        print("# agent checks and a crash-consistent snapshot done %.1f s after the start" % (time.monotonic() - t0))
        env.action(vm, "stop")
    finally:
        subprocess.run(["virsh", "-c", "qemu:///system", "net-destroy", lvnet], capture_output=True)
