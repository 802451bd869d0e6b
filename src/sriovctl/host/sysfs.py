"""The kernel's PCI sysfs ABI, in one place: every path sriovctl reads or writes, and what it means.

Paths are relative to a Host's root (a snapshot or a simulated host is the same tree under another root).
The kernel side: drivers/pci/pci-sysfs.c (device attributes), drivers/pci/iov.c (sriov_*, virtfnN, physfn),
drivers/pci/pci-driver.c (bind, unbind, drivers_probe, driver_override), drivers/iommu/iommu.c (iommu_group),
Documentation/ABI/testing/sysfs-bus-pci. Only the simulator (host/sim/) spells these paths itself.
"""

from __future__ import annotations

import re

# ---- directories
PCI_DEVICES = "sys/bus/pci/devices"  # one symlink per function, named by its address
PCI_DRIVERS = "sys/bus/pci/drivers"  # one directory per registered PCI driver
DRIVERS_PROBE = "sys/bus/pci/drivers_probe"  # write an address: probe it (honours driver_override)
CLASS_NET = "sys/class/net"  # netdevs of our network namespace
CLASS_IOMMU = "sys/class/iommu"  # IOMMU units (dmar0, ivhd0): the kernel's IOMMU driver is active
IOMMU_GROUPS = "sys/kernel/iommu_groups"  # N/devices/ADDRESS: who must go to a VM together
ACPI_TABLES = "sys/firmware/acpi/tables"  # DMAR (VT-d), IVRS (AMD-Vi): the firmware describes an IOMMU
DEVICETREE = "sys/firmware/devicetree/base"  # iommu/smmu nodes on DT platforms
MODULES = "sys/module"  # loaded (or built-in) modules
DEVICES_ROOT = "sys/devices"  # the device hierarchy, as libvirt's node-device XML names it

# ---- per-device attributes (files in PCI_DEVICES/ADDRESS)
CONFIG = "config"  # the config space (256 bytes unprivileged, 4096 as root)
VENDOR, DEVICE, CLASS, REVISION = "vendor", "device", "class", "revision"
SUBSYSTEM_VENDOR, SUBSYSTEM_DEVICE = "subsystem_vendor", "subsystem_device"
NUMA_NODE = "numa_node"
# KEY=VALUE lines, made when read: dev_uevent() adds DRIVER=NAME while a driver is bound, pci_uevent() PCI_CLASS
# (%04X of the 24-bit class), PCI_ID and PCI_SUBSYS_ID (%04X:%04X), PCI_SLOT_NAME and MODALIAS — five attribute
# files and the driver link in one read
UEVENT = "uevent"
UEVENT_DRIVER, UEVENT_CLASS, UEVENT_ID, UEVENT_SUBSYS_ID = b"DRIVER", b"PCI_CLASS", b"PCI_ID", b"PCI_SUBSYS_ID"
DRIVER_OVERRIDE = "driver_override"  # only this driver may bind; "\n" clears it
SRIOV_TOTALVFS = "sriov_totalvfs"  # present only while a driver with SR-IOV support is bound
SRIOV_NUMVFS = "sriov_numvfs"  # write N (from 0) to create VFs, 0 to destroy them (EBUSY from N to M)
SRIOV_OFFSET, SRIOV_STRIDE = "sriov_offset", "sriov_stride"  # VF routing IDs: PF + offset + i * stride
SRIOV_VF_DEVICE = "sriov_vf_device"  # the VFs' device ID
SRIOV_DRIVERS_AUTOPROBE = "sriov_drivers_autoprobe"  # 0: new VFs stay unbound (pci_device_can_probe)
SRIOV_VF_TOTAL_MSIX = "sriov_vf_total_msix"
ARI_ENABLED = "ari_enabled"
# ---- per-device links
DRIVER = "driver"  # -> ../../bus/pci/drivers/NAME
PHYSFN = "physfn"  # a VF's PF
IOMMU_GROUP = "iommu_group"  # -> ../../kernel/iommu_groups/N
SUBSYSTEM = "subsystem"
NET = "net"  # directory: the function's netdevs
VIRTFN_PREFIX = "virtfn"  # virtfnN -> the PF's VF N

# ---- per-driver files (PCI_DRIVERS/NAME)
BIND, UNBIND, MODULE = "bind", "unbind", "module"

# ---- per-netdev (CLASS_NET/NAME)
NETDEV_FLAGS = "flags"  # IFF_* as hex: IFF_UP = 0x1
NETDEV_FILES = ("address", "operstate", "mtu", "ifindex")
NETDEV_STATISTICS = "statistics"  # the netdev's counters, one file each (net-sysfs.c netstat_attrs)
# A switch port's names (net/core/net-sysfs.c: reading them answers EOPNOTSUPP where the driver has none): the
# uplink's "p0", a VF representor's "pf0vf3" (devlink pcivf flavour), the switch's id in hex.
PHYS_PORT_NAME, PHYS_SWITCH_ID = "phys_port_name", "phys_switch_id"
PORT_FILES = (PHYS_PORT_NAME, PHYS_SWITCH_ID)

# What the inventory reads of every device in one pass, and what a snapshot keeps.
# What the inventory reads of every function: its uevent carries its identity and driver; a tree without one (a
# snapshot taken before uevent was captured) is read from the IDENTITY_FILES and the driver link instead
DEVICE_FILES = (UEVENT, REVISION, DRIVER_OVERRIDE, NUMA_NODE)
DEVICE_LINKS = (PHYSFN, IOMMU_GROUP)
IDENTITY_FILES = (VENDOR, DEVICE, CLASS, SUBSYSTEM_VENDOR, SUBSYSTEM_DEVICE)
SRIOV_FILES = (SRIOV_TOTALVFS, SRIOV_NUMVFS, SRIOV_OFFSET, SRIOV_STRIDE, SRIOV_VF_DEVICE, SRIOV_DRIVERS_AUTOPROBE,
               SRIOV_VF_TOTAL_MSIX)
