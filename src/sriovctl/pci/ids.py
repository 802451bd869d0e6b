"""Vendor, device and class names from the system's pci.ids, with lspci-style numeric fallbacks.

The file is found through ``$SRIOVCTL_PCI_IDS``, then Debian's and RHEL's locations. Lookups search the
text directly (no full parse): a handful of lookups cost far less than parsing 1.3 MB of names.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

SEARCH_PATH = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids")


class PciIds:
    def __init__(self, text: str) -> None:
        self._text = "\n" + text

    @classmethod
    def load(cls, path: str | None = None) -> PciIds:
        candidates = [path] if path else ([os.environ["SRIOVCTL_PCI_IDS"]] if os.environ.get("SRIOVCTL_PCI_IDS")
                                          else list(SEARCH_PATH))
        for c in candidates:
            try:
                return cls(Path(c).read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue
        return cls("")

    def _block(self, start_marker: str) -> tuple[int, int] | None:
        i = self._text.find(start_marker)
        if i < 0:
            return None
        start = i + 1
        j = start
        while True:
            j = self._text.find("\n", j + 1)
            if j < 0 or j + 1 >= len(self._text):
                return start, len(self._text)
            c = self._text[j + 1]
            if c not in "\t#":
                return start, j

    @staticmethod
    def _name(line: str) -> str:
        return line.split("  ", 1)[1].strip() if "  " in line else line.strip()

    @lru_cache(maxsize=1024)  # noqa: B019 - one instance per process
    def vendor(self, vendor: int) -> str | None:
        i = self._text.find(f"\n{vendor:04x}  ")
        if i < 0:
            return None
        end = self._text.find("\n", i + 1)
        return self._name(self._text[i + 1:end if end > 0 else None])

    @lru_cache(maxsize=4096)  # noqa: B019
    def device(self, vendor: int, device: int) -> str | None:
        blk = self._block(f"\n{vendor:04x}  ")
        if blk is None:
            return None
        i = self._text.find(f"\n\t{device:04x}  ", blk[0] - 1, blk[1])
        if i < 0:
            return None
        end = self._text.find("\n", i + 1)
        return self._name(self._text[i + 1:end])

    @lru_cache(maxsize=4096)  # noqa: B019
    def subsystem(self, vendor: int, device: int, sub_vendor: int, sub_device: int) -> str | None:
        blk = self._block(f"\n{vendor:04x}  ")
        if blk is None:
            return None
        d = self._text.find(f"\n\t{device:04x}  ", blk[0] - 1, blk[1])
        if d < 0:
            return None
        end = self._text.find("\n\t", d + 1, blk[1])
        while end >= 0 and self._text.startswith("\n\t\t", end):
            end = self._text.find("\n\t", end + 1, blk[1])
        stop = end if end >= 0 else blk[1]
        i = self._text.find(f"\n\t\t{sub_vendor:04x} {sub_device:04x}  ", d, stop)
        if i < 0:
            return None
        e = self._text.find("\n", i + 1)
        return self._name(self._text[i + 1:e])

    @lru_cache(maxsize=256)  # noqa: B019
    def class_name(self, class_code: int) -> str | None:
        """Subclass name if known, else base class name (as lspci prints it)."""
        base, sub = class_code >> 16, (class_code >> 8) & 0xFF
        blk = self._block(f"\nC {base:02x}  ")
        if blk is None:
            return None
        i = self._text.find(f"\n\t{sub:02x}  ", blk[0] - 1, blk[1])
        if i >= 0:
            return self._name(self._text[i + 1:self._text.find("\n", i + 1)])
        return self._name(self._text[blk[0]:self._text.find("\n", blk[0])].replace("C ", "", 1))

    # lspci-style strings with numeric fallbacks
    def vendor_str(self, vendor: int) -> str:
        return self.vendor(vendor) or f"Vendor {vendor:04x}"

    def device_str(self, vendor: int, device: int) -> str:
        v = self.vendor(vendor)
        d = self.device(vendor, device)
        if v and d:
            return f"{v} {d}"
        if v:
            return f"{v} Device {device:04x}"
        return f"Device {vendor:04x}:{device:04x}"

    def class_str(self, class_code: int) -> str:
        return self.class_name(class_code) or f"Class {class_code >> 8:04x}"


@lru_cache(maxsize=1)
def system_ids() -> PciIds:
    return PciIds.load()
