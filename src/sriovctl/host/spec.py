"""Simulated-host specs: a YAML description of a host's PCI topology, devices, drivers, firmware
tables and kernel command line, turned into frozen dataclasses with path-named errors."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sriovctl.errors import DataError
from sriovctl.pci.address import PciAddress

ACS_NAMES = {"SV": 0, "TB": 1, "RR": 2, "CR": 3, "UF": 4, "EC": 5, "DT": 6}
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

    def fail(self, path: str, msg: str) -> DataError:
        return DataError(f"{self.source}: {path}: {msg}")

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

    def hex_or_int(self, d: dict[str, Any], key: str, path: str, default: int) -> int:
        v = d.get(key, default)
        if isinstance(v, bool):
            raise self.fail(f"{path}.{key}", f"must be a number, got {v!r}")
        if isinstance(v, int):
            return v
        if isinstance(v, str):
            try:
                return int(v, 16)
            except ValueError:
                pass
        raise self.fail(f"{path}.{key}", f"must be a hex string or number, got {v!r}")

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

    def device(self, d: Any, path: str) -> DeviceSpec:
        if not isinstance(d, dict):
            raise self.fail(path, f"must be a mapping, got {d!r}")
        addr_s = self.get(d, "address", path, str)
        addr = PciAddress.try_parse(addr_s)
        if addr is None:
            raise self.fail(f"{path}.address", f"not a PCI address: {addr_s!r}")
        kind = self.get(d, "kind", path, str)
        if kind not in DEVICE_KINDS:
            raise self.fail(f"{path}.kind", f"must be one of {', '.join(DEVICE_KINDS)}, got {kind!r}")
        nic = None
        if kind == "nic":
            model = self.get(d, "model", path, str)
            if model not in NIC_MODELS:
                raise self.fail(f"{path}.model", f"must be one of {', '.join(NIC_MODELS)}, got {model!r}")
            nic = NIC_MODELS[model]
            if "vf_offset" in d:
                nic = replace(nic, vf_offset=self.get(d, "vf_offset", path, int))
        children_raw = self.get(d, "children", path, list, [])
        children = tuple(self.device(c, f"{path}.children[{i}]") for i, c in enumerate(children_raw))
        numvfs = self.get(d, "numvfs", path, int, 0)
        if nic and not 0 <= numvfs <= nic.driver_total_vfs:
            raise self.fail(f"{path}.numvfs", f"must be 0..{nic.driver_total_vfs}, got {numvfs}")
        sec = self.hex_or_int(d, "secondary_bus", path, -1)
        sub = self.hex_or_int(d, "subordinate_bus", path, -1)
        return DeviceSpec(
            address=addr, kind=kind,
            vendor=self.hex_or_int(d, "vendor", path, nic.vendor if nic else 0x8086),
            device=self.hex_or_int(d, "device", path, nic.device if nic else 0),
            class_code=self.hex_or_int(d, "class", path, 0x020000 if nic else 0),
            revision=self.hex_or_int(d, "revision", path, nic.revision if nic else 0),
            driver=self.get(d, "driver", path, (str, type(None)), nic.driver if nic else None),
            acs=self.acs(d.get("acs"), f"{path}.acs"),
            multifunction=self.get(d, "multifunction", path, bool, False),
            mf_acs_quirk=self.get(d, "mf_acs_quirk", path, bool, nic.mf_acs_quirk if nic else False),
            nic=nic, netdev=self.get(d, "netdev", path, (str, type(None)), None),
            mac=self.get(d, "mac", path, (str, type(None)), None), numvfs=numvfs,
            sriov_capable_driver=self.get(d, "sriov_driver_support", path, bool, True),
            vf_bars_assigned=self.get(d, "vf_bars_assigned", path, bool, True),
            ari=self.get(d, "ari", path, bool, True),
            numa_node=self.get(d, "numa_node", path, int, -1),
            secondary_bus=None if sec < 0 else sec, subordinate_bus=None if sub < 0 else sub,
            children=children,
        )


def parse_spec(data: Any, source: str) -> HostSpec:
    r = _Reader(source)
    if not isinstance(data, dict):
        raise DataError(f"{source}: a host spec must be a mapping, got {type(data).__name__}")
    kernel = r.get(data, "kernel", "", dict, {})
    cpu = r.get(data, "cpu", "", dict, {})
    firmware = r.get(data, "firmware", "", dict, {})
    iommu = r.get(data, "iommu", "", dict, {})
    devs = r.get(data, "devices", "", list)
    network = r.get(data, "network", "", dict, {})
    name = r.get(data, "name", "", str)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise r.fail("name", f"letters, digits, - and _ only, got {name!r}")
    spec = HostSpec(
        name=name,
        description=r.get(data, "description", "", str, ""),
        cmdline=r.get(kernel, "cmdline", "kernel", str, "BOOT_IMAGE=/boot/vmlinuz root=/dev/sda1 ro"),
        kernel_release=r.get(kernel, "release", "kernel", str, "6.1.0-sim"),
        kernel_config={str(k): str(v) for k, v in r.get(kernel, "config", "kernel", dict, {}).items()},
        modules=tuple(r.get(kernel, "modules", "kernel", list, [])),
        cpu_vendor=r.get(cpu, "vendor", "cpu", str, "GenuineIntel"),
        cpu_flags=tuple(r.get(cpu, "flags", "cpu", list, ["vmx"])),
        acpi_tables=tuple(r.get(firmware, "acpi_tables", "firmware", list, ["APIC", "FACP", "DSDT", "MCFG"])),
        iommu_units=tuple(r.get(iommu, "units", "iommu", list, [])),
        iommu_groups=r.get(iommu, "groups", "iommu", bool, False),
        interrupt_remapping=r.get(iommu, "interrupt_remapping", "iommu", bool, True),
        devices=tuple(r.device(d, f"devices[{i}]") for i, d in enumerate(devs)),
        synthetic_notes=r.get(data, "synthetic", "", str, ""),
        default_route=r.get(network, "default_route", "network", (str, type(None)), None),
        addresses={str(k): tuple(str(a) for a in v) for k, v in r.get(network, "addresses", "network", dict, {}).items()},
        operstate_up=tuple(r.get(network, "up", "network", list, [])),
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
