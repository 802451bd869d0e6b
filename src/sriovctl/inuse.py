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
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from sriovctl.host.base import Host
from sriovctl.model import PciDevice
from sriovctl.pci.address import PciAddress
from sriovctl.untrusted import shown
from sriovctl.virt.xml import pci_source

# Drivers that create a netdev for the function they bind
NET_DRIVERS = frozenset({"igb", "igbvf", "ice", "iavf", "ixgbe", "ixgbevf", "i40e", "i40evf", "mlx5_core", "e1000e",
                         "bnxt_en", "qede", "enic", "virtio_net"})


@dataclass(frozen=True, slots=True)
class Use:
    who: str  # "process 1234 (qemu-system-x86)", "libvirt domain vm1", "netdev eth0 up with 10.0.0.2/24"

    def __str__(self) -> str:
        return self.who


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


def _qemu_identity(host: Host, pid: str) -> str | None:
    """'QEMU guest vm1 (pid 1234, QMP /tmp/vm1.sock)' for a QEMU process, None for anything else."""
    raw = host.read_bytes(f"proc/{pid}/cmdline", 1 << 16) or b""
    argv = raw.decode(errors="replace").split("\0")
    if not argv or not argv[0].rsplit("/", 1)[-1].startswith("qemu"):
        return None
    name = qmp = None
    for flag, value in itertools.pairwise(argv):
        if flag == "-name":
            first = value.split(",", 1)[0]  # "guest=vm1,debug-threads=on" or plain "vm1"
            name = first.removeprefix("guest=") if first.startswith("guest=") or "=" not in first else None
        elif flag == "-qmp" and value.startswith("unix:"):
            qmp = value[5:].split(",", 1)[0]
    detail = ", ".join([f"pid {pid}"] + ([f"QMP {qmp}"] if qmp else []))
    return f"QEMU {'guest ' + name if name else 'process'} ({detail})"


def vfio_holders(host: Host, group: int) -> list[Use]:
    """Processes holding /dev/vfio/GROUP open (a scan of /proc/*/fd, as fuser does)."""
    target = f"/dev/vfio/{group}"
    users = []
    from sriovctl.errors import HostPermissionError

    for pid in host.listdir("proc"):
        if not pid.isdigit():
            continue
        try:
            fds = host.listdir(f"proc/{pid}/fd", strict=True)
        except HostPermissionError:  # fail closed: we cannot tell what this process holds
            users.append(Use(f"process {pid}'s open files are not visible (not root): assuming it holds {target}"))
            break
        for fd in fds:
            if host.readlink(f"proc/{pid}/fd/{fd}") == target:
                who = _qemu_identity(host, pid)
                if who is None:
                    who = f"process {pid} ({host.read_text(f'proc/{pid}/comm') or '?'})"
                users.append(Use(f"{who} holds {target} open"))
                break
    return users


def _pci_sources(root: ET.Element) -> list[PciAddress]:
    return [a for a in map(pci_source, root.iter()) if a is not None]


LIVE_XML_LIMIT = 4 << 20  # a domain's live XML; libvirt's own are tens of KB


@dataclass(frozen=True, slots=True)
class Unknown:
    """A source of users that could not be read: every device may be in use (fail closed)."""

    source: str
    why: str

    def use(self) -> Use:
        return Use(f"maybe in use: {self.source} {self.why}, so its devices are unknown")


