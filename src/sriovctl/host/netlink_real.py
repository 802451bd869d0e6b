"""rtnetlink: the VF list of a PF and batched VF changes, over a plain AF_NETLINK socket (imported only when
needed). The requests are packed and the replies decoded with struct (host/vfencode.py, host/vfinfo.py), so the
request/ack cycle is ours too: a `vf set` process does not import pyroute2 (80 ms of imports on the bench host
with bytecode, ~10 s in the lab guest without; tests/unit/test_netlink_codec.py keeps pyroute2 as the reference
codec). The address dump (rarely used) still goes through pyroute2's IPRoute."""

from __future__ import annotations

import contextlib
import errno as errno_mod
import itertools
import os
import socket
import struct
from typing import Any

from sriovctl.host.netlink import (
    NetlinkError,
    RequestCounter,
    VfChange,
    VfNetlink,
    kernel_order,
)
from sriovctl.host.vfencode import encoded_size, getlink, setlink
from sriovctl.host.vfinfo import NLMSG_HDRLEN, decode_vfinfo, num_vf

RTEXT_FILTER_VF = 1 << 0
RTEXT_FILTER_SKIP_STATS = 1 << 3
ETH_P_8021Q, ETH_P_8021AD = 0x8100, 0x88A8
RCVBUF = 4 << 20
RTM_NEWLINK = 16  # linux/rtnetlink.h
NLMSG_ERROR = 2  # linux/netlink.h
NLM_F_CAPPED, NLM_F_ACK_TLVS, NLMSGERR_ATTR_MSG = 0x100, 0x200, 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11  # linux/socket.h, linux/netlink.h: errors carry the kernel's message


