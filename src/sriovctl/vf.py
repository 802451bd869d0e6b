"""The only writer to the kernel: VF count, VF attributes over netlink, driver binding — each behind the
safety interlocks (in-use VFs, the default-route interface, non-assignable devices) unless forced.

Every change goes through the Host, so ``--dry-run`` (Host.dry_run) prints the exact writes instead.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sriovctl.errors import (
    DataError,
    HostIOError,
    HostPermissionError,
    InterlockError,
    PartialError,
    SriovctlError,
    TemporaryError,
    UnavailableError,
    UsageError,
)
from sriovctl.host.base import Host, WriteRecord
from sriovctl.host.netlink import NetlinkError, VfChange, VfNetlink, kernel_order
from sriovctl.inuse import NET_DRIVERS, UsageScan
from sriovctl.inventory import read_inventory
from sriovctl.model import Inventory, PciDevice
from sriovctl.untrusted import shown

Progress = Callable[[int, int], None]
DEVICES = "sys/bus/pci/devices"
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", re.ASCII)


def _name(d: PciDevice) -> str:
    return f"{d.address} ({d.netdevs[0].name})" if d.netdevs else str(d.address)


def errname(code: int) -> str:
    return "EOPNOTSUPP" if code == errno.EOPNOTSUPP else errno.errorcode.get(code, str(code))


def kernel_error(e: OSError, what: str, value: str) -> SriovctlError:
    """A kernel errno from a sysfs write as our one-line error with a hint."""
    code = e.errno or 0
    msg = f"{what}: kernel refused {value!r}: {errname(code)} ({e.strerror or os.strerror(code)})"
    if code == errno.EBUSY:
        return TemporaryError(msg, hint="VFs are enabled or the device is bound: write 0 first (--reset), "
                                        "or unbind it first")
    if code == errno.ERANGE:
        return UsageError(msg, hint="the count must not exceed sriov_totalvfs")
    if code == errno.ENOENT:
        return UnavailableError(msg, hint="no driver with SR-IOV support is bound to the PF")
    if code in (errno.ENOMEM, errno.ENOSPC, errno.EIO):
        return UnavailableError(msg, hint="not enough MMIO space or bus numbers for the VFs: "
                                          "boot with pci=realloc, or enable SR-IOV in the firmware")
    if code in (errno.EPERM, errno.EACCES):
        return HostPermissionError(msg, hint="run as root")
    if code == errno.ENODEV:
        return UnavailableError(msg, hint="the driver does not match this device (check driver_override), or "
                                          "the PF's sriov_drivers_autoprobe is 0 (name the driver)")
    if code == errno.EINVAL:
        return UsageError(msg)
    if code == errno.EOPNOTSUPP:
        return UnavailableError(msg, hint="the driver does not support this")
    return HostIOError(msg)


def _write(host: Host, rel: str, value: str, what: str) -> None:
    try:
        host.write(rel, value)
    except SriovctlError:
        raise  # ReadOnlyError is a PermissionError too, but not the kernel's answer
    except OSError as e:
        raise kernel_error(e, what, value.strip()) from None


def in_use(host: Host, devices: list[PciDevice]) -> dict[PciDevice, list[str]]:
    scan = UsageScan(host)
    out = {}
    for d in devices:
        uses = scan.uses(d)
        if uses:
            out[d] = [str(u) for u in uses]
    return out


def refuse_if_in_use(host: Host, devices: list[PciDevice], action: str, force: bool, out: list[str]) -> None:
    users = in_use(host, devices)
    if not users:
        return
    desc = "; ".join(f"{d.address}: {', '.join(u)}" for d, u in users.items())
    if force:
        out.append(f"warning: --force: {action} although in use: {desc}")
        return
    raise InterlockError(f"{action}: refused, in use: {desc}", hint="stop the users first, or use --force")


# ---------------------------------------------------------------- VF count

def _require_pf(pf: PciDevice) -> None:
    if not pf.is_pf or pf.sriov is None:
        raise UsageError(f"{_name(pf)}: not an SR-IOV PF", hint="`sriovctl status` lists the PFs")
    if pf.sriov.totalvfs is None:
        raise UnavailableError(f"{_name(pf)}: SR-IOV capability present but the kernel exposes no sriov_totalvfs",
                               hint="the driver lacks SR-IOV support, or SR-IOV is disabled in the firmware")


def settled(host: Host, pf: PciDevice, n: int, autoprobe: bool) -> list[str]:
    """What is not ready yet: VFs missing, not bound, or a network VF without its netdev."""
    d = f"{DEVICES}/{pf.address}"
    _, links = host.read_dir_attrs(d, (), tuple(f"virtfn{i}" for i in range(n)))
    waiting = []
    for i in range(n):
        t = links.get(f"virtfn{i}")
        if t is None:
            waiting.append(f"VF {i} missing")
            continue
        va = t.rsplit("/", 1)[-1]
        if not host.exists(f"{DEVICES}/{va}/config"):
            waiting.append(f"VF {i} ({va}) not in sysfs")
            continue
        if autoprobe:
            drv = host.link_name(f"{DEVICES}/{va}/driver")
            if drv is None:
                waiting.append(f"VF {i} ({va}) not bound yet")
            elif drv in NET_DRIVERS and not host.listdir(f"{DEVICES}/{va}/net"):
                waiting.append(f"VF {i} ({va}) has no netdev yet")
    return waiting


def wait_settled(host: Host, pf: PciDevice, n: int, autoprobe: bool, timeout: float,
                 progress: Progress | None = None) -> None:
    """Poll (no fixed sleep, no udev) until every VF exists and has settled, or the deadline passes."""
    deadline = host.monotonic() + timeout
    delay = 0.01
    while True:
        waiting = settled(host, pf, n, autoprobe)
        if progress:
            progress(n - len(waiting), n)
        if not waiting:
            return
        if host.monotonic() >= deadline:
            raise TemporaryError(f"{_name(pf)}: VFs not settled after {timeout:g} s: {'; '.join(waiting[:3])}"
                                 + (f" (+{len(waiting) - 3} more)" if len(waiting) > 3 else ""),
                                 hint="wait longer (--wait SECONDS) and check dmesg")
        host.sleep(delay)
        delay = min(delay * 2, 0.2)


def enable(host: Host, inv: Inventory, pf: PciDevice, n: int, *, reset: bool = False, wait: float = 30.0,
           autoprobe: bool = True, force: bool = False, progress: Progress | None = None) -> list[str]:
    _require_pf(pf)
    assert pf.sriov is not None and pf.sriov.totalvfs is not None
    total, cur = pf.sriov.totalvfs, pf.sriov.numvfs or 0
    if not 1 <= n <= total:
        raise UsageError(f"{_name(pf)}: cannot enable {n} VFs: sriov_totalvfs is {total}",
                         hint=f"choose 1..{total}; `vf disable` sets 0")
    out: list[str] = []
    if cur == n and not reset:
        out.append(f"{_name(pf)}: {n} VFs already enabled, nothing to do")
        return out
    if cur and not reset:
        raise UsageError(f"{_name(pf)}: cannot set {n} VFs: {cur} already enabled (write 0 first, or use --reset)",
                         hint="--reset disables the existing VFs first, if none is in use")
    d = f"{DEVICES}/{pf.address}"
    if cur:
        refuse_if_in_use(host, inv.vfs_of(pf), f"{_name(pf)}: destroying {cur} VFs", force, out)
        _write(host, f"{d}/sriov_numvfs", "0", f"{_name(pf)}: sriov_numvfs")
    want_ap = "1" if autoprobe else "0"
    if pf.sriov.drivers_autoprobe is not None and pf.sriov.drivers_autoprobe != autoprobe:
        _write(host, f"{d}/sriov_drivers_autoprobe", want_ap, f"{_name(pf)}: sriov_drivers_autoprobe")
    _write(host, f"{d}/sriov_numvfs", str(n), f"{_name(pf)}: sriov_numvfs")
    if not host.dry_run:
        wait_settled(host, pf, n, autoprobe, wait, progress)
    done = f"would enable {n} VFs" if host.dry_run else f"{n} VFs enabled"
    out.append(f"{_name(pf)}: {done}" + ("" if autoprobe else " (left unbound: autoprobe off)"))
    return out


def disable(host: Host, inv: Inventory, pf: PciDevice, *, force: bool = False) -> list[str]:
    _require_pf(pf)
    assert pf.sriov is not None
    out: list[str] = []
    if not pf.sriov.numvfs:
        out.append(f"{_name(pf)}: no VFs enabled, nothing to do")
        return out
    refuse_if_in_use(host, inv.vfs_of(pf), f"{_name(pf)}: destroying {pf.sriov.numvfs} VFs", force, out)
    _write(host, f"{DEVICES}/{pf.address}/sriov_numvfs", "0", f"{_name(pf)}: sriov_numvfs")
    out.append(f"{_name(pf)}: would disable its {pf.sriov.numvfs} VFs" if host.dry_run else f"{_name(pf)}: VFs disabled")
    return out


def enable_by_module_param(host: Host, inv: Inventory, pf: PciDevice, n: int, param: str, *,
                           force: bool = False, wait: float = 30.0) -> list[str]:
    """The legacy recipe: reload the PF's driver with a VF-count parameter (igb max_vfs=N) and persist it in
    /etc/modprobe.d/DRIVER.conf. Affects every port that driver drives."""
    _require_pf(pf)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,31}", param):
        raise UsageError(f"--module-param {param!r}: not a module parameter name", hint="e.g. max_vfs")
    driver = pf.driver
    if driver is None or pf.module is None:
        raise UnavailableError(f"{_name(pf)}: no driver bound, no module to reload")
    module = pf.module
    ports = [d for d in inv.devices.values() if d.driver == driver and not d.is_vf]
    out = [f"warning: {param} is deprecated; sriov_numvfs (without --module-param) is the modern way",
           f"warning: reloading {module} affects every port it drives: {', '.join(_name(p) for p in ports)}"]
    victims = [v for p in ports for v in inv.vfs_of(p)] + ports
    refuse_if_in_use(host, victims, f"reloading {module}", force, out)
    host.run(["modprobe", "-r", module])
    host.run(["modprobe", module, f"{param}={n}"])
    conf = f"# written by sriovctl: VFs at module load (legacy; sriov_numvfs is preferred)\noptions {module} {param}={n}\n"
    host.write_file(f"etc/modprobe.d/{module}.conf", conf)
    if not host.dry_run:
        fresh = read_inventory(host).devices.get(pf.address)
        if fresh is None or fresh.sriov is None:
            raise TemporaryError(f"{_name(pf)}: gone after reloading {module}", hint="check dmesg")
        expect = min(n, fresh.sriov.totalvfs or n)
        wait_settled(host, fresh, expect, True, wait)
        out.append(f"{_name(pf)}: {expect} VFs after `modprobe {module} {param}={n}`; wrote /etc/modprobe.d/{module}.conf")
    return out


# ---------------------------------------------------------------- VF attributes

@dataclass(frozen=True)
class VfSettings:
    mac: str | None = None
    vlan: int | None = None
    qos: int | None = None
    proto: str | None = None
    spoofchk: bool | None = None
    trust: bool | None = None
    state: str | None = None
    min_rate: int | None = None
    max_rate: int | None = None
    query_rss: bool | None = None

    def validate(self, what: str, count: int) -> None:
        """The validity rules, checked before anything is written."""
        if self.mac is not None:
            if count != 1:
                raise UsageError(f"{what}: --mac names one VF, not {count}", hint="give each VF its own MAC")
            if not _MAC.fullmatch(self.mac):
                raise UsageError(f"{what}: --mac {shown(self.mac)}: not a MAC address", hint="e.g. 52:54:00:6d:90:02")
            octets = [int(x, 16) for x in self.mac.split(":")]
            if octets[0] & 1:
                raise UsageError(f"{what}: --mac {self.mac}: a multicast address", hint="the first octet must be even")
            if not any(octets):
                raise UsageError(f"{what}: --mac {self.mac}: the all-zero address")
        if self.vlan is not None and not 0 <= self.vlan <= 4095:
            raise UsageError(f"{what}: --vlan {self.vlan}: must be 0..4095")
        if self.qos is not None and not 0 <= self.qos <= 7:
            raise UsageError(f"{what}: --qos {self.qos}: must be 0..7")
        if self.vlan is None and (self.qos is not None or self.proto is not None):
            raise UsageError(f"{what}: --qos and --proto need --vlan")
        if self.proto is not None and self.proto not in ("802.1Q", "802.1ad"):
            raise UsageError(f"{what}: --proto {self.proto!r}: must be 802.1Q or 802.1ad")
        for name, v in (("--min-rate", self.min_rate), ("--max-rate", self.max_rate)):
            if v is not None and not 0 <= v <= 0xFFFFFFFF:
                raise UsageError(f"{what}: {name} {v}: must be ≥ 0 (Mbit/s)")
        if self.min_rate and self.max_rate and self.min_rate > self.max_rate:
            raise UsageError(f"{what}: --min-rate {self.min_rate} > --max-rate {self.max_rate}")
        if self.state is not None and self.state not in ("auto", "enable", "disable"):
            raise UsageError(f"{what}: --state {self.state!r}: must be auto, enable or disable")
        if all(getattr(self, f) is None for f in self.__dataclass_fields__):
            raise UsageError(f"{what}: nothing to set", hint="e.g. --mac, --vlan, --spoofchk, --trust, --state, --max-rate")

    def changes(self, vf: int, current: VfNetlink | None) -> list[VfChange]:
        out = []
        if self.mac is not None:
            out.append(VfChange(vf, "mac", self.mac.lower()))
        if self.vlan is not None:
            out.append(VfChange(vf, "vlan", (self.vlan, self.qos or 0, self.proto or "802.1Q")))
        if self.min_rate is not None or self.max_rate is not None:
            lo = self.min_rate if self.min_rate is not None else (current.min_tx_rate if current else 0) or 0
            hi = self.max_rate if self.max_rate is not None else (current.max_tx_rate if current else 0) or 0
            out.append(VfChange(vf, "rate", (lo, hi)))
        if self.spoofchk is not None:
            out.append(VfChange(vf, "spoofchk", self.spoofchk))
        if self.state is not None:
            out.append(VfChange(vf, "link_state", self.state))
        if self.query_rss is not None:
            out.append(VfChange(vf, "rss_query_en", self.query_rss))
        if self.trust is not None:
            out.append(VfChange(vf, "trust", self.trust))
        return out


def _matches(v: VfNetlink | None, c: VfChange) -> bool:
    if v is None:
        return False
    if c.attr == "mac":
        return (v.mac or "").lower() == str(c.value)
    if c.attr == "vlan":
        vlan, qos, proto = c.vlan_spec()
        return v.vlan == vlan and (v.qos or 0) == qos and (vlan == 0 or (v.vlan_proto or "802.1Q") == proto)
    if c.attr == "rate":
        return (v.min_tx_rate or 0, v.max_tx_rate or 0) == c.rate_spec()
    if c.attr == "link_state":
        return v.link_state == c.value
    return bool(getattr(v, c.attr) == c.value)


@dataclass
class SetResult:
    applied: list[VfChange] = field(default_factory=list)
    refused: list[tuple[VfChange, str]] = field(default_factory=list)
    requests: int = 0
    lines: list[str] = field(default_factory=list)


_ATTR_LABEL = {"mac": "MAC", "vlan": "VLAN", "rate": "rate", "spoofchk": "spoof check", "link_state": "link state",
               "rss_query_en": "RSS query", "trust": "trust"}


def set_attrs(host: Host, inv: Inventory, vfs: list[PciDevice], settings: VfSettings) -> SetResult:
    """The same settings on VFs of one PF (the CLI's `vf set`)."""
    what = ", ".join(str(v.address) for v in vfs[:3]) + (f" (+{len(vfs) - 3})" if len(vfs) > 3 else "")
    settings.validate(what, len(vfs))
    return set_many(host, inv, [(v, settings) for v in vfs])


def set_many(host: Host, inv: Inventory, plan: list[tuple[PciDevice, VfSettings]]) -> SetResult:
    """Per-VF settings for VFs of one PF: one RTM_SETLINK carrying every VF's IFLA_VF_INFO, then one
    RTM_GETLINK to verify (two round trips for any VF count when the driver accepts everything)."""
    for v, st in plan:
        st.validate(str(v.address), 1)
    macs = [st.mac.lower() for _, st in plan if st.mac]
    if len(set(macs)) != len(macs):
        raise UsageError(f"{plan[0][0].address}: the same MAC given to two VFs", hint="give each VF its own MAC")
    pfs = {v.physfn for v, _ in plan}
    if len(pfs) != 1 or None in pfs:
        raise UsageError(f"{', '.join(str(v.address) for v, _ in plan[:3])}: VFs of one PF per call",
                         hint="use PF#N ranges, e.g. enp11s0f0#0-3")
    pf = inv.devices[next(iter(pfs))]  # type: ignore[index]
    if not pf.netdevs:
        raise UnavailableError(f"{_name(pf)}: the PF has no netdev: VF attributes are set through it",
                               hint="bind the PF to its network driver")
    ifname = pf.netdevs[0].name
    nl = host.netlink()
    start = nl.requests
    need_current = any((st.min_rate is None) != (st.max_rate is None) for _, st in plan)
    current = {v.vf: v for v in nl.get_vfs(ifname)} if need_current else {}
    changes = kernel_order([c for v, st in plan for c in st.changes(v.vf_index or 0, current.get(v.vf_index or 0))])
    res = SetResult()
    if host.dry_run:
        for c in changes:
            res.lines.append(f"would set {ifname}#{c.vf} {_ATTR_LABEL[c.attr]} {_fmt(c)}")
        host.writes.append(_nl_record(ifname, changes, True))
        return res
    host.writes.append(_nl_record(ifname, changes, False))
    refused: dict[VfChange, str] = {}
    try:
        nl.set_vfs(ifname, changes)
    except NetlinkError:
        # The kernel stopped at the first refused attribute; what came before it stays applied. Find out
        # exactly: one request per change from here on (re-sending an applied one changes nothing).
        for c in changes:
            try:
                nl.set_vfs(ifname, [c])
            except NetlinkError as e:
                refused[c] = errname(e.errno)
    view = {v.vf: v for v in nl.get_vfs(ifname)}
    for c in changes:
        if c in refused:
            res.refused.append((c, f"refused by {pf.driver}: {refused[c]}"))
        elif _matches(view.get(c.vf), c):
            res.applied.append(c)
        else:
            res.refused.append((c, "accepted but reads back differently"))
    res.requests = nl.requests - start
    by_vf: dict[int, list[str]] = {}
    for c in res.applied:
        by_vf.setdefault(c.vf, []).append(f"{_ATTR_LABEL[c.attr]} {_fmt(c)}")
    for vf, items in sorted(by_vf.items()):
        res.lines.append(f"{ifname}#{vf}: set {', '.join(items)}")
    if res.refused:
        details = [f"{ifname}#{c.vf}: {_ATTR_LABEL[c.attr]} {_fmt(c)}: {why}" for c, why in res.refused]
        raise PartialError(f"{ifname}: {len(res.applied)} settings applied, {len(res.refused)} refused: "
                           + "; ".join(details[:4]) + (f" (+{len(details) - 4})" if len(details) > 4 else ""),
                           details + res.lines,
                           hint="the driver refused these (not supported, or not now: igb sets rates only while the "
                                "PF has link); the rest was applied")
    return res


def _fmt(c: VfChange) -> str:
    if c.attr == "vlan":
        vlan, qos, proto = c.vlan_spec()
        return f"{vlan} qos {qos} {proto}"
    if c.attr == "rate":
        lo, hi = c.rate_spec()
        return f"min {lo} max {hi} Mbit/s"
    if isinstance(c.value, bool):
        return "on" if c.value else "off"
    return str(c.value)


def _nl_record(ifname: str, changes: list[VfChange], dry: bool) -> WriteRecord:
    summary = ", ".join(f"vf {c.vf} {c.attr}={_fmt(c)}" for c in changes)
    return WriteRecord(f"netlink:RTM_SETLINK {ifname}", summary, dry)


# ---------------------------------------------------------------- driver binding

def guard_take(host: Host, d: PciDevice, also: list[PciDevice], force: bool, out: list[str],
               action: str | None = None) -> None:
    """Refuse to take a device from its driver or its user (to rebind it, or to give it to a guest) while it,
    or a VF that would go with it, is in use — above all the interface that carries the default route or
    addresses (it would cut the host off). ``action`` names what is refused (default: unbinding its driver)."""
    scan = UsageScan(host)
    users = [f"{u}" for u in scan.uses(d)] + [f"{v.address}: {u}" for v in also for u in scan.uses(v)]
    if not users:
        return
    msg = f"{_name(d)}: {action or f'refusing to unbind {d.driver}'}: {'; '.join(users)}"
    if not force:
        hint = ("this would cut the host off; use another interface, or --force"
                if any("default route" in u or " with " in u or " has " in u for u in users)
                else "stop the users first, or use --force")
        raise InterlockError(msg, hint=hint)
    out.append(f"warning: --force: {msg}")


def _ensure_driver_loaded(host: Host, driver: str, out: list[str]) -> None:
    if host.is_dir(f"sys/bus/pci/drivers/{driver}"):
        return
    host.run(["modprobe", driver])
    out.append(f"would load module {driver}" if host.dry_run else f"loaded module {driver}")
    if not host.dry_run and not host.is_dir(f"sys/bus/pci/drivers/{driver}"):
        raise UnavailableError(f"driver {driver}: not registered after modprobe", hint="is the module available?")


def bind(host: Host, inv: Inventory, d: PciDevice, driver: str, *, force: bool = False, wait: float = 10.0) -> list[str]:
    """driver_override + unbind + drivers_probe; the original driver is restored on failure."""
    from sriovctl.host.base import safe_name

    out: list[str] = []
    native = driver == "host"
    if not native:
        safe_name(driver, "driver")
    if d.is_bridge:
        raise UsageError(f"{_name(d)}: a PCI bridge/port; sriovctl does not rebind those")
    if driver == "vfio-pci" and d.assignability and not d.assignability.assignable:
        msg = f"{_name(d)}: not assignable: {d.assignability.reason}"
        if not force:
            raise InterlockError(msg, hint="a VM cannot own it safely; fix the group (doctor) or use --force")
        out.append(f"warning: --force: {msg}")
    if d.driver is not None and (native or d.driver != driver):
        guard_take(host, d, [], force, out)
    if not native and d.driver == driver:
        out.append(f"{_name(d)}: already bound to {driver}")
        return out
    if not native:
        _ensure_driver_loaded(host, driver, out)
    dev = f"{DEVICES}/{d.address}"
    original = d.driver
    _write(host, f"{dev}/driver_override", "\n" if native else driver, f"{_name(d)}: driver_override")
    try:
        if d.driver is not None:
            _write(host, f"sys/bus/pci/drivers/{d.driver}/unbind", str(d.address), f"{_name(d)}: unbind {d.driver}")
        _write(host, "sys/bus/pci/drivers_probe", str(d.address), f"{_name(d)}: drivers_probe")
        if host.dry_run:
            out.append(f"{_name(d)}: would bind {'its native driver' if native else driver}")
            return out
        if native and d.physfn is not None and host.read_text(f"{DEVICES}/{d.physfn}/sriov_drivers_autoprobe") == "0":
            wait = 0.0  # pci_device_can_probe() is false: drivers_probe binds nothing, however long we wait
        now = _wait_bound(host, d, None if native else driver, wait)
        if now is None:
            pf_hint = ""
            if d.physfn is not None and host.read_text(f"{DEVICES}/{d.physfn}/sriov_drivers_autoprobe") == "0":
                pf_hint = "the PF's sriov_drivers_autoprobe is 0: name the driver (e.g. `vf bind DEV igbvf`)"
            raise UnavailableError(f"{_name(d)}: no driver bound after drivers_probe", hint=pf_hint or "check dmesg")
    except SriovctlError:
        if not host.dry_run and original and host.link_name(f"{dev}/driver") is None:
            try:
                host.write(f"{dev}/driver_override", original)
                host.write("sys/bus/pci/drivers_probe", str(d.address))
                host.write(f"{dev}/driver_override", "\n")
                out.append(f"{_name(d)}: restored {original}")
            except OSError:
                pass
        raise
    out.append(f"{_name(d)}: bound to {now}")
    if now == "vfio-pci" and d.iommu_group is not None:
        dev_node = f"dev/vfio/{d.iommu_group}"
        out.append(f"{_name(d)}: VFIO group /{dev_node}" + ("" if host.exists(dev_node) else " (not present yet)"))
    return out


def _wait_bound(host: Host, d: PciDevice, driver: str | None, wait: float) -> str | None:
    deadline = host.monotonic() + wait
    while True:
        now = host.link_name(f"{DEVICES}/{d.address}/driver")
        ready = now is not None and (driver is None or now == driver)
        if ready and (now not in NET_DRIVERS or host.listdir(f"{DEVICES}/{d.address}/net")):
            return now
        if host.monotonic() >= deadline:
            return now
        host.sleep(0.02)


def unbind(host: Host, inv: Inventory, d: PciDevice, *, force: bool = False) -> list[str]:
    out: list[str] = []
    if d.driver is None:
        out.append(f"{_name(d)}: not bound, nothing to do")
        return out
    guard_take(host, d, inv.vfs_of(d), force, out)
    _write(host, f"sys/bus/pci/drivers/{d.driver}/unbind", str(d.address), f"{_name(d)}: unbind {d.driver}")
    out.append(f"{_name(d)}: would unbind {d.driver}" if host.dry_run else f"{_name(d)}: unbound from {d.driver}")
    return out


__all__ = ["DataError", "SetResult", "VfSettings", "bind", "disable", "enable", "enable_by_module_param",
           "set_attrs", "unbind"]
