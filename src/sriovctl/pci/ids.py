"""Vendor, device and class names from the system's pci.ids, with lspci-style numeric fallbacks.

The file is found through ``$SRIOVCTL_PCI_IDS``, then Debian's and RHEL's locations. Lookups search the
text directly (no full parse): a handful of lookups cost far less than parsing 1.3 MB of names.
"""

from __future__ import annotations

import os
from functools import lru_cache

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
                with open(c, encoding="utf-8", errors="replace") as fh:  # not pathlib: 3 ms of every cold start
                    return cls(fh.read())
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

    @lru_cache(maxsize=256)  # noqa: B019
    def class_base(self, base: int) -> str | None:
        i = self._text.find(f"\nC {base:02x}  ")
        return None if i < 0 else self._name(self._text[i + 1:self._text.find("\n", i + 1)].replace("C ", "", 1))

    @lru_cache(maxsize=256)  # noqa: B019
    def subclass(self, class_code: int) -> str | None:
        base, sub = class_code >> 16, (class_code >> 8) & 0xFF
        blk = self._block(f"\nC {base:02x}  ")
        if blk is None:
            return None
        i = self._text.find(f"\n\t{sub:02x}  ", blk[0] - 1, blk[1])
        return None if i < 0 else self._name(self._text[i + 1:self._text.find("\n", i + 1)])

    @property
    def empty(self) -> bool:
        return not self._text.strip()

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


class LayeredIds(PciIds):
    """Names from ``first`` (a host's own, recorded names), else from ``then`` (this machine's pci.ids). The
    recorded names come from another machine: the caller escapes them (inventory.py)."""

    def __init__(self, first: PciIds, then: PciIds) -> None:
        super().__init__("")
        self.first, self.then = first, then

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per host read
    def vendor(self, vendor: int) -> str | None:
        return self.first.vendor(vendor) or self.then.vendor(vendor)

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per host read
    def device(self, vendor: int, device: int) -> str | None:
        return self.first.device(vendor, device) or self.then.device(vendor, device)

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per host read
    def subsystem(self, vendor: int, device: int, sub_vendor: int, sub_device: int) -> str | None:
        return self.first.subsystem(vendor, device, sub_vendor, sub_device) or \
            self.then.subsystem(vendor, device, sub_vendor, sub_device)

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per host read
    def class_name(self, class_code: int) -> str | None:
        return self.first.class_name(class_code) or self.then.class_name(class_code)

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per host read
    def class_base(self, base: int) -> str | None:
        return self.first.class_base(base) or self.then.class_base(base)

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per host read
    def subclass(self, class_code: int) -> str | None:
        return self.first.subclass(class_code) or self.then.subclass(class_code)

    @property
    def empty(self) -> bool:
        return self.first.empty and self.then.empty


Ident = tuple[int, int, int, int | None, int | None]  # vendor, device, class, subsystem vendor, subsystem device


def excerpt(ids: PciIds, devices: list[Ident], header: str) -> str:
    """A pci.ids text naming just these devices (vendor, device, subsystem and class lines), from ``ids``: what a
    snapshot or a simulated host carries so that it shows names wherever it is read."""
    vendors: dict[int, dict[int, set[tuple[int, int]]]] = {}
    classes: dict[int, set[int]] = {}
    for v, d, cls, sv, sd in devices:
        subs = vendors.setdefault(v, {}).setdefault(d, set())
        if sv is not None and sd is not None:
            subs.add((sv, sd))
        classes.setdefault(cls >> 16, set()).add(cls)
    lines = [f"# {header}"]
    for v in sorted(vendors):
        vn = ids.vendor(v)
        if vn is None:
            continue
        lines.append(f"{v:04x}  {vn}")
        for d in sorted(vendors[v]):
            dn = ids.device(v, d)
            if dn is None:
                continue
            lines.append(f"\t{d:04x}  {dn}")
            lines += [f"\t\t{sv:04x} {sd:04x}  {sn}" for sv, sd in sorted(vendors[v][d])
                      if (sn := ids.subsystem(v, d, sv, sd)) is not None]
    for base in sorted(classes):
        bn = ids.class_base(base)
        if bn is None:
            continue
        lines.append(f"C {base:02x}  {bn}")
        names = {(c >> 8) & 0xFF: ids.subclass(c) for c in classes[base]}
        lines += [f"\t{sub:02x}  {name}" for sub, name in sorted(names.items()) if name is not None]
    return "\n".join(lines) + "\n"


HOST_IDS = "usr/share/misc/pci.ids"  # where a host keeps its names (Debian's path; snapshots and simulated hosts too)
IDS_LIMIT = 4 << 20  # the public file is 1.3 MB
