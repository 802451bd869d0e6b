"""Simulated-host specs: a YAML description of a host's PCI topology, devices, drivers, firmware
tables and kernel command line, turned into frozen dataclasses with path-named errors."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any

from sriovctl.errors import DataError
from sriovctl.pci.address import PciAddress
from sriovctl.pci.config import ACS_SHORT
from sriovctl.untrusted import has_control, is_netdev_name, plain_name, shown

HOST_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)  # a simulated host's name: also its directory's
ACS_NAMES = {short: bit for bit, short in enumerate(ACS_SHORT.values())}  # SV → 0 … DT → 6 (pci/config.py)
MAX_DEVICES = 1024  # spec devices (bridges, ports, PFs); VFs are made by the simulated kernel
MAX_TOPOLOGY_DEPTH = 32  # bridges below one another (PCIe allows fewer: 256 bus numbers)
MAX_NUMA_NODE = 1023  # the kernel's MAX_NUMNODES with NODES_SHIFT 10
DEVICE_KEYS = frozenset({"acs", "address", "ari", "children", "class", "device", "driver", "kind", "mac", "mf_acs_quirk",
                         "model", "multifunction", "name", "netdev", "numa_node", "numvfs", "revision", "secondary_bus",
                         "vendor_name",
                         "sriov_driver_support", "subordinate_bus", "vendor", "vf_bars_assigned", "vf_offset"})
TOP_KEYS = frozenset({"name", "description", "kernel", "cpu", "firmware", "iommu", "devices", "network", "synthetic"})
DEVICE_KINDS = ("host-bridge", "root-port", "switch-upstream", "switch-downstream", "pci-bridge",
                "endpoint", "nic")


@dataclass(frozen=True)
class AcsSpec:
    capability: int
    control: int


@dataclass(frozen=True)
class NicModel:
    """A NIC model's SR-IOV facts. ``driver_total_vfs`` is what the driver lets sriov_totalvfs say."""

    name: str
    vendor: int
    device: int
    vf_device: int
    revision: int
    subsystem: tuple[int, int]
    driver: str
    vf_driver: str
    config_total_vfs: int
    driver_total_vfs: int
    vf_offset: int
    vf_stride: int
    mf_acs_quirk: bool  # the kernel treats its functions as isolated (quirk) despite no ACS capability
    vf_bar_size: int = 16384
    synthetic: bool = False


NIC_MODELS: dict[str, NicModel] = {
    "intel-82576": NicModel("intel-82576", 0x8086, 0x10C9, 0x10CA, 0x01, (0x8086, 0xA03C), "igb", "igbvf",
                            8, 7, 128, 2, True),
    # E810-C: IDs and drivers are real; offset/stride, BAR sizes and subsystem are synthetic values.
    "intel-e810": NicModel("intel-e810", 0x8086, 0x1592, 0x1889, 0x02, (0x8086, 0x0002), "ice", "iavf",
                           256, 256, 8, 1, True, vf_bar_size=65536, synthetic=True),
}


@dataclass(frozen=True)
class DeviceSpec:
    address: PciAddress
    kind: str
    vendor: int = 0x8086
    device: int = 0
    class_code: int = 0
    revision: int = 0
    driver: str | None = None
    acs: AcsSpec | None = None
    multifunction: bool = False
    mf_acs_quirk: bool = False
    nic: NicModel | None = None
    netdev: str | None = None
    mac: str | None = None
    numvfs: int = 0
    sriov_capable_driver: bool = True  # False: SR-IOV capability in config space, driver without support
    vf_bars_assigned: bool = True
    ari: bool = True
    numa_node: int = -1
    secondary_bus: int | None = None
    subordinate_bus: int | None = None
    children: tuple[DeviceSpec, ...] = ()
    name: str | None = None  # the device's name (pci.ids style); NIC models and bridge kinds have their own
    vendor_name: str | None = None


