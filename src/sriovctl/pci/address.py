"""PCI addresses: ``DDDD:BB:DD.F``, short ``BB:DD.F`` and libvirt node-device names ``pci_DDDD_BB_DD_F``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering

from sriovctl.errors import UsageError
from sriovctl.untrusted import shown

# Matched in full (re.fullmatch: "$" would accept a trailing newline), ASCII only.
_FULL = re.compile(r"(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])", re.ASCII)
_CANON = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]", re.ASCII)  # what sysfs names: the fast path
_LOOSE = re.compile(r"(?:[0-9a-fA-F]+:)?[0-9a-fA-F]+:[0-9a-fA-F]+\.[0-9a-fA-F]+", re.ASCII)
_NODEDEV = re.compile(r"pci_([0-9a-fA-F]{4})_([0-9a-fA-F]{2})_([0-9a-fA-F]{2})_([0-7])", re.ASCII)


@lru_cache(maxsize=1 << 16)
def _canonical(domain: int, bus: int, slot: int, function: int) -> str:
    """An address's canonical text, made once per address (the inventory and its JSON ask 5 times per device)."""
    return f"{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"


@total_ordering
@dataclass(frozen=True, slots=True)
class PciAddress:
    domain: int
    bus: int
    slot: int
    function: int

    def __post_init__(self) -> None:
        if not (0 <= self.domain <= 0xFFFF and 0 <= self.bus <= 0xFF
                and 0 <= self.slot <= 0x1F and 0 <= self.function <= 7):
            raise UsageError(f"PCI address {self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}: "
                             "out of range (domain ≤ ffff, bus ≤ ff, device ≤ 1f, function ≤ 7)")

    @classmethod
    def parse(cls, text: str) -> PciAddress:
        """Parse ``0000:0b:10.0``, ``0b:10.0`` (domain 0) or ``pci_0000_0b_10_0``."""
        if len(text) == 12 and text[4] == ":" and text[7] == ":" and text[10] == "." and _CANON.fullmatch(text):
            return cls(int(text[0:4], 16), int(text[5:7], 16), int(text[8:10], 16), int(text[11], 16))
        m = _FULL.fullmatch(text) or _NODEDEV.fullmatch(text)
        if m is None and _LOOSE.fullmatch(text):
            raise UsageError(f"{shown(text)}: malformed PCI address: a field is out of range",
                             hint="bus ≤ ff, device ≤ 1f, function ≤ 7, e.g. 0000:0b:10.0")
        if m is None:
            raise UsageError(f"{shown(text)}: not a PCI address",
                             hint="expected DDDD:BB:DD.F, BB:DD.F or pci_DDDD_BB_DD_F, e.g. 0000:0b:10.0")
        dom, bus, slot, fn = m.groups()
        return cls(int(dom or "0", 16), int(bus, 16), int(slot, 16), int(fn, 16))

    @classmethod
    def try_parse(cls, text: str) -> PciAddress | None:
        try:
            return cls.parse(text)
        except UsageError:
            return None

    @classmethod
    def from_routing_id(cls, domain: int, rid: int) -> PciAddress:
        """From a 16-bit routing ID (bus << 8 | devfn)."""
        return cls(domain, (rid >> 8) & 0xFF, (rid >> 3) & 0x1F, rid & 7)

    @property
    def routing_id(self) -> int:
        return (self.bus << 8) | (self.slot << 3) | self.function

    @property
    def devfn(self) -> int:
        return (self.slot << 3) | self.function

    def __str__(self) -> str:
        return _canonical(self.domain, self.bus, self.slot, self.function)

    @property
    def short(self) -> str:
        """lspci's form: domain left out when it is 0."""
        s = f"{self.bus:02x}:{self.slot:02x}.{self.function:x}"
        return s if self.domain == 0 else f"{self.domain:04x}:{s}"

    @property
    def nodedev_name(self) -> str:
        return f"pci_{self.domain:04x}_{self.bus:02x}_{self.slot:02x}_{self.function:x}"

    def _key(self) -> tuple[int, int, int, int]:
        return (self.domain, self.bus, self.slot, self.function)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, PciAddress):
            return NotImplemented
        return self._key() < other._key()


def vf_address(pf: PciAddress, offset: int, stride: int, index: int) -> PciAddress:
    """The address of VF ``index`` (0-based) from the PF's routing ID, VF offset and stride (PCIe SR-IOV 9.3.3.10).

    Raises ValueError when the result does not fit the 16-bit routing-ID space.
    """
    rid = pf.routing_id + offset + stride * index
    if rid > 0xFFFF:
        raise ValueError(f"VF {index} of {pf}: routing ID {rid:#x} beyond 0xffff")
    return PciAddress.from_routing_id(pf.domain, rid)
