"""`sriovctl doctor`: can this host do SR-IOV safely, and which VFs can really go to separate VMs?

Every finding has a stable id, a severity, the evidence read (file and value) and a hint. The IOMMU is
judged from the firmware tables and sysfs — never from the CPU vendor (libvirt's virt-host-validate picks
its check by vendor and is wrong under emulation; see docs/LAB.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypedDict

from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.model import Inventory, PciDevice
from sriovctl.pci.address import PciAddress
from sriovctl.pci.config import ACS_REQUIRED, ACS_SHORT, PortType


class Severity(IntEnum):
    OK = 0
    INFO = 1
    WARN = 2
    FAIL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Capacity(TypedDict):
    """One PF's VFs: how many, how many can go to a VM, in how many IOMMU groups."""

    pf: str
    netdev: str | None
    vfs: int
    assignable: int
    groups: int


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    area: str  # platform | device | isolation
    subject: str  # "host", a PCI address or a netdev
    message: str
    evidence: tuple[tuple[str, str], ...] = ()
    hint: str | None = None


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    capacity: list[Capacity] = field(default_factory=list)

    def add(self, fid: str, sev: Severity, area: str, subject: str, message: str,
            evidence: list[tuple[str, str]] | None = None, hint: str | None = None) -> None:
        self.findings.append(Finding(fid, sev, area, subject, message, tuple(evidence or ()), hint))

    @property
    def worst(self) -> Severity:
        return max((f.severity for f in self.findings), default=Severity.OK)


IOMMU_TABLES = {"DMAR": "Intel VT-d", "IVRS": "AMD-Vi", "IORT": "Arm SMMU"}
_ACS_REQ = ACS_REQUIRED
_ACS_SHORT = ACS_SHORT


def _cmdline(host: Host) -> tuple[str, dict[str, str]]:
    raw = host.read_text("proc/cmdline") or ""
    args: dict[str, str] = {}
    for tok in raw.split():
        k, _, v = tok.partition("=")
        args[k] = v
    return raw, args


