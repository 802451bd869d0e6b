"""Lab, topology `libvirt`: sriovctl's node devices against a real libvirtd's (Debian 12, libvirt 9.0)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

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


GOLDEN_VIRT = Path(__file__).parent.parent / "fixtures" / "golden" / "virt"


def test_generated_xml_is_accepted_by_libvirtd(libvirt_up, host) -> None:  # type: ignore[no-untyped-def]
    """Every variant the golden files cover, generated here for the real PF and its VFs, defined in libvirtd."""
    import io
    import os

    import libvirt

    import virt_variants
    from sriovctl.cli.main import run
    from sriovctl.virt.xml import domain_wrapper

    pf = libvirt_up
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    variants = virt_variants.variants(ifname, ifname)
    assert set(variants) == {p.stem for p in GOLDEN_VIRT.glob("*.xml")}
    conn = libvirt.open("qemu:///system")
    for name, args in variants.items():
        out = io.StringIO()
        assert run(args, out=out)[0] == 0, name
        ours = ET.fromstring(out.getvalue())
        if name.startswith("network"):
            net = conn.networkDefineXML(out.getvalue())
            back = ET.fromstring(net.XMLDesc(0)).find("forward")
            ours = ours.find("forward")  # type: ignore[assignment]
            net.undefine()
        else:
            dom = conn.defineXML(domain_wrapper(out.getvalue(), name=f"accept-{name}"))
            back = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find(f"./devices/{ours.tag}")
            dom.undefine()
        # libvirt kept every element we wrote (it drops what it does not understand)
        assert back is not None and ours is not None, name
        assert {c.tag for c in ours} <= {c.tag for c in back}, (name, ET.tostring(back, encoding="unicode"))


@pytest.fixture(scope="module")
def paused_domains(libvirt_up):  # type: ignore[no-untyped-def]
    """vm1 with native PCIe hotplug (QEMU lets go of a device at once when the guest never powered its slot:
    an OS-less guest can then complete an unplug), vm2 with q35's default ACPI hotplug (it never can)."""
    if libvirt_up is None:
        return None
    import libvirt

    from sriovctl.virt.qemu import NATIVE_PCIE_HOTPLUG
    from sriovctl.virt.xml import domain_wrapper

    conn = libvirt.open("qemu:///system")
    doms = []
    for name, args in (("vm1", NATIVE_PCIE_HOTPLUG), ("vm2", ())):
        dom = conn.defineXML(domain_wrapper("", name=name, qemu_args=args))
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        doms.append(dom)
    return doms


def _driver(bdf: str) -> str | None:
    import os

    link = f"/sys/bus/pci/devices/{bdf}/driver"
    return os.path.basename(os.readlink(link)) if os.path.islink(link) else None


