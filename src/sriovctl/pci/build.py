"""Build configuration-space images (for simulated devices and property tests).

The inverse of :mod:`sriovctl.pci.config` for the fields it decodes; standard capabilities are laid out
from 0x40, extended capabilities from 0x100, each chained in the order added.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from sriovctl.pci.config import ExtCapId, PortType


class ConfigBuilder:
    def __init__(self, vendor: int, device: int, class_code: int, revision: int = 0, *,
                 bridge: bool = False, multifunction: bool = False,
                 subsystem: tuple[int, int] | None = None) -> None:
        self.data = bytearray(4096)
        self._pack("<HH", 0, vendor, device)
        self._pack("<HH", 4, 0x0006, 0x0010)  # Command: MEM+ BusMaster+; Status: Capabilities List
        self._pack("<I", 8, (class_code << 8) | revision)
        self.data[0x0E] = (1 if bridge else 0) | (0x80 if multifunction else 0)
        if subsystem and not bridge:
            self._pack("<HH", 0x2C, *subsystem)
        self._cap_tail: int | None = None  # offset of the last capability's next pointer
        self._cap_next = 0x40
        self._ext_tail: int | None = None
        self._ext_next = 0x100

    def _pack(self, fmt: str, off: int, *values: int) -> None:
        struct.pack_into(fmt, self.data, off, *values)

    def bus_numbers(self, primary: int, secondary: int, subordinate: int) -> ConfigBuilder:
        self.data[0x18], self.data[0x19], self.data[0x1A] = primary, secondary, subordinate
        return self

    def add_cap(self, cap_id: int, body: bytes = b"", size: int | None = None) -> int:
        off = self._cap_next
        length = max(size or 0, 2 + len(body))
        length = (length + 3) & ~3
        if off + length > 256:
            raise ValueError("standard capabilities overflow 256 bytes")
        self.data[off] = cap_id
        self.data[off + 2: off + 2 + len(body)] = body
        if self._cap_tail is None:
            self.data[0x34] = off
        else:
            self.data[self._cap_tail] = off
        self._cap_tail = off + 1
        self._cap_next = off + length
        return off

    def add_ext_cap(self, cap_id: int, version: int, body: bytes, size: int | None = None) -> int:
        off = self._ext_next
        length = (max(size or 0, 4 + len(body)) + 3) & ~3
        if off + length > 4096:
            raise ValueError("extended capabilities overflow 4096 bytes")
        self._pack("<I", off, cap_id | (version << 16))
        self.data[off + 4: off + 4 + len(body)] = body
        if self._ext_tail is not None:
            hdr = struct.unpack_from("<I", self.data, self._ext_tail)[0]
            self._pack("<I", self._ext_tail, (hdr & 0x000FFFFF) | (off << 20))
        self._ext_tail = off
        self._ext_next = off + length
        return off

    def standard_endpoint_caps(self, port_type: int = PortType.ENDPOINT, msix_vectors: int = 10) -> ConfigBuilder:
        self.add_cap(0x01, bytes([0x03, 0xC8, 0x00, 0x00, 0x00, 0x00]), 8)  # PM
        self.add_cap(0x11, struct.pack("<HII", msix_vectors - 1, 0x3, 0x2003), 12)  # MSI-X
        self.pcie(port_type)
        return self

    def pcie(self, port_type: int, *, slot: bool = False) -> int:
        reg = 0x2 | (port_type << 4) | (0x100 if slot else 0)
        return self.add_cap(0x10, struct.pack("<H", reg), 0x3C)

    def aer(self) -> int:
        return self.add_ext_cap(ExtCapId.AER, 2, bytes(0x3C))

    def dsn(self, serial: int) -> int:
        return self.add_ext_cap(ExtCapId.DSN, 1, struct.pack("<Q", serial))

    def ari(self, next_function: int = 0, *, mfvc: bool = False, acs: bool = False,
            mfvc_enable: bool = False, acs_enable: bool = False, group: int = 0) -> int:
        cap = int(mfvc) | int(acs) << 1 | (next_function << 8)
        ctl = int(mfvc_enable) | int(acs_enable) << 1 | (group & 7) << 4
        return self.add_ext_cap(ExtCapId.ARI, 1, struct.pack("<HH", cap, ctl), 0x10)

    def acs(self, capability: int, control: int, egress_vector_size: int = 0) -> int:
        cap = (capability & 0x7F) | (egress_vector_size << 8)
        return self.add_ext_cap(ExtCapId.ACS, 1, struct.pack("<HH", cap, control & 0x7F))

    def sriov(self, *, initial_vfs: int, total_vfs: int, num_vfs: int, vf_offset: int, vf_stride: int,
              vf_device: int, capabilities: int = 0, control: int = 0, status: int = 0,
              function_dependency_link: int = 0, supported_page_sizes: int = 0x553,
              system_page_size: int = 1, vf_bars: Sequence[int] = (0, 0, 0, 0, 0, 0),
              migration_state: int = 0) -> int:
        body = struct.pack("<IHHHHHBxHHxxHII6II", capabilities, control, status, initial_vfs, total_vfs,
                           num_vfs, function_dependency_link, vf_offset, vf_stride, vf_device,
                           supported_page_sizes, system_page_size, *vf_bars, migration_state)
        return self.add_ext_cap(ExtCapId.SRIOV, 1, body, 0x40)

    def bytes(self) -> bytes:
        return bytes(self.data)
