"""Which changes a driver refused, found with few requests at any VF count, against a fake PF that keeps the
kernel's rule (do_setvfinfo: a message's changes in order, stopping at the first refused; the lab showed it
on igb and netdevsim)."""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Callable

from sriovctl.host.netlink import NetlinkError, VfChange, kernel_order
from sriovctl.model import VfNetlink
from sriovctl.ops.vfattrs import _send


class KernelRule:
    def __init__(self, count: int, refuses: Callable[[VfChange], bool]) -> None:
        self.vfs = {i: VfNetlink(i, mac="02:00:00:00:00:00", vlan=0, qos=0, vlan_proto="802.1Q", spoofchk=False,
                                 trust=False, min_tx_rate=0, max_tx_rate=0) for i in range(count)}
        self.refuses = refuses
        self.requests = 0

    def set_vfs(self, ifname: str, changes: list[VfChange]) -> None:
        self.requests += 1
        for c in kernel_order(changes):
            if self.refuses(c):
                raise NetlinkError(errno.EOPNOTSUPP, "")
            v = self.vfs[c.vf]
            if c.attr == "rate":
                lo, hi = c.value  # type: ignore[misc]
                self.vfs[c.vf] = dataclasses.replace(v, min_tx_rate=lo, max_tx_rate=hi)
            elif c.attr == "vlan":
                vlan, qos, proto = c.value  # type: ignore[misc]
                self.vfs[c.vf] = dataclasses.replace(v, vlan=vlan, qos=qos, vlan_proto=proto)
            else:
                self.vfs[c.vf] = dataclasses.replace(v, **{c.attr: c.value})

    def get_vfs(self, ifname: str, stats: bool = False) -> list[VfNetlink]:
        self.requests += 1
        return list(self.vfs.values())


def _changes(count: int) -> list[VfChange]:
    return kernel_order([VfChange(vf, attr, value) for vf in range(count) for attr, value in
                         (("mac", f"02:00:00:00:{vf >> 8:02x}:{vf & 0xFF:02x}"), ("vlan", (7, 0, "802.1Q")),
                          ("trust", True), ("rate", (0, 100)))])


def test_an_attribute_refused_on_every_vf_costs_one_request_per_vf_not_per_change() -> None:
    pf = KernelRule(512, lambda c: c.attr == "rate")
    refused = _send(pf, "pf", _changes(512))  # type: ignore[arg-type]
    assert sorted(c.vf for c in refused) == list(range(512)) and {c.attr for c in refused} == {"rate"}
    assert all(v.trust and v.vlan == 7 and v.mac == f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}"
               for i, v in pf.vfs.items())  # every other change applied, on every VF
    assert pf.requests <= 512 + 5, pf.requests  # was 1 + 2,048 (one per change)


def test_one_vf_refusing_costs_a_handful_of_requests() -> None:
    pf = KernelRule(256, lambda c: c.vf == 100 and c.attr == "vlan")
    refused = _send(pf, "pf", _changes(256))  # type: ignore[arg-type]
    assert [(c.vf, c.attr) for c in refused] == [(100, "vlan")]
    assert pf.vfs[100].trust and pf.vfs[255].max_tx_rate == 100 and pf.vfs[100].vlan == 0
    assert pf.requests < 256 + 6, pf.requests  # vlan of VFs 101-255 tried one by one: accepted


def test_a_refusal_of_a_change_that_was_already_so_stops_cleanly() -> None:
    pf = KernelRule(4, lambda c: c.attr == "trust" and c.value is False)  # refuses, but trust is already off
    refused = _send(pf, "pf", [VfChange(i, "trust", False) for i in range(4)])  # type: ignore[arg-type]
    assert refused == {} and pf.requests == 2  # the message, one read-back: everything reads as asked