def _cli(*args: str) -> tuple[int, str, str]:
    import io

    from sriovctl.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    code, _ = run(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _vf_line(ifname: str, n: int) -> str:
    return next(x.strip() for x in sh("ip", "-d", "link", "show", "dev", ifname).splitlines()
                if x.strip().startswith(f"vf {n} "))


def test_attach_and_detach_on_a_real_libvirtd(libvirt_up, paused_domains, host) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    import libvirt

    from labguest import LAB_OUT

    pf = libvirt_up
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    vf0 = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn0"))
    before = _vf_line(ifname, 0)

    sh("ip", "link", "set", "dev", ifname, "down")
    code, out, err = _cli("virt", "attach", "vm1", f"{ifname}#0", "--live")
    assert code == 69 and "is down" in err, err  # our refusal, before libvirt's "PF is not online"
    sh("ip", "link", "set", "dev", ifname, "up")
    t0 = time.monotonic()
    code, out, err = _cli("virt", "attach", "vm1", f"{ifname}#0", "--mac", "52:54:00:6d:90:02", "--vlan", "42",
                          "--live", "--config")
    attach_s = time.monotonic() - t0
    assert code == 0, err
    conn = libvirt.open("qemu:///system")
    live = conn.lookupByName("vm1").XMLDesc(0)
    assert "52:54:00:6d:90:02" in live and "<tag id='42'" in live.replace('"', "'")
    assert _driver(vf0) == "vfio-pci"
    line = _vf_line(ifname, 0)
    assert "52:54:00:6d:90:02" in line and "vlan 42" in line, line
    code, out, err = _cli("virt", "list")
    assert code == 0 and f"{vf0}  vm1" in out
    code, _, err = _cli("virt", "attach", "vm2", f"{ifname}#0", "--live")
    assert code == 77 and "already given to domain vm1 (paused)" in err, err
    code, _, err = _cli("vf", "disable", pf)  # the interlock asks libvirt's API (it knows the domain is paused)
    assert code == 77 and f"{vf0}: libvirt domain vm1 (paused), QEMU guest vm1 (pid " in err, err

    code, out, err = _cli("virt", "detach", "vm1", f"{ifname}#0", "--live", "--config", "--dry-run")
    assert code == 0 and "libvirt:qemu:///system: detach from vm1 (live and config): <interface" in out, (code, out, err)
    assert "52:54:00:6d:90:02" in conn.lookupByName("vm1").XMLDesc(0) and _driver(vf0) == "vfio-pci"

    t0 = time.monotonic()
    code, out, err = _cli("virt", "detach", "vm1", f"{ifname}#0", "--live", "--config", "--wait", "20")
    detach_s = time.monotonic() - t0
    assert code == 0, (code, out, err)
    assert _driver(vf0) == "igbvf" and "detached from vm1 (live and config)" in out, out
    for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
        assert "52:54:00:6d:90:02" not in conn.lookupByName("vm1").XMLDesc(flags)
    after = _vf_line(ifname, 0)

    # the same round trip as a plain <hostdev>
    vf1 = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn1"))
    code, out, err = _cli("virt", "attach", "vm1", f"{ifname}#1", "--hostdev", "--live")
    assert code == 0 and "as <hostdev>" in out and _driver(vf1) == "vfio-pci", (code, out, err)
    assert "<hostdev mode='subsystem' type='pci' managed='yes'>" in conn.lookupByName("vm1").XMLDesc(0)
    code, out, err = _cli("virt", "detach", "vm1", f"{ifname}#1", "--live", "--wait", "20")
    assert code == 0 and _driver(vf1) == "igbvf", (code, out, err)

    # ACPI hotplug (q35's default) with a paused, OS-less guest: the unplug is never acknowledged, QEMU keeps
    # the device and its VFIO group, and sriovctl says so after its deadline instead of pretending.
    assert _cli("virt", "attach", "vm2", f"{ifname}#0", "--live")[0] == 0
    t0 = time.monotonic()
    code, out, err = _cli("virt", "detach", "vm2", f"{ifname}#0", "--live", "--wait", "6")
    acpi_s = time.monotonic() - t0
    assert code == 75 and "the guest has not released it" in err and "holds /dev/vfio/" in err, (code, err)
    assert acpi_s < 6 + 2, acpi_s  # the deadline includes libvirt's own ~5 s wait for the unplug
    assert _driver(vf0) == "vfio-pci"
    conn.lookupByName("vm2").destroy()  # QEMU lets go; libvirt's managed re-attach (or sriovctl) returns the VF
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _driver(vf0) != "igbvf":
        time.sleep(0.2)
    if _driver(vf0) != "igbvf":
        assert _cli("vf", "bind", f"{ifname}#0", "host")[0] == 0
    assert _driver(vf0) == "igbvf"
    (LAB_OUT / "virt-attach.txt").write_text(
        f"attach {attach_s:.2f} s; detach until back on igbvf (native PCIe hotplug) {detach_s:.2f} s; "
        f"detach with ACPI hotplug: refused after {acpi_s:.2f} s (--wait 6: libvirt waits ~5 s itself)\n"
        f"PF's view of vf 0: before: {before}\nattached: {line}\nafter detach: {after}\n{out}")


def _nested_qemu(sock: str, extra: tuple[str, ...]):  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import time

    if os.path.exists(sock):
        os.unlink(sock)
    qemu = subprocess.Popen(["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "128",
                             "-display", "none", "-nodefaults", "-no-user-config",
                             "-device", "pcie-root-port,id=rp1,chassis=1,slot=1",
                             "-qmp", f"unix:{sock},server=on,wait=off", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(5)  # SeaBIOS numbers the root port's bus; before that query-pci lists nothing behind it
    return qemu


def test_qemu_qmp_hotplug_and_unplug(libvirt_up, paused_domains, host) -> None:  # type: ignore[no-untyped-def]
    """A nested QEMU (TCG, no disk, no OS) with a QMP socket and a spare pcie-root-port: hotplug a VF, see it
    in query-pci, unplug it, and it is back on igbvf. Then the same with ACPI hotplug, which such a guest
    can never acknowledge."""
    import os
    import time

    from labguest import LAB_OUT
    from sriovctl.pci.address import PciAddress
    from sriovctl.virt.qemu import NATIVE_PCIE_HOTPLUG, listed

    pf = libvirt_up
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    vf = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn3"))
    sock = "/tmp/sriovctl-qmp.sock"
    qemu = _nested_qemu(sock, NATIVE_PCIE_HOTPLUG)
    try:
        code, out, err = _cli("qemu", "hotplug", f"{ifname}#3", "--qmp", sock, "--dry-run")
        assert code == 0 and "qmp:" + sock in out and "bus=rp1" in out, (code, out, err)
        assert _driver(vf) == "igbvf" and not listed(sock, PciAddress.parse(vf))  # dry run: nothing changed
        code, out, err = _cli("qemu", "hotplug", f"{ifname}#3", "--qmp", sock)
        assert code == 0, err
        assert "plugged into rp1" in out
        assert _driver(vf) == "vfio-pci"
        assert listed(sock, PciAddress.parse(vf))
        code, _, err = _cli("qemu", "hotplug", f"{ifname}#3", "--qmp", sock)
        assert code == 64 and "already plugged in" in err, (code, err)
        t0 = time.monotonic()
        code, out, err = _cli("qemu", "unplug", f"{ifname}#3", "--qmp", sock, "--wait", "10")
        unplug_s = time.monotonic() - t0
        assert code == 0, (code, out, err)
        assert "DEVICE_DELETED" in out and _driver(vf) == "igbvf", out
        unplug_out = out
        assert not listed(sock, PciAddress.parse(vf))
    finally:
        qemu.kill()
        qemu.wait()
    qemu = _nested_qemu(sock, ())
    try:
        assert _cli("qemu", "hotplug", f"{ifname}#3", "--qmp", sock)[0] == 0
        code, out, err = _cli("qemu", "unplug", f"{ifname}#3", "--qmp", sock, "--wait", "3")
        assert code == 75 and "not deleted after 3 s" in err and "acpi-pci-hotplug" in err, (code, err)
        acpi_err = err
        code, out, err = _cli("vf", "disable", pf)
        assert code == 77 and "qemu" in err.lower(), (code, err)  # in use by the QEMU process: refused
        # nor is it given to a libvirt domain while a QEMU outside libvirt holds it
        code, out, err = _cli("virt", "attach", "vm1", f"{ifname}#3", "--hostdev", "--live")
        assert code == 77 and f"{vf}: refusing to give it to vm1: QEMU process (pid " in err and "QMP " + sock in err, err
        refused = err
    finally:
        qemu.kill()
        qemu.wait()
    code, _, err = _cli("vf", "bind", f"{ifname}#3", "host")
    assert code == 0, err
    (LAB_OUT / "qemu-unplug.txt").write_text(f"unplug + back on igbvf (native PCIe hotplug): {unplug_s:.2f} s\n"
                                             f"{unplug_out}ACPI hotplug:\n{acpi_err}{refused}")


def test_hostdev_network_hands_out_a_free_vf(libvirt_up, paused_domains, host) -> None:  # type: ignore[no-untyped-def]
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
            # sriovctl sees the VF libvirt picked: who uses it, and the owner check before attaching it elsewhere
            code, out, err = _cli("virt", "list")
            assert code == 0 and f"{on_vfio[0]}  vm-pool" in out, out
            code, _, err = _cli("virt", "attach", "vm1", on_vfio[0], "--live", "--dry-run")
            assert code == 77 and "already given to domain vm-pool (paused)" in err, err
            free = next(v for v in vfs if v not in on_vfio)
            code, out, err = _cli("virt", "attach", "vm1", free, "--live", "--dry-run")
            assert code == 0 and "in the pool of libvirt network sriov-pool" in err, (code, out, err)
        finally:
            dom.destroy()
            dom.undefine()
    finally:
        net.destroy()
        net.undefine()


def test_exporter_on_the_real_kernel(libvirt_up, paused_domains, host) -> None:  # type: ignore[no-untyped-def]
    """Issue 21 on a real kernel and libvirtd: a VF given to running domain vm1 and one in stopped domain vm2's
    definition carry their domain's name in sriovctl_vf_info; an igbvf VF's netdev counts what is sent through
    it while igb's IFLA_VF_STATS stay zeros (the exporter reports no series from them). The emulated 82576 never
    completes igbvf's reset handshake ("PF still resetting" on every retry, seen in the lab): the VF has no
    carrier, and each frame sent through it (AF_PACKET, qdisc bypassed) is counted by the kernel as tx_dropped
    (__dev_direct_xmit) — the netdev counter the exporter must read. The same steps on the simulated igb give the
    same trace (recorded: tests/fixtures/lab/fidelity-exporter-kernel.json)."""
    import contextlib
    import json
    import os
    import socket

    import libvirt

    from fidelity import FRAMES, exporter_trace, sim_exporter_trace
    from labguest import LAB_OUT, wait_for
    from sriovctl.ops.metrics import Exporter

    pf = libvirt_up
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    sh("ip", "link", "set", "dev", ifname, "up")
    conn = libvirt.open("qemu:///system")
    if not conn.lookupByName("vm1").isActive():
        conn.lookupByName("vm1").createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    assert _cli("virt", "attach", "vm1", f"{ifname}#2", "--live")[0] == 0
    vm2 = conn.lookupByName("vm2")
    if vm2.isActive():
        vm2.destroy()
    code, _, err = _cli("virt", "attach", "vm2", f"{ifname}#5", "--config")
    assert code == 0, err
    vf4 = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn4"))
    # a netdev of its own from now on (a new netdev counts from 0): through vfio-pci and back to igbvf
    assert _cli("vf", "bind", f"{ifname}#4", "vfio-pci")[0] == 0
    assert _cli("vf", "bind", f"{ifname}#4", "host")[0] == 0
    wait_for(lambda: os.path.isdir(f"/sys/bus/pci/devices/{vf4}/net"), "VF 4's netdev")
    sh("udevadm", "settle", "--timeout=120", check=False)  # udev renames eth0 a moment after the bind
    nd = os.listdir(f"/sys/bus/pci/devices/{vf4}/net")[0]
    sh("ip", "link", "set", "dev", nd, "up")
    stats = Path(f"/sys/class/net/{nd}/statistics/tx_dropped")
    wait_for(stats.exists, f"{nd}'s statistics")
    before = int(stats.read_text())
    assert before == 0
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((nd, 0))
    s.setsockopt(263, 20, 1)  # SOL_PACKET, PACKET_QDISC_BYPASS: straight to the driver's queue
    mac = bytes.fromhex(Path(f"/sys/class/net/{nd}/address").read_text().strip().replace(":", ""))
    frame = b"\xff" * 6 + mac + b"\x88\xb5" + b"sriovctl lab frame".ljust(46, b".")
    for _ in range(FRAMES):
        with contextlib.suppress(OSError):  # ENOBUFS: dropped without carrier, and counted
            s.send(frame)
    s.close()
    assert int(stats.read_text()) - before == FRAMES
    try:
        raw = host.netlink().get_vfs(ifname, stats=True)
        zero = all(not any((v.stats or {}).values()) for v in raw)
        text = Exporter(host).scrape().text()
        lines = [x for x in text.splitlines() if f'pf="{ifname}"' in x and any(f'vf="{n}"' in x for n in (2, 4, 5))]
        (LAB_OUT / "exporter-kernel.txt").write_text("\n".join(lines) + "\n")
        real = exporter_trace(text, ifname, zero)
        (LAB_OUT / "fidelity-exporter-kernel.json").write_text(json.dumps(real, indent=1))
        assert zero  # igb: rtnl_fill_vfinfo() sends IFLA_VF_STATS, all zeros
        rows = {r[0]: r for r in real[1]}  # type: ignore[index, union-attr]
        assert rows[2][1:5] == ["vfio-pci", "none", "libvirt", "vm1"] and rows[2][5] == []
        assert rows[4][1:4] == ["igbvf", "netdev", "host"] and rows[4][6] == FRAMES
        assert rows[5][3:5] == ["libvirt", "vm2"]
        assert json.loads(json.dumps(sim_exporter_trace())) == json.loads(json.dumps(real))
    finally:
        _cli("virt", "detach", "vm1", f"{ifname}#2", "--live", "--wait", "20")
        _cli("virt", "detach", "vm2", f"{ifname}#5", "--config")


def test_pools_hand_out_vfs_to_domains_and_reconcile_frees_leaks(libvirt_up, paused_domains, host) -> None:  # type: ignore[no-untyped-def]
    """Issue 22 on a real kernel and libvirtd: a running and a transient domain get two different VFs of one pool,
    with their own MACs and VLANs (read on the PF); destroying the transient domain and undefining a stopped
    persistent one, then `pool reconcile --apply`, frees their VFs (reset: checked with `ip -d link show`) while
    a stopped persistent domain keeps its own; a freed VF goes to the next domain."""
    import json
    import os

    import libvirt

    from labguest import LAB_OUT
    from sriovctl.virt.xml import domain_wrapper

    pf = libvirt_up
    ifname = os.listdir(f"/sys/bus/pci/devices/{pf}/net")[0]
    sh("ip", "link", "set", "dev", ifname, "up")
    state = Path(LAB_OUT) / "pool-state.yaml"
    state.write_text(f"pfs:\n  - name: {ifname}\n    vfs:\n      - id: 3-6\n        pool: lab\n")
    assert _cli("persist", "install", str(state))[0] == 0
    conn = libvirt.open("qemu:///system")
    if not conn.lookupByName("vm1").isActive():
        conn.lookupByName("vm1").createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    transient = conn.createXML(domain_wrapper("", name="vm-t"), libvirt.VIR_DOMAIN_START_PAUSED)
    for name in ("vm-p", "vm-x"):
        conn.defineXML(domain_wrapper("", name=name))
    vm2 = conn.lookupByName("vm2")
    if vm2.isActive():
        vm2.destroy()
    log = []

    def attach(domain: str, *extra: str) -> str:
        code, out, err = _cli("--json", "virt", "attach", domain, "--pool", "lab", *extra)
        assert code == 0, (domain, err)
        log.append(f"virt attach {domain} --pool lab {' '.join(extra)}: {json.loads(out)['device']}")
        return str(json.loads(out)["device"])

    a1 = attach("vm1", "--live", "--mac", "52:54:00:6d:91:01", "--vlan", "101")
    at = attach("vm-t", "--live", "--mac", "52:54:00:6d:91:02", "--vlan", "102")
    ap = attach("vm-p", "--config")
    a2 = attach("vm2", "--config")
    assert len({a1, at, ap, a2}) == 4
    index = {os.path.basename(os.readlink(f"/sys/bus/pci/devices/{pf}/virtfn{i}")): i for i in range(7)}
    line1, linet = _vf_line(ifname, index[a1]), _vf_line(ifname, index[at])
    assert "52:54:00:6d:91:01" in line1 and "vlan 101" in line1, line1
    assert "52:54:00:6d:91:02" in linet and "vlan 102" in linet, linet
    code, out, _ = _cli("--json", "pool", "reconcile")
    assert code == 0 and json.loads(out)["findings"] == [], out
    transient.destroy()  # a transient domain that stops is gone
    conn.lookupByName("vm-p").undefine()  # a stopped persistent domain undefined: gone too
    code, out, _ = _cli("--json", "pool", "reconcile")
    leaked = sorted(f["address"] for f in json.loads(out)["findings"] if f["kind"] == "leaked")
    assert code == 9 and leaked == sorted([at, ap]), out
    code, out, _ = _cli("--json", "pool", "reconcile", "--apply")
    assert code == 0 and sorted(json.loads(out)["fixed"]) == sorted([at, ap]), out
    after = _vf_line(ifname, index[at])
    assert "vlan" not in after and "00:00:00:00:00:00" in after, after
    code, out, _ = _cli("--json", "pool", "list")
    owners = sorted(x["owner"]["name"] for x in json.loads(out)["allocations"])
    assert owners == ["vm1", "vm2"], owners  # vm2 is stopped but defined: it keeps its VF
    ax = attach("vm-x", "--config")
    assert ax == min([at, ap], key=lambda x: index[x])  # the freed VF with the lowest index goes next
    (LAB_OUT / "pools.txt").write_text("\n".join([*log, f"vm-t's VF on the PF: {linet}", f"after reconcile: {after}",
                                                  out]) + "\n")
    for d, live in (("vm1", "--live"), ("vm2", "--config"), ("vm-x", "--config")):
        _cli("virt", "detach", d, {"vm1": a1, "vm2": a2, "vm-x": ax}[d], live, "--wait", "20")
    conn.lookupByName("vm-x").undefine()
