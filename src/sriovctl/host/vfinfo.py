"""The VF list of an RTM_NEWLINK reply, decoded from its bytes with struct (include/uapi/linux/if_link.h).

pyroute2 decodes every attribute into Python objects on access; for the PF's IFLA_VFINFO_LIST that was 95 % of
a `vf set` in the lab (7 VFs: 68 of 128 ms under the profiler, TCG), and a 256-VF reply is tens of KiB. These
are fixed C structs, so we read them directly. The reply comes from the kernel, but a malformed one must still
not crash us or read past its end: every length is checked, and a bad one is a NetlinkError.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sriovctl import attrs
from sriovctl.attrs import U32_MAX, ValueKind
from sriovctl.host.netlink import NetlinkError
from sriovctl.model import VfNetlink

NLMSG_HDRLEN = 16
IFINFOMSG_LEN = 16
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

IFLA_ADDRESS = 1
IFLA_NUM_VF = 21
IFLA_VFINFO_LIST = 22
IFLA_VF_INFO = 1
# struct ifla_vf_*: every one starts with __u32 vf; the ones we set are the request rows (attrs.VF_REQUESTS)
IFLA_VF_STATS = 8
IFLA_VF_VLAN_LIST, IFLA_VF_VLAN_INFO = 12, 1
ETH_P_8021AD = 0x88A8
# IFLA_VF_STATS_*: __u64 counters (6 is padding)
STATS_NAMES = {0: "rx_packets", 1: "tx_packets", 2: "rx_bytes", 3: "tx_bytes", 4: "broadcast", 5: "multicast",
               7: "rx_dropped", 8: "tx_dropped"}


_NLA = struct.Struct("=HH").unpack_from  # precompiled: this runs for every attribute of every VF (1,024 × 6)


def _attrs(buf: memoryview, start: int, end: int) -> list[tuple[int, int, int]]:
    """(type, payload start, payload end) of the netlink attributes in buf[start:end]."""
    out = []
    pos = start
    while pos + 4 <= end:
        length, typ = _NLA(buf, pos)
        if length < 4 or pos + length > end:
            raise NetlinkError(errno.EBADMSG, f"malformed netlink attribute at byte {pos} (length {length})")
        out.append((typ & NLA_TYPE_MASK, pos + 4, pos + length))
        pos += (length + 3) & ~3
    return out


_MAC_VALUE = object()  # a member read as a MAC: its length is the message's (IFLA_ADDRESS)


def _unwire(attr: attrs.VfAttr) -> Callable[[int], object] | object | None:
    """How a row's reported value is read — the mirror of vfencode._wire: a flag of ~0 and a choice code with no
    word are None (not reported), a MAC is as long as the message's addresses (_MAC_VALUE), None: a number as
    unpacked. Made once per row: it runs for every value of every VF (7,000 at 1,024 VFs)."""
    if attr.kind is ValueKind.MAC:
        return _MAC_VALUE
    if attr.kind is ValueKind.BOOL:
        return lambda raw: None if raw == U32_MAX else raw != 0
    if attr.kind is ValueKind.CHOICE:
        choices = attr.choices
        return lambda raw: choices[raw] if raw < len(choices) else None
    return None


@dataclass(frozen=True, slots=True)
class _Reader:
    """One request row compiled for the decoder."""

    unpack: Callable[[memoryview, int], tuple[Any, ...]]
    size: int
    members: tuple[tuple[str, Any], ...]  # (key, _unwire(row))
    defaults: tuple[tuple[str, object], ...]  # members that travel elsewhere: their default until then
    plain: tuple[str, ...] | None  # the keys, when every value is as unpacked (rates, a VLAN and its QoS)


_READERS: dict[attrs.VfRequest, _Reader] = {}
_BY_NLA: list[Any] = [None, {}]  # (attrs.BY_NLA it was built from, {IFLA_VF_* type: _Reader})


def _readers() -> dict[int, _Reader]:
    """The decoder's dispatch, rebuilt only when the table changes (a test adds a row)."""
    if _BY_NLA[0] is not attrs.BY_NLA:
        _BY_NLA[:] = [attrs.BY_NLA, {t: _reader(r) for t, r in attrs.BY_NLA.items()}]
    readers: dict[int, _Reader] = _BY_NLA[1]
    return readers


