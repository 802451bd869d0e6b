"""Lab, topology `libvirt`: sriovctl's node devices against a real libvirtd's (Debian 12, libvirt 9.0)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from labguest import set_numvfs, sh, start_libvirtd

pytestmark = pytest.mark.lab("libvirt")


@pytest.fixture(scope="module")
def libvirt_up(host, pfs):  # type: ignore[no-untyped-def]
    if host is None:
        return None
    (pf,) = pfs
    set_numvfs(host, pf, 7)  # before libvirtd starts: without udevd it sees no hotplug events
    start_libvirtd()
    return pf


def facts(xml: str) -> dict[str, object]:
    root = ET.fromstring(xml)
    cap = root.find("./capability[@type='pci']")
    assert cap is not None

    def addrs(node: ET.Element | None) -> list[str]:
        if node is None:
            return []
        return [f"{int(a.get('domain', '0'), 16):04x}:{int(a.get('bus', '0'), 16):02x}:"
                f"{int(a.get('slot', '0'), 16):02x}.{int(a.get('function', '0'), 16)}" for a in node.findall("address")]
    vfs = cap.find("./capability[@type='virt_functions']")
    grp = cap.find("iommuGroup")
    return {
        "name": root.findtext("name"), "path": root.findtext("path"), "parent": root.findtext("parent"),
        "driver": root.findtext("driver/name"), "class": cap.findtext("class"),
        "address": tuple(int(cap.findtext(k) or "-1") for k in ("domain", "bus", "slot", "function")),
        "product_id": cap.find("product").get("id"), "vendor_id": cap.find("vendor").get("id"),  # type: ignore[union-attr]
        "product": cap.findtext("product"), "vendor": cap.findtext("vendor"),
        "vf_max": None if vfs is None else vfs.get("maxCount"), "vfs": addrs(vfs),
        "physfn": addrs(cap.find("./capability[@type='phys_function']")),
        "group": None if grp is None else grp.get("number"), "group_members": addrs(grp),
    }


def test_nodedev_list_matches_virsh(libvirt_up, host) -> None:  # type: ignore[no-untyped-def]
    import io

    from sriovctl.cli.main import run

    virsh = sorted(sh("virsh", "-c", "qemu:///system", "nodedev-list", "--cap", "pci").split())
    out = io.StringIO()
    assert run(["nodedev", "list"], out=out)[0] == 0
    assert sorted(out.getvalue().split()) == virsh
    assert len(virsh) > 10


@pytest.mark.parametrize("which", ["pf", "vf0", "vf6"])
def test_nodedev_dumpxml_matches_virsh(libvirt_up, host, which: str) -> None:  # type: ignore[no-untyped-def]
    import io

    from sriovctl.cli.main import run
    from sriovctl.pci.address import PciAddress

    pf = libvirt_up
    name = PciAddress.parse(pf).nodedev_name if which == "pf" else f"{pf}#{which[2:]}"
    out = io.StringIO()
    assert run(["nodedev", "dumpxml", name], out=out)[0] == 0
    ours = facts(out.getvalue())
    theirs = facts(sh("virsh", "-c", "qemu:///system", "nodedev-dumpxml", str(ours["name"])))
    assert ours == theirs
    if which == "pf":
        assert ours["vf_max"] == "7" and len(ours["vfs"]) == 7  # type: ignore[arg-type]
    else:
        assert ours["physfn"] == [pf]


GOLDEN_VIRT = __import__("pathlib").Path(__file__).parent.parent / "fixtures" / "golden" / "virt"


def test_generated_xml_is_accepted_by_libvirtd(libvirt_up, host) -> None:  # type: ignore[no-untyped-def]
    """Every variant the golden files cover, generated here for the real PF and its VFs, defined in libvirtd."""
    import io
    import os

    import libvirt

    from sriovctl.cli.main import run
    from sriovctl.virt.xml import domain_wrapper

    pf = libvirt_up
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    variants = {
        "interface-mac-vlan": ["virt", "xml", f"{ifname}#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42"],
        "interface-generated-mac": ["virt", "xml", f"{ifname}#1"],
        "interface-full": ["virt", "xml", f"{ifname}#3", "--mac", "52:54:00:00:00:33", "--vlan", "7", "--vfio-driver",
                           "--rom-bar", "off", "--alias", "ua-sriov-net0", "--guest-address", "0000:01:00.0"],
        "hostdev": ["virt", "xml", f"{ifname}#4", "--hostdev", "--vfio-driver", "--alias", "ua-vf4"],
        "network-pf": ["virt", "network-xml", ifname, "--name", "sriov-pf"],
        "network-vfs": ["virt", "network-xml", ifname, "--name", "sriov-list", "--vfs"],
    }
    conn = libvirt.open("qemu:///system")
    for name, args in variants.items():
        out = io.StringIO()
        assert run(args, out=out)[0] == 0, name
        if name.startswith("network"):
            net = conn.networkDefineXML(out.getvalue())
            net.undefine()
        else:
            dom = conn.defineXML(domain_wrapper(out.getvalue(), name=f"accept-{name}"))
            dom.undefine()


@pytest.fixture(scope="module")
def paused_domains(libvirt_up):  # type: ignore[no-untyped-def]
    if libvirt_up is None:
        return None
    import libvirt

    from sriovctl.virt.xml import domain_wrapper

    conn = libvirt.open("qemu:///system")
    doms = []
    for name in ("vm1", "vm2"):
        dom = conn.defineXML(domain_wrapper("", name=name).replace("    \n", ""))
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        doms.append(dom)
    return doms


def test_attach_and_detach_on_a_real_libvirtd(libvirt_up, paused_domains, host) -> None:  # type: ignore[no-untyped-def]
    import io
    import os
    import time

    import libvirt

    from sriovctl.cli.main import run

    pf = libvirt_up
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    vf0 = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn0"))

    def cli(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code, _ = run(list(args), out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    sh("ip", "link", "set", "dev", ifname, "down")
    code, out, err = cli("virt", "attach", "vm1", f"{ifname}#0", "--live")
    assert code == 69 and "is down" in err, err  # our refusal, before libvirt's "PF is not online"
    sh("ip", "link", "set", "dev", ifname, "up")
    t0 = time.monotonic()
    code, out, err = cli("virt", "attach", "vm1", f"{ifname}#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42",
                         "--live", "--config")
    attach_s = time.monotonic() - t0
    assert code == 0, err
    conn = libvirt.open("qemu:///system")
    live = conn.lookupByName("vm1").XMLDesc(0)
    assert "52:54:00:6d:90:02" in live and "<tag id='42'" in live.replace('"', "'")
    assert os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf0}/driver")) == "vfio-pci"
    ipl = sh("ip", "-d", "link", "show", "dev", ifname)
    line = next(x for x in ipl.splitlines() if x.strip().startswith("vf 0 "))
    assert "52:54:00:6d:90:02" in line and "vlan 42" in line, line
    code, out, err = cli("virt", "list")
    assert code == 0 and f"{vf0}  vm1" in out
    code, _, err = cli("virt", "attach", "vm2", f"{ifname}#0", "--live")
    assert code == 77 and "already given to domain vm1 (running)" in err, err
    t0 = time.monotonic()
    code, out, err = cli("virt", "detach", "vm1", f"{ifname}#0", "--live", "--config", "--wait", "5")
    detach_s = time.monotonic() - t0
    # The paused guest has no OS to acknowledge the hot-unplug: QEMU keeps the device, and sriovctl says so.
    assert code == 75 and "the guest has not released it" in err and "holds /dev/vfio/" in err, (code, err)
    assert "52:54:00:6d:90:02" not in conn.lookupByName("vm1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    conn.lookupByName("vm1").destroy()  # QEMU lets go; libvirt's managed re-attach (or sriovctl) returns the VF
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf0}/driver")) != "igbvf":
        time.sleep(0.2)
    if os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf0}/driver")) != "igbvf":
        assert cli("vf", "bind", f"{ifname}#0", "host")[0] == 0
    assert os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf0}/driver")) == "igbvf"
    from labguest import LAB_OUT

    (LAB_OUT / "virt-attach.txt").write_text(f"attach {attach_s:.2f} s, detach (until igbvf) {detach_s:.2f} s\n{out}")


def test_qemu_qmp_hotplug_and_unplug(libvirt_up, host, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    """A nested QEMU (TCG, paused, no disk) with a QMP socket and a spare pcie-root-port: hotplug a VF, see it
    in query-pci, unplug it."""
    import io
    import os
    import subprocess
    import time

    from sriovctl.cli.main import run
    from sriovctl.pci.address import PciAddress
    from sriovctl.virt.qemu import listed

    pf = libvirt_up
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    vf = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn3"))
    sock = "/tmp/sriovctl-qmp.sock"
    qemu = subprocess.Popen(["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "128",
                             "-display", "none", "-nodefaults", "-no-user-config",
                             "-device", "pcie-root-port,id=rp1,chassis=1,slot=1",
                             "-qmp", f"unix:{sock},server=on,wait=off"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(5)  # SeaBIOS numbers the root port's bus; before that query-pci lists nothing behind it
        out, err = io.StringIO(), io.StringIO()
        code, _ = run(["qemu", "hotplug", f"{ifname}#3", "--qmp", sock], out=out, err=err)
        assert code == 0, err.getvalue()
        assert "plugged into rp1" in out.getvalue()
        assert os.path.basename(os.readlink(f"/sys/bus/pci/devices/{vf}/driver")) == "vfio-pci"
        assert listed(sock, PciAddress.parse(vf))
        out, err = io.StringIO(), io.StringIO()
        code, _ = run(["qemu", "unplug", f"{ifname}#3", "--qmp", sock, "--wait", "10"], out=out, err=err)
        # PCIe hot-unplug needs the guest OS to acknowledge; this guest runs only its firmware, so QEMU never
        # sends DEVICE_DELETED: sriovctl says so after its deadline instead of hanging.
        assert code == 75 and "not deleted after 10 s" in err.getvalue(), (code, err.getvalue())
    finally:
        qemu.kill()
        qemu.wait()
    code, _ = run(["vf", "bind", f"{ifname}#3", "host"], out=io.StringIO(), err=io.StringIO())
    assert code == 0


def test_hostdev_network_hands_out_a_free_vf(libvirt_up, host) -> None:  # type: ignore[no-untyped-def]
    import io
    import os

    import libvirt

    from sriovctl.cli.main import run
    from sriovctl.virt.xml import domain_wrapper

    pf = libvirt_up
    sh("ip", "link", "set", "dev", os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0], "up")  # libvirt needs the PF online
    out = io.StringIO()
    assert run(["virt", "network-xml", pf, "--name", "sriov-pool"], out=out)[0] == 0
    conn = libvirt.open("qemu:///system")
    net = conn.networkDefineXML(out.getvalue())
    net.create()
    try:
        iface = ("<interface type='network'><mac address='52:54:00:aa:bb:01'/><source network='sriov-pool'/>"
                 "<vlan><tag id='7'/></vlan></interface>")
        dom = conn.defineXML(domain_wrapper(iface, name="vm-pool"))
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        try:
            vfs = [os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/{v}"))
                   for v in sorted(os.listdir(f"/sys/bus/pci/devices/{pf}")) if v.startswith("virtfn")]
            on_vfio = [v for v in vfs if os.path.basename(os.readlink(f"/sys/bus/pci/devices/{v}/driver")) == "vfio-pci"]
            assert len(on_vfio) == 1, on_vfio  # libvirt took exactly one free VF from the pool
            ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
            assert "52:54:00:aa:bb:01" in sh("ip", "-d", "link", "show", "dev", ifname)
        finally:
            dom.destroy()
            dom.undefine()
    finally:
        net.destroy()
        net.undefine()
