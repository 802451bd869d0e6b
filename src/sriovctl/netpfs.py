"""What the PCI pass of the inventory cannot see: PFs whose device is not a PCI function (netdevsim: SR-IOV
through netlink and devlink only), and VF representors (switchdev mode) among a PF's netdevs.

A representor is a netdev whose phys_port_name is ``pfNvfM`` (``cCpfNvfM`` on an external controller):
net/core/devlink.c __devlink_port_phys_port_name_get names DEVLINK_PORT_FLAVOUR_PCI_VF ports so; mlx5, ice,
nfp and netdevsim all use it. It belongs to the PF with the same phys_switch_id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from sriovctl import drivers
from sriovctl.errors import SriovctlError
from sriovctl.host import sysfs
from sriovctl.host.base import Host
from sriovctl.model import NetDev, NetPf, Representor, VfNetlink
from sriovctl.untrusted import is_plain_name, link_name

_REPRESENTOR = re.compile(r"(?:c[0-9]{1,3})?pf([0-9]{1,3})vf([0-9]{1,5})", re.ASCII)
_SWITCH_ID = re.compile(r"[0-9a-f]{2,64}", re.ASCII)


def port_names(host: Host, netdir: str, names: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """(phys_port_name, phys_switch_id) of each netdev in a device's ``net/`` directory (None: the driver has
    none, or the value is not one a kernel writes)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for name in names:
        port = host.read_text(f"{netdir}/{name}/{sysfs.PHYS_PORT_NAME}")
        switch = host.read_text(f"{netdir}/{name}/{sysfs.PHYS_SWITCH_ID}")
        out[name] = (port if is_plain_name(port) else None,
                     switch if switch is not None and _SWITCH_ID.fullmatch(switch) else None)
    return out


def representor(name: str, port: str | None, switch: str | None, ifindex: int | None) -> Representor | None:
    m = _REPRESENTOR.fullmatch(port or "")
    if m is None:
        return None
    return Representor(name, int(m.group(1)), int(m.group(2)), switch, ifindex)


def split_representors(host: Host, netdir: str, netdevs: tuple[NetDev, ...],
                       ) -> tuple[tuple[NetDev, ...], tuple[Representor, ...]]:
    """A device's netdevs → (its own, its VFs' representors). Only devices with more than one netdev can have
    representors: the others cost no read."""
    if len(netdevs) < 2:
        return netdevs, ()
    return _split(netdevs, port_names(host, netdir, [n.name for n in netdevs]))


def _split(netdevs: tuple[NetDev, ...], ports: dict[str, tuple[str | None, str | None]],
           ) -> tuple[tuple[NetDev, ...], tuple[Representor, ...]]:
    own, reps = [], []
    for n in netdevs:
        r = representor(n.name, *ports[n.name], n.ifindex)
        if r is None:
            own.append(n)
        else:
            reps.append(r)
    return tuple(own), tuple(sorted(reps, key=lambda r: (r.pf_number, r.vf)))


def read_net_pfs(host: Host, known: set[str], read_netdev: Callable[[str, str], NetDev], netlink: bool, stats: bool,
                 ) -> dict[str, NetPf]:
    """PFs on a bus other than PCI: a netdev (not one of ``known``, the PCI devices' netdevs) whose device is
    not virtual and has sriov_numvfs. One readlink per such netdev; one RTM_GETLINK per PF with VFs.
    ``read_netdev(net dir, name)`` is the inventory's own reader, so both passes read netdevs alike."""
    by_device: dict[str, list[str]] = {}
    for name in host.listdir(sysfs.CLASS_NET):
        if name in known or not is_plain_name(name):
            continue
        dev = sysfs.bus_device_of_netdev(name, host.readlink(sysfs.netdev(name)))
        if dev is None or not all(is_plain_name(p) for p in dev.split("/")):
            continue
        by_device.setdefault(dev, []).append(name)
    found: dict[str, NetPf] = {}
    for dev, names in sorted(by_device.items()):
        if not host.exists(f"{dev}/{sysfs.SRIOV_NUMVFS}"):
            continue
        bus = link_name(host.readlink(f"{dev}/{sysfs.SUBSYSTEM}"))
        if bus is None:
            continue
        driver = link_name(host.readlink(f"{dev}/{sysfs.DRIVER}"))
        numvfs = host.read_int(f"{dev}/{sysfs.SRIOV_NUMVFS}")
        netdir = f"{dev}/{sysfs.NET}"
        ports = port_names(host, netdir, sorted(names))
        own, reps = _split(tuple(read_netdev(netdir, n) for n in sorted(names)), ports)
        for nd in own:
            port, switch = ports[nd.name]
            vfs, num_vf = vf_view(host, nd.name, stats, driver) if netlink and numvfs else ((), None)
            mine = tuple(r for r in reps if r.switch_id == switch)
            found[nd.name] = NetPf(nd, bus, dev.rsplit("/", 1)[-1], driver, numvfs, port, switch, num_vf, vfs, mine)
    return found


def vf_view(host: Host, ifname: str, stats: bool, driver: str | None = None,
            ) -> tuple[tuple[VfNetlink, ...], int | None]:
    """A PF's VF list over netlink and its IFLA_NUM_VF; nothing when it cannot be read (the inventory then
    shows no netlink values, and nothing counts as verified against it). The counters of a PF ``driver`` known
    not to count (no ndo_get_vf_stats: rtnl_fill_vfinfo() sends zeros) are dropped: zeros are not a count."""
    from sriovctl.host.netlink import NetlinkError

    nl = host.netlink()
    try:
        vfs = tuple(nl.get_vfs(ifname, stats=stats))
    except (NetlinkError, OSError, ImportError, SriovctlError):
        return (), None
    if stats and drivers.driver(driver).vf_stats is False:
        vfs = tuple(replace(v, stats=None) for v in vfs)
    return vfs, getattr(nl, "last_num_vf", None)