@dataclass(frozen=True)
class HostSpec:
    name: str
    description: str
    cmdline: str
    kernel_release: str
    cpu_vendor: str
    cpu_flags: tuple[str, ...]
    acpi_tables: tuple[str, ...]
    iommu_units: tuple[str, ...]
    iommu_groups: bool
    interrupt_remapping: bool = True
    kernel_config: dict[str, str] = field(default_factory=dict)
    modules: tuple[str, ...] = ()
    devices: tuple[DeviceSpec, ...] = ()
    synthetic_notes: str = ""
    default_route: str | None = None  # netdev carrying the default route
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    operstate_up: tuple[str, ...] = ()


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.device_count = 0

    def fail(self, path: str, msg: str, hint: str | None = None) -> DataError:
        return DataError(f"{self.source}: {path}: {msg}", hint=hint)

    def get(self, d: dict[str, Any], key: str, path: str, typ: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in d:
            if default is ...:
                raise self.fail(f"{path}.{key}".lstrip("."), "required")
            return default
        v = d[key]
        if not isinstance(v, typ) or (isinstance(v, bool) and typ is int):
            tn = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            raise self.fail(f"{path}.{key}".lstrip("."), f"must be {tn}, got {v!r}")
        return v

    def hex_or_int(self, d: dict[str, Any], key: str, path: str, default: int, hi: int = 0xFFFF) -> int:
        v = d.get(key, default)
        where = f"{path}.{key}".lstrip(".")
        if isinstance(v, bool):
            raise self.fail(where, f"must be a number, got {shown(v)}")
        if isinstance(v, str) and re.fullmatch(r"(0x)?[0-9a-fA-F]{1,8}", v, re.ASCII):
            v = int(v, 16)
        if isinstance(v, int):
            if v == default or 0 <= v <= hi:
                return v
            raise self.fail(where, f"must be 0..{hi:#x}, got {v}")
        raise self.fail(where, f"must be a hex string or number, got {shown(v)}")

    def int_in(self, d: dict[str, Any], key: str, path: str, lo: int, hi: int, default: int) -> int:
        v = self.get(d, key, path, int, default)
        if not lo <= v <= hi:
            raise self.fail(f"{path}.{key}".lstrip("."), f"must be {lo}..{hi}, got {shown(v)}")
        return int(v)

    def text(self, d: dict[str, Any], key: str, path: str, default: str, limit: int = 4096,
             multiline: bool = False) -> str:
        v = self.get(d, key, path, str, default)
        if len(v) > limit or has_control(v.replace("\n", "").replace("\t", "") if multiline else v.rstrip("\n")):
            what = "text without control characters" if multiline else "one line"
            raise self.fail(f"{path}.{key}".lstrip("."), f"must be {what} of at most {limit} characters, got {shown(v)}")
        return str(v)

    def name(self, v: Any, path: str) -> str:
        """A value that becomes a file or directory name in the simulated tree."""
        return plain_name(v, f"{self.source}: {path}", DataError)

    def names(self, d: dict[str, Any], key: str, path: str, default: list[str], netdev: bool = False) -> tuple[str, ...]:
        items = self.get(d, key, path, list, default)
        if len(items) > 1024:
            raise self.fail(f"{path}.{key}", f"at most 1024 entries, got {len(items)}")
        check = self.netdev if netdev else self.name
        return tuple(check(x, f"{path}.{key}[{i}]".lstrip(".")) for i, x in enumerate(items))

    def netdev(self, v: Any, path: str) -> str:
        """A network interface name as the kernel allows it (dev_valid_name: < IFNAMSIZ, no / or space)."""
        if not is_netdev_name(v):
            raise self.fail(path, f"not a network interface name: {shown(v)}", hint="1-15 letters, digits and _.:@+-")
        return v

    def acs(self, v: Any, path: str) -> AcsSpec | None:
        if v is None or v is False or v == "none":
            return None
        if v is True:
            return AcsSpec(0b1011111, 0b0011101)  # SV TB RR CR UF DT capable; SV RR CR UF enabled
        if isinstance(v, dict):
            def bits(names: Any, p: str) -> int:
                if not isinstance(names, list) or any(n not in ACS_NAMES for n in names):
                    raise self.fail(p, f"must be a list of {', '.join(ACS_NAMES)}, got {names!r}")
                return sum(1 << ACS_NAMES[n] for n in names)
            return AcsSpec(bits(v.get("capability", []), f"{path}.capability"),
                           bits(v.get("control", []), f"{path}.control"))
        raise self.fail(path, f"must be true, none or {{capability: [...], control: [...]}}, got {v!r}")

    def device(self, d: Any, path: str, depth: int = 0) -> DeviceSpec:
        if not isinstance(d, dict):
            raise self.fail(path, f"must be a mapping, got {shown(d)}")
        if depth > MAX_TOPOLOGY_DEPTH:
            raise self.fail(path, f"nested deeper than {MAX_TOPOLOGY_DEPTH} bridges")
        self.device_count += 1
        if self.device_count > MAX_DEVICES:
            raise self.fail(path, f"more than {MAX_DEVICES} devices in one spec")
        unknown = set(d) - DEVICE_KEYS
        if unknown:
            raise self.fail(f"{path}.{sorted(map(str, unknown))[0]}", "unknown key",
                            hint=f"known: {', '.join(sorted(DEVICE_KEYS))}")
        addr_s = self.get(d, "address", path, str)
        addr = PciAddress.try_parse(addr_s)
        if addr is None:
            raise self.fail(f"{path}.address", f"not a PCI address: {shown(addr_s)}")
        kind = self.get(d, "kind", path, str)
        if kind not in DEVICE_KINDS:
            raise self.fail(f"{path}.kind", f"must be one of {', '.join(DEVICE_KINDS)}, got {shown(kind)}")
        nic = None
        if kind == "nic":
            model = self.get(d, "model", path, str)
            if model not in NIC_MODELS:
                raise self.fail(f"{path}.model", f"must be one of {', '.join(NIC_MODELS)}, got {shown(model)}")
            nic = NIC_MODELS[model]
            if "vf_offset" in d:
                nic = replace(nic, vf_offset=self.int_in(d, "vf_offset", path, 1, 0xFFFF, nic.vf_offset))
            last = addr.routing_id + nic.vf_offset + nic.vf_stride * (nic.config_total_vfs - 1)
            if last > 0xFFFF:
                raise self.fail(f"{path}.vf_offset", f"VF {nic.config_total_vfs - 1} would have routing ID {last:#x}, "
                                "beyond the 16-bit space (bus ff)")
        children_raw = self.get(d, "children", path, list, [])
        children = tuple(self.device(c, f"{path}.children[{i}]", depth + 1) for i, c in enumerate(children_raw))
        numvfs = self.int_in(d, "numvfs", path, 0, nic.driver_total_vfs if nic else 0, 0)
        sec = self.hex_or_int(d, "secondary_bus", path, -1, 0xFF)
        sub = self.hex_or_int(d, "subordinate_bus", path, -1, 0xFF)
        driver = self.get(d, "driver", path, (str, type(None)), nic.driver if nic else None)
        netdev = self.get(d, "netdev", path, (str, type(None)), None)
        mac = self.get(d, "mac", path, (str, type(None)), None)
        if mac is not None and not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac, re.ASCII):
            raise self.fail(f"{path}.mac", f"not a MAC address: {shown(mac)}", hint="e.g. 00:1b:21:3c:9d:f8")
        return DeviceSpec(
            address=addr, kind=kind,
            vendor=self.hex_or_int(d, "vendor", path, nic.vendor if nic else 0x8086),
            device=self.hex_or_int(d, "device", path, nic.device if nic else 0),
            class_code=self.hex_or_int(d, "class", path, 0x020000 if nic else 0, 0xFFFFFF),
            revision=self.hex_or_int(d, "revision", path, nic.revision if nic else 0, 0xFF),
            driver=None if driver is None else self.name(driver, f"{path}.driver"),
            acs=self.acs(d.get("acs"), f"{path}.acs"),
            multifunction=self.get(d, "multifunction", path, bool, False),
            mf_acs_quirk=self.get(d, "mf_acs_quirk", path, bool, nic.mf_acs_quirk if nic else False),
            nic=nic, netdev=None if netdev is None else self.netdev(netdev, f"{path}.netdev"),
            mac=mac, numvfs=numvfs,
            sriov_capable_driver=self.get(d, "sriov_driver_support", path, bool, True),
            vf_bars_assigned=self.get(d, "vf_bars_assigned", path, bool, True),
            ari=self.get(d, "ari", path, bool, True),
            numa_node=self.int_in(d, "numa_node", path, -1, MAX_NUMA_NODE, -1),
            secondary_bus=None if sec < 0 else sec, subordinate_bus=None if sub < 0 else sub,
            children=children,
            name=self.label(d, "name", path), vendor_name=self.label(d, "vendor_name", path),
        )

    def label(self, d: dict[str, Any], key: str, path: str) -> str | None:
        """A name shown to people: one line of printable text, at most 200 characters."""
        v: str | None = self.get(d, key, path, (str, type(None)), None)
        if v is not None and (has_control(v) or not 0 < len(v) <= 200 or v != v.strip()):
            raise self.fail(f"{path}.{key}", f"not a one-line name of 1..200 characters: {shown(v)}")
        return v


