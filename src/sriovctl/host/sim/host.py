"""Simulated hosts: a tree on disk plus the kernel's reactions to writes.

The semantics follow what the lab's real kernel does (tests/lab/test_fidelity.py holds them to it):
``sriov_numvfs`` creates or removes ``virtfnN`` and the VF devices, refuses a non-zero → non-zero change
with EBUSY and a count above ``sriov_totalvfs`` with ERANGE; ``sriov_drivers_autoprobe`` 0 leaves new VFs
unbound; ``driver_override``, ``unbind``, ``bind`` and ``drivers_probe`` behave as the PCI core does.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
from dataclasses import dataclass, field

from sriovctl import attrs, drivers
from sriovctl.attrs import ValueKind
from sriovctl.host.base import Host
from sriovctl.host.netlink import (
    Netlink,
    NetlinkError,
    RequestCounter,
    VfChange,
    VfNetlink,
    kernel_order,
)
from sriovctl.host.sim.kernel import (
    can_probe,
    disable_if_enabled,
    disable_vfs,
    enable_vfs,
    journaled,
    match_driver,
    os_error,
)
from sriovctl.host.sim.tree import PCI_DEVICES, SimTree
from sriovctl.host.vfinfo import STATS_NAMES
from sriovctl.pci.address import PciAddress

_DEV_ATTR = re.compile(r"^sys/bus/pci/devices/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])/([a-z_]+)$")
_DRV_ATTR = re.compile(r"^sys/bus/pci/drivers/([A-Za-z0-9_.-]+)/(bind|unbind|new_id|remove_id)$")


@dataclass
class SimHost(Host):
    """A simulated host rooted at its tree; writes get the kernel's reactions."""

    tree: SimTree = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.tree is None:
            self.tree = SimTree(self.root)

    def lock_rel(self) -> str:
        """sriovctl's own state for a simulated host lives in its directory (``state/``), beside the tree."""
        return "state"

    def ledger_rel(self) -> str:
        return "state"

    def driver_available(self, name: str) -> bool | None:
        """The simulated kernel's modprobe knows exactly the drivers it registered (sim/host.py _sim_run)."""
        return name in self.tree.state.get("drivers", {}) or name.replace("_", "-") in self.tree.state.get("drivers", {})

    def _make_netlink(self) -> Netlink:
        return SimNetlink(self.tree)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        with self.tree.locked():
            return _sim_run(self.tree, argv)

    def _do_write(self, rel: str, value: str) -> None:
        with self.tree.locked():
            self._kernel_write(rel, value)

    def _kernel_write(self, rel: str, value: str) -> None:
        t = self.tree
        v = value.strip()
        m = _DEV_ATTR.match(rel)
        if m:
            addr, attr = PciAddress.parse(m.group(1)), m.group(2)
            if not t.has_device(addr):
                raise os_error(errno.ENOENT, rel)
            if attr == "sriov_numvfs":
                self._numvfs(rel, addr, v)
            elif attr == "sriov_drivers_autoprobe":
                if v not in ("0", "1"):
                    raise os_error(errno.EINVAL, rel)
                t.put(f"{t.devdir(addr)}/{attr}", v + "\n")
            elif attr == "driver_override":
                t.put(f"{t.devdir(addr)}/{attr}", (v or "(null)") + "\n")
            elif attr == "remove":
                t.remove_device(addr)
            else:
                raise os_error(errno.EACCES, rel)
            t.save()
            return
        m = _DRV_ATTR.match(rel)
        if m:
            drv, attr = m.group(1), m.group(2)
            addr_p = PciAddress.try_parse(v)
            if attr in ("new_id", "remove_id"):
                return  # IDs are accepted and ignored: drivers here match by override or table
            if addr_p is None or not t.has_device(addr_p):
                raise os_error(errno.ENODEV, rel)
            current = t.driver_of(addr_p)
            if attr == "unbind":
                if current != drv:
                    raise os_error(errno.ENODEV, rel)
                self._unbind(addr_p, drv)
            else:  # bind_store(): no match -> ENODEV before the busy check; probe refused -> ENODEV
                if match_driver(t, addr_p) != drv:
                    raise os_error(errno.ENODEV, rel)
                if current is not None:
                    raise os_error(errno.EBUSY, rel)
                if not can_probe(t, addr_p):
                    raise os_error(errno.ENODEV, rel)
                t.bind(addr_p, drv)
            t.save()
            return
        if rel == "sys/bus/pci/drivers_probe":
            a = PciAddress.try_parse(v)
            if a is None or not t.has_device(a):
                raise os_error(errno.ENODEV, rel)
            if t.driver_of(a) is None and can_probe(t, a):
                drv = match_driver(t, a)
                if drv:
                    t.bind(a, drv)
            t.save()
            return
        super()._do_write(rel, value)

    def _unbind(self, addr: PciAddress, drv: str) -> None:
        disable_if_enabled(self.tree, addr)
        self.tree.unbind(addr, drv)

    def _numvfs(self, rel: str, pf: PciAddress, v: str) -> None:
        t = self.tree
        try:
            n = int(v, 0)
        except ValueError:
            raise os_error(errno.EINVAL, rel) from None
        d = t.devdir(pf)
        total = int(t.get(f"{d}/sriov_totalvfs"))
        cur = int(t.get(f"{d}/sriov_numvfs"))
        if n < 0:
            raise os_error(errno.EINVAL, rel)
        if n > total:
            raise os_error(errno.ERANGE, rel)
        if n == cur:
            return
        if t.driver_of(pf) is None:
            raise os_error(errno.ENOENT, rel)  # "no driver bound to device"
        if cur and n:
            raise os_error(errno.EBUSY, rel)
        if n:
            with open(t.p(f"{d}/resource"), encoding="ascii") as f:
                lines = f.read().splitlines()
            if len(lines) > 7 and int(lines[7].split()[0], 16) == 0:
                raise os_error(errno.ENOMEM, rel)  # no MMIO for the VF BARs: sriov_enable() fails
        with journaled(t, {pf: n}):
            if n == 0:
                disable_vfs(t, pf)
            else:
                enable_vfs(t, pf, n)


