"""The VF netlink view (what `ip -d link show PF` lists as `vf N …`) and how it is changed.

A :class:`Netlink` is part of the host boundary: the real one speaks rtnetlink through pyroute2
(:mod:`sriovctl.host.netlink_real`), the simulated one keeps the view in the simulated host's state.
Both count their requests, so tests can prove how many round trips a change took.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sriovctl import attrs
from sriovctl.model import VfNetlink


@dataclass(frozen=True, slots=True)
class VfChange:
    """One kernel request for one VF. ``attr`` names its request group (attrs.REQUESTS); ``value`` is the group's one
    value, or a tuple of its members' values in attrs.REQUEST_ATTRS order (``vlan``: vlan, qos, protocol; ``rate``:
    min, max)."""

    vf: int
    attr: str
    value: object

    def members(self) -> dict[str, object]:
        """The request's value per attribute key."""
        keys = attrs.REQUEST_ATTRS[self.attr]
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        return {a.key: v for a, v in zip(keys, values, strict=True)}


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


def kernel_order(changes: list[VfChange]) -> list[VfChange]:
    """Changes in the order the kernel applies them: by VF (message order), then attribute order."""
    rank = {attr: i for i, attr in enumerate(attrs.KERNEL_ORDER)}
    return sorted(changes, key=lambda c: (c.vf, rank[c.attr]))


__all__ = ["VfNetlink"]  # re-exported: the model owns it
