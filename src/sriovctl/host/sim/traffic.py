"""Traffic on a simulated VF: the counters a real one grows. The device counts every frame (what a driver with
ndo_get_vf_stats reports through IFLA_VF_STATS — ice's VSI counters); a VF bound to a host network driver
also counts in its netdev's statistics/ (what igbvf keeps, and the only count an igb host has: igb reports
IFLA_VF_STATS as zeros, seen in the lab). A netdev counts from its creation; the device's counters live as
long as the VF does."""

from __future__ import annotations

import os

from sriovctl.errors import UsageError
from sriovctl.host.sim.tree import NETDEV_STATISTICS, SimTree
from sriovctl.host.vfinfo import STATS_NAMES
from sriovctl.metrics.families import VF_COUNTERS
from sriovctl.pci.address import PciAddress

COUNTERS = tuple(STATS_NAMES.values())  # rx_packets … tx_dropped, in IFLA_VF_STATS_* names
# IFLA_VF_STATS name → the netdev statistics file that counts the same frames (the exporter's table: a netdev
# has no broadcast file)
NETDEV_FILE = {c.netlink: c.netdev for c in VF_COUNTERS if c.netdev is not None}
MAX_STEP = 1 << 48  # one advance: a counter wraps at 2^64, the test that needs that can step many times


def _vf_index(t: SimTree, vf: PciAddress) -> tuple[PciAddress, int]:
    d = t.devdir(vf)
    physfn = t.p(f"{d}/physfn")
    if not os.path.islink(physfn):
        raise UsageError(f"{vf}: not a VF of the simulated host")
    pf = PciAddress.parse(os.path.basename(os.readlink(physfn)))
    pfdir = t.p(t.devdir(pf))
    for name in os.listdir(pfdir):
        if name.startswith("virtfn") and os.path.basename(os.readlink(os.path.join(pfdir, name))) == str(vf):
            return pf, int(name[6:])
    raise UsageError(f"{vf}: its PF {pf} does not list it")


def advance(t: SimTree, vf: PciAddress, counts: dict[str, int]) -> dict[str, int]:
    """Count ``counts`` more frames/bytes on ``vf`` (keys: COUNTERS); returns the device's counters after."""
    bad = sorted(set(counts) - set(COUNTERS))
    if bad:
        raise UsageError(f"traffic: unknown counter {bad[0]!r}", hint=f"one of {', '.join(COUNTERS)}")
    for k, v in counts.items():
        if not 0 <= v <= MAX_STEP:
            raise UsageError(f"traffic: {k} {v}: must be 0..{MAX_STEP}")
    with t.locked():
        pf, i = _vf_index(t, vf)
        entries = t.state.get("vfinfo", {}).get(str(pf), [])
        if i >= len(entries):
            raise UsageError(f"{vf}: VF {i} of {pf} has no state")
        device = entries[i].setdefault("stats", {})
        for k, v in counts.items():
            device[k] = (int(device.get(k, 0)) + v) % (1 << 64)
        for ifname in t.netdevs(vf):
            for k, v in counts.items():
                name = NETDEV_FILE.get(k)
                if name is None or name not in NETDEV_STATISTICS:
                    continue
                rel = f"{t.devdir(vf)}/net/{ifname}/statistics/{name}"
                try:
                    old = int(t.get(rel))
                except (OSError, ValueError):
                    old = 0
                t.put(rel, f"{(old + v) % (1 << 64)}\n")
        t.save()
        return {k: int(device.get(k, 0)) for k in COUNTERS}


__all__ = ["COUNTERS", "NETDEV_FILE", "advance"]