def _kconfig(host: Host) -> dict[str, str] | None:
    release = host.read_text("proc/sys/kernel/osrelease")
    if not release:
        return None
    raw = host.read_bytes(f"boot/config-{release}", 1 << 22)
    if raw is None:
        return None
    out = {}
    for line in raw.decode(errors="replace").splitlines():
        m = re.match(r"^(CONFIG_[A-Z0-9_]+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
        m = re.match(r"^# (CONFIG_[A-Z0-9_]+) is not set", line)
        if m:
            out[m.group(1)] = "n"
    return out


def check_platform(host: Host, inv: Inventory, r: Report) -> None:
    tables = [t for t in host.listdir(sysfs.ACPI_TABLES) if t in IOMMU_TABLES]
    units = host.listdir(sysfs.CLASS_IOMMU)
    groups = host.listdir(sysfs.IOMMU_GROUPS)
    raw, args = _cmdline(host)
    dt_iommu = [n for n in host.listdir(sysfs.DEVICETREE) if "iommu" in n or "smmu" in n]
    kinds = [IOMMU_TABLES[t] for t in tables] + (["device-tree IOMMU"] if dt_iommu else [])
    ev_tables = [(sysfs.shown(sysfs.ACPI_TABLES), " ".join(host.listdir(sysfs.ACPI_TABLES)) or "(none)")]
    if kinds:
        r.add("platform.iommu.firmware", Severity.OK, "platform", "host",
              f"firmware describes an IOMMU: {', '.join(kinds)}", ev_tables)
    else:
        r.add("platform.iommu.firmware", Severity.FAIL, "platform", "host",
              "the firmware describes no IOMMU (no ACPI DMAR, IVRS or IORT table)", ev_tables,
              "enable Intel VT-d / AMD IOMMU (AMD-Vi) in the firmware setup; the CPU and chipset must have one")
    ev_kernel = [(sysfs.shown(sysfs.CLASS_IOMMU), " ".join(units) or "(empty)"),
                 (sysfs.shown(sysfs.IOMMU_GROUPS), f"{len(groups)} groups")]
    off = [a for a in ("intel_iommu=off", "amd_iommu=off", "iommu=off") if a in raw.split()]
    if units and groups:
        r.add("platform.iommu.kernel", Severity.OK, "platform", "host",
              f"the kernel runs the IOMMU: {', '.join(units)}, {len(groups)} IOMMU groups", ev_kernel)
    else:
        hint = None
        if off:
            hint = f"remove {' '.join(off)} from the kernel command line"
        elif "DMAR" in tables:
            hint = "add intel_iommu=on to the kernel command line (GRUB_CMDLINE_LINUX), then reboot"
        elif "IVRS" in tables:
            hint = "the AMD IOMMU is on by default: check amd_iommu= and iommu= on the kernel command line"
        else:
            hint = "enable the IOMMU in the firmware first"
        r.add("platform.iommu.kernel", Severity.FAIL, "platform", "host",
              "the kernel does not run an IOMMU: no IOMMU groups, so no device can be given to a VM",
              [*ev_kernel, ("/proc/cmdline", raw)], hint)
    # the command line
    notes = []
    sev = Severity.OK
    for key in ("intel_iommu", "amd_iommu", "iommu", "iommu.passthrough", "pci", "intremap", "vfio_iommu_type1"):
        if key in args:
            notes.append(f"{key}={args[key]}" if args[key] else key)
    if off:
        sev = Severity.FAIL
    if args.get("iommu") == "pt" or args.get("iommu.passthrough") == "1":
        notes.append("(passthrough mode for host devices: fine for VFIO)")
    if "realloc" in args.get("pci", "").split(","):
        notes.append("(pci=realloc lets the kernel find room for VF BARs)")
    r.add("platform.cmdline", sev, "platform", "host",
          "kernel IOMMU arguments: " + (" ".join(notes) if notes else "none (kernel defaults)"),
          [("/proc/cmdline", raw)], f"remove {' '.join(off)}" if off else None)
    check_interrupt_remapping(host, units, args, r)
    flags = set()
    for line in (host.read_text("proc/cpuinfo") or "").splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    virt = sorted(flags & {"vmx", "svm"})
    r.add("platform.cpu.virtualization", Severity.OK if virt else Severity.WARN, "platform", "host",
          f"CPU virtualization extensions: {', '.join(virt)}" if virt else
          "the CPU shows no vmx/svm flag: VMs run without hardware virtualization (slow)",
          [("/proc/cpuinfo flags", " ".join(virt) or "(no vmx/svm)")],
          None if virt else "enable VT-x/AMD-V in the firmware setup")
    check_vfio(host, r)
    kc = _kconfig(host)
    if kc is None:
        r.add("platform.kernel.pci_iov", Severity.INFO, "platform", "host",
              "the kernel configuration is not readable here (/boot/config-RELEASE)")
    else:
        val = kc.get("CONFIG_PCI_IOV", "n")
        r.add("platform.kernel.pci_iov", Severity.OK if val == "y" else Severity.FAIL, "platform", "host",
              f"CONFIG_PCI_IOV={val}", [("/boot/config", f"CONFIG_PCI_IOV={val}")],
              None if val == "y" else "this kernel has no SR-IOV support: use a kernel built with CONFIG_PCI_IOV=y")


def check_interrupt_remapping(host: Host, units: list[str], args: dict[str, str], r: Report) -> None:
    if not units:
        return
    supported = []
    evidence = []
    for u in units:
        ecap = host.read_text(sysfs.iommu_unit_file(u, "intel-iommu/ecap"))
        if ecap is not None:
            ir = bool(int(ecap, 16) & (1 << 3))
            evidence.append((sysfs.shown(sysfs.iommu_unit_file(u, "intel-iommu/ecap")), ecap))
            supported.append(ir)
        feats = host.read_text(sysfs.iommu_unit_file(u, "amd-iommu/features"))
        if feats is not None:
            evidence.append((sysfs.shown(sysfs.iommu_unit_file(u, "amd-iommu/features")), feats))
            supported.append(True)  # AMD-Vi always remaps interrupts when enabled
    disabled = [a for a in ("intremap=off", "nointremap") if (a.split("=")[0] in args and
                                                             (a == "nointremap" or args.get("intremap") == "off"))]
    if disabled:
        r.add("platform.iommu.irq_remapping", Severity.WARN, "platform", "host",
              "interrupt remapping is turned off on the kernel command line: VFIO refuses devices unless "
              "allow_unsafe_interrupts is set", [*evidence, ("/proc/cmdline", " ".join(disabled))],
              f"remove {' '.join(disabled)}")
    elif supported and not all(supported):
        r.add("platform.iommu.irq_remapping", Severity.WARN, "platform", "host",
              "the IOMMU does not support interrupt remapping: a VM could inject interrupts; VFIO needs "
              "vfio_iommu_type1.allow_unsafe_interrupts=1", evidence,
              "use a platform with interrupt remapping, or accept the risk with allow_unsafe_interrupts")
    elif supported:
        r.add("platform.iommu.irq_remapping", Severity.OK, "platform", "host", "interrupt remapping supported", evidence)
    else:
        r.add("platform.iommu.irq_remapping", Severity.INFO, "platform", "host",
              "interrupt remapping capability not visible in sysfs", evidence)


def check_vfio(host: Host, r: Report) -> None:
    loaded = host.is_dir(sysfs.driver_dir("vfio-pci")) or host.is_dir(sysfs.module_dir("vfio_pci"))
    release = host.read_text("proc/sys/kernel/osrelease") or ""
    builtin = host.read_text(f"lib/modules/{release}/modules.builtin") or ""
    dep = host.read_text(f"lib/modules/{release}/modules.dep") or ""
    loadable = "vfio-pci.ko" in dep or "vfio_pci.ko" in dep or "vfio-pci.ko" in builtin
    if loaded:
        r.add("platform.vfio", Severity.OK, "platform", "host", "vfio-pci is loaded",
              [(sysfs.shown(sysfs.driver_dir("vfio-pci")), "present")])
    elif loadable:
        r.add("platform.vfio", Severity.OK, "platform", "host", "vfio-pci is available (loaded on first bind)",
              [(f"/lib/modules/{release}/modules.dep", "vfio-pci.ko")])
    else:
        r.add("platform.vfio", Severity.WARN, "platform", "host", "vfio-pci is neither loaded nor found as a module",
              [(sysfs.shown(sysfs.driver_dir("vfio-pci")), "absent")], "install the kernel's vfio-pci module (CONFIG_VFIO_PCI)")


def _vf_bus_range_ok(inv: Inventory, pf: PciDevice) -> tuple[bool, str] | None:
    cap = pf.sriov.capability if pf.sriov else None
    if cap is None or cap.total_vfs == 0:
        return None
    last = pf.address.routing_id + cap.vf_offset + cap.vf_stride * (cap.total_vfs - 1)
    last_bus = last >> 8
    if last > 0xFFFF:
        return False, f"the last VF's routing ID {last:#x} does not fit 16 bits"
    bridge = inv.devices.get(pf.parent) if pf.parent else None
    if bridge is None or bridge.config is None or bridge.config.subordinate_bus is None:
        return True, f"VFs end on bus {last_bus:02x} (root bus: no bridge range to check)"
    sub = bridge.config.subordinate_bus
    if last_bus > sub:
        return False, f"VFs need buses up to {last_bus:02x}, {bridge.address} forwards only up to {sub:02x}"
    return True, f"VFs end on bus {last_bus:02x}, within {bridge.address}'s bus range (to {sub:02x})"


def check_devices(host: Host, inv: Inventory, r: Report) -> None:
    for pf in inv.pfs:
        s = pf.sriov
        assert s is not None
        subj = _name(pf)
        cap = s.capability
        if s.totalvfs is None:
            r.add("device.sriov.no_driver_support", Severity.WARN, "device", subj,
                  "SR-IOV capability in config space, but the kernel exposes no sriov_totalvfs",
                  [(f"{pf.address} config", f"SR-IOV at {cap.offset:#x}, Total VFs {cap.total_vfs}" if cap else "?"),
                   (sysfs.shown(sysfs.device_attr(pf.address, sysfs.SRIOV_TOTALVFS)), "absent")],
                  "the driver lacks SR-IOV support, or SR-IOV is disabled in the firmware setup")
        if cap is not None and s.totalvfs is not None:
            if not cap.vf_bars:
                r.add("device.sriov.vf_bars", Severity.FAIL, "device", subj,
                      "the VF BARs have no addresses: the firmware reserved no MMIO for the VFs, so enabling them fails",
                      [(f"{pf.address} config", "VF BAR0-5 all zero")],
                      "boot with pci=realloc (or pci=realloc,assign-busses), or enable SR-IOV in the firmware setup")
            else:
                r.add("device.sriov.vf_bars", Severity.OK, "device", subj,
                      f"VF BARs assigned ({len(cap.vf_bars)})",
                      [(f"{pf.address} config", " ".join(f"BAR{b.index}={b.address:#x}" for b in cap.vf_bars))])
            funcs = cap.total_vfs + 1
            if funcs > 8 and pf.config is not None and pf.config.ari is None:
                r.add("device.sriov.ari", Severity.WARN, "device", subj,
                      f"{cap.total_vfs} VFs need more than 8 functions, and the PF has no ARI capability",
                      [(f"{pf.address} config", "no ARI capability")], "VFs past function 7 need ARI along the path")
            elif funcs > 8:
                r.add("device.sriov.ari", Severity.OK, "device", subj,
                      f"ARI present for {cap.total_vfs} VFs; ARI Capable Hierarchy "
                      f"{'set' if cap.ari_capable_hierarchy else 'clear'}",
                      [(f"{pf.address} config", f"ARI at {pf.config.ari.offset:#x}" if pf.config and pf.config.ari else "")])
            rng = _vf_bus_range_ok(inv, pf)
            if rng is not None:
                ok, why = rng
                r.add("device.sriov.bus_range", Severity.OK if ok else Severity.FAIL, "device", subj, why,
                      [(f"{pf.address} config", f"VF offset {cap.vf_offset}, stride {cap.vf_stride}, Total VFs {cap.total_vfs}")],
                      None if ok else "boot with pci=assign-busses (or pci=realloc), or update the firmware")


def _name(d: PciDevice) -> str:
    return f"{d.address} ({d.netdevs[0].name})" if d.netdevs else str(d.address)


def _path(inv: Inventory, d: PciDevice) -> list[PciDevice]:
    out = []
    p = d.parent
    while p is not None and p in inv.devices:
        out.append(inv.devices[p])
        p = inv.devices[p].parent
    return out


def _acs_state(b: PciDevice) -> tuple[bool, str]:
    c = b.config
    if c is None:
        return False, "config space not readable"
    pt = c.pcie.port_type if c.pcie else None
    if pt not in (PortType.ROOT_PORT, PortType.DOWNSTREAM_PORT):
        return True, f"{c.pcie.port_type_name if c.pcie else 'PCI bridge'}: ACS not required"
    if c.acs is None:
        return False, "no ACS capability"
    on = [_ACS_SHORT[n] for n in _ACS_REQ if getattr(c.acs.control, n)]
    missing = [_ACS_SHORT[n] for n in _ACS_REQ if not getattr(c.acs.control, n)]
    if missing:
        return False, f"ACS present, {' '.join(missing)} not enabled (enabled: {' '.join(on) or 'none'})"
    return True, f"ACS {' '.join(on)} enabled"


def check_isolation(host: Host, inv: Inventory, r: Report) -> None:
    sriov_related = {d.address for d in inv.pfs} | {d.address for d in inv.vfs}
    for pf in inv.pfs:
        subj = _name(pf)
        hops = _path(inv, pf)
        broken: PciDevice | None = None
        ev = []
        for b in hops:
            ok, why = _acs_state(b)
            ev.append((f"{b.address} ({b.config.pcie.port_type_name if b.config and b.config.pcie else 'bridge'})", why))
            if not ok and broken is None:
                broken = b
        if not hops:
            ev.append(("path", "on a root bus (root-complex integrated)"))
        if broken is not None:
            r.add("isolation.acs.path", Severity.FAIL if pf.vfs else Severity.WARN, "isolation", subj,
                  f"isolation breaks at {broken.address}: {_acs_state(broken)[1]}; everything below it shares one IOMMU group",
                  ev, "put the NIC in a slot on a root port with ACS, use a switch with ACS, or a kernel ACS quirk "
                      "for the platform (pcie_acs_override is unsafe)")
        else:
            r.add("isolation.acs.path", Severity.OK, "isolation", subj, "ACS along the whole path to the root", ev)
        vfs = inv.vfs_of(pf)
        assignable = [v for v in vfs if v.assignability and v.assignability.assignable]
        label = pf.netdevs[0].name if pf.netdevs else str(pf.address)
        for v in vfs:
            a = v.assignability
            if a is None or a.assignable:
                continue
            why = a.reason
            if broken is not None and v.iommu_group == pf.iommu_group and pf.driver:
                pcie = broken.config.pcie if broken.config else None
                kind = "switch port" if pcie and pcie.port_type == PortType.DOWNSTREAM_PORT else "port"
                others = len(inv.groups[v.iommu_group].members) - 2 if v.iommu_group is not None else 0
                why = (f"shares group {v.iommu_group} with its PF {pf.address}, driven by {pf.driver}"
                       + (f" (and {others} other devices)" if others > 0 else "")
                       + f", because {kind} {broken.address} has {_acs_state(broken)[1].lower()}: no VF of this PF "
                       f"can be assigned while {pf.driver} drives the PF")
            r.add("isolation.vf.assignable", Severity.FAIL, "isolation", f"{v.address} ({label}#{v.vf_index})",
                  f"not assignable: {why}",
                  [(sysfs.shown(sysfs.group_devices(v.iommu_group)),
                    " ".join(str(m) for m in inv.groups[v.iommu_group].members)) if v.iommu_group is not None else
                   (sysfs.IOMMU_GROUP, "none")])
        ngroups = len({v.iommu_group for v in assignable})
        summary = f"{label}: {len(vfs)} VFs, {len(assignable)} assignable ({ngroups} groups)"
        r.capacity.append({"pf": str(pf.address), "netdev": pf.netdevs[0].name if pf.netdevs else None,
                           "vfs": len(vfs), "assignable": len(assignable), "groups": ngroups})
        sev = Severity.OK if len(assignable) == len(vfs) else Severity.FAIL if vfs else Severity.INFO
        r.add("isolation.capacity", sev, "isolation", subj, summary)
    for g in inv.groups.values():
        if len(g.members) > 1 and not any(m in sriov_related for m in g.members):
            drivers = [inv.devices[m].driver or "none" for m in g.members]
            r.add("isolation.group.shared", Severity.INFO, "isolation", f"group {g.number}",
                  f"IOMMU group {g.number} is shared by {len(g.members)} devices (not SR-IOV related): "
                  + ", ".join(f"{m} ({d})" for m, d in zip(g.members, drivers, strict=True)),
                  [(sysfs.shown(sysfs.group_devices(g.number)), " ".join(str(m) for m in g.members))])


def run_doctor(host: Host, inv: Inventory, device: PciDevice | None = None) -> Report:
    r = Report()
    check_platform(host, inv, r)
    check_devices(host, inv, r)
    check_isolation(host, inv, r)
    if device is not None:
        keep = {str(device.address)} | {str(a) for a in device.vfs}
        if device.physfn:
            keep.add(str(device.physfn))
        r.findings = [f for f in r.findings if f.area == "platform" or any(k in f.subject for k in keep)]
        r.capacity = [c for c in r.capacity if c["pf"] in keep]
    return r


__all__ = ["Finding", "PciAddress", "Report", "Severity", "run_doctor"]
