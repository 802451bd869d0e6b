"""A /sys-shaped directory tree for simulated hosts: real files and relative symlinks laid out as the
kernel lays them out, so that other tools (lspci -A linux-sysfs) read it too.

This module only knows the layout. What the kernel does in reaction to writes lives in
:mod:`sriovctl.host.sim`; how a spec becomes a tree lives in :mod:`sriovctl.host.sim.build`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from sriovctl.drivers import is_net
from sriovctl.host.base import safe_name
from sriovctl.leftovers import owner_gone
from sriovctl.pci.address import PciAddress
from sriovctl.pci.config import PortType, decode

PCI_DEVICES = "sys/bus/pci/devices"
PCI_DRIVERS = "sys/bus/pci/drivers"
GROUPS = "sys/kernel/iommu_groups"
REQ_ACS = 0b11101  # SV RR CR UF: what the kernel requires for isolation (REQ_ACS_FLAGS)
STATE_FILE = "sim.json"
JOURNAL = "sim-journal.json"  # an sriov_numvfs change in progress: completed by the next holder of the lock
KILL_HOOK = "SRIOVCTL_SIM_KILL_AFTER"  # tests: SIGKILL this process at its N-th change of the tree

# Per-process lock state, keyed by lock file: flock() locks belong to an open file description, so two SimTree
# objects of one process on one host share one descriptor and a depth count instead of deadlocking.
_LOCKS: dict[str, list[int]] = {}


# The files of a netdev's statistics/ directory the simulator keeps (net-sysfs.c netstat_attrs, a subset)
NETDEV_STATISTICS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped", "multicast",
                     "rx_errors", "tx_errors")


def _rel(from_dir: str, to: str) -> str:
    return os.path.relpath(to, from_dir)


def _uevent(addr: PciAddress, vendor: int, device: int, class_code: int, subsystem: tuple[int, int],
            modalias: str) -> str:
    """pci_uevent()'s lines (the kernel's %04X formats), without DRIVER= (nothing bound yet)."""
    return (f"PCI_CLASS={class_code:04X}\nPCI_ID={vendor:04X}:{device:04X}\n"
            f"PCI_SUBSYS_ID={subsystem[0]:04X}:{subsystem[1]:04X}\nPCI_SLOT_NAME={addr}\nMODALIAS={modalias}")


def lock_path(root: str) -> str:
    """The simulated kernel's lock: beside the tree (``.NAME.lock``), so a rebuild that replaces the tree
    takes the same lock."""
    root = root.rstrip("/")
    return os.path.join(os.path.dirname(root), f".{os.path.basename(root)}.lock")


class SimTree:
    """A simulated host's tree at ``root``, with its out-of-/sys state in ``sim.json``.

    Every change of the simulated kernel runs under :meth:`locked` — the kernel's own serialisation (device_lock,
    the rtnl lock) — which re-reads the state first, so concurrent sriovctl processes lose no update. A change of
    sriov_numvfs is journaled: the real kernel finishes such a write even when the writer is killed, so if a
    writer dies mid-change the next holder of the lock completes it (:meth:`recover`)."""

    # Completes a journaled sriov_numvfs change on one PF (scrub, then enable): set by sim/kernel.py.
    complete_numvfs: ClassVar[Callable[[SimTree, PciAddress, int], None] | None] = None

    def __init__(self, root: str) -> None:
        self.root = root
        self.state: dict[str, Any] = {}
        self._changes = 0
        hook = os.environ.get(KILL_HOOK, "")
        self._kill_at = int(hook) if hook.isascii() and hook.isdigit() else 0
        self._load()

    def _load(self) -> None:
        p = os.path.join(self.root, STATE_FILE)
        try:
            with open(p, encoding="utf-8") as f:
                self.state = json.load(f)
        except FileNotFoundError:
            pass

    def save(self) -> None:
        self._tick()
        self._write_json(STATE_FILE, self.state, 0o644)

    def _write_json(self, name: str, doc: object, mode: int) -> None:
        """Replace ``name`` atomically: a private temporary file per process (``.NAME.PID.tmp``), then rename."""
        tmp = os.path.join(self.root, f".{name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            json.dump(doc, f, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(self.root, name))

    # ---- the simulated kernel's lock and its crash behaviour ----
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the simulated kernel's lock (re-entrant in one process); the state is re-read on entry and an
        interrupted sriov_numvfs change of a killed process is completed first."""
        path = lock_path(self.root)
        entry = _LOCKS.get(path)
        if entry is None:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            entry = _LOCKS[path] = [fd, 0]
        entry[1] += 1
        try:
            if entry[1] == 1:
                self._load()
                if os.path.exists(self.p(JOURNAL)):
                    self.recover()
                self._remove_stale_temps()
            yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del _LOCKS[path]
                fcntl.flock(entry[0], fcntl.LOCK_UN)
                os.close(entry[0])

    def _remove_stale_temps(self) -> None:
        """Temporary state files of processes killed while writing them (``.sim.json.PID.tmp``)."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return
        for name in names:
            if name.startswith(".") and name.endswith(".tmp") and owner_gone(name[:-4].rsplit(".", 1)[-1]):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.root, name))

    def begin(self, targets: dict[str, int]) -> None:
        """Journal a change of sriov_numvfs (PF address → the count it ends with) before making it."""
        self._tick()
        self._write_json(JOURNAL, {"numvfs": targets, "pid": os.getpid()}, 0o600)

    def end(self) -> None:
        self._tick()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.p(JOURNAL))

    def recover(self) -> None:
        """Complete the journaled sriov_numvfs change of a process that died making it: every trace of the PF's
        VFs is removed, whatever step the writer reached, and the PF is brought to the count it was writing."""
        try:
            with open(self.p(JOURNAL), encoding="utf-8") as f:
                journal = json.load(f)
            targets = {PciAddress.parse(a): int(n) for a, n in journal["numvfs"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            targets = {}  # a journal cut short before its rename cannot exist; an unreadable one has no target
        complete = SimTree.complete_numvfs
        if complete is None:  # the kernel module registers it on import (sim/kernel.py): the tree stays below it
            raise RuntimeError("simulated kernel not loaded: import sriovctl.host.sim.kernel")
        for pf, n in sorted(targets.items()):
            if self.has_device(pf):
                complete(self, pf, n)
        self.save()
        self.end()

    def _tick(self) -> None:
        """Count a change of the tree; the test hook kills the process at the N-th (a crash at any step)."""
        self._changes += 1
        if self._kill_at and self._changes >= self._kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    # ---- plain file helpers ----
    def p(self, rel: str) -> str:
        if rel.startswith("/") or ("/../" in f"/{rel}/") or "\x00" in rel:
            raise ValueError(f"simulated tree path {rel!r}: not inside the tree")  # a bug, not user input
        return os.path.join(self.root, rel)

    def put(self, rel: str, content: str | bytes, mode: int = 0o644) -> None:
        self._tick()
        path = self.p(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, mode)
        except FileNotFoundError:  # the directory first (most puts go into one that exists: no mkdir per file)
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            fd = os.open(path, flags, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
            os.fchmod(f.fileno(), mode)

    def get(self, rel: str) -> str:
        with open(self.p(rel), encoding="utf-8") as f:
            return f.read().strip()

    def link(self, rel: str, target_rel: str) -> None:
        self._tick()
        path = self.p(rel)
        target = _rel(os.path.dirname(path), self.p(target_rel))
        try:
            os.symlink(target, path)
        except FileExistsError:
            os.unlink(path)
            os.symlink(target, path)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            os.symlink(target, path)

    def unlink(self, rel: str) -> None:
        if os.path.lexists(self.p(rel)):
            self._tick()
            os.unlink(self.p(rel))

    def rmtree(self, rel: str) -> None:
        if os.path.lexists(self.p(rel)):
            self._tick()
            shutil.rmtree(self.p(rel))

    # ---- devices ----
    def devdir(self, addr: PciAddress) -> str:
        """The device's real directory, relative to the root (sys/devices/pci0000:00/…/ADDR)."""
        target = os.path.realpath(self.p(f"{PCI_DEVICES}/{addr}"))
        return os.path.relpath(target, self.root)

    def has_device(self, addr: PciAddress) -> bool:
        return os.path.lexists(self.p(f"{PCI_DEVICES}/{addr}"))

    def create_device(self, parent_dir: str, addr: PciAddress, config: bytes, *, vendor: int, device: int,
                      class_code: int, revision: int, subsystem: tuple[int, int], numa_node: int,
                      resources: list[tuple[int, int, int]], extra: dict[str, str] | None = None) -> str:
        d = f"{parent_dir}/{addr}"
        self._tick()
        os.makedirs(self.p(d), mode=0o755, exist_ok=True)
        files = {
            "vendor": f"0x{vendor:04x}", "device": f"0x{device:04x}", "class": f"0x{class_code:06x}",
            "revision": f"0x{revision:02x}", "subsystem_vendor": f"0x{subsystem[0]:04x}",
            "subsystem_device": f"0x{subsystem[1]:04x}", "numa_node": str(numa_node), "irq": "0",
            "enable": "1", "driver_override": "(null)", "local_cpulist": "0-1",
            "modalias": f"pci:v{vendor:08X}d{device:08X}sv{subsystem[0]:08X}sd{subsystem[1]:08X}"
                        f"bc{class_code >> 16:02X}sc{(class_code >> 8) & 0xFF:02X}i{class_code & 0xFF:02X}",
        }
        files.update(extra or {})
        files["uevent"] = _uevent(addr, vendor, device, class_code, subsystem, files["modalias"])
        for name, value in files.items():
            self.put(f"{d}/{name}", value + "\n")
        self.put(f"{d}/config", config)
        lines = [f"0x{s:016x} 0x{e:016x} 0x{fl:016x}" for s, e, fl in resources]
        self.put(f"{d}/resource", "\n".join(lines) + "\n")
        for name in ("remove", "rescan", "reset"):
            self.put(f"{d}/{name}", "", 0o200)
        self.link(f"{d}/subsystem", "sys/bus/pci")
        self.link(f"{PCI_DEVICES}/{addr}", d)
        return d

    def remove_device(self, addr: PciAddress) -> None:
        d = self.devdir(addr)
        drv = self.driver_of(addr)
        if drv:
            self.unbind(addr, drv)
        grp = self.group_of(addr)
        if grp is not None:
            self.unlink(f"{GROUPS}/{grp}/devices/{addr}")
            if not os.listdir(self.p(f"{GROUPS}/{grp}/devices")):
                self.rmtree(f"{GROUPS}/{grp}")
                self.unlink(f"dev/vfio/{grp}")
        self.unlink(f"{PCI_DEVICES}/{addr}")
        self.rmtree(d)

    def config(self, addr: PciAddress) -> bytearray:
        with open(self.p(f"{PCI_DEVICES}/{addr}/config"), "rb") as f:
            return bytearray(f.read())

    def set_config(self, addr: PciAddress, data: bytes) -> None:
        self._tick()
        with open(self.p(f"{PCI_DEVICES}/{addr}/config"), "wb") as f:
            f.write(data)

    # ---- drivers ----
    def register_driver(self, name: str, ids: list[tuple[int, int]]) -> None:
        safe_name(name, "driver")
        drivers = self.state.setdefault("drivers", {})
        known = drivers.setdefault(name, [])
        for v, dv in ids:
            if [v, dv] not in known:
                known.append([v, dv])
        base = f"{PCI_DRIVERS}/{name}"
        if not os.path.isdir(self.p(base)):
            for f in ("bind", "unbind", "new_id", "remove_id", "uevent"):
                self.put(f"{base}/{f}", "", 0o200)
            self.link(f"{base}/module", f"sys/module/{name.replace('-', '_')}")
            os.makedirs(self.p(f"sys/module/{name.replace('-', '_')}/drivers"), exist_ok=True)

    def driver_of(self, addr: PciAddress) -> str | None:
        t = os.readlink(self.p(f"{self.devdir(addr)}/driver")) if os.path.lexists(
            self.p(f"{self.devdir(addr)}/driver")) else None
        return None if t is None else os.path.basename(t)

    def _set_uevent_driver(self, d: str, driver: str | None) -> None:
        """dev_uevent() starts with DRIVER=NAME while a driver is bound (the file is made when read)."""
        if not os.path.exists(self.p(f"{d}/uevent")):
            return  # a tree built before the simulator wrote uevent: the inventory reads the files instead
        lines = [x for x in self.get(f"{d}/uevent").splitlines() if not x.startswith("DRIVER=")]
        self.put(f"{d}/uevent", "\n".join(([f"DRIVER={driver}"] if driver else []) + lines) + "\n")

    def bind(self, addr: PciAddress, driver: str) -> None:
        d = self.devdir(addr)
        self.link(f"{d}/driver", f"{PCI_DRIVERS}/{driver}")
        self._set_uevent_driver(d, driver)
        self.link(f"{PCI_DRIVERS}/{driver}/{addr}", d)
        if is_net(driver):
            self.create_netdev(addr)
        if driver == "vfio-pci":
            grp = self.group_of(addr)
            if grp is not None:
                self.put(f"dev/vfio/{grp}", "", 0o600)

    def unbind(self, addr: PciAddress, driver: str) -> None:
        d = self.devdir(addr)
        self.unlink(f"{d}/driver")
        self._set_uevent_driver(d, None)
        self.unlink(f"{PCI_DRIVERS}/{driver}/{addr}")
        for ifname in self.netdevs(addr):
            self.remove_netdev(addr, ifname)
        grp = self.group_of(addr)
        if driver == "vfio-pci" and grp is not None and not any(
                self.driver_of(PciAddress.parse(m)) == "vfio-pci" for m in self.group_members(grp)):
            self.unlink(f"dev/vfio/{grp}")

    # ---- network devices ----
    def netdevs(self, addr: PciAddress) -> list[str]:
        p = self.p(f"{self.devdir(addr)}/net")
        return sorted(os.listdir(p)) if os.path.isdir(p) else []

    def create_netdev(self, addr: PciAddress) -> str:
        names = self.state.setdefault("netdev_names", {})
        ifname = names.get(str(addr)) or f"enp{addr.bus}s{addr.slot}" + (f"f{addr.function}" if addr.function else "")
        macs = self.state.setdefault("macs", {})
        mac = macs.get(str(addr))
        if mac is None:  # a random-looking, locally administered MAC, stable per address (as igbvf makes one)
            h = hashlib.sha256(f"{self.state.get('name', '')}/{addr}".encode()).digest()
            mac = ":".join(f"{b:02x}" for b in bytes([(h[0] & 0xFC) | 0x02]) + h[1:6])
        self.state["next_ifindex"] = idx = self.state.get("next_ifindex", 2) + 1
        nd = f"{self.devdir(addr)}/net/{ifname}"
        for name, value in {"address": mac, "operstate": "down", "mtu": "1500", "ifindex": str(idx - 1),
                            "type": "1", "carrier": "0", "flags": "0x1002", "addr_len": "6",
                            "broadcast": "ff:ff:ff:ff:ff:ff"}.items():
            self.put(f"{nd}/{name}", value + "\n")
        for name in NETDEV_STATISTICS:  # a new netdev counts from 0 (alloc_etherdev: zeroed stats)
            self.put(f"{nd}/statistics/{name}", "0\n")
        self.link(f"{nd}/device", self.devdir(addr))
        self.link(f"sys/class/net/{ifname}", nd)
        return ifname

    def remove_netdev(self, addr: PciAddress, ifname: str) -> None:
        self.unlink(f"sys/class/net/{ifname}")
        self.rmtree(f"{self.devdir(addr)}/net/{ifname}")
        if not os.listdir(self.p(f"{self.devdir(addr)}/net")):
            self.rmtree(f"{self.devdir(addr)}/net")

    # ---- IOMMU groups (the kernel's pci_device_group, simplified) ----
    def group_of(self, addr: PciAddress) -> int | None:
        t = self.p(f"{self.devdir(addr)}/iommu_group")
        return int(os.path.basename(os.readlink(t))) if os.path.lexists(t) else None

    def group_members(self, group: int) -> list[str]:
        p = self.p(f"{GROUPS}/{group}/devices")
        return sorted(os.listdir(p)) if os.path.isdir(p) else []

    def _parent_bridge(self, addr: PciAddress) -> PciAddress | None:
        parent = os.path.basename(os.path.dirname(self.devdir(addr)))
        return PciAddress.try_parse(parent)

    def _acs_ok(self, addr: PciAddress) -> bool:
        cs = decode(bytes(self.config(addr)))
        quirk = str(addr) in self.state.get("mf_acs_quirk", [])
        port = cs.pcie.port_type if cs.pcie else None
        required = port in (PortType.ROOT_PORT, PortType.DOWNSTREAM_PORT) or (cs.multifunction and not quirk)
        if not required:
            return True
        return cs.acs is not None and all(
            getattr(cs.acs.control, n) for n in ("source_validation", "p2p_request_redirect",
                                                 "p2p_completion_redirect", "upstream_forwarding"))

    def _path_ok(self, bridge: PciAddress | None) -> bool:
        while bridge is not None:
            if not self._acs_ok(bridge):
                return False
            bridge = self._parent_bridge(bridge)
        return True

    def group_anchor(self, addr: PciAddress) -> str:
        pdev = addr
        b = self._parent_bridge(addr)
        while b is not None:
            if self._path_ok(b):
                break
            pdev = b
            b = self._parent_bridge(b)
        cs = decode(bytes(self.config(pdev)))
        is_vf = os.path.lexists(self.p(f"{self.devdir(pdev)}/physfn"))
        if cs.multifunction and not is_vf and not self._acs_ok(pdev):
            return f"slot:{pdev.domain:04x}:{pdev.bus:02x}:{pdev.slot:02x}"
        return str(pdev)

    def assign_group(self, addr: PciAddress) -> int:
        anchors: dict[str, int] = self.state.setdefault("group_anchors", {})
        key = self.group_anchor(addr)
        if key not in anchors or not os.path.isdir(self.p(f"{GROUPS}/{anchors[key]}")):
            used = {int(g) for g in os.listdir(self.p(GROUPS))} if os.path.isdir(self.p(GROUPS)) else set()
            n = self.state.get("next_group", 0)
            while n in used:
                n += 1
            anchors[key] = n
            self.state["next_group"] = n + 1
            self._tick()
            os.makedirs(self.p(f"{GROUPS}/{n}/devices"), mode=0o755, exist_ok=True)
            self.put(f"{GROUPS}/{n}/type", "DMA\n")
            self.put(f"{GROUPS}/{n}/reserved_regions", "0x00000000fee00000 0x00000000feefffff msi\n")
        n = anchors[key]
        d = self.devdir(addr)
        self.link(f"{GROUPS}/{n}/devices/{addr}", d)
        self.link(f"{d}/iommu_group", f"{GROUPS}/{n}")
        return n