SNAPSHOT_FILES = (*DEVICE_FILES, *IDENTITY_FILES, CONFIG, "resource", "enable", "irq", "modalias", "local_cpulist", *SRIOV_FILES,
                  ARI_ENABLED, "current_link_speed", "current_link_width", "max_link_speed", "max_link_width", "label")
SNAPSHOT_LINKS = (DRIVER, IOMMU_GROUP, PHYSFN, SUBSYSTEM)
SNAPSHOT_NETDEV_FILES = (*NETDEV_FILES, "type", "carrier", NETDEV_FLAGS, "addr_len", "broadcast", *PORT_FILES)

# Every attribute name above: the layering test refuses them as path components outside this module, and the
# unmistakable ones (no JSON key or English word shares them) as literals of their own.
UNMISTAKABLE = frozenset({*SRIOV_FILES, "drivers_probe", PHYSFN, ARI_ENABLED, PHYS_PORT_NAME, PHYS_SWITCH_ID})
ATTRIBUTE_NAMES = frozenset({CONFIG, VENDOR, DEVICE, CLASS, REVISION, SUBSYSTEM_VENDOR, SUBSYSTEM_DEVICE, NUMA_NODE,
                             DRIVER_OVERRIDE, *SRIOV_FILES, ARI_ENABLED, DRIVER, PHYSFN, IOMMU_GROUP, SUBSYSTEM, NET,
                             BIND, UNBIND, MODULE, "drivers_probe", PHYS_PORT_NAME, PHYS_SWITCH_ID})

_VIRTFN = re.compile(r"virtfn([0-9]{1,5})", re.ASCII)


def device(address: object) -> str:
    """A function's directory (``address`` a PciAddress or its canonical string)."""
    return f"{PCI_DEVICES}/{address}"


def device_attr(address: object, attr: str) -> str:
    return f"{PCI_DEVICES}/{address}/{attr}"


def net_dir(address: object) -> str:
    return f"{PCI_DEVICES}/{address}/{NET}"


def virtfn(index: int) -> str:
    return f"{VIRTFN_PREFIX}{index}"


def virtfn_index(name: str) -> int | None:
    """N for a ``virtfnN`` entry, None for anything else."""
    m = _VIRTFN.fullmatch(name)
    return int(m.group(1)) if m else None


def driver_dir(driver: str) -> str:
    return f"{PCI_DRIVERS}/{driver}"


def driver_file(driver: str, name: str) -> str:
    return f"{PCI_DRIVERS}/{driver}/{name}"


def module_dir(module: str) -> str:
    return f"{MODULES}/{module}"


def netdev(name: str) -> str:
    return f"{CLASS_NET}/{name}"


def netdev_attr(name: str, attr: str) -> str:
    return f"{CLASS_NET}/{name}/{attr}"


def bus_device_of_netdev(name: str, link: str | None) -> str | None:
    """The device directory (under sys/devices) of a netdev that is neither on PCI nor virtual, from its
    CLASS_NET link (``../../devices/netdevsim10/net/eth0`` → ``sys/devices/netdevsim10``); None for anything
    else, or a link that is not a plain path down sys/devices ending in net/NAME (a hostile snapshot)."""
    if link is None:
        return None
    parts = link.split("/")
    if parts[:3] != ["..", "..", "devices"] or parts[-2:] != [NET, name] or len(parts) < 6 or len(parts) > 16:
        return None
    inner = parts[3:-2]
    if inner[0] == "virtual" or inner[0].startswith("pci") or any(p in ("", ".", "..") for p in inner):
        return None
    return "/".join([DEVICES_ROOT, *inner])


def bus_device_attr(bus: str, device: str, attr: str) -> str:
    """An attribute of a device on a bus that is not PCI (netdevsim's sriov_numvfs)."""
    return f"sys/bus/{bus}/devices/{device}/{attr}"


def netdev_device_unit_path(name: str) -> str:
    """The path systemd names a network interface's device unit after (sys-subsystem-net-devices-NAME.device):
    udev tags network interfaces for systemd under /sys/subsystem/net/devices."""
    return f"/sys/subsystem/net/devices/{name}"


def group_dir(group: object) -> str:
    return f"{IOMMU_GROUPS}/{group}"


def group_devices(group: object) -> str:
    return f"{IOMMU_GROUPS}/{group}/devices"


def iommu_unit_file(unit: str, name: str) -> str:
    """``intel-iommu/ecap`` or ``amd-iommu/features`` of an IOMMU unit."""
    return f"{CLASS_IOMMU}/{unit}/{name}"


def acpi_table(name: str) -> str:
    return f"{ACPI_TABLES}/{name}"


def device_path(chain: list[object], domain: int, bus: int) -> str:
    """A device's path under /sys/devices (libvirt's node-device <path>): its root bus, then every bridge down
    to it (``chain``: root first)."""
    return f"/{DEVICES_ROOT}/pci{domain:04x}:{bus:02x}/" + "/".join(str(a) for a in chain)


def shown(rel: str) -> str:
    """A path as an operator types it (evidence, messages): absolute on the host."""
    return "/" + rel
