"""The exporter's scrape as an operation: one read of the host (the inventory with VF counters, one RTM_GETLINK
per PF at any VF count), the owners of its VFs, the stored state compared with that same read, cached doctor
findings — returned as samples of the families table (metrics/families.py), rendered by metrics/expo.py.

A scrape never takes a PF lock (a `state apply` holding one does not delay it) and never raises: a part that
fails is left out, counted in sriovctl_scrape_errors_total{source} and named in ``Scrape.errors``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sriovctl import drivers
from sriovctl.errors import SriovctlError
from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.metrics import families as F
from sriovctl.metrics.expo import CONTENT_TYPE, Sample, render
from sriovctl.model import Inventory, NetPf, PciDevice, UseKind, VfNetlink
from sriovctl.pci.address import PciAddress

__all__ = ["CONTENT_TYPE", "Exporter", "Scrape", "render"]

T = TypeVar("T")
DOCTOR_INTERVAL = 3600.0  # doctor reads the platform (cmdline, DMAR, kconfig): once an hour is plenty by default
_FAILURES = (SriovctlError, OSError, ValueError, KeyError, UnicodeError)  # what a part of a scrape may hit


@dataclass
class Scrape:
    samples: list[Sample]
    errors: list[tuple[str, str]]  # (source, one line)
    duration: float
    up: bool

    def text(self) -> str:
        return render(self.samples)


@dataclass(frozen=True, slots=True)
class Owner:
    kind: str  # libvirt | qemu | process | host | none
    name: str


NOBODY = Owner("none", "")


@dataclass
class Exporter:
    """What lasts across scrapes in one exporter: its error counters and the doctor cache. ``doctor_cache``: a
    file that keeps the findings between `--once` runs (a systemd timer starts a new process each time)."""

    host: Host
    doctor_interval: float = DOCTOR_INTERVAL
    doctor_cache: str | None = None
    errors_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(F.ERROR_SOURCES, 0))
    _doctor: tuple[float, dict[str, int]] | None = None

    def scrape(self) -> Scrape:
        t0 = time.monotonic()
        out: list[Sample] = []
        errors: list[tuple[str, str]] = []
        inv = None
        try:
            from sriovctl.errors import HostIOError
            from sriovctl.inventory import read_inventory
            from sriovctl.pci.ids import PciIds

            if not self.host.is_dir(sysfs.PCI_DEVICES):  # sysfs not mounted, a PCI-less container: not "no VFs"
                raise HostIOError(f"{self.host.label}: no /{sysfs.PCI_DEVICES} to read")
            inv = read_inventory(self.host, ids=PciIds(""), stats=True)  # names are not exported: no pci.ids
        except _FAILURES as e:
            errors.append(("inventory", _line(e)))
        if inv is not None:
            nobody: dict[PciAddress, Owner] = {}
            owners = _part(errors, "owners", lambda: _owners(self.host, inv, errors), nobody)
            _part(errors, "pools", lambda: _pool_samples(self.host, inv, owners, out), None)
            _vf_samples(self.host, inv, owners, out, errors)
            _pf_samples(inv, out)
            _part(errors, "state", lambda: _state_samples(self.host, inv, out), None)
            _part(errors, "doctor", lambda: self._doctor_samples(inv, out), None)
        for source, _ in errors:
            self.errors_total[source] = self.errors_total.get(source, 0) + 1
        out.append((F.UP.name, (), 1 if inv is not None else 0))
        out.extend((F.SCRAPE_ERRORS.name, (s,), n) for s, n in self.errors_total.items())
        dt = time.monotonic() - t0
        out.append((F.SCRAPE_DURATION.name, (), round(dt, 6)))
        return Scrape(out, errors, dt, inv is not None)

    def _doctor_samples(self, inv: Inventory, out: list[Sample]) -> None:
        now = time.time()
        cached = self._doctor or self._load_doctor()
        if cached is None or not 0 <= now - cached[0] < self.doctor_interval:
            from sriovctl.doctor import Severity, run_doctor

            rep = run_doctor(self.host, inv)
            counts = {s.label: sum(1 for f in rep.findings if f.severity is s) for s in Severity}
            cached = (now, counts)
            self._save_doctor(cached)
        self._doctor = cached
        out.extend((F.DOCTOR_FINDINGS.name, (sev,), n) for sev, n in cached[1].items())
        out.append((F.DOCTOR_TIME.name, (), round(cached[0], 3)))

    def _load_doctor(self) -> tuple[float, dict[str, int]] | None:
        if self.doctor_cache is None:
            return None
        from sriovctl import safefs

        folder, base = os.path.split(self.doctor_cache)
        try:
            raw = safefs.read(folder or ".", base, 4096)  # our own file: a link, FIFO or device there is refused
            if raw is None:
                return None
            doc = json.loads(raw)
            at, counts = float(doc["time"]), doc["findings"]
            if isinstance(counts, dict) and all(isinstance(k, str) and type(v) is int for k, v in counts.items()) \
                    and set(counts) <= {"ok", "info", "warn", "fail"}:
                return at, counts
        except (SriovctlError, OSError, ValueError, KeyError, TypeError):
            pass  # none yet, or not ours: run doctor again (and write ours over it)
        return None

    def _save_doctor(self, cached: tuple[float, dict[str, int]]) -> None:
        if self.doctor_cache is None:
            return
        from sriovctl import safefs

        folder, base = os.path.split(self.doctor_cache)
        safefs.write_atomic(folder or ".", base, json.dumps({"time": cached[0], "findings": cached[1]}).encode(),
                            0o644, sync=False)


def _line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:300]


def _part(errors: list[tuple[str, str]], source: str, fn: Callable[[], T], default: T) -> T:
    try:
        return fn()
    except _FAILURES as e:
        errors.append((source, _line(e)))
        return default


def _numa(n: int | None) -> str:
    return "" if n is None or n < 0 else str(n)


def _pf_name(pf: PciDevice) -> str:
    """The PF label: its netdev (the SR-IOV metrics exporter's), its address when it has none."""
    return pf.netdevs[0].name if pf.netdevs else str(pf.address)


def _owners(host: Host, inv: Inventory, errors: list[tuple[str, str]]) -> dict[PciAddress, Owner]:
    """Who holds each VF: a libvirt domain (running or defined), else a process holding its VFIO group (QEMU
    named by its guest, others by command and pid), else the host itself through the VF's netdev. A domain
    whose XML cannot be read is an error of the scrape; the owners that could be read are kept."""
    from sriovctl.inuse import Unknown, vfio_holder_map
    from sriovctl.virt.users import domain_owners

    unknown: list[Unknown] = []
    out: dict[PciAddress, Owner] = {a: Owner("libvirt", n) for a, (n, _) in domain_owners(host, unknown).items()}
    groups = {d.iommu_group for d in inv.vfs if d.driver == "vfio-pci" and d.iommu_group is not None
              and d.address not in out}
    holders = vfio_holder_map(host, groups)
    for d in inv.vfs:
        if d.address in out:
            continue
        uses = holders.get(d.iommu_group, []) if d.driver == "vfio-pci" and d.iommu_group is not None else []
        use = next((u for u in uses if u.kind in (UseKind.QEMU, UseKind.PROCESS)), None)
        if use is not None:
            out[d.address] = Owner(str(use.kind), _holder_name(host, use.kind, use.id))
        elif drivers.is_net(d.driver) and d.netdevs:
            out[d.address] = Owner("host", d.netdevs[0].name)
    errors.extend(("owners", f"{u.source} {u.why}") for u in unknown)
    return out


def _holder_name(host: Host, kind: UseKind, pid: str) -> str:
    """A QEMU's guest name (its -name, read as the interlocks read it), else ``COMM[PID]``."""
    from sriovctl.inuse import qemu_guest_name

    name = qemu_guest_name(host, pid) if kind is UseKind.QEMU else None
    if name:
        return name
    comm = (host.read_text(f"proc/{pid}/comm") or "?").strip()
    return f"{comm}[{pid}]"


def _onoff(v: bool | None) -> str:
    return "" if v is None else "on" if v else "off"


def _info(vf: VfNetlink | None) -> tuple[str, str, str, str, str, str]:
    if vf is None:
        return ("",) * 6
    return (vf.mac or "", "" if vf.vlan is None else str(vf.vlan), _onoff(vf.trust), _onoff(vf.spoofchk),
            vf.link_state or "", "" if vf.max_tx_rate is None else str(vf.max_tx_rate))


def _counted(vf: VfNetlink | None, pf_driver: str | None) -> dict[str, int] | None:
    """The VF's IFLA_VF_STATS when they count: its PF driver implements ndo_get_vf_stats (the driver table),
    or — a driver not in the table — they are not all zeros (rtnl_fill_vfinfo() sends zeros without it)."""
    if vf is None or vf.stats is None:
        return None
    known = drivers.driver(pf_driver).vf_stats
    if known or (known is None and any(vf.stats.values())):
        return vf.stats
    return None


def _netdev_stats(host: Host, d: PciDevice) -> dict[str, int] | None:
    """The VF netdev's own counters (statistics/), for a VF on a host network driver."""
    if not drivers.is_net(d.driver) or not d.netdevs:
        return None
    files = tuple(c.netdev for c in F.VF_COUNTERS if c.netdev is not None)
    values, _ = host.read_dir_attrs(sysfs.netdev_attr(d.netdevs[0].name, sysfs.NETDEV_STATISTICS), files)
    out = {}
    for name in files:
        raw = values.get(name, b"").strip()
        if not raw.isdigit() or len(raw) > 20:
            raise ValueError(f"{d.netdevs[0].name}: statistics/{name} is {raw[:30]!r}, not a count")
        out[name] = int(raw)
    return out


def _vf_samples(host: Host, inv: Inventory, owners: dict[PciAddress, Owner], out: list[Sample],
                errors: list[tuple[str, str]]) -> None:
    counters: list[Sample] = []
    info: list[Sample] = []
    for pf in sorted(inv.pfs, key=lambda p: p.address):
        pfl, numa = _pf_name(pf), _numa(pf.numa_node)
        vfs = inv.vfs_of(pf)
        if vfs and pf.netdevs and all(v.netlink is None for v in vfs):
            errors.append(("netlink", f"{pfl}: no netlink VF view for its {len(vfs)} VFs"))
        for d in vfs:
            idx = str(d.vf_index)
            labels = (pfl, idx, str(d.address), numa)
            source, values = "none", None
            nl = _counted(d.netlink, pf.driver)
            if nl is not None:
                source, values = "netlink", {c.family.name: nl.get(c.netlink, 0) for c in F.VF_COUNTERS}
            else:
                try:
                    nd = _netdev_stats(host, d)
                except _FAILURES as e:
                    errors.append(("netdev", _line(e)))
                    nd = None
                if nd is not None:
                    source = "netdev"
                    values = {c.family.name: nd[c.netdev] for c in F.VF_COUNTERS if c.netdev is not None}
            if values is not None:
                counters.extend((name, labels, v) for name, v in values.items())
            who = owners.get(d.address, NOBODY)
            info.append((F.VF_INFO.name, (str(d.address), pfl, idx, d.driver or "", numa, source, who.kind,
                                          who.name, *_info(d.netlink)), 1))
    for name, npf in sorted(inv.net_pfs.items()):
        _net_pf_samples(name, npf, counters, info)
    out.extend(counters)
    out.extend(info)


def _net_pf_samples(name: str, npf: NetPf, counters: list[Sample], info: list[Sample]) -> None:
    """A PF not on PCI (netdevsim): its VFs are netlink entries only — no address, node, driver or owner."""
    for v in npf.vfs:
        labels = (name, str(v.vf), "", "")
        nl = _counted(v, npf.driver)
        if nl is not None:
            counters.extend((c.family.name, labels, nl.get(c.netlink, 0)) for c in F.VF_COUNTERS)
        info.append((F.VF_INFO.name, ("", name, str(v.vf), "", "", "netlink" if nl is not None else "none", "none",
                                      "", *_info(v)), 1))


def _pf_samples(inv: Inventory, out: list[Sample]) -> None:
    for pf in sorted(inv.pfs, key=lambda p: p.address):
        labels = (_pf_name(pf), str(pf.address), _numa(pf.numa_node), pf.driver or "")
        vfs = inv.vfs_of(pf)
        out.append((F.PF_VFS.name, labels, len(vfs)))
        if pf.sriov is not None and pf.sriov.totalvfs is not None:
            out.append((F.PF_TOTAL_VFS.name, labels, pf.sriov.totalvfs))
        out.append((F.PF_ASSIGNABLE.name, labels,
                    sum(1 for v in vfs if v.assignability is not None and v.assignability.assignable)))
    for name, npf in sorted(inv.net_pfs.items()):
        labels = (name, "", "", npf.driver or "")
        out.append((F.PF_VFS.name, labels, npf.numvfs or 0))


def _pool_samples(host: Host, inv: Inventory, owners: dict[PciAddress, Owner], out: list[Sample]) -> None:
    """Each pool's VFs by state and NUMA node; an allocated VF whose holder the owner scan did not see is shown
    as the pool's (owner_kind "pool", its allocation's owner). Computed before the VF series (owners change)."""
    from sriovctl.ops.poolrecords import all_records
    from sriovctl.ops.pools import COUNTED, Member, counts, members

    recs = all_records(host)
    for r in recs.values():
        for a in r.values():
            addr = PciAddress.parse(a.address)
            if owners.get(addr, NOBODY).kind in ("host", "none"):
                owners[addr] = Owner("pool", a.owner.name)
    def busy(m: Member) -> bool:
        return m.device is None or (m.device.assignability is not None and not m.device.assignability.assignable) \
            or owners.get(m.device.address, NOBODY).kind in ("libvirt", "qemu", "process")

    for pool, ms in sorted(members(host, inv).items()):
        by_node = {"" if n is None else str(n): row for n, row in counts(ms, recs, busy).items()}
        for node, row in sorted(by_node.items()):
            out.extend((F.POOL_VFS.name, (pool, node, s), row[s]) for s in COUNTED)


def _state_samples(host: Host, inv: Inventory, out: list[Sample]) -> None:
    from sriovctl.ops.state import status_of

    st = status_of(host, None, inv)
    out.append((F.STATE_PRESENT.name, (), 0 if st.source is None else 1))
    if st.source is not None:
        drifted = bool(st.doc.get("drifted"))
        changes = st.doc.get("changes")
        out.append((F.STATE_CONVERGED.name, (), 0 if drifted else 1))
        out.append((F.STATE_CHANGES.name, (), len(changes) if isinstance(changes, list) else 0))
    rec = st.record
    result, at = rec.get("result"), rec.get("time")
    if isinstance(result, str):
        out.append((F.APPLY_SUCCESS.name, (result,), 1 if result == "Succeeded" else 0))
    if isinstance(at, (int, float)):
        out.append((F.APPLY_TIME.name, (), round(float(at), 3)))


TEXTFILE = "sriovctl.prom"  # what node_exporter's textfile collector reads (*.prom)
DOCTOR_CACHE = ".sriovctl-doctor.json"  # beside it: a dot-file the collector never reads


def textfile_dir(path: str) -> str:
    """The textfile collector's directory, which must exist (node_exporter owns it: it is not ours to make)."""
    from sriovctl.errors import NoInputError

    if not os.path.isdir(path):
        raise NoInputError(f"--textfile {path}: not a directory",
                           hint="create it, and give node_exporter the same --collector.textfile.directory")
    return os.path.abspath(path)


def write_textfile(directory: str, text: str) -> str:
    """DIR/sriovctl.prom: written as a dot-file without the .prom suffix (the collector skips it), fsynced and
    renamed over the old one — node_exporter never reads half a file."""
    from sriovctl import safefs

    safefs.write_atomic(directory, TEXTFILE, text.encode("utf-8"), 0o644)
    return os.path.join(directory, TEXTFILE)
