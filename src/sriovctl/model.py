"""The domain: frozen dataclasses describing what is on a host. Built by :mod:`sriovctl.inventory`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sriovctl.pci.address import PciAddress
from sriovctl.pci.config import ACS_BITS, ACS_SHORT, AcsFlags, ConfigSpace, SriovCap

# The PCI value types are part of the model (front ends render them).
__all__ = ["ACS_BITS", "ACS_SHORT", "AcsFlags", "Assignability", "ConfigSpace", "Inventory", "IommuGroup", "NetDev",
           "PciAddress", "PciDevice", "SriovCap", "SriovInfo", "SriovState", "Use", "UseKind", "VfNetlink"]


@dataclass(frozen=True, slots=True)
class VfNetlink:
    """One VF as its PF reports it over netlink. Absent facts are None."""

    vf: int
    mac: str | None = None
    vlan: int | None = None
    qos: int | None = None
    vlan_proto: str | None = None  # "802.1Q" or "802.1ad"
    spoofchk: bool | None = None
    trust: bool | None = None
    link_state: str | None = None
    min_tx_rate: int | None = None
    max_tx_rate: int | None = None
    rss_query_en: bool | None = None
    stats: dict[str, int] | None = None


class UseKind(StrEnum):
    """Who holds a device (the interlocks' typed answer; ``Use.id`` names the holder of that kind)."""

    PROCESS = "process"  # id: pid — holds /dev/vfio/N open (a DPDK app, a QEMU outside libvirt)
    QEMU = "qemu"  # id: pid — a QEMU process, named by guest and QMP socket in the text
    LIBVIRT = "libvirt"  # id: domain name
    DEFAULT_ROUTE = "default-route"  # id: netdev carrying the default route
    ADDRESSES = "addresses"  # id: netdev with addresses
    NAMESPACE = "namespace"  # id: device address — bound to a network driver, netdev not in our namespace
    POOL = "pool"  # id: the owner's name — allocated from a pool (sriovctl pool allocate), not yet released
    NOT_VISIBLE = "not-visible"  # id: pid whose open files we may not read (fail closed)
    UNKNOWN = "unknown"  # id: a source of users that could not be read (fail closed)

    @property
    def cuts_host_off(self) -> bool:
        """Taking the device would cut the host's own networking."""
        return self in (UseKind.DEFAULT_ROUTE, UseKind.ADDRESSES)


@dataclass(frozen=True, slots=True)
class Use:
    """One holder of a device: kind, the holder's id, and a sentence for people."""

    kind: UseKind
    id: str
    text: str

    def __str__(self) -> str:
        return self.text


class SriovState(StrEnum):
    ENABLED = "enabled"  # VFs exist
    DISABLED = "disabled"  # sriov_numvfs is 0
    NO_DRIVER_SUPPORT = "no-driver-support"  # SR-IOV capability in config space, no sriov_* in sysfs
    UNKNOWN = "unknown"  # sysfs says SR-IOV, config space not readable (not root)


@dataclass(frozen=True, slots=True)
class NetDev:
    name: str
    mac: str | None
    operstate: str | None
    mtu: int | None
    ifindex: int | None


@dataclass(frozen=True, slots=True)
class Representor:
    """A VF's representor netdev on the PF's switch (switchdev mode): phys_port_name ``pfNvfM``
    (devlink's ``pcivf`` port flavour, net/core/devlink.c __devlink_port_phys_port_name_get)."""

    name: str
    pf_number: int
    vf: int
    switch_id: str | None
    ifindex: int | None


@dataclass(frozen=True, slots=True)
class NetPf:
    """An SR-IOV PF whose device is not a PCI function (netdevsim): named by its netdev; its VFs are netlink
    entries only (no config space, no IOMMU group, nothing to bind)."""

    netdev: NetDev
    bus: str  # the device's bus: "netdevsim"
    device: str  # the device's name on it: "netdevsim10" (devlink handle bus/device)
    driver: str | None
    numvfs: int | None  # the device's sriov_numvfs
    port_name: str | None  # phys_port_name: "p1"
    switch_id: str | None  # phys_switch_id (present with a switch: also in legacy mode)
    num_vf: int | None  # IFLA_NUM_VF: the VFs the kernel reports through the netdev
    vfs: tuple[VfNetlink, ...]  # the netlink view, VF index order
    representors: tuple[Representor, ...] = ()

    @property
    def name(self) -> str:
        return self.netdev.name

    @property
    def devlink(self) -> str:
        return f"{self.bus}/{self.device}"

    @property
    def lock(self) -> str:
        """The key of its lock: its device's (every port of a netdevsim device shows the same VFs)."""
        return f"{self.bus}-{self.device}"

    def by_vf(self) -> dict[int, Representor]:
        """Its representors by VF index (each PF lists only its own): built once by a caller walking its VFs."""
        return {r.vf: r for r in self.representors}


@dataclass(frozen=True, slots=True)
class SriovInfo:
    """What sysfs says about a PF's SR-IOV (None where the file is absent)."""

    totalvfs: int | None
    numvfs: int | None
    offset: int | None
    stride: int | None
    vf_device: int | None
    drivers_autoprobe: bool | None
    state: SriovState
    capability: SriovCap | None


@dataclass(frozen=True, slots=True)
class Assignability:
    assignable: bool
    reason: str  # why not, or what makes it safe


@dataclass(frozen=True, slots=True)
class PciDevice:
    address: PciAddress
    vendor_id: int
    device_id: int
    subsystem_vendor_id: int | None
    subsystem_id: int | None
    class_code: int
    revision: int
    vendor_name: str
    device_name: str
    class_name: str
    driver: str | None
    module: str | None
    driver_override: str | None
    numa_node: int | None
    iommu_group: int | None
    parent: PciAddress | None  # the upstream bridge; None on a root bus
    netdevs: tuple[NetDev, ...]
    config: ConfigSpace | None  # decoded for PFs and bridges; None for VFs (not needed) or unreadable
    is_bridge: bool
    sriov: SriovInfo | None = None  # set on PFs
    physfn: PciAddress | None = None  # set on VFs
    vf_index: int | None = None  # set on VFs: N of the PF's virtfnN
    vfs: tuple[PciAddress, ...] = ()  # set on PFs, in virtfn order
    assignability: Assignability | None = None
    netlink: VfNetlink | None = None  # set on VFs when the PF's netlink view could be read
    representors: tuple[Representor, ...] = ()  # set on PFs in switchdev mode: their VFs' representor netdevs
    representor: Representor | None = None  # set on a VF whose PF is in switchdev mode

    @property
    def is_pf(self) -> bool:
        return self.sriov is not None

    @property
    def is_vf(self) -> bool:
        return self.physfn is not None


def device_name(d: PciDevice) -> str:
    """``0000:0b:00.0 (enp11s0f0)``: how messages name a device."""
    return f"{d.address} ({d.netdevs[0].name})" if d.netdevs else str(d.address)


def pf_key(pf: PciDevice | NetPf) -> str:
    """A PF's lock key (its address; a PF not on PCI: its device's), and the target of its count changes."""
    return pf.lock if isinstance(pf, NetPf) else str(pf.address)


def pf_label(pf: PciDevice | NetPf) -> str:
    """How messages name a PF: a PCI one as a device, a PF not on PCI by its netdev."""
    return pf.name if isinstance(pf, NetPf) else device_name(pf)


def pf_numvfs(pf: PciDevice | NetPf) -> int:
    """The VFs a PF has now (its sriov_numvfs; 0 when unknown)."""
    return (pf.numvfs if isinstance(pf, NetPf) else (pf.sriov.numvfs if pf.sriov else 0)) or 0


@dataclass(frozen=True, slots=True)
class IommuGroup:
    number: int
    members: tuple[PciAddress, ...]


@dataclass(frozen=True, slots=True)
class Inventory:
    host: str
    devices: dict[PciAddress, PciDevice]
    groups: dict[int, IommuGroup]
    iommu_groups_present: bool
    config_readable: bool  # False when only 64-byte headers could be read (not root)
    notes: tuple[str, ...] = field(default=())
    net_pfs: dict[str, NetPf] = field(default_factory=dict)  # PFs not on PCI, by netdev name

    @property
    def pfs(self) -> list[PciDevice]:
        return [d for d in self.devices.values() if d.is_pf]

    @property
    def vfs(self) -> list[PciDevice]:
        return [d for d in self.devices.values() if d.is_vf]

    def vfs_of(self, pf: PciDevice) -> list[PciDevice]:
        return [self.devices[a] for a in pf.vfs if a in self.devices]
