"""The domain: frozen dataclasses describing what is on a host. Built by :mod:`sriovctl.inventory`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sriovctl.host.netlink import VfNetlink
from sriovctl.pci.address import PciAddress
from sriovctl.pci.config import ConfigSpace, SriovCap

# Drivers that leave a device safe to share a group with one given to a VM.
VM_SAFE_DRIVERS = frozenset({"vfio-pci", "pci-stub"})


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

    @property
    def is_pf(self) -> bool:
        return self.sriov is not None

    @property
    def is_vf(self) -> bool:
        return self.physfn is not None


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

    @property
    def pfs(self) -> list[PciDevice]:
        return [d for d in self.devices.values() if d.is_pf]

    @property
    def vfs(self) -> list[PciDevice]:
        return [d for d in self.devices.values() if d.is_vf]

    def vfs_of(self, pf: PciDevice) -> list[PciDevice]:
        return [self.devices[a] for a in pf.vfs if a in self.devices]
