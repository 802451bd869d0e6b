"""Lay out a simulated host's tree from its :class:`~sriovctl.host.sim.spec.HostSpec`."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import replace

from sriovctl.host.sim.spec import DeviceSpec, HostSpec
from sriovctl.host.sim.tree import GROUPS, PCI_DRIVERS, SimTree
from sriovctl.pci.address import PciAddress, vf_address
from sriovctl.pci.build import ConfigBuilder
from sriovctl.pci.config import PortType
from sriovctl.pci.ids import HOST_IDS, Ident, LayeredIds, PciIds, excerpt

_BRIDGE_IDS = {"root-port": (0x8086, 0xA110), "switch-upstream": (0x10B5, 0x8747),
               "switch-downstream": (0x10B5, 0x8747), "pci-bridge": (0x1B36, 0x0001),
               "host-bridge": (0x8086, 0x29C0)}
_MEM_BASE = 0xF000_0000
_IOV_BASE = 0x38_0000_0000
SIM_VF_BAR_FLAGS = 0x14220C  # what the kernel shows for a 64-bit prefetchable IOV BAR (lab)


class _Alloc:
    def __init__(self) -> None:
        self.mem = _MEM_BASE
        self.iov = _IOV_BASE

    def mem32(self, size: int) -> int:
        a = self.mem
        self.mem += max(size, 0x1000)
        return a

    def mem64(self, size: int) -> int:
        a = self.iov
        self.iov += size
        return a


def _pf_config(d: DeviceSpec, on_root_bus: bool, vf_bar0: int, vf_bar3: int) -> bytes:
    nic = d.nic
    assert nic is not None
    b = ConfigBuilder(d.vendor, d.device, d.class_code, d.revision, multifunction=d.multifunction,
                      subsystem=nic.subsystem)
    b.standard_endpoint_caps(PortType.RC_INTEGRATED_ENDPOINT if on_root_bus else PortType.ENDPOINT)
    b.add_ext_cap(0x01, 2, bytes(0x3C))  # AER, 0x100
    b.add_ext_cap(0x03, 1, (0x00_1B_21_FF_FF_00_00_00 | d.address.function).to_bytes(8, "little"),
                  0x10)  # DSN: the real 82576 layout is AER 100, DSN 140, ARI 150, SR-IOV 160
    if d.ari:
        b.ari(next_function=(d.address.function + 1) if d.multifunction else 0)
    lo = 0xFFFF_FFFF
    bars = ((vf_bar0 & lo) | 0xC, vf_bar0 >> 32, 0, (vf_bar3 & lo) | 0xC, vf_bar3 >> 32, 0) if d.vf_bars_assigned else (0,) * 6
    # VFs present at boot are enabled afterwards through the kernel model (sim.enable_vfs)
    b.sriov(initial_vfs=nic.config_total_vfs, total_vfs=nic.config_total_vfs, num_vfs=0,
            vf_offset=nic.vf_offset, vf_stride=nic.vf_stride, vf_device=nic.vf_device, control=0,
            vf_bars=bars)
    return b.bytes()


def _max_bus(d: DeviceSpec) -> int:
    m = d.address.bus
    if d.nic:
        last = vf_address(d.address, d.nic.vf_offset, d.nic.vf_stride, d.nic.config_total_vfs - 1)
        m = max(m, last.bus)
    for c in d.children:
        m = max(m, _max_bus(c))
    return m


def build(spec: HostSpec, root: str, spec_text: str) -> SimTree:
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    t = SimTree(root)
    t.state = {"name": spec.name, "netdev_names": {}, "macs": {}, "mf_acs_quirk": [], "vfinfo": {},
               "pf_models": {}, "groups_enabled": spec.iommu_groups}
    t.put("spec.yaml", spec_text)
    t.put("proc/cmdline", spec.cmdline + "\n")
    flags = " ".join(spec.cpu_flags)
    t.put("proc/cpuinfo", "".join(f"processor\t: {i}\nvendor_id\t: {spec.cpu_vendor}\nflags\t\t: {flags}\n\n"
                                  for i in range(2)))
    t.put("proc/sys/kernel/osrelease", spec.kernel_release + "\n")
    # a new boot id per build: `sim reset` is a reboot (state apply discards a journal from another boot)
    t.put("proc/sys/kernel/random/boot_id", str(uuid.uuid4()) + "\n")
    if spec.kernel_config:
        t.put(f"boot/config-{spec.kernel_release}",
              "".join(f"{k}={v}\n" for k, v in sorted(spec.kernel_config.items())))
    for table in spec.acpi_tables:
        t.put(f"sys/firmware/acpi/tables/{table}", table.encode()[:4].ljust(4, b" ") + bytes(32), 0o400)
    for unit in spec.iommu_units:
        t.put(f"sys/devices/virtual/iommu/{unit}/uevent", "")
        if unit.startswith("dmar"):  # VT-d capability registers; ecap bit 3: interrupt remapping
            ecap = 0xF0205E if spec.interrupt_remapping else 0xF02056
            t.put(f"sys/devices/virtual/iommu/{unit}/intel-iommu/ecap", f"{ecap:x}\n")
            t.put(f"sys/devices/virtual/iommu/{unit}/intel-iommu/cap", "d2008c40660462\n")
        elif unit.startswith("ivhd"):
            t.put(f"sys/devices/virtual/iommu/{unit}/amd-iommu/features", "25bf732fa2295afe\n")
        t.link(f"sys/class/iommu/{unit}", f"sys/devices/virtual/iommu/{unit}")
    os.makedirs(t.p("sys/class/net"), exist_ok=True)
    os.makedirs(t.p(GROUPS), exist_ok=True)
    os.makedirs(t.p("dev/vfio"), exist_ok=True)
    t.put("dev/vfio/vfio", "", 0o666)
    t.put("sys/bus/pci/drivers_probe", "", 0o200)
    t.put("sys/bus/pci/rescan", "", 0o200)
    for drv in ("vfio-pci", "pci-stub", "pcieport"):
        t.register_driver(drv, [])
    for m in spec.modules:
        os.makedirs(t.p(f"sys/module/{m}"), exist_ok=True)
    t.put("sys/devices/virtual/net/lo/address", "00:00:00:00:00:00\n")
    t.link("sys/class/net/lo", "sys/devices/virtual/net/lo")

    alloc = _Alloc()
    created: list[PciAddress] = []
    for root_bus in sorted({(d.address.domain, d.address.bus) for d in spec.devices}):
        os.makedirs(t.p("sys/devices/pci{:04x}:{:02x}".format(*root_bus)), exist_ok=True)

    def make(d: DeviceSpec, parent_dir: str, on_root_bus: bool) -> None:
        a = d.address
        res: list[tuple[int, int, int]] = [(0, 0, 0)] * 13
        subsystem = (0, 0)
        extra: dict[str, str] = {}
        if d.kind == "nic":
            nic = d.nic
            assert nic is not None
            bar0 = alloc.mem32(0x20000)
            res[0] = (bar0, bar0 + 0x1FFFF, 0x40200)
            bar3 = alloc.mem32(0x4000)
            res[3] = (bar3, bar3 + 0x3FFF, 0x140204)
            span = nic.vf_bar_size * nic.config_total_vfs
            v0, v3 = alloc.mem64(span), alloc.mem64(span)
            if d.vf_bars_assigned:
                res[7] = (v0, v0 + span - 1, SIM_VF_BAR_FLAGS)
                res[10] = (v3, v3 + span - 1, SIM_VF_BAR_FLAGS)
            cfg = _pf_config(d, on_root_bus, v0, v3)
            subsystem = nic.subsystem
            if d.sriov_capable_driver:
                extra = {"sriov_totalvfs": str(nic.driver_total_vfs), "sriov_numvfs": "0",
                         "sriov_offset": str(nic.vf_offset), "sriov_stride": str(nic.vf_stride),
                         "sriov_vf_device": f"{nic.vf_device:x}", "sriov_drivers_autoprobe": "1",
                         "sriov_vf_total_msix": "0"}
            t.state["pf_models"][str(a)] = {"model": nic.name, "vf_driver": nic.vf_driver,
                                            "driver_support": d.sriov_capable_driver}
            t.register_driver(nic.vf_driver, [(nic.vendor, nic.vf_device)])
            if d.mac:
                t.state["macs"][str(a)] = d.mac
        elif d.kind in _BRIDGE_IDS and d.kind != "host-bridge":
            v, dev = (d.vendor, d.device) if d.device else _BRIDGE_IDS[d.kind]
            sec = d.secondary_bus if d.secondary_bus is not None else min(c.address.bus for c in d.children)
            sub = d.subordinate_bus if d.subordinate_bus is not None else max(_max_bus(c) for c in d.children)
            b = ConfigBuilder(v, dev, 0x060400, d.revision, bridge=True)
            b.bus_numbers(a.bus, sec, sub)
            b.add_cap(0x01, bytes([0x03, 0xC8, 0, 0, 0, 0]), 8)
            b.add_cap(0x05, bytes(12), 16)
            ptype = {"root-port": PortType.ROOT_PORT, "switch-upstream": PortType.UPSTREAM_PORT,
                     "switch-downstream": PortType.DOWNSTREAM_PORT,
                     "pci-bridge": PortType.PCIE_TO_PCI_BRIDGE}[d.kind]
            b.pcie(ptype, slot=d.kind != "switch-upstream")
            b.aer()
            if d.acs:
                b.acs(d.acs.capability, d.acs.control)
            cfg = b.bytes()
            d = _with_ids(d, v, dev)
        else:
            v, dev = (d.vendor, d.device) if d.device else _BRIDGE_IDS.get(d.kind, (d.vendor, d.device))
            cls = d.class_code or (0x060000 if d.kind == "host-bridge" else 0xFF0000)
            b = ConfigBuilder(v, dev, cls, d.revision, multifunction=d.multifunction, subsystem=(v, 0))
            if d.kind != "host-bridge":
                b.add_cap(0x05, bytes(12), 16)
                b.pcie(PortType.RC_INTEGRATED_ENDPOINT if on_root_bus else PortType.ENDPOINT)
                if d.acs:
                    b.acs(d.acs.capability, d.acs.control)
            cfg = b.bytes()
            subsystem = (v, 0)
            d = _with_ids(d, v, dev, cls)
        if d.netdev:
            t.state["netdev_names"][str(a)] = d.netdev
        if d.multifunction and d.mf_acs_quirk:
            t.state["mf_acs_quirk"].append(str(a))
        ddir = t.create_device(parent_dir, a, cfg, vendor=d.vendor, device=d.device, class_code=d.class_code,
                               revision=d.revision, subsystem=subsystem, numa_node=d.numa_node,
                               resources=res, extra=extra)
        created.append(a)
        if d.kind in ("root-port", "switch-upstream", "switch-downstream"):
            d = replace(d, driver=d.driver or "pcieport")
        if d.driver:
            t.register_driver(d.driver, [(d.vendor, d.device)])
        t.state.setdefault("initial_drivers", {})[str(a)] = d.driver
        for c in d.children:
            make(c, ddir, False)

    for d in spec.devices:
        make(d, f"sys/devices/pci{d.address.domain:04x}:{d.address.bus:02x}", True)
    t.put(HOST_IDS, device_names(spec))
    if spec.iommu_groups:
        for a in sorted(created):
            t.assign_group(a)
    for a in sorted(created):
        drv = t.state["initial_drivers"][str(a)]
        if drv:
            t.bind(a, drv)
    routes = ["Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"]
    if spec.default_route:
        routes.append(f"{spec.default_route}\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0")
    t.put("proc/net/route", "\n".join(routes) + "\n")
    t.state["addresses"] = {k: list(v) for k, v in spec.addresses.items()}
    for ifname in spec.operstate_up:
        if os.path.lexists(t.p(f"sys/class/net/{ifname}")):
            t.put(f"sys/class/net/{ifname}/operstate", "up\n")
    t.save()
    # VFs that exist at boot (a driver parameter such as igb max_vfs): enable them through the kernel model.
    from sriovctl.host.sim.kernel import enable_vfs

    def boot_vfs(ds: tuple[DeviceSpec, ...]) -> None:
        for d in ds:
            if d.nic and d.numvfs:
                enable_vfs(t, d.address, d.numvfs)
            boot_vfs(d.children)
    boot_vfs(spec.devices)
    t.save()
    return t


def device_names(spec: HostSpec) -> str:
    """The host's own pci.ids: the names of its devices (and of the VFs its NICs make) from the spec, else from the
    simulator's model names (models.ids)."""
    from importlib import resources

    models = PciIds((resources.files("sriovctl.host.sim") / "models.ids").read_text(encoding="utf-8"))
    named: list[str] = []
    idents: list[Ident] = []

    def walk(ds: tuple[DeviceSpec, ...]) -> None:
        for d in ds:
            v, dev = (d.vendor, d.device) if d.device or d.kind == "nic" else _BRIDGE_IDS.get(d.kind, (d.vendor, d.device))
            cls = d.class_code or (0x060000 if d.kind == "host-bridge" else 0x060400 if d.kind in _BRIDGE_IDS else 0)
            sub = d.nic.subsystem if d.nic else (None, None)
            idents.append((v, dev, cls, sub[0], sub[1]))
            if d.nic:
                idents.append((v, d.nic.vf_device, cls, None, None))
            if d.name or d.vendor_name:
                named.append(f"{v:04x}  {d.vendor_name or models.vendor(v) or 'Vendor'}")
                if d.name:
                    named.append(f"\t{dev:04x}  {d.name}")
            walk(d.children)

    walk(spec.devices)
    return excerpt(LayeredIds(PciIds("\n".join(named)), models), idents, f"names of simulated host {spec.name}")


def _with_ids(d: DeviceSpec, vendor: int, device: int, cls: int | None = None) -> DeviceSpec:
    from dataclasses import replace
    return replace(d, vendor=vendor, device=device, class_code=cls if cls is not None else 0x060400)


def _with_driver(d: DeviceSpec, driver: str) -> DeviceSpec:
    from dataclasses import replace
    return replace(d, driver=driver)


__all__ = ["PCI_DRIVERS", "build"]
