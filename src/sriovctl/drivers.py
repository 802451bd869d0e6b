"""What sriovctl knows about a PCI driver, in one table: whether it creates a netdev, whether it leaves a
device safe to share an IOMMU group with a VM, its module parameter for VFs at load, which VF attributes its
ndo_set_vf_* callbacks refuse, whether it reports VF statistics (ndo_get_vf_stats), its eswitch rule, its port
profiles, and the hint for a refusal the lab has seen. The real kernel answers for itself; the simulated host
(host/sim/) and the hints of every front end read this table. A driver not in it is unknown: nothing is
assumed about it (the simulated kernel then accepts every VF attribute)."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class VfSupport:
    """What a PF driver's VF callbacks accept. ``refuses``: attribute key → errno the driver answers."""

    refuses: dict[str, int] = field(default_factory=dict)
    vlan_8021ad: bool = True
    min_tx_rate: bool = True
    reports_rss: bool = True  # IFLA_VF_RSS_QUERY_EN in RTM_GETLINK (ndo_get_vf_config fills it)
    rate_needs_link: bool = False  # igb: EINVAL while the PF has no link (seen in the lab)


ACCEPTS_ALL = VfSupport()


@dataclass(frozen=True, slots=True)
class Driver:
    name: str
    net: bool = False  # binding it creates a netdev for the function
    vm_safe: bool = False  # a device it drives may share an IOMMU group with one given to a VM
    vf_count_param: str | None = None  # the module parameter that creates VFs at load (legacy way)
    vf: VfSupport | None = None  # its VF callbacks, when known (None: not known here)
    # implements ndo_get_vf_stats (None: not known here). Without it rtnl_fill_vfinfo() still sends IFLA_VF_STATS,
    # all zeros: the counters of a driver known not to count are dropped, not shown as zeros
    vf_stats: bool | None = None
    eswitch_rule: str | None = None  # what it needs before a devlink eswitch mode change (the refusal's hint)
    port_profiles: bool = False  # implements ndo_set_vf_port (802.1Qbh port profiles)
    refusal_hint: str | None = None  # why it refuses a VF attribute "not now" (a partial failure's hint)
    count_hint: str | None = None  # why it refuses a VF count (when it is not the PCI core's MMIO or bus numbers)


_DRIVERS = (
    # igb (82576): no ndo_set_vf_link_state nor rss query; 802.1Q only; no minimum rate; rates only with link
    # (all seen in the lab); no ndo_get_vf_stats; max_vfs at load (igb_probe_vfs)
    Driver("igb", net=True, vf_count_param="max_vfs", vf_stats=False,
           vf=VfSupport({"link_state": errno.EOPNOTSUPP, "rss_query_en": errno.EOPNOTSUPP}, vlan_8021ad=False,
                        min_tx_rate=False, reports_rss=False, rate_needs_link=True),
           refusal_hint="igb sets rates only while the PF has link"),
    Driver("ixgbe", net=True, vf_count_param="max_vfs"),
    Driver("ice", net=True, vf=ACCEPTS_ALL, vf_stats=True,
           eswitch_rule="ice changes mode only while the PF has no VFs (disable them, change the mode, enable "
                        "them again)"),
    Driver("i40e", net=True, vf_stats=True),
    Driver("mlx5_core", net=True, vf_stats=True,
           eswitch_rule="mlx5 changes to switchdev with its VFs created and their drivers unbound (unbind them, "
                        "change the mode, bind them again)"),
    # nsim_drv_configure_vfs(): ENOMEM past max_vfs (seen in the lab: `vf enable eni10np1 4096`)
    Driver("netdevsim", vf_stats=False,
           count_hint="netdevsim creates at most max_vfs VFs (debugfs netdevsim/netdevsimN/max_vfs)",
           eswitch_rule="netdevsim changes mode at any VF count (disabling its VFs returns it to legacy)",
           refusal_hint="netdevsim sets VF rates only in legacy mode; in switchdev they are devlink rates"),
    Driver("enic", net=True, port_profiles=True),
    *(Driver(n, net=True) for n in ("igbvf", "iavf", "ixgbevf", "i40evf", "e1000e", "bnxt_en", "qede",
                                    "virtio_net")),
    Driver("vfio-pci", vm_safe=True),
    Driver("pci-stub", vm_safe=True),
)

DRIVERS: dict[str, Driver] = {d.name: d for d in _DRIVERS}


def driver(name: str | None) -> Driver:
    """The table's row for ``name``; an unknown (or no) driver gets a row that assumes nothing."""
    return DRIVERS.get(name or "") or Driver(name or "")


def is_net(name: str | None) -> bool:
    return driver(name).net


def is_vm_safe(name: str | None) -> bool:
    return driver(name).vm_safe


def vf_count_param(name: str | None) -> str | None:
    return driver(name).vf_count_param