def libvirt_file_users(host: Host, unknown: list[Unknown] | None = None) -> dict[PciAddress, list[Use]]:
    """PCI addresses referenced by running libvirt domains, from their live XML under /run/libvirt/qemu.
    A file that cannot be read or parsed (too large, cut short, an entity bomb) is added to ``unknown``."""
    out: dict[PciAddress, list[Use]] = {}
    for name in host.listdir("run/libvirt/qemu"):
        if not name.endswith(".xml"):
            continue
        raw = host.read_bytes(f"run/libvirt/qemu/{name}", LIVE_XML_LIMIT + 1)
        where = f"libvirt live XML /run/libvirt/qemu/{shown(name)[1:-1]}"
        if raw is None:
            if host.exists(f"run/libvirt/qemu/{name}") and unknown is not None:
                unknown.append(Unknown(where, "cannot be read"))
            continue
        if len(raw) > LIVE_XML_LIMIT:
            if unknown is not None:
                unknown.append(Unknown(where, f"is larger than {LIVE_XML_LIMIT} bytes"))
            continue
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as e:
            if unknown is not None:
                unknown.append(Unknown(where, f"does not parse ({shown(str(e), 60)[1:-1]})"))
            continue
        dom = root.find(".//domain")
        dom = dom if dom is not None else root
        dname = dom.findtext("name") or name.removesuffix(".xml")
        for addr in _pci_sources(dom):
            out.setdefault(addr, []).append(Use(f"libvirt domain {dname}"))
    return out


def libvirt_api_users(uri: str, unknown: list[Unknown] | None = None) -> dict[PciAddress, list[Use]] | None:
    """PCI addresses referenced by active domains, asked through a read-only libvirt connection; None when
    libvirt-python is missing or nobody answers at ``uri`` (the caller falls back to the files)."""
    try:
        import libvirt

        from sriovctl.virt.libvirt_api import state_name
    except ImportError:
        return None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # libvirt prints its errors to stderr otherwise
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError:
        return None
    out: dict[PciAddress, list[Use]] = {}
    try:
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            try:
                state = state_name(dom)
                root = ET.fromstring(dom.XMLDesc(0))
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # it stopped while we looked
                if unknown is not None:
                    unknown.append(Unknown(f"libvirt domain {shown(dom.name())}", f"cannot be read ({e})"))
                continue
            except ET.ParseError as e:
                if unknown is not None:
                    unknown.append(Unknown(f"libvirt domain {shown(dom.name())}'s XML", f"does not parse ({e})"))
                continue
            for addr in _pci_sources(root):
                out.setdefault(addr, []).append(Use(f"libvirt domain {dom.name()} ({state})"))
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()
    return out


def libvirt_users(host: Host, unknown: list[Unknown] | None = None) -> dict[PciAddress, list[Use]]:
    """Through libvirt's API on a live host (or wherever $SRIOVCTL_LIBVIRT_URI points), else from files."""
    uri = os.environ.get("SRIOVCTL_LIBVIRT_URI")
    if uri is None and host.root == "/" and any(
            os.path.exists(f"/run/libvirt/{s}") for s in ("libvirt-sock-ro", "virtqemud-sock-ro")):
        uri = "qemu:///system"
    api_unknown: list[Unknown] = []
    found = libvirt_api_users(uri, api_unknown) if uri else None
    if found is not None:
        if unknown is not None:
            unknown.extend(api_unknown)
        return found
    return libvirt_file_users(host, unknown)


class UsageScan:
    """One scan of the host's users, asked about many devices."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.routes = default_route_netdevs(host)
        self.addrs = addresses(host)
        self.unknown: list[Unknown] = []  # sources that could not be read: every device is maybe in use
        self.libvirt = libvirt_users(host, self.unknown)
        self._vfio: dict[int, list[Use]] = {}

    def netdev_uses(self, d: PciDevice) -> list[Use]:
        uses = []
        for n in d.netdevs:
            if n.name in self.routes:
                uses.append(Use(f"netdev {n.name} carries the default route"))
            elif self.addrs.get(n.name) and n.operstate not in ("down", None):
                uses.append(Use(f"netdev {n.name} is up with {', '.join(self.addrs[n.name])}"))
            elif self.addrs.get(n.name):
                uses.append(Use(f"netdev {n.name} has {', '.join(self.addrs[n.name])}"))
        if d.driver in NET_DRIVERS and not d.netdevs:
            uses.append(Use(f"bound to {d.driver} but its netdev is not in this network namespace "
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
