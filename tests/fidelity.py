"""Write sequences run on the real kernel (lab) and on the simulated igb host; the traces must match.

A trace records, for every write, the kernel's answer (ok or the errno name) and what the PF looks like
afterwards (numvfs, VF count, each VF's driver and netdev count)."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable

from sriovctl.host.base import Host

Trace = list[tuple[str, str, str, tuple[object, ...]]]


def observe(host: Host, pf: str) -> tuple[object, ...]:
    d = f"sys/bus/pci/devices/{pf}"
    vfs = sorted((int(n[6:]), host.link_name(f"{d}/{n}")) for n in host.listdir(d) if n.startswith("virtfn"))
    drivers = tuple(host.link_name(f"sys/bus/pci/devices/{v}/driver") for _, v in vfs)
    netdevs = tuple(len(host.listdir(f"sys/bus/pci/devices/{v}/net")) for _, v in vfs)
    return (host.read_text(f"{d}/sriov_numvfs"), len(vfs), drivers, netdevs,
            host.read_text(f"{d}/sriov_drivers_autoprobe"))


def settle(host: Host, pf: str, quiet: float = 0.4, deadline: float = 8.0) -> None:
    """Wait until the PF's observed state stops changing (VF drivers probe after the write returns)."""
    end = time.monotonic() + deadline
    last = observe(host, pf)
    stable_since = time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.05)
        cur = observe(host, pf)
        if cur != last:
            last, stable_since = cur, time.monotonic()
        elif time.monotonic() - stable_since >= quiet:
            return


def vf_of(host: Host, pf: str, index: int) -> str:
    name = host.link_name(f"sys/bus/pci/devices/{pf}/virtfn{index}")
    assert name is not None
    return name


def run_sequence(host: Host, pf: str) -> Trace:
    trace: Trace = []
    d = f"sys/bus/pci/devices/{pf}"

    names: dict[str, str] = {}

    def step(label: str, rel: Callable[[], str], value: Callable[[], str]) -> None:
        path, val = rel(), value()
        for i in (0, 1):  # VF addresses differ between hosts: record them by index
            link = host.link_name(f"{d}/virtfn{i}")
            if link:
                names[link] = f"VF{i}"
        try:
            host.write(path, val)
            answer = "ok"
        except OSError as e:
            answer = errno.errorcode.get(e.errno or 0, str(e.errno))
        settle(host, pf)
        trace.append((label, names.get(val, val.strip()), answer, observe(host, pf)))

    step("reset to 0", lambda: f"{d}/sriov_numvfs", lambda: "0")
    step("enable 0->7", lambda: f"{d}/sriov_numvfs", lambda: "7")
    step("7->3 busy", lambda: f"{d}/sriov_numvfs", lambda: "3")
    step("7->8 out of range", lambda: f"{d}/sriov_numvfs", lambda: "8")
    step("not a number", lambda: f"{d}/sriov_numvfs", lambda: "seven")
    step("7->7 same", lambda: f"{d}/sriov_numvfs", lambda: "7")
    step("7->0", lambda: f"{d}/sriov_numvfs", lambda: "0")
    step("autoprobe off", lambda: f"{d}/sriov_drivers_autoprobe", lambda: "0")
    step("enable 0->2 unbound", lambda: f"{d}/sriov_numvfs", lambda: "2")
    step("override vfio-pci", lambda: f"sys/bus/pci/devices/{vf_of(host, pf, 0)}/driver_override", lambda: "vfio-pci")
    step("probe -> vfio-pci", lambda: "sys/bus/pci/drivers_probe", lambda: vf_of(host, pf, 0))
    step("bind igbvf while bound", lambda: "sys/bus/pci/drivers/igbvf/bind", lambda: vf_of(host, pf, 0))
    step("unbind vfio-pci", lambda: "sys/bus/pci/drivers/vfio-pci/unbind", lambda: vf_of(host, pf, 0))
    step("bind igbvf against override", lambda: "sys/bus/pci/drivers/igbvf/bind", lambda: vf_of(host, pf, 0))
    step("clear override", lambda: f"sys/bus/pci/devices/{vf_of(host, pf, 0)}/driver_override", lambda: "\n")
    step("bind igbvf", lambda: "sys/bus/pci/drivers/igbvf/bind", lambda: vf_of(host, pf, 0))
    step("unbind igbvf from unbound VF1", lambda: "sys/bus/pci/drivers/igbvf/unbind", lambda: vf_of(host, pf, 1))
    step("probe VF1", lambda: "sys/bus/pci/drivers_probe", lambda: vf_of(host, pf, 1))
    step("2->0", lambda: f"{d}/sriov_numvfs", lambda: "0")
    step("autoprobe on", lambda: f"{d}/sriov_drivers_autoprobe", lambda: "1")
    return trace