def _reader(request: attrs.VfRequest) -> _Reader:
    reader = _READERS.get(request)
    if reader is None:
        compiled = struct.Struct(request.layout)
        reader = _READERS[request] = _Reader(
            compiled.unpack_from, compiled.size, tuple((k, _unwire(attrs.BY_KEY[k])) for k in request.keys),
            tuple((a.key, a.default) for a in attrs.REQUEST_ATTRS[request.name] if a.key not in request.keys),
            request.keys if all(_unwire(attrs.BY_KEY[k]) is None for k in request.keys) else None)
    return reader


def _top_attrs(buf: memoryview, start: int, end: int, strict: bool = True,
               ) -> tuple[list[tuple[int, int, int]], int | None]:
    """The link attributes, with IFLA_VFINFO_LIST's true extent, and IFLA_NUM_VF.

    nla_len is 16 bits: a VF list longer than 64 KiB (about 300 VFs with statistics, 1,000 without) wraps it, and
    a parser that trusts it lands inside the list (iproute2: "Truncated VF list"). The message length is 32
    bits and every VF entry is there, so the list is walked entry by entry instead: exactly IFLA_NUM_VF
    IFLA_VF_INFO entries (the kernel puts IFLA_NUM_VF just before the list, rtnl_vfinfo_fill()), and accepted
    only if its true length equals the wrapped one modulo 65,536 and stays inside the message."""
    out: list[tuple[int, int, int]] = []
    num_vf: int | None = None
    pos = start
    while pos + 4 <= end:
        length, typ = struct.unpack_from("=HH", buf, pos)
        typ &= NLA_TYPE_MASK
        if typ == IFLA_VFINFO_LIST and num_vf is not None:
            true_end = pos + 4
            for _ in range(num_vf):
                if true_end + 4 > end:
                    break
                elen, etyp = struct.unpack_from("=HH", buf, true_end)
                if elen < 4 or (etyp & NLA_TYPE_MASK) != IFLA_VF_INFO or true_end + elen > end:
                    break
                true_end += (elen + 3) & ~3
            true_end = min(true_end, end)
            if (true_end - pos) % 65536 == length:  # nla_len is the true length modulo 65,536
                length = true_end - pos  # the wrapped nest, recovered
        if length < 4 or pos + length > end:
            if not strict:
                break
            raise NetlinkError(errno.EBADMSG, f"malformed netlink attribute at byte {pos} (length {length})")
        if typ == IFLA_NUM_VF and length >= 8:
            num_vf = struct.unpack_from("=I", buf, pos + 4)[0]
        out.append((typ, pos + 4, pos + length))
        pos += (length + 3) & ~3
    return out, num_vf


def num_vf(message: bytes | bytearray) -> int | None:
    """IFLA_NUM_VF of an RTM_NEWLINK message: how many VFs the PF has (None: not reported)."""
    buf = memoryview(message)
    if len(buf) < NLMSG_HDRLEN + IFINFOMSG_LEN:
        return None
    end = min(struct.unpack_from("=I", buf, 0)[0], len(buf))
    return _top_attrs(buf, NLMSG_HDRLEN + IFINFOMSG_LEN, end, strict=False)[1]  # what it says before any damage


def decode_vfinfo(message: bytes | bytearray) -> list[VfNetlink]:
    """Every VF of an RTM_NEWLINK message (its header included), in the order the kernel lists them — past 64 KiB
    too (:func:`_top_attrs`). Fewer than IFLA_NUM_VF entries can come back from a message cut short: callers
    compare with :func:`num_vf` and never count a VF that is not here as verified."""
    out = []
    for f in decode_fields(message):
        try:
            out.append(VfNetlink(**f))  # type: ignore[arg-type]
        except TypeError:  # a request row the model has no field for yet
            out.append(VfNetlink(**{k: v for k, v in f.items() if k in VfNetlink.__slots__}))  # type: ignore[arg-type]
    return out


