"""The VF netlink view (what `ip -d link show PF` lists as `vf N …`) and how it is changed.

A :class:`Netlink` is part of the host boundary: the real one speaks rtnetlink through pyroute2
(:mod:`sriovctl.host.netlink_real`), the simulated one keeps the view in the simulated host's state.
Both count their requests, so tests can prove how many round trips a change took.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sriovctl.attrs import KERNEL_ORDER
from sriovctl.model import LinkState, VfNetlink

LINK_STATE_CODES = {LinkState.AUTO: 0, LinkState.ENABLE: 1, LinkState.DISABLE: 2}
LINK_STATE_NAMES = {v: k for k, v in LINK_STATE_CODES.items()}



@dataclass(frozen=True, slots=True)
class VfChange:
    """One attribute of one VF to set. ``attr`` is one of attrs.KERNEL_ORDER; ``vlan`` carries (vlan, qos, proto)
    and ``rate`` (min, max)."""

    vf: int
    attr: str
    value: object

    def vlan_spec(self) -> tuple[int, int, str]:
        v = self.value
        assert isinstance(v, tuple) and len(v) == 3
        return int(v[0]), int(v[1]), str(v[2])

    def rate_spec(self) -> tuple[int, int]:
        v = self.value
        assert isinstance(v, tuple) and len(v) == 2
        return int(v[0]), int(v[1])


@dataclass
class NetlinkError(Exception):
    """The kernel refused a request: ``errno`` as it answered, ``message`` from the extended ack."""

    errno: int
    message: str = ""


class Netlink(Protocol):
    requests: int

    def get_vfs(self, ifname: str, stats: bool = False) -> list[VfNetlink]:
        """The PF's VF list in one RTM_GETLINK (VF filter on, statistics skipped unless asked)."""
        ...

    def set_vfs(self, ifname: str, changes: list[VfChange]) -> None:
        """Apply changes in one RTM_SETLINK (many IFLA_VF_INFO entries). Raises NetlinkError at the first
        refused attribute; the changes before it (in kernel order) stay applied."""
        ...


@dataclass
class RequestCounter:
    requests: int = 0
    log: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        self.requests += 1
        self.log.append(what)


_RANK = {attr: i for i, attr in enumerate(KERNEL_ORDER)}


def kernel_order(changes: list[VfChange]) -> list[VfChange]:
    """Changes in the order the kernel applies them: by VF (message order), then attribute order."""
    return sorted(changes, key=lambda c: (c.vf, _RANK[c.attr]))


__all__ = ["LinkState", "VfNetlink"]  # re-exported: the model owns them
