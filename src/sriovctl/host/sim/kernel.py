"""The simulated kernel's reactions on a tree: what sriov_numvfs, probing and driver removal do (drivers/pci/iov.c
sriov_enable/sriov_disable, pci-driver.c pci_device_can_probe), journaled so a killed writer's change completes."""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator

from sriovctl.attrs import defaults
from sriovctl.host.sim.configs import vf_config
from sriovctl.host.sim.tree import GROUPS, PCI_DEVICES, PCI_DRIVERS, SimTree
from sriovctl.pci.address import PciAddress, vf_address
from sriovctl.pci.config import decode


def os_error(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def vf_defaults() -> dict[str, object]:
    """The netlink view of a new VF (attrs.VF_ATTRS defaults: what `ip link` shows after enabling, seen in the lab)."""
    return defaults()


def can_probe(t: SimTree, addr: PciAddress) -> bool:
    """The PCI core's pci_device_can_probe(): a VF may be probed only with a driver_override or when its
    PF's sriov_drivers_autoprobe is 1 (seen in the lab: bind and drivers_probe then do nothing)."""
    d = t.devdir(addr)
    if not os.path.lexists(t.p(f"{d}/physfn")) or t.get(f"{d}/driver_override") != "(null)":
        return True
    return t.get(f"{d}/physfn/sriov_drivers_autoprobe") == "1"


def match_driver(t: SimTree, addr: PciAddress) -> str | None:
    override = t.get(f"{PCI_DEVICES}/{addr}/driver_override")
    if override != "(null)":
        return override if os.path.isdir(t.p(f"{PCI_DRIVERS}/{override}")) else None
    v, d = int(t.get(f"{PCI_DEVICES}/{addr}/vendor"), 16), int(t.get(f"{PCI_DEVICES}/{addr}/device"), 16)
    for name, ids in sorted(t.state.get("drivers", {}).items()):
        if [v, d] in ids:
            return str(name)
    return None


def enable_vfs(t: SimTree, pf: PciAddress, n: int) -> None:
    cfg = t.config(pf)
    cs = decode(bytes(cfg))
    sr = cs.sriov
    assert sr is not None
    pfdir = t.devdir(pf)
    parent = os.path.dirname(pfdir)
    on_root = not PciAddress.try_parse(os.path.basename(parent))
    vendor = int(t.get(f"{pfdir}/vendor"), 16)
    sub = (int(t.get(f"{pfdir}/subsystem_vendor"), 16), int(t.get(f"{pfdir}/subsystem_device"), 16))
    numa = int(t.get(f"{pfdir}/numa_node"))
    with open(t.p(f"{pfdir}/resource"), encoding="ascii") as f:
        res = [tuple(int(x, 16) for x in line.split()) for line in f if line.strip()]
    autoprobe = t.get(f"{pfdir}/sriov_drivers_autoprobe") == "1"
    vfs = []
    for i in range(n):
        va = vf_address(pf, sr.vf_offset, sr.vf_stride, i)
        b0s, b0e = res[7][0], res[7][1]
        b3s, b3e = res[10][0], res[10][1]
        size0 = (b0e - b0s + 1) // sr.total_vfs if b0s else 0
        size3 = (b3e - b3s + 1) // sr.total_vfs if b3s else 0
        bar0 = b0s + i * size0 if b0s else 0
        bar3 = b3s + i * size3 if b3s else 0
        vres = [(0, 0, 0)] * 13
        if bar0:
            vres[0] = (bar0, bar0 + size0 - 1, 0x14220C)
        if bar3:
            vres[3] = (bar3, bar3 + size3 - 1, 0x14220C)
        vdir = t.create_device(parent, va, vf_config(cs.class_code, cs.revision, on_root, bar0, bar3),
                               vendor=vendor, device=sr.vf_device_id, class_code=cs.class_code,
                               revision=cs.revision, subsystem=sub, numa_node=numa, resources=vres,
                               extra={"sriov_vf_msix_count": "0"})
        t.link(f"{vdir}/physfn", pfdir)
        t.link(f"{pfdir}/virtfn{i}", vdir)
        if t.state.get("groups_enabled"):
            t.assign_group(va)
        vfs.append(va)
    struct.pack_into("<H", cfg, sr.offset + 0x10, n)
    struct.pack_into("<H", cfg, sr.offset + 8, (struct.unpack_from("<H", cfg, sr.offset + 8)[0] | 0x9))
    t.set_config(pf, bytes(cfg))
    t.put(f"{pfdir}/sriov_numvfs", f"{n}\n")
    t.state["vfinfo"][str(pf)] = [vf_defaults() for _ in range(n)]
    if autoprobe:
        for va in vfs:
            drv = match_driver(t, va)
            if drv:
                t.bind(va, drv)
    t.save()


def scrub_vfs(t: SimTree, pf: PciAddress) -> None:
    """Remove every trace of the PF's VFs, whatever step a killed writer reached (a VF directory without its
    links, links to directories that are gone, groups, driver links, netdevs), and set the count to 0. Used
    only to recover: the normal paths are enable_vfs and disable_vfs."""
    pfdir = t.devdir(pf)
    parent = os.path.dirname(pfdir)
    sr = decode(bytes(t.config(pf))).sriov
    if sr is None:
        return
    spec_devices = set(t.state.get("initial_drivers", {}))
    candidates = []
    for i in range(sr.total_vfs):
        try:
            candidates.append(vf_address(pf, sr.vf_offset, sr.vf_stride, i))
        except ValueError:
            break
    vfs = {str(a) for a in candidates} - spec_devices
    for name in os.listdir(t.p(pfdir)):
        if name.startswith("virtfn"):
            t.unlink(f"{pfdir}/{name}")
    drivers = os.listdir(t.p(PCI_DRIVERS)) if os.path.isdir(t.p(PCI_DRIVERS)) else []
    for va in sorted(vfs):
        vdir = f"{parent}/{va}"
        if os.path.isdir(t.p(vdir)):
            for ifname in sorted(os.listdir(t.p(f"{vdir}/net"))) if os.path.isdir(t.p(f"{vdir}/net")) else []:
                t.unlink(f"sys/class/net/{ifname}")
            t.rmtree(vdir)
        t.unlink(f"{PCI_DEVICES}/{va}")
        for drv in drivers:
            t.unlink(f"{PCI_DRIVERS}/{drv}/{va}")
    if os.path.isdir(t.p(GROUPS)):
        for grp in os.listdir(t.p(GROUPS)):
            members = f"{GROUPS}/{grp}/devices"
            for m in os.listdir(t.p(members)) if os.path.isdir(t.p(members)) else []:
                if m in vfs:
                    t.unlink(f"{members}/{m}")
            if not os.path.isdir(t.p(members)) or not os.listdir(t.p(members)):
                t.rmtree(f"{GROUPS}/{grp}")
                t.unlink(f"dev/vfio/{grp}")
    for ifname in os.listdir(t.p("sys/class/net")):
        if not os.path.exists(t.p(f"sys/class/net/{ifname}")):  # a netdev whose device is gone
            t.unlink(f"sys/class/net/{ifname}")
    _sriov_off(t, pf)


def _sriov_off(t: SimTree, pf: PciAddress) -> None:
    """The PF's side of having no VFs: NumVFs 0 and VF Enable/MSE clear in config space, sriov_numvfs 0, no
    netlink VF entries."""
    cfg = t.config(pf)
    sr = decode(bytes(cfg)).sriov
    assert sr is not None
    struct.pack_into("<H", cfg, sr.offset + 0x10, 0)
    struct.pack_into("<H", cfg, sr.offset + 8, (struct.unpack_from("<H", cfg, sr.offset + 8)[0] & ~0x9))
    t.set_config(pf, bytes(cfg))
    t.put(f"{t.devdir(pf)}/sriov_numvfs", "0\n")
    t.state.setdefault("vfinfo", {})[str(pf)] = []


def disable_vfs(t: SimTree, pf: PciAddress) -> None:
    pfdir = t.devdir(pf)
    links = sorted((int(x[6:]), x) for x in os.listdir(t.p(pfdir)) if x.startswith("virtfn"))
    for _, name in reversed(links):
        va = PciAddress.parse(os.path.basename(os.readlink(t.p(f"{pfdir}/{name}"))))
        t.unlink(f"{pfdir}/{name}")
        t.remove_device(va)
    _sriov_off(t, pf)
    t.save()


def disable_if_enabled(t: SimTree, pf: PciAddress) -> None:
    """A PF driver's remove() disables SR-IOV (igb does, seen in the lab): on unbind and on module unload."""
    if os.path.exists(t.p(f"{t.devdir(pf)}/sriov_numvfs")) and t.get(f"{t.devdir(pf)}/sriov_numvfs") != "0":
        with journaled(t, {pf: 0}):
            disable_vfs(t, pf)


@contextlib.contextmanager
def journaled(t: SimTree, targets: dict[PciAddress, int]) -> Iterator[None]:
    """A change of sriov_numvfs that completes even if this process is killed midway (the next holder of the
    lock finishes it). A Python error midway is not a kill: the change is completed here, then re-raised."""
    t.begin({str(a): n for a, n in targets.items()})
    try:
        yield
    except BaseException:
        t.recover()
        raise
    t.end()


def _complete_numvfs(t: SimTree, pf: PciAddress, n: int) -> None:
    """What the kernel does with a sriov_numvfs write its writer did not live to finish: every trace of the
    PF's VFs removed, then the count it was writing."""
    scrub_vfs(t, pf)
    if n:
        enable_vfs(t, pf, n)


SimTree.complete_numvfs = _complete_numvfs