def run_vf_sequence(host: Host, pf: str) -> list[object]:
    """VF attribute changes on VFs 0-2 of an enabled PF (its link down): what each attribute's outcome was,
    then each VF's netlink view (without the MACs the VF driver picked)."""
    from sriovctl.errors import PartialError
    from sriovctl.inventory import read_inventory
    from sriovctl.ops import vfattrs as vf

    steps: list[tuple[int, vf.VfSettings]] = [
        (0, vf.VfSettings(mac="52:54:00:6d:90:02", vlan=42, qos=3, spoofchk=False, trust=True)),
        (1, vf.VfSettings(vlan=7, link_state="disable", trust=True)),
        (2, vf.VfSettings(vlan=5, vlan_proto="802.1ad")),
        (2, vf.VfSettings(max_tx_rate=100)),
        (2, vf.VfSettings(min_tx_rate=10, max_tx_rate=100)),
        (0, vf.VfSettings(rss_query_en=True)),
        (2, vf.VfSettings(vlan=0, spoofchk=False)),
    ]
    trace: list[object] = []
    for index, st in steps:
        inv = read_inventory(host)
        p = next(x for x in inv.pfs if str(x.address) == pf)
        target = inv.vfs_of(p)[index]
        try:
            res = vf.set_vfs(host, inv, [(target, st)])
            outcome = sorted([(c.attr, "ok") for c in res.applied])
        except PartialError as e:
            outcome = sorted([(d.split(": ")[1].split(" ")[0], d.rsplit(": ", 1)[1]) for d in e.details
                              if "refused by" in d or "reads back" in d])
        trace.append((index, outcome))
    inv = read_inventory(host)
    p = next(x for x in inv.pfs if str(x.address) == pf)
    for d in inv.vfs_of(p)[:3]:
        v = d.netlink
        assert v is not None
        trace.append((d.vf_index, v.vlan, v.qos, v.spoofchk, v.trust, v.link_state, v.min_tx_rate, v.max_tx_rate,
                      v.mac if d.vf_index == 0 else "-"))
    return trace


# ---- the exporter (issue 21): where each VF's counters come from, on the kernel and on the simulated host ----
EXPORTER_VFS = (2, 4, 5)  # given to a running domain (vfio-pci); on igbvf with 50 frames sent; in a stopped domain
FRAMES = 50


def exporter_trace(text: str, pf_label: str, raw_zero: bool) -> list[object]:
    """What the exporter said about EXPORTER_VFS: driver, stats source, owner kind and name, which counter series
    it has and the tx_dropped value; and whether the PF's raw IFLA_VF_STATS were all zeros (igb sends zeros)."""
    from prometheus_client.parser import text_string_to_metric_families

    info: dict[str, dict[str, str]] = {}
    counters: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.labels.get("pf") != pf_label:
                continue
            if s.name == "sriovctl_vf_info":
                info[s.labels["vf"]] = dict(s.labels)
            elif s.name.startswith("sriov_vf_"):
                counters.setdefault(s.labels["vf"], {})[s.name.removesuffix("_total")] = s.value
    rows: list[object] = []
    for n in EXPORTER_VFS:
        i, c = info[str(n)], counters.get(str(n), {})
        owner = i["owner"] if i["owner_kind"] == "libvirt" else ""  # a host netdev's name differs from the lab's
        rows.append([n, i["driver"], i["stats_source"], i["owner_kind"], owner, sorted(c),
                     c.get("sriov_vf_tx_dropped")])
    return [raw_zero, rows]


def sim_exporter_trace() -> list[object]:
    """The lab's steps on the simulated igb-82576: VF 2 held by running domain vm1, VF 5 in stopped domain vm2's
    definition, 50 frames dropped on VF 4's netdev (the lab's igbvf never gets carrier: see test_libvirt)."""
    from pathlib import Path

    from helpers import cli, domain_xml
    from sriovctl.host.sim.catalog import open_sim, reset_sim
    from sriovctl.host.sim.traffic import advance
    from sriovctl.ops.metrics import Exporter
    from sriovctl.pci.address import PciAddress

    reset_sim("igb-82576")
    host = open_sim("igb-82576")
    root = Path(host.root)
    pf = "0000:0b:00.0"

    def vf(n: int) -> PciAddress:
        return PciAddress.parse(Path(host.readlink(f"sys/bus/pci/devices/{pf}/virtfn{n}") or "").name)

    assert cli("--sim", "igb-82576", "vf", "bind", "enp11s0f0#2", "vfio-pci").code == 0
    (root / "run/libvirt/qemu").mkdir(parents=True, exist_ok=True)
    (root / "run/libvirt/qemu/vm1.xml").write_text(domain_xml("vm1", vf(2)))
    (root / "etc/libvirt/qemu").mkdir(parents=True, exist_ok=True)
    (root / "etc/libvirt/qemu/vm2.xml").write_text(domain_xml("vm2", vf(5)).removeprefix("<domstatus>")
                                                   .removesuffix("</domstatus>"))
    advance(host.tree, vf(4), {"tx_dropped": FRAMES})
    raw = host.netlink().get_vfs("enp11s0f0", stats=True)
    zero = all(not any((v.stats or {}).values()) for v in raw)
    return exporter_trace(Exporter(host).scrape().text(), "enp11s0f0", zero)
