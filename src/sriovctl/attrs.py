"""The VF attributes a PF sets for its VFs over netlink — one table that drives the CLI's options, validation,
the kernel request, read-back verification, JSON output, the simulator's defaults and nmstate's key names.

The kernel side: ``do_setvfinfo()`` in net/core/rtnetlink.c applies one VF's IFLA_VF_INFO attributes in
the order of :data:`KERNEL_ORDER` and stops at the first refused one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sriovctl.errors import UsageError
from sriovctl.untrusted import shown


class ValueKind(StrEnum):
    MAC = "mac"
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"
    TEXT = "text"  # a name checked by a pattern (a state file's PF settings)


@dataclass(frozen=True, slots=True)
class VfAttr:
    key: str  # our name: the VfNetlink field, the JSON key, the settings key
    flag: str  # the CLI option
    netlink: str  # the IFLA_VF_* attribute that carries it
    request: str  # the kernel request group it travels in (one IFLA_VF_* sets several of ours: vlan+qos+proto)
    label: str  # for people
    nmstate: str | None  # nmstate's interfaces[].ethernet.sr-iov.vfs[] key (None: nmstate has none)
    kind: ValueKind
    default: object  # a new VF's value (what `ip link` shows after enabling, seen in the lab)
    low: int = 0
    high: int = 0
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    help: str = ""
    matters_with: str | None = None  # another key of its request group that must be non-zero for it to matter

    def same(self, want: object, have: object, group: dict[str, object]) -> bool:
        """Whether a VF that has ``have`` already has ``want`` (``group``: the values its request would carry):
        MACs and choices compare without case (the kernel reports 802.1Q, nmstate writes 802.1q), and a value
        that matters only with another (a VLAN's protocol without a VLAN) always matches."""
        if self.matters_with is not None and not group.get(self.matters_with):
            return True
        if self.kind is ValueKind.MAC:
            return str(want).lower() == str(have or ZERO_MAC).lower()
        if self.kind is ValueKind.CHOICE:
            return str(want).lower() == str(have).lower()
        return want == have


VF_ATTRS: tuple[VfAttr, ...] = (
    VfAttr("mac", "--mac", "IFLA_VF_MAC", "mac", "MAC", "mac-address", ValueKind.MAC, "00:00:00:00:00:00",
           help="the VF's MAC address (one VF per call)"),
    VfAttr("vlan", "--vlan", "IFLA_VF_VLAN_LIST", "vlan", "VLAN", "vlan-id", ValueKind.INT, 0, 0, 4095,
           help="port VLAN the PF tags the VF's traffic with (0: none)"),
    VfAttr("qos", "--qos", "IFLA_VF_VLAN_LIST", "vlan", "QoS", "qos", ValueKind.INT, 0, 0, 7,
           help="802.1p priority of the port VLAN (needs --vlan)"),
    VfAttr("vlan_proto", "--proto", "IFLA_VF_VLAN_LIST", "vlan", "VLAN protocol", "vlan-proto", ValueKind.CHOICE,
           "802.1Q", choices=("802.1Q", "802.1ad"), help="port VLAN protocol (needs --vlan)", matters_with="vlan"),
    VfAttr("min_tx_rate", "--min-rate", "IFLA_VF_RATE", "rate", "minimum rate", "min-tx-rate", ValueKind.INT, 0, 0,
           0xFFFFFFFF, metavar="MBPS", help="guaranteed transmit rate, Mbit/s"),
    VfAttr("max_tx_rate", "--max-rate", "IFLA_VF_RATE", "rate", "maximum rate", "max-tx-rate", ValueKind.INT, 0, 0,
           0xFFFFFFFF, metavar="MBPS", help="transmit rate limit, Mbit/s (0: none)"),
    VfAttr("spoofchk", "--spoofchk", "IFLA_VF_SPOOFCHK", "spoofchk", "spoof check", "spoof-check", ValueKind.BOOL, True,
           metavar="on|off", help="drop frames whose source MAC is not the VF's"),
    VfAttr("link_state", "--state", "IFLA_VF_LINK_STATE", "link_state", "link state", None, ValueKind.CHOICE, "auto",
           choices=("auto", "enable", "disable"), help="the VF's link: follow the PF, always up, or down"),
    VfAttr("rss_query_en", "--query-rss", "IFLA_VF_RSS_QUERY_EN", "rss_query_en", "RSS query", None, ValueKind.BOOL,
           False, metavar="on|off", help="let the VF query the PF's RSS configuration"),
    VfAttr("trust", "--trust", "IFLA_VF_TRUST", "trust", "trust", "trust", ValueKind.BOOL, False, metavar="on|off",
           help="let the VF change its MAC, enter promiscuous mode and more"),
)
BY_KEY = {a.key: a for a in VF_ATTRS}
ZERO_MAC = str(BY_KEY["mac"].default)  # no MAC set by the host: what a new VF shows; setting it removes the MAC
BY_NMSTATE = {a.nmstate: a for a in VF_ATTRS if a.nmstate}

@dataclass(frozen=True, slots=True)
class VfRequest:
    """One kernel request group: the IFLA_VF_* attribute that do_setvfinfo() reads (and rtnl_fill_vfinfo()
    reports) as ``struct ifla_vf_*`` — ``__u32 vf`` and then the values of ``keys`` in that order (a MAC as
    ``__u8 mac[32]``, every other value a ``__u32``: a flag 0/1, a choice its index in the row's choices).
    Members of the group not in ``keys`` travel elsewhere (a VLAN's protocol: IFLA_VF_VLAN_LIST, host/vfencode).
    ``fill``: what a member that was not asked for is sent as — its default (a VLAN without QoS) or the VF's
    current value (a maximum rate keeps the minimum)."""

    name: str
    label: str
    nla: int  # IFLA_VF_* in include/uapi/linux/if_link.h
    keys: tuple[str, ...]
    fill: str = "default"  # "default" or "current"
    show: str | None = None  # how a change is printed ({key} per member); None: on/off or the value

    @property
    def layout(self) -> str:
        """The struct module's format of ``struct ifla_vf_*`` (native order, like the kernel's)."""
        layout = _LAYOUTS.get(self)
        if layout is None:
            layout = _LAYOUTS[self] = "=I" + "".join("32s" if BY_KEY[k].kind is ValueKind.MAC else "I" for k in self.keys)
        return layout


_LAYOUTS: dict[VfRequest, str] = {}  # the encoder and decoder ask for every VF


# The kernel's request groups in do_setvfinfo()'s order (it applies them so and stops at the first refusal)
VF_REQUESTS: tuple[VfRequest, ...] = (
    VfRequest("mac", "MAC", 1, ("mac",)),
    VfRequest("vlan", "VLAN", 2, ("vlan", "qos"), show="{vlan} qos {qos} {vlan_proto}"),
    VfRequest("rate", "rate", 6, ("min_tx_rate", "max_tx_rate"), fill="current",
              show="min {min_tx_rate} max {max_tx_rate} Mbit/s"),
    VfRequest("spoofchk", "spoof check", 4, ("spoofchk",)),
    VfRequest("link_state", "link state", 5, ("link_state",)),
    VfRequest("rss_query_en", "RSS query", 7, ("rss_query_en",)),
    VfRequest("trust", "trust", 9, ("trust",)),
)
REQUESTS = {r.name: r for r in VF_REQUESTS}
BY_NLA = {r.nla: r for r in VF_REQUESTS}  # the decoder's dispatch
KERNEL_ORDER = tuple(REQUESTS)
# Each request group's attributes: what one IFLA_VF_* carries together (a VLAN with its QoS and protocol)
REQUEST_ATTRS: dict[str, tuple[VfAttr, ...]] = {r: tuple(a for a in VF_ATTRS if a.request == r) for r in KERNEL_ORDER}
REQUEST_LABEL = {r.name: r.label for r in VF_REQUESTS}
U32_MAX = 0xFFFFFFFF  # the kernel's -1 in a reported flag: the driver does not report this one

_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", re.ASCII)


class AttrValueError(UsageError):
    """A VF attribute value the kernel would refuse (or that makes no sense). The user must fix it. The message
    names the attribute by its label; the CLI names it by its option (:meth:`named_by`)."""

    def __init__(self, subject: str, attr: VfAttr, value: object, problem: str, hint: str | None = None) -> None:
        self.subject, self.attr, self.value, self.problem = subject, attr, value, problem
        super().__init__(self.named_by(lambda a: a.label), hint)

    def named_by(self, name: Any) -> str:
        """The message with each attribute called ``name(attr)``; ``{key}`` in the problem names another one."""
        problem = self.problem.format(**{k: name(a) for k, a in BY_KEY.items()})
        if self.value is None:
            return f"{self.subject}: {name(self.attr)} {problem}"
        return f"{self.subject}: {name(self.attr)} {self.value}: {problem}"


def mac_problem(value: str) -> str | None:
    """Why ``value`` cannot be a VF's (or a guest interface's) MAC address; None when it can."""
    if not _MAC.fullmatch(value):
        return "not a MAC address"
    octets = [int(x, 16) for x in value.split(":")]
    if octets[0] & 1:
        return "a multicast address"
    if not any(octets):
        return "the all-zero address"
    return None


def check_mac(subject: str, value: str) -> str:
    """``value`` as a unicast MAC in lower case, or AttrValueError."""
    problem = mac_problem(value)
    if problem is not None:
        hint = {"a multicast address": "the first octet must be even",
                "not a MAC address": "e.g. 52:54:00:6d:90:02"}.get(problem)
        raise AttrValueError(subject, BY_KEY["mac"], value if problem != "not a MAC address" else shown(value),
                             problem, hint)
    return value.lower()


def check_value(subject: str, attr: VfAttr, value: object) -> None:
    """One value against its attribute's rule (range, choices, MAC)."""
    if attr.kind is ValueKind.INT and type(value) is int and attr.low <= value <= attr.high:
        return  # the common case first: this runs for every VF of a batch
    if attr.kind is ValueKind.MAC:
        check_mac(subject, str(value))
    elif attr.kind is ValueKind.INT:
        if not isinstance(value, int) or isinstance(value, bool) or not attr.low <= value <= attr.high:
            problem = f"must be {attr.low}..{attr.high}" if attr.high < 0xFFFFFFFF else "must be ≥ 0 (Mbit/s)"
            raise AttrValueError(subject, attr, value, problem)
    elif attr.kind is ValueKind.CHOICE:
        if value not in attr.choices:
            raise AttrValueError(subject, attr, repr(value), f"must be {', '.join(attr.choices[:-1])} or {attr.choices[-1]}")
    elif not isinstance(value, bool):
        raise AttrValueError(subject, attr, repr(value), "must be on or off")


def defaults() -> dict[str, object]:
    """A new VF's netlink view (the simulator's starting point)."""
    return {a.key: a.default for a in VF_ATTRS}