class SimNetlink(RequestCounter):
    """The simulated host's rtnetlink: the VF view kept in sim.json, with the PF driver's rules
    (drivers.py) and the kernel's behaviour of stopping at the first refused attribute."""

    def __init__(self, tree: SimTree) -> None:
        super().__init__()
        self.tree = tree

    def _pf(self, ifname: str) -> tuple[PciAddress, str | None]:
        link = self.tree.p(f"sys/class/net/{ifname}")
        if not os.path.lexists(link):
            raise NetlinkError(errno.ENODEV, f"no interface {ifname}")
        parts = os.readlink(link).split("/")
        addr = PciAddress.try_parse(parts[-3]) if len(parts) >= 3 else None
        if addr is None:
            raise NetlinkError(errno.EOPNOTSUPP, f"{ifname} is not a PCI network device")
        return addr, self.tree.driver_of(addr)

    def get_vfs(self, ifname: str, stats: bool = False) -> list[VfNetlink]:
        self.count(f"RTM_GETLINK {ifname}")
        with self.tree.locked():  # the state as of now, not as this process first read it
            return self._get_vfs(ifname, stats)

    def _get_vfs(self, ifname: str, stats: bool = False) -> list[VfNetlink]:
        addr, driver = self._pf(ifname)
        row = drivers.driver(driver)
        support = row.vf
        out = []
        for i, d in enumerate(self.tree.state.get("vfinfo", {}).get(str(addr), [])):
            fields = {k: v for k, v in d.items() if k in VfNetlink.__slots__ and k != "stats"}
            if support is not None and not support.reports_rss:
                fields["rss_query_en"] = None
            if stats:  # rtnl_fill_vfinfo(): IFLA_VF_STATS always, zeros from a driver without ndo_get_vf_stats
                counted = d.get("stats") if row.vf_stats else None
                fields["stats"] = {k: int((counted or {}).get(k, 0)) for k in STATS_NAMES.values()}
            out.append(VfNetlink(vf=i, **fields))
        return out

    def _operstate(self, ifname: str) -> str:
        p = self.tree.p(f"sys/class/net/{ifname}/operstate")
        with open(p, encoding="ascii") as f:
            return f.read().strip()

    def addresses(self) -> dict[str, list[str]]:
        self.count("RTM_GETADDR dump")
        return {k: list(v) for k, v in self.tree.state.get("addresses", {}).items()}

    def set_vfs(self, ifname: str, changes: list[VfChange]) -> None:
        self.count(f"RTM_SETLINK {ifname} {len(changes)} attributes")
        with self.tree.locked():  # the rtnl lock: a read-modify-write of the state that loses no other update
            self._set_vfs(ifname, changes)

    def _set_vfs(self, ifname: str, changes: list[VfChange]) -> None:
        addr, driver = self._pf(ifname)
        support = drivers.driver(driver).vf or drivers.ACCEPTS_ALL
        vfs = self.tree.state.get("vfinfo", {}).get(str(addr), [])
        try:
            for c in kernel_order(changes):
                if c.vf >= len(vfs):
                    raise NetlinkError(errno.EINVAL, f"VF {c.vf} does not exist")
                if c.attr in support.refuses:
                    raise NetlinkError(support.refuses[c.attr], f"{driver} does not support {c.attr}")
                members = c.members()
                check = _KERNEL_CHECKS.get(c.attr)
                if check is not None:
                    check(self, ifname, support, members)
                vfs[c.vf].update({k: bool(v) if attrs.BY_KEY[k].kind is ValueKind.BOOL else v
                                  for k, v in members.items()})
        finally:
            self.tree.save()


