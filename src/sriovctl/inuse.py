"""Who uses a device? For the safety interlocks: fail closed when unsure.

A VF (or any PCI function) is in use when
- its VFIO group file /dev/vfio/GROUP is held open by a process (QEMU, a DPDK app); a QEMU is named by its
  guest name and QMP socket (from its command line), so a VF hot-plugged through QMP is recognised;
- a running libvirt domain references it: asked through libvirt's API (read-only connection) when
  libvirt-python is installed and libvirtd answers, else read from the live domain XML under
  /run/libvirt/qemu/ (no API needed);
- its netdev is up with addresses, or carries the default route;
- it is bound to a network driver but its netdev is not in our network namespace (moved into a container
  or a VM's namespace — or we cannot tell, which counts as in use too).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from sriovctl.drivers import is_net
from sriovctl.host.base import Host
from sriovctl.model import PciDevice, Use, UseKind
from sriovctl.pci.address import PciAddress


@dataclass(frozen=True, slots=True)
class Unknown:
    """A source of users that could not be read: every device may be in use (fail closed)."""

    source: str
    why: str

    def use(self) -> Use:
        return Use(UseKind.UNKNOWN, self.source, f"maybe in use: {self.source} {self.why}, so its devices are unknown")


# Users that other layers know how to find (virt/users.py: running libvirt domains): PCI address → uses; a
# source it could not read goes into the list given (every device is then "maybe in use").
UserSource = Callable[[Host, list[Unknown]], dict[PciAddress, list[Use]]]


def default_route_netdevs(host: Host) -> set[str]:
    """Interfaces carrying an IPv4 or IPv6 default route (from /proc/net/route and /proc/net/ipv6_route)."""
    out: set[str] = set()
    v4 = host.read_bytes("proc/net/route", 1 << 20)
    for line in (v4 or b"").decode(errors="replace").splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and f[1] == "00000000" and f[7] == "00000000":
            out.add(f[0])
    v6 = host.read_bytes("proc/net/ipv6_route", 1 << 20)
    for line in (v6 or b"").decode(errors="replace").splitlines():
        f = line.split()
        if len(f) >= 10 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo":
            out.add(f[9])
    return out


def addresses(host: Host) -> dict[str, list[str]]:
    """IPv4 and IPv6 addresses per interface: netlink on a live host, the recorded view elsewhere."""
    from sriovctl.host.netlink import NetlinkError

    nl = host.netlink()
    getter = getattr(nl, "addresses", None)
    if getter is None:
        return {}
    try:
        result: dict[str, list[str]] = getter()
        return result
    except NetlinkError:
        return {}


def _argv(host: Host, pid: str) -> list[str]:
    raw = host.read_bytes(f"proc/{pid}/cmdline", 1 << 16) or b""
    return raw.decode(errors="replace").split("\0")


def qemu_guest_name(host: Host, pid: str) -> str | None:
    """The guest name a QEMU process was started with (``-name guest=vm1,…`` or ``-name vm1``), None for a
    process that is not a QEMU or has none."""
    argv = _argv(host, pid)
    return _guest_name(argv) if argv[0].rsplit("/", 1)[-1].startswith("qemu") else None


def _guest_name(argv: list[str]) -> str | None:
    name = None
    for flag, value in itertools.pairwise(argv):
        if flag == "-name":
            first = value.split(",", 1)[0]  # "guest=vm1,debug-threads=on" or plain "vm1"
            name = first.removeprefix("guest=") if first.startswith("guest=") or "=" not in first else None
    return name


def _qemu_identity(host: Host, pid: str) -> str | None:
    """'QEMU guest vm1 (pid 1234, QMP /tmp/vm1.sock)' for a QEMU process, None for anything else."""
    argv = _argv(host, pid)
    if not argv[0].rsplit("/", 1)[-1].startswith("qemu"):
        return None
    name, qmp = _guest_name(argv), None
    for flag, value in itertools.pairwise(argv):
        if flag == "-qmp" and value.startswith("unix:"):
            qmp = value[5:].split(",", 1)[0]
    detail = ", ".join([f"pid {pid}"] + ([f"QMP {qmp}"] if qmp else []))
    return f"QEMU {'guest ' + name if name else 'process'} ({detail})"


def vfio_holders(host: Host, group: int) -> list[Use]:
    """Processes holding /dev/vfio/GROUP open (a scan of /proc/*/fd, as fuser does)."""
    return vfio_holder_map(host, {group}).get(group, [])


def vfio_holder_map(host: Host, groups: set[int]) -> dict[int, list[Use]]:
    """The holders of each of these VFIO groups, from one scan of /proc/*/fd (the exporter asks about every
    vfio-pci VF at once: a scan per group was groups × processes × fds)."""
    targets = {f"/dev/vfio/{g}": g for g in groups}
    out: dict[int, list[Use]] = {}
    from sriovctl.errors import HostPermissionError

    for pid in host.listdir("proc") if targets else ():
        if not pid.isdigit():
            continue
        try:
            fds = host.listdir(f"proc/{pid}/fd", strict=True)
        except HostPermissionError:  # fail closed: we cannot tell what this process holds
            for target, g in targets.items():
                out.setdefault(g, []).append(Use(
                    UseKind.NOT_VISIBLE, pid,
                    f"process {pid}'s open files are not visible (not root): assuming it holds {target}"))
            break
        held: set[int] = set()
        for fd in fds:
            g_ = targets.get(host.readlink(f"proc/{pid}/fd/{fd}") or "")
            if g_ is None or g_ in held:
                continue
            held.add(g_)
            who = _qemu_identity(host, pid)
            kind = UseKind.QEMU if who is not None else UseKind.PROCESS
            if who is None:
                who = f"process {pid} ({host.read_text(f'proc/{pid}/comm') or '?'})"
            out.setdefault(g_, []).append(Use(kind, pid, f"{who} holds /dev/vfio/{g_} open"))
    return out


class UsageScan:
    """One scan of the host's users, asked about many devices."""

    def __init__(self, host: Host, sources: tuple[UserSource, ...] = ()) -> None:
        self.host = host
        self.routes = default_route_netdevs(host)
        self.addrs = addresses(host)
        self.unknown: list[Unknown] = []  # sources that could not be read: every device is maybe in use
        self.libvirt: dict[PciAddress, list[Use]] = {}
        for source in sources:
            for addr, uses in source(host, self.unknown).items():
                self.libvirt.setdefault(addr, []).extend(uses)
        self._vfio: dict[int, list[Use]] = {}

    def netdev_uses(self, d: PciDevice) -> list[Use]:
        uses = []
        for n in d.netdevs:
            if n.name in self.routes:
                uses.append(Use(UseKind.DEFAULT_ROUTE, n.name, f"netdev {n.name} carries the default route"))
            elif self.addrs.get(n.name) and n.operstate not in ("down", None):
                uses.append(Use(UseKind.ADDRESSES, n.name, f"netdev {n.name} is up with {', '.join(self.addrs[n.name])}"))
            elif self.addrs.get(n.name):
                uses.append(Use(UseKind.ADDRESSES, n.name, f"netdev {n.name} has {', '.join(self.addrs[n.name])}"))
        if is_net(d.driver) and not d.netdevs:
            uses.append(Use(UseKind.NAMESPACE, str(d.address),
                            f"bound to {d.driver} but its netdev is not in this network namespace "
                            "(moved into another one, or not created yet)"))
        return uses

    def uses(self, d: PciDevice) -> list[Use]:
        out = [u.use() for u in self.unknown] + list(self.libvirt.get(d.address, []))
        if d.iommu_group is not None and d.driver == "vfio-pci":
            if d.iommu_group not in self._vfio:
                self._vfio[d.iommu_group] = vfio_holders(self.host, d.iommu_group)
            out += self._vfio[d.iommu_group]
        out += self.netdev_uses(d)
        return out