class RtNetlink(RequestCounter):
    """rtnetlink over one AF_NETLINK socket: each request sent whole, its reply (or ACK) read whole, no event
    loop in between (pyroute2 0.9's IPRoute runs an asyncio loop per call: about half the time of a VF change
    under TCG), no multicast group joined (only replies to our own requests arrive)."""

    def __init__(self) -> None:
        super().__init__()
        self.last_num_vf: int | None = None  # IFLA_NUM_VF of the last VF list read
        self._sk: socket.socket | None = None
        self._ipr: Any = None
        self._seq = 0

    def _sock(self) -> socket.socket:
        if self._sk is None:
            try:
                sk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            except OSError as e:
                raise NetlinkError(e.errno or errno_mod.EIO, f"rtnetlink socket: {e.strerror}") from None
            sk.bind((0, 0))  # the kernel picks the port id; groups 0
            with contextlib.suppress(OSError):
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            with contextlib.suppress(OSError):  # kernels before 4.12 have no extended ack: errno names only
                sk.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self._sk = sk
        return self._sk

    def _send(self, data: bytes, what: str) -> bytes:
        """Send one request (its sequence number is ``self._seq``); its reply. NLMSG_ERROR raises NetlinkError."""
        raw = self._sock()
        try:
            raw.send(data)
        except OSError as e:
            raise NetlinkError(e.errno or errno_mod.EIO, f"{what}: {e.strerror}") from None
        return self._receive(raw, self._seq)

    @staticmethod
    def _receive(raw: socket.socket, seq: int) -> bytes:
        """The reply to request ``seq``, the whole datagram however large: its size first (MSG_PEEK|MSG_TRUNC
        gives the real length), then all of it. pyroute2's get() reads 16 KiB and cut a PF's reply from about
        64 VFs with statistics, 100 without (seen on netdevsim: "no RTM_NEWLINK in the reply")."""
        probe = bytearray(NLMSG_HDRLEN)
        while True:
            size = raw.recv_into(probe, NLMSG_HDRLEN, socket.MSG_PEEK | socket.MSG_TRUNC)
            buf = bytearray(max(size, NLMSG_HDRLEN))
            got = raw.recv_into(buf, len(buf))
            pos = 0
            while pos + NLMSG_HDRLEN <= got:
                length, mtype, mflags, mseq, _ = struct.unpack_from("=IHHII", buf, pos)
                if length < NLMSG_HDRLEN or pos + length > got:
                    raise NetlinkError(errno_mod.EBADMSG, f"malformed netlink reply ({got} bytes, message of {length})")
                if mseq == seq:
                    if mtype == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", buf, pos + NLMSG_HDRLEN)[0]
                        if code:
                            raise NetlinkError(code, _ext_ack(buf[pos:pos + length], mflags))
                        return bytes(buf[pos:pos + length])
                    if mtype == RTM_NEWLINK:
                        return bytes(buf[pos:pos + length])
                pos += (length + 3) & ~3

    def _index(self, ifname: str) -> int:
        """The ifindex through SIOCGIFINDEX: not a netlink round trip (a name lookup would dump every link)."""
        try:
            return socket.if_nametoindex(ifname)
        except OSError:
            raise NetlinkError(errno_mod.ENODEV, f"no interface {ifname}") from None

    def get_vfs(self, ifname: str, stats: bool = False) -> list[VfNetlink]:
        index = self._index(ifname)
        mask = RTEXT_FILTER_VF | (0 if stats else RTEXT_FILTER_SKIP_STATS)
        self.count(f"RTM_GETLINK {ifname} ext_mask={mask:#x}")
        self._seq += 1
        reply = self._send(getlink(self._seq, index, mask, NLM_F_REQUEST), f"RTM_GETLINK {ifname}")
        vfs = decode_vfinfo(reply)
        self.last_num_vf = num_vf(reply)
        return vfs

    def set_vfs(self, ifname: str, changes: list[VfChange]) -> None:
        index = self._index(ifname)
        for batch in batches(changes):  # each message's IFLA_VFINFO_LIST stays under nla_len's 64 KiB
            self._seq += 1
            data = setlink(self._seq, index, batch, NLM_F_REQUEST | NLM_F_ACK)  # struct-packed: host/vfencode.py
            self.count(f"RTM_SETLINK {ifname} {len(batch)} attributes")
            self._send(data, f"RTM_SETLINK {ifname}")

    def _iproute(self) -> Any:
        if self._ipr is None:
            from pyroute2 import IPRoute

            self._ipr = IPRoute()
        return self._ipr

    def addresses(self) -> dict[str, list[str]]:
        ipr = self._iproute()
        self.count("RTM_GETLINK dump")
        names = {int(m["index"]): m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
        self.count("RTM_GETADDR dump")
        out: dict[str, list[str]] = {}
        for a in ipr.get_addr():
            name = names.get(int(a["index"]))
            if name:
                out.setdefault(name, []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        return out

    def close(self) -> None:
        for sk in (self._sk, self._ipr):
            if sk is not None:
                sk.close()


NEST_LIMIT = 60000  # below nla_len's 65,535, with room for the message and nest headers


def batches(changes: list[VfChange], limit: int = NEST_LIMIT) -> list[list[VfChange]]:
    """Changes in kernel order, cut between VFs so that each RTM_SETLINK's VF list fits a 16-bit nla_len (a
    1,024-VF MAC+VLAN change is about 62 KiB: one request would not even encode)."""
    out: list[list[VfChange]] = []
    size = 0
    for _, group in itertools.groupby(kernel_order(changes), key=lambda c: c.vf):
        items = list(group)
        entry = 4 + sum(encoded_size(c) for c in items)
        if not out or size + entry > limit:
            out.append([])
            size = 0
        out[-1].extend(items)
        size += entry
    return out


def _ext_ack(message: bytes | bytearray, flags: int) -> str:
    """The kernel's extended-ack text of an NLMSG_ERROR (NLMSGERR_ATTR_MSG), or the errno's name."""
    code = -struct.unpack_from("=i", message, NLMSG_HDRLEN)[0]
    request_len = NLMSG_HDRLEN if flags & NLM_F_CAPPED else struct.unpack_from("=I", message, NLMSG_HDRLEN + 4)[0]
    pos = NLMSG_HDRLEN + 4 + request_len
    if flags & NLM_F_ACK_TLVS:
        while pos + 4 <= len(message):
            alen, atyp = struct.unpack_from("=HH", message, pos)
            if alen < 4:
                break
            if atyp == NLMSGERR_ATTR_MSG:
                return bytes(message[pos + 4:pos + alen]).rstrip(b"\0").decode("utf-8", "replace")
            pos += (alen + 3) & ~3
    return os.strerror(code)
