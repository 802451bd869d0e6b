"""Read configuration-space dumps: ``lspci -x/-xxx/-xxxx`` text (also mixed with ``-vvv`` decode lines,
several devices per file) and raw binary images (a sysfs ``config`` file)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sriovctl.errors import DataError
from sriovctl.pci.address import PciAddress
from sriovctl.untrusted import read_regular, shown

_DEVICE_LINE = re.compile(r"^((?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+(.*)$")
_HEX_LINE = re.compile(r"^([0-9a-fA-F]{2,3}):((?:\s+[0-9a-fA-F]{2})+)\s*$")


@dataclass(frozen=True, slots=True)
class DumpedDevice:
    address: PciAddress | None
    title: str  # the rest of lspci's device line, e.g. "Ethernet controller: Intel …"
    data: bytes


def parse_text(text: str, *, source: str = "dump") -> list[DumpedDevice]:
    """Parse lspci hex dumps. Bytes not shown in the dump are absent (the image is as long as the
    highest offset dumped); a gap in the offsets is a data error."""
    devices: list[DumpedDevice] = []
    addr: PciAddress | None = None
    title = ""
    buf = bytearray()
    started = False

    def flush(lineno: int) -> None:
        nonlocal buf, started
        if started:
            if not buf:
                raise DataError(f"{source}:{lineno}: device {addr} has no hex dump lines",
                                hint="dump with lspci -xxxx (or -x as non-root)")
            devices.append(DumpedDevice(addr, title, bytes(buf)))
        buf = bytearray()
        started = False

    for lineno, line in enumerate(text.splitlines(), 1):
        m = _DEVICE_LINE.match(line)
        if m:
            flush(lineno)
            addr, title, started = PciAddress.parse(m.group(1)), m.group(2), True
            continue
        h = _HEX_LINE.match(line)
        if h:
            if not started:  # a dump without a device line
                addr, title, started = None, "", True
            off = int(h.group(1), 16)
            values = bytes(int(x, 16) for x in h.group(2).split())
            if off != len(buf):
                raise DataError(f"{source}:{lineno}: hex line at offset {off:#x}, expected {len(buf):#x}",
                                hint="the dump is cut or edited; dump again with lspci -xxxx")
            buf += values
    flush(len(text.splitlines()) + 1)
    if not devices:
        raise DataError(f"{source}: no configuration-space dump found",
                        hint="expected lspci -x/-xxx/-xxxx output or a binary config file")
    return devices


CONFIG_BYTES = 4096  # a PCIe function's whole configuration space: the most a binary image can hold
TEXT_BYTES = 64 << 20  # lspci -xxxx text: ~14 KB a device, so a whole 16x256 host (4,129 devices) fits


def read_dump(path: Path) -> list[DumpedDevice]:
    """Read a dump file: text if it looks like lspci output, else a raw binary config image. Only a regular
    file, and at most TEXT_BYTES (a binary image at most CONFIG_BYTES): /dev/zero or a FIFO is refused."""
    raw = read_regular(str(path), TEXT_BYTES, shown(str(path))[1:-1])
    if not raw:
        raise DataError(f"{path}: empty file, not a dump")
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return parse_text(text, source=str(path))  # a text file: it must be an lspci dump
    if len(raw) > CONFIG_BYTES:
        raise DataError(f"{path}: {len(raw)} bytes of binary data, more than a configuration space ({CONFIG_BYTES})",
                        hint="a binary dump is a sysfs config file; text dumps come from lspci -xxxx")
    return [DumpedDevice(None, "", raw)]


def format_dump(address: PciAddress, title: str, data: bytes) -> str:
    """Format like ``lspci -xxxx``: device line, then 16 bytes per line."""
    lines = [f"{address.short} {title}".rstrip()]
    for off in range(0, len(data), 16):
        chunk = " ".join(f"{b:02x}" for b in data[off:off + 16])
        lines.append(f"{off:02x}: {chunk}")
    return "\n".join(lines) + "\n"