def _check_mac(host: SimNetlink, ifname: str, support: drivers.VfSupport, members: dict[str, object]) -> None:
    if int(str(members["mac"]).split(":")[0], 16) & 1:
        raise NetlinkError(errno.EINVAL, "not a unicast MAC")


def _check_vlan(host: SimNetlink, ifname: str, support: drivers.VfSupport, members: dict[str, object]) -> None:
    if int(str(members["vlan"])) > 4095 or int(str(members["qos"])) > 7:
        raise NetlinkError(errno.EINVAL, "VLAN or QoS out of range")
    if members["vlan_proto"] == "802.1ad" and not support.vlan_8021ad:
        raise NetlinkError(errno.EPROTONOSUPPORT, "802.1ad not supported")


def _check_rate(host: SimNetlink, ifname: str, support: drivers.VfSupport, members: dict[str, object]) -> None:
    if members["min_tx_rate"] and not support.min_tx_rate:
        raise NetlinkError(errno.EINVAL, "minimum TX rate not supported")
    if support.rate_needs_link and host._operstate(ifname) != "up":
        raise NetlinkError(errno.EINVAL, "no link on the PF")


# What the simulated kernel checks beyond storing a request's values (the drivers' ndo_set_vf_* refusals seen in
# the lab; which driver refuses what is drivers.VfSupport). A request row without an entry is stored as sent.
_KERNEL_CHECKS = {"mac": _check_mac, "vlan": _check_vlan, "rate": _check_rate}


def _sim_run(t: SimTree, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """modprobe as the simulated kernel sees it: loading binds the driver's devices (with igb's max_vfs
    creating VFs at probe), unloading unbinds them (and so removes their VFs)."""
    def done(rc: int = 0, err: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, rc, "", err)

    if not argv or os.path.basename(argv[0]) != "modprobe":
        return done(127, f"{argv[0] if argv else '?'}: not available on a simulated host")
    args = [a for a in argv[1:] if not a.startswith("-")]
    remove = "-r" in argv[1:]
    if not args:
        return done(1, "modprobe: missing module name")
    module = args[0].replace("_", "-") if args[0].replace("_", "-") in t.state.get("drivers", {}) else args[0]
    if module not in t.state.get("drivers", {}):
        return done(1, f"modprobe: FATAL: Module {args[0]} not found")
    params = dict(a.split("=", 1) for a in args[1:] if "=" in a)
    devices = sorted(PciAddress.parse(n) for n in os.listdir(t.p(PCI_DEVICES)))
    if remove:
        for a in devices:
            if t.has_device(a) and t.driver_of(a) == module:
                disable_if_enabled(t, a)
                t.unbind(a, module)
        t.save()
        return done()
    for a in devices:
        if t.has_device(a) and t.driver_of(a) is None and can_probe(t, a) and match_driver(t, a) == module:
            t.bind(a, module)
            wanted = int(params.get("max_vfs", "0") or 0)
            if wanted and os.path.exists(t.p(f"{t.devdir(a)}/sriov_totalvfs")):
                n = min(wanted, int(t.get(f"{t.devdir(a)}/sriov_totalvfs")))
                with journaled(t, {a: n}):
                    enable_vfs(t, a, n)
    t.save()
    return done()
