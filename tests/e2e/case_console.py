"""18. Graphics consoles: VNC on loopback, opened only with a ticket.

A real VNC client from Debian (vncsnapshot, with a password file from TigerVNC's
vncpasswd) connects to a running VM's console: refused before any ticket, with a
wrong ticket and with an expired one; with the ticket it takes a non-empty screenshot.
Where the host's QEMU has SPICE (libvirt's domain capabilities say so), a SPICE console
is offered beside it: locked at start, its ticket set with an expiry, a .vv file of type
spice.
"""
import os
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

from harness import case, text, fail

VNC = "766e63"   # oVirt names a console by its protocol in hex
SPICE = "7370696365"


def host_has_spice():
    p = subprocess.run(["virsh", "-c", "qemu:///system", "domcapabilities", "--machine", "q35",
                        "--virttype", "qemu"], capture_output=True, text=True)
    caps = ET.fromstring(p.stdout) if p.returncode == 0 else None
    vals = caps.findall("devices/graphics/enum[@name='type']/value") if caps is not None else []
    return "spice" in [v.text for v in vals]


def snapshot(port, password, tmp):
    """runs vncsnapshot against 127.0.0.1:port; returns (ok, jpeg size, output)"""
    pwfile = os.path.join(tmp, "passwd")
    p = subprocess.run(["vncpasswd", "-f"], input=(password + "\n").encode(), capture_output=True, timeout=20)
    if p.returncode != 0:
        fail("vncpasswd -f failed: %s" % p.stderr.decode(errors="replace"))
    with open(pwfile, "wb") as f:
        f.write(p.stdout)
    out = os.path.join(tmp, "shot.jpg")
    if os.path.exists(out):
        os.unlink(out)
    try:
        p = subprocess.run(["vncsnapshot", "-quiet", "-passwd", pwfile, "127.0.0.1:%d" % (port - 5900), out],
                           capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False, 0, "timed out"
    size = os.path.getsize(out) if os.path.exists(out) else 0
    return p.returncode == 0 and size > 0, size, (p.stdout + p.stderr).decode(errors="replace").strip()


def ticket(env, vm_id, body="<action/>"):
    r = env.api("POST", "/vms/%s/graphicsconsoles/%s/ticket" % (vm_id, VNC), body)
    b = env.expect(r, 200, "POST console ticket")
    value = text(b, "ticket/value")
    env.require(value, "the ticket action returns no <ticket><value>: " + r.short())
    return value


@case("console: VNC on loopback opens with the ticket, not without, not with a wrong or expired one")
def console(env):
    vm_id, name = env.create_vm()
    spice = host_has_spice()
    print("# the host's QEMU %s SPICE" % ("has" if spice else "lacks"))
    r = env.api("GET", "/vms/%s/graphicsconsoles" % vm_id)
    env.check(r.status == 200 and isinstance(r.body, ET.Element) and
              [text(c, "protocol") for c in r.body.findall("graphics_console")] == ["vnc"] + (["spice"] if spice else []),
              "consoles of a down VM: " + r.short())
    r = env.api("POST", "/vms/%s/graphicsconsoles/%s/ticket" % (vm_id, VNC), "<action/>")
    env.check_fault(r, 409, "a ticket for a VM that is down", [name])
    env.start_vm(vm_id, name)

    r = env.api("GET", "/vms/%s/graphicsconsoles/%s" % (vm_id, VNC))
    c = env.expect(r, 200, "GET the VNC console")
    port = int(text(c, "port", "0"))
    env.require(port >= 5900, "the running VM's console has no port: " + r.short())
    env.check(text(c, "address") == "127.0.0.1", "the console listens on %r, not loopback" % text(c, "address"))
    if not spice:
        r = env.api("GET", "/vms/%s/graphicsconsoles/%s" % (vm_id, SPICE))
        env.check_fault(r, 404, "a SPICE console the VM does not have")
    else:
        r = env.api("GET", "/vms/%s/graphicsconsoles/%s" % (vm_id, SPICE))
        s = env.expect(r, 200, "GET the SPICE console")
        sport = int(text(s, "port", "0"))
        env.check(sport >= 5900 and sport != port and text(s, "address") == "127.0.0.1",
                  "the SPICE console: " + r.short())
        dom = ET.fromstring(subprocess.run(["virsh", "-c", "qemu:///system", "dumpxml", "--security-info", name],
                                           capture_output=True, text=True).stdout)
        g = dom.find("devices/graphics[@type='spice']")
        env.check(g is not None and g.get("passwd") and g.get("passwdValidTo"),
                  "the SPICE console is not locked at start: %r" % (g.attrib if g is not None else None))
        r = env.api("POST", "/vms/%s/graphicsconsoles/%s/ticket" % (vm_id, SPICE),
                    "<action><ticket><value>spice-ticket-1</value><expiry>300</expiry></ticket></action>")
        env.check(r.status == 200 and text(r.body, "ticket/value") == "spice-ticket-1", "SPICE ticket: " + r.short())
        dom = ET.fromstring(subprocess.run(["virsh", "-c", "qemu:///system", "dumpxml", "--security-info", name],
                                           capture_output=True, text=True).stdout)
        g = dom.find("devices/graphics[@type='spice']")
        env.check(g is not None and g.get("passwd") == "spice-ticket-1", "SPICE password after the ticket: %r"
                  % (g.attrib if g is not None else None))
        r = env.api("POST", "/vms/%s/graphicsconsoles/%s/remoteviewerconnectionfile" % (vm_id, SPICE), "<action/>")
        vv = text(env.expect(r, 200, "SPICE remoteviewerconnectionfile"), "remote_viewer_connection_file", "")
        env.check("type=spice" in vv and "port=%d" % sport in vv and "password=" in vv, "the SPICE .vv file: %r" % vv)

    with tempfile.TemporaryDirectory(prefix="snapback-e2e-vnc-") as tmp:
        ok, _, out = snapshot(port, "guessed1", tmp)
        env.check(not ok, "the console opened before any ticket: %s" % out)
        value = ticket(env, vm_id)
        ok, _, out = snapshot(port, "x" + value[1:] if value[0] != "x" else "y" + value[1:], tmp)
        env.check(not ok, "the console opened with a wrong ticket: %s" % out)
        ok, size, out = snapshot(port, value, tmp)
        env.check(ok and size > 0, "the console did not open with the ticket: %s" % out)
        short = ticket(env, vm_id, "<action><ticket><value>chosen1</value><expiry>1</expiry></ticket></action>")
        env.check(short == "chosen1", "the ticket action answered %r, not the value given" % short)
        time.sleep(2.5)
        ok, _, out = snapshot(port, "chosen1", tmp)
        env.check(not ok, "the console opened with an expired ticket: %s" % out)

    r = env.api("POST", "/vms/%s/graphicsconsoles/%s/remoteviewerconnectionfile" % (vm_id, VNC), "<action/>")
    b = env.expect(r, 200, "remoteviewerconnectionfile")
    vv = text(b, "remote_viewer_connection_file", "")
    env.check(vv.startswith("[virt-viewer]") and "type=vnc" in vv and "port=%d" % port in vv
              and "password=" in vv, "the .vv file: %r" % vv)
    r = env.api("POST", "/vms/%s/graphicsconsoles/%s/ticket" % (vm_id, VNC),
                "<action><ticket><expiry>0</expiry></ticket></action>")
    env.check_fault(r, 400, "a ticket with expiry 0", ["expiry"])
