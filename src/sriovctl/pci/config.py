"""PCI configuration-space decoder: header, capability list, extended capabilities (SR-IOV, ACS, ARI).

Pure code over bytes. Never raises on malformed input: what cannot be decoded is reported in
``ConfigSpace.problems`` (a truncated dump, a looping or garbage capability chain), except when even the
64-byte header is missing, which raises :class:`~sriovctl.errors.DataError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from sriovctl.errors import DataError

HEADER_SIZE = 64
LEGACY_SIZE = 256
EXTENDED_SIZE = 4096
_MAX_CAPS = 48  # (256 - 64) / 4: more than this in a standard list is a loop
_MAX_EXT_CAPS = 960  # (4096 - 256) / 4


class CapId(IntEnum):
    PM = 0x01
    MSI = 0x05
    VENDOR = 0x09
    PCIE = 0x10
    MSIX = 0x11
    SSVID = 0x0D


class ExtCapId(IntEnum):
    AER = 0x01
    VC = 0x02
    DSN = 0x03
    ACS = 0x0D
    ARI = 0x0E
    ATS = 0x0F
    SRIOV = 0x10
    LTR = 0x18
    SECONDARY_PCIE = 0x19


class PortType(IntEnum):
    """PCI Express capability, Device/Port Type field."""

    ENDPOINT = 0
    LEGACY_ENDPOINT = 1
    ROOT_PORT = 4
    UPSTREAM_PORT = 5
    DOWNSTREAM_PORT = 6
    PCIE_TO_PCI_BRIDGE = 7
    PCI_TO_PCIE_BRIDGE = 8
    RC_INTEGRATED_ENDPOINT = 9
    RC_EVENT_COLLECTOR = 10


CAP_NAMES = {
    0x01: "Power Management", 0x05: "MSI", 0x09: "Vendor Specific", 0x0D: "Subsystem",
    0x10: "Express", 0x11: "MSI-X",
}
EXT_CAP_NAMES = {
    0x01: "Advanced Error Reporting", 0x02: "Virtual Channel", 0x03: "Device Serial Number",
    0x0D: "Access Control Services", 0x0E: "Alternative Routing-ID Interpretation (ARI)",
    0x0F: "Address Translation Service (ATS)", 0x10: "Single Root I/O Virtualization (SR-IOV)",
    0x18: "Latency Tolerance Reporting", 0x19: "Secondary PCI Express",
}


@dataclass(frozen=True, slots=True)
class Capability:
    offset: int
    id: int
    version: int | None = None  # extended capabilities only

    @property
    def name(self) -> str:
        names = EXT_CAP_NAMES if self.version is not None else CAP_NAMES
        return names.get(self.id, f"Unknown {self.id:#04x}")


@dataclass(frozen=True, slots=True)
class VfBar:
    index: int
    address: int
    is_64bit: bool
    prefetchable: bool


@dataclass(frozen=True, slots=True)
class SriovCap:
    offset: int
    # SR-IOV Capabilities register
    migration_capable: bool
    ari_capable_hierarchy_preserved: bool
    vf_10bit_tag_requester_supported: bool
    migration_interrupt_message_number: int
    # SR-IOV Control register
    vf_enable: bool
    migration_enable: bool
    migration_interrupt_enable: bool
    vf_mse: bool
    ari_capable_hierarchy: bool
    vf_10bit_tag_requester_enable: bool
    # SR-IOV Status register
    migration_status: bool
    initial_vfs: int
    total_vfs: int
    num_vfs: int
    function_dependency_link: int
    vf_offset: int
    vf_stride: int
    vf_device_id: int
    supported_page_sizes: int
    system_page_size: int
    vf_bars: tuple[VfBar, ...]
    migration_state_offset: int
    migration_state_bir: int


# The ACS capability/control bits in bit order (PCIe 6.0 7.7.8.2), their lspci abbreviations, and the ones the
# kernel requires on every hop for isolation (drivers/pci/pci.c REQ_ACS_FLAGS: SV | RR | CR | UF). One table.
ACS_BITS = ("source_validation", "translation_blocking", "p2p_request_redirect",
            "p2p_completion_redirect", "upstream_forwarding", "p2p_egress_control", "direct_translated_p2p")
ACS_SHORT = dict(zip(ACS_BITS, ("SV", "TB", "RR", "CR", "UF", "EC", "DT"), strict=True))
ACS_REQUIRED = ("source_validation", "p2p_request_redirect", "p2p_completion_redirect", "upstream_forwarding")


@dataclass(frozen=True, slots=True)
class AcsFlags:
    source_validation: bool
    translation_blocking: bool
    p2p_request_redirect: bool
    p2p_completion_redirect: bool
    upstream_forwarding: bool
    p2p_egress_control: bool
    direct_translated_p2p: bool

    @classmethod
    def from_word(cls, word: int) -> AcsFlags:
        return cls(*(bool(word >> i & 1) for i in range(len(ACS_BITS))))

    def enabled_names(self) -> list[str]:
        return [n for n in ACS_BITS if getattr(self, n)]


@dataclass(frozen=True, slots=True)
class AcsCap:
    offset: int
    capability: AcsFlags
    control: AcsFlags
    egress_control_vector_size: int


@dataclass(frozen=True, slots=True)
class AriCap:
    offset: int
    mfvc_function_groups: bool
    acs_function_groups: bool
    next_function: int
    mfvc_enable: bool
    acs_enable: bool
    function_group: int


@dataclass(frozen=True, slots=True)
class PcieCap:
    offset: int
    version: int
    port_type: int
    slot_implemented: bool

    @property
    def port_type_name(self) -> str:
        try:
            return PortType(self.port_type).name.lower().replace("_", "-")
        except ValueError:
            return f"type-{self.port_type}"


@dataclass(frozen=True, slots=True)
class ConfigSpace:
    size: int
    vendor_id: int
    device_id: int
    command: int
    status: int
    revision: int
    class_code: int  # 24 bits: base class, subclass, programming interface
    header_type: int  # without the multi-function bit
    multifunction: bool
    subsystem_vendor_id: int | None
    subsystem_id: int | None
    primary_bus: int | None
    secondary_bus: int | None
    subordinate_bus: int | None
    capabilities: tuple[Capability, ...]
    ext_capabilities: tuple[Capability, ...]
    pcie: PcieCap | None
    sriov: SriovCap | None
    acs: AcsCap | None
    ari: AriCap | None
    problems: tuple[str, ...] = field(default=())
    # How much of the space was readable: "header" (64 B), "legacy" (256 B) or "extended" (4 KiB)
    coverage: str = "extended"

    @property
    def is_bridge(self) -> bool:
        return self.header_type == 1

    @property
    def capabilities_readable(self) -> bool:
        return self.size > HEADER_SIZE

    @property
    def extended_readable(self) -> bool:
        return self.size > LEGACY_SIZE


def _u8(b: bytes, o: int) -> int:
    return b[o]


def _u16(b: bytes, o: int) -> int:
    return int(struct.unpack_from("<H", b, o)[0])


def _u32(b: bytes, o: int) -> int:
    return int(struct.unpack_from("<I", b, o)[0])


def decode(data: bytes, *, what: str = "config space") -> ConfigSpace:
    """Decode a configuration space image of 64, 256 or 4096 bytes (or any length ≥ 64)."""
    n = len(data)
    if n < HEADER_SIZE:
        raise DataError(f"{what}: truncated: {n} bytes, a PCI header needs {HEADER_SIZE}")
    problems: list[str] = []
    vendor, device = _u16(data, 0), _u16(data, 2)
    # A VF reads vendor/device as ffff:ffff (PCIe SR-IOV 9.3.4.1.1); the kernel takes its IDs from the PF.
    htype_raw = _u8(data, 0x0E)
    htype = htype_raw & 0x7F
    sub_vendor = sub_id = prim = sec = subord = None
    if htype == 0:
        sub_vendor, sub_id = _u16(data, 0x2C), _u16(data, 0x2E)
    elif htype == 1:
        prim, sec, subord = _u8(data, 0x18), _u8(data, 0x19), _u8(data, 0x1A)

    caps: list[Capability] = []
    pcie: PcieCap | None = None
    coverage = "header" if n <= HEADER_SIZE else ("legacy" if n <= LEGACY_SIZE else "extended")
    if n <= HEADER_SIZE:
        problems.append("capabilities not readable: only the 64-byte header is available "
                        "(the kernel shows the rest of config space to root only)")
    elif _u16(data, 0x06) & 0x10:  # Status: Capabilities List
        ptr = _u8(data, 0x34 if htype != 2 else 0x14) & 0xFC
        seen: set[int] = set()
        while ptr:
            if ptr < HEADER_SIZE:
                problems.append(f"capability pointer {ptr:#04x} points into the header: chain ends")
                break
            if ptr in seen or len(seen) >= _MAX_CAPS:
                problems.append(f"capability chain loops at {ptr:#04x}: chain ends")
                break
            if ptr + 2 > n:
                problems.append(f"capability at {ptr:#04x} beyond the {n} bytes available: truncated")
                break
            seen.add(ptr)
            cid = _u8(data, ptr)
            caps.append(Capability(ptr, cid))
            if cid == CapId.PCIE and ptr + 4 <= n:
                reg = _u16(data, ptr + 2)
                pcie = PcieCap(ptr, reg & 0xF, (reg >> 4) & 0xF, bool(reg & 0x100))
            ptr = _u8(data, ptr + 1) & 0xFC

    ext: list[Capability] = []
    sriov: SriovCap | None = None
    acs: AcsCap | None = None
    ari: AriCap | None = None
    if n > LEGACY_SIZE:
        ptr = 0x100
        seen = set()
        while ptr:
            if ptr < LEGACY_SIZE or ptr & 3:
                problems.append(f"extended capability pointer {ptr:#05x} is invalid: chain ends")
                break
            if ptr in seen or len(seen) >= _MAX_EXT_CAPS:
                problems.append(f"extended capability chain loops at {ptr:#05x}: chain ends")
                break
            if ptr + 4 > n:
                problems.append(f"extended capability at {ptr:#05x} beyond the {n} bytes available: truncated")
                break
            seen.add(ptr)
            header = _u32(data, ptr)
            if header in (0, 0xFFFFFFFF):
                break  # no extended capabilities (or conventional device)
            cid, ver, nxt = header & 0xFFFF, (header >> 16) & 0xF, (header >> 20) & 0xFFC
            ext.append(Capability(ptr, cid, ver))
            try:
                if cid == ExtCapId.SRIOV:
                    sriov = _decode_sriov(data, ptr, problems)
                elif cid == ExtCapId.ACS:
                    acs = _decode_acs(data, ptr)
                elif cid == ExtCapId.ARI:
                    ari = _decode_ari(data, ptr)
            except struct.error:
                problems.append(f"{EXT_CAP_NAMES.get(cid, hex(cid))} at {ptr:#05x}: truncated")
            ptr = nxt
    elif n > HEADER_SIZE and pcie is not None:
        problems.append("extended capabilities not readable: only 256 bytes available "
                        "(dump with lspci -xxxx, or read the sysfs config file as root)")

    return ConfigSpace(
        size=n, vendor_id=vendor, device_id=device, command=_u16(data, 4), status=_u16(data, 6),
        revision=_u8(data, 8), class_code=_u32(data, 8) >> 8, header_type=htype,
        multifunction=bool(htype_raw & 0x80), subsystem_vendor_id=sub_vendor, subsystem_id=sub_id,
        primary_bus=prim, secondary_bus=sec, subordinate_bus=subord,
        capabilities=tuple(caps), ext_capabilities=tuple(ext), pcie=pcie, sriov=sriov, acs=acs, ari=ari,
        problems=tuple(problems), coverage=coverage,
    )


def _decode_sriov(b: bytes, o: int, problems: list[str] | None = None) -> SriovCap:
    cap, ctl, sta = _u32(b, o + 4), _u16(b, o + 8), _u16(b, o + 0x0A)
    bars: list[VfBar] = []
    i = 0
    while i < 6:
        lo = _u32(b, o + 0x24 + 4 * i)
        is64 = (lo >> 1) & 3 == 2
        addr = lo & ~0xF
        idx = i
        if is64 and i < 5:
            addr |= _u32(b, o + 0x24 + 4 * (i + 1)) << 32
            i += 1
        elif is64 and problems is not None:
            problems.append("SR-IOV VF BAR 5 claims 64-bit but has no upper half: lower 32 bits only")
        i += 1
        if lo != 0:
            bars.append(VfBar(idx, addr, is64, bool(lo & 8)))
    mig = _u32(b, o + 0x3C)
    return SriovCap(
        offset=o,
        migration_capable=bool(cap & 1), ari_capable_hierarchy_preserved=bool(cap & 2),
        vf_10bit_tag_requester_supported=bool(cap & 4), migration_interrupt_message_number=cap >> 21,
        vf_enable=bool(ctl & 1), migration_enable=bool(ctl & 2), migration_interrupt_enable=bool(ctl & 4),
        vf_mse=bool(ctl & 8), ari_capable_hierarchy=bool(ctl & 0x10),
        vf_10bit_tag_requester_enable=bool(ctl & 0x20), migration_status=bool(sta & 1),
        initial_vfs=_u16(b, o + 0x0C), total_vfs=_u16(b, o + 0x0E), num_vfs=_u16(b, o + 0x10),
        function_dependency_link=_u8(b, o + 0x12), vf_offset=_u16(b, o + 0x14), vf_stride=_u16(b, o + 0x16),
        vf_device_id=_u16(b, o + 0x1A), supported_page_sizes=_u32(b, o + 0x1C),
        system_page_size=_u32(b, o + 0x20), vf_bars=tuple(bars),
        migration_state_offset=mig & ~7, migration_state_bir=mig & 7,
    )


def _decode_acs(b: bytes, o: int) -> AcsCap:
    cap, ctl = _u16(b, o + 4), _u16(b, o + 6)
    return AcsCap(o, AcsFlags.from_word(cap), AcsFlags.from_word(ctl), cap >> 8)


def _decode_ari(b: bytes, o: int) -> AriCap:
    cap, ctl = _u16(b, o + 4), _u16(b, o + 6)
    return AriCap(o, bool(cap & 1), bool(cap & 2), cap >> 8, bool(ctl & 1), bool(ctl & 2), (ctl >> 4) & 7)