def parse_spec(data: Any, source: str) -> HostSpec:
    r = _Reader(source)
    if not isinstance(data, dict):
        raise DataError(f"{source}: a host spec must be a mapping, got {type(data).__name__}")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise r.fail(sorted(map(str, unknown))[0], "unknown key", hint=f"known: {', '.join(sorted(TOP_KEYS))}")
    kernel = r.get(data, "kernel", "", dict, {})
    cpu = r.get(data, "cpu", "", dict, {})
    firmware = r.get(data, "firmware", "", dict, {})
    iommu = r.get(data, "iommu", "", dict, {})
    devs = r.get(data, "devices", "", list)
    network = r.get(data, "network", "", dict, {})
    name = r.get(data, "name", "", str)
    if not HOST_NAME.fullmatch(name):
        raise r.fail("name", f"letters, digits, - and _ only (at most 64), got {shown(name)}")
    config = r.get(kernel, "config", "kernel", dict, {})
    kconfig: dict[str, str] = {}
    for k, v in config.items():
        if not isinstance(k, str) or not re.fullmatch(r"CONFIG_[A-Z0-9_]{1,100}", k, re.ASCII):
            raise r.fail(f"kernel.config.{shown(k)}", "not a kernel option name (CONFIG_…)")
        if isinstance(v, bool) or not isinstance(v, str | int) or not re.fullmatch(r'[A-Za-z0-9_"./ -]{0,256}', str(v)):
            raise r.fail(f"kernel.config.{k}", f"must be y, m, n, a number or a short string, got {shown(v)}")
        kconfig[k] = str(v)
    flags = r.get(cpu, "flags", "cpu", list, ["vmx"])
    for i, f in enumerate(flags):
        if not isinstance(f, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", f, re.ASCII):
            raise r.fail(f"cpu.flags[{i}]", f"not a CPU flag: {shown(f)}")
    addresses_raw = r.get(network, "addresses", "network", dict, {})
    addresses: dict[str, tuple[str, ...]] = {}
    for k, v in addresses_raw.items():
        ifname = r.netdev(k, f"network.addresses.{shown(k)}")
        if not isinstance(v, list) or len(v) > 256:
            raise r.fail(f"network.addresses.{ifname}", f"must be a list of addresses, got {shown(v)}")
        for i, a in enumerate(v):
            try:
                ipaddress.ip_interface(a if isinstance(a, str) else "")
            except ValueError:
                raise r.fail(f"network.addresses.{ifname}[{i}]", f"not an IP address: {shown(a)}",
                             hint="e.g. 10.0.0.2/24 or fd00::2/64") from None
        addresses[ifname] = tuple(v)
    default_route = r.get(network, "default_route", "network", (str, type(None)), None)
    spec = HostSpec(
        name=name,
        description=r.text(data, "description", "", "", 65536, multiline=True),
        cmdline=r.text(kernel, "cmdline", "kernel", "BOOT_IMAGE=/boot/vmlinuz root=/dev/sda1 ro"),
        kernel_release=r.name(r.get(kernel, "release", "kernel", str, "6.1.0-sim"), "kernel.release"),
        kernel_config=kconfig,
        modules=r.names(kernel, "modules", "kernel", []),
        cpu_vendor=r.text(cpu, "vendor", "cpu", "GenuineIntel", 64),
        cpu_flags=tuple(flags),
        acpi_tables=r.names(firmware, "acpi_tables", "firmware", ["APIC", "FACP", "DSDT", "MCFG"]),
        iommu_units=r.names(iommu, "units", "iommu", []),
        iommu_groups=r.get(iommu, "groups", "iommu", bool, False),
        interrupt_remapping=r.get(iommu, "interrupt_remapping", "iommu", bool, True),
        devices=tuple(r.device(d, f"devices[{i}]") for i, d in enumerate(devs)),
        synthetic_notes=r.text(data, "synthetic", "", "", 65536, multiline=True),
        default_route=None if default_route is None else r.netdev(default_route, "network.default_route"),
        addresses=addresses,
        operstate_up=r.names(network, "up", "network", [], netdev=True),
    )
    seen: set[PciAddress] = set()

    def walk(ds: tuple[DeviceSpec, ...]) -> None:
        for d in ds:
            if d.address in seen:
                raise DataError(f"{source}: device {d.address} appears twice")
            seen.add(d.address)
            walk(d.children)
    walk(spec.devices)
    return spec