def decode_fields(message: bytes | bytearray) -> list[dict[str, object]]:
    """Every VF of an RTM_NEWLINK message as {attribute key: value} (``vf`` included), for every request row —
    a row the model has no field for yet included."""
    buf = memoryview(message)
    if len(buf) < NLMSG_HDRLEN + IFINFOMSG_LEN:
        raise NetlinkError(errno.EBADMSG, "RTM_NEWLINK reply shorter than its headers")
    total = min(struct.unpack_from("=I", buf, 0)[0], len(buf))
    top, _ = _top_attrs(buf, NLMSG_HDRLEN + IFINFOMSG_LEN, total)
    addr_len = next((e - s for t, s, e in top if t == IFLA_ADDRESS), 6) or 6
    vflist = next(((s, e) for t, s, e in top if t == IFLA_VFINFO_LIST), None)
    return [] if vflist is None else _vf_fields(buf, vflist, addr_len)


def _vf_fields(buf: memoryview, vflist: tuple[int, int], addr_len: int) -> list[dict[str, object]]:
    """Each IFLA_VF_INFO entry decoded by its request rows (attrs.BY_NLA): ``struct ifla_vf_*`` unpacked by the
    row's layout and each value read back by its row's rule (_unwire); members of a row that travel
    elsewhere start at their default (a VLAN is 802.1Q until IFLA_VF_VLAN_LIST says otherwise)."""
    readers = _readers()
    out: list[dict[str, object]] = []
    for typ, s, e in _attrs(buf, *vflist):
        if typ != IFLA_VF_INFO:
            continue
        f: dict[str, object] = {}
        vf: int | None = None
        pos = s
        while pos + 4 <= e:  # _attrs() inlined: this loop runs for every attribute of every VF
            length, t = _NLA(buf, pos)
            if length < 4 or pos + length > e:
                raise NetlinkError(errno.EBADMSG, f"malformed netlink attribute at byte {pos} (length {length})")
            a, b = pos + 4, pos + length
            pos += (length + 3) & ~3
            t &= NLA_TYPE_MASK
            reader = readers.get(t)
            if reader is not None:
                if b - a < reader.size:
                    raise NetlinkError(errno.EBADMSG, f"IFLA_VF_* {t} too short: {b - a} bytes, "
                                       f"struct of {reader.size}")
                raw = reader.unpack(buf, a)
                vf = raw[0]
                if reader.plain is not None:
                    f.update(zip(reader.plain, raw[1:], strict=True))
                else:
                    for (key, unwire), value in zip(reader.members, raw[1:], strict=True):
                        if unwire is None:
                            f[key] = value
                        elif unwire is _MAC_VALUE:
                            f[key] = value[:addr_len].hex(":")
                        else:
                            f[key] = unwire(value)
                for key, default in reader.defaults:
                    f.setdefault(key, default)
            elif t == IFLA_VF_VLAN_LIST:
                for it, ia, ib in _attrs(buf, a, b):
                    if it == IFLA_VF_VLAN_INFO and ib - ia >= 14:
                        (proto,) = struct.unpack_from("!H", buf, ia + 12)  # __be16 vlan_proto
                        if proto == ETH_P_8021AD:
                            f["vlan_proto"] = "802.1ad"
            elif t == IFLA_VF_STATS:
                f["stats"] = {STATS_NAMES[st]: struct.unpack_from("=Q", buf, sa)[0]
                              for st, sa, sb in _attrs(buf, a, b) if st in STATS_NAMES and sb - sa >= 8}
        if "vlan" not in f:
            f.pop("vlan_proto", None)
        f["vf"] = len(out) if vf is None else vf
        out.append(f)
    return out
