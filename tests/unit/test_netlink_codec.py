"""The rtnetlink reader and writer without a kernel: messages encoded and decoded by pyroute2, including a
synthesized reply for 256 VFs (no kernel here can produce that many)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from sriovctl.host.netlink import NetlinkError, VfChange, kernel_order
from sriovctl.host.vfinfo import decode_vfinfo
from sriovctl.model import VfNetlink

# pyroute2's encoding of VF changes: what sriovctl sent until the struct encoder (host/vfencode.py), proven in
# the lab with igb; the reference the struct encoder is held to byte for byte.
ETH_P_8021AD = 0x88A8
# IFLA_VF_LINK_STATE_AUTO, _ENABLE, _DISABLE (include/uapi/linux/if_link.h), written out: the reference does not
# read the rows it checks
LINK_STATE_CODES = {"auto": 0, "enable": 1, "disable": 2}
LINK_STATE_NAMES = {v: k for k, v in LINK_STATE_CODES.items()}


def _pad_vlan_info() -> None:
    """pyroute2 (0.9.7) encodes struct ifla_vf_vlan_info in 14 bytes; the kernel wants sizeof() = 16 and
    answers EINVAL to anything shorter (seen in the lab with an 802.1ad VLAN). Add the trailing padding."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    ivvi = ifinfmsg.vflist.vfinfo.vf_vlist.ivvi
    if len(ivvi.fields) == 4:
        ivvi.fields = (*ivvi.fields, ("__pad", "2x"))




def vfinfo_attrs(changes: list[VfChange]) -> list[tuple[str, dict[str, Any]]]:
    """IFLA_VF_INFO entries, one per VF: the kernel's do_setvfinfo() applies each VF's attributes in its own
    fixed order (MAC, VLAN, rate, spoof check, link state, RSS query, trust) and stops at the first error."""
    per_vf: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for c in kernel_order(changes):
        a = per_vf.setdefault(c.vf, [])
        if c.attr == "mac":
            a.append(("IFLA_VF_MAC", {"vf": c.vf, "mac": str(c.value)}))
        elif c.attr == "vlan":
            vlan, qos, proto = c.value  # type: ignore[misc]
            if proto == "802.1ad":
                a.append(("IFLA_VF_VLAN_LIST", {"attrs": [("IFLA_VF_VLAN_INFO", {
                    "vf": c.vf, "vlan": vlan, "qos": qos, "proto": ETH_P_8021AD})]}))
            else:
                a.append(("IFLA_VF_VLAN", {"vf": c.vf, "vlan": vlan, "qos": qos}))
        elif c.attr == "rate":
            lo, hi = c.value  # type: ignore[misc]
            a.append(("IFLA_VF_RATE", {"vf": c.vf, "min_tx_rate": lo, "max_tx_rate": hi}))
        elif c.attr == "link_state":
            a.append(("IFLA_VF_LINK_STATE", {"vf": c.vf, "link_state": LINK_STATE_CODES[str(c.value)]}))
        else:  # spoofchk, trust, rss_query_en
            nla = {"spoofchk": "IFLA_VF_SPOOFCHK", "trust": "IFLA_VF_TRUST", "rss_query_en": "IFLA_VF_RSS_QUERY_EN"}
            a.append((nla[c.attr], {"vf": c.vf, c.attr: int(bool(c.value))}))
    return [("IFLA_VF_INFO", {"attrs": attrs}) for _, attrs in sorted(per_vf.items())]


def parse_vfinfo_list(reply: ifinfmsg) -> list[VfNetlink]:
    """Our decoder (host/vfinfo.py) on a message pyroute2 built: its bytes."""
    return decode_vfinfo(bytes(reply.data[: reply["header"]["length"]]))


def _reply(n: int) -> ifinfmsg:
    infos = []
    for i in range(n):
        infos.append(("IFLA_VF_INFO", {"attrs": [
            ("IFLA_VF_MAC", {"vf": i, "mac": f"52:54:00:aa:{i >> 8:02x}:{i & 0xFF:02x}"}),
            ("IFLA_VF_VLAN", {"vf": i, "vlan": i % 4096, "qos": i % 8}),
            ("IFLA_VF_RATE", {"vf": i, "min_tx_rate": 0, "max_tx_rate": 10 * i}),
            ("IFLA_VF_SPOOFCHK", {"vf": i, "spoofchk": i % 2}),
            ("IFLA_VF_LINK_STATE", {"vf": i, "link_state": i % 3}),
            ("IFLA_VF_TRUST", {"vf": i, "trust": 0xFFFFFFFF if i == 7 else 1}),
            ("IFLA_VF_RSS_QUERY_EN", {"vf": i, "rss_query_en": 0xFFFFFFFF}),
        ]}))
    msg = ifinfmsg()
    msg["index"] = 7
    msg["attrs"] = [("IFLA_IFNAME", "ens2f0"), ("IFLA_NUM_VF", n), ("IFLA_VFINFO_LIST", {"attrs": infos})]
    msg.encode()
    wire = msg.data[: msg["header"]["length"]]
    out = ifinfmsg(wire)
    out.decode()
    return out


def pyroute2_decoding(reply: Any) -> list[VfNetlink]:
    """The reference: pyroute2's own decoding of the VF list (what sriovctl used before host/vfinfo.py)."""
    vflist = reply.get_attr("IFLA_VFINFO_LIST")
    if vflist is None:
        return []
    out: list[VfNetlink] = []
    for info in vflist.get_attrs("IFLA_VF_INFO"):
        mac = info.get_attr("IFLA_VF_MAC")
        vlan = info.get_attr("IFLA_VF_VLAN")
        rate = info.get_attr("IFLA_VF_RATE")
        spoof = info.get_attr("IFLA_VF_SPOOFCHK")
        link = info.get_attr("IFLA_VF_LINK_STATE")
        trust = info.get_attr("IFLA_VF_TRUST")
        rss = info.get_attr("IFLA_VF_RSS_QUERY_EN")
        proto = "802.1Q"
        vlist = info.get_attr("IFLA_VF_VLAN_LIST")
        if vlist is not None:
            for ivvi in vlist.get_attrs("IFLA_VF_VLAN_INFO"):
                if ivvi.get("proto") == 0x88A8:
                    proto = "802.1ad"
        stats_nla = info.get_attr("IFLA_VF_STATS")
        stats = None
        if stats_nla is not None:
            stats = {k.removeprefix("IFLA_VF_STATS_").lower(): int(v) for k, v in stats_nla["attrs"]
                     if k != "IFLA_VF_STATS_PAD"}
        vf = (mac or vlan or spoof or {}).get("vf", len(out))
        u32max = 0xFFFFFFFF  # the kernel reports -1 for "not supported" in some fields
        out.append(VfNetlink(
            vf=int(vf), mac=mac["mac"] if mac else None,
            vlan=vlan["vlan"] if vlan else None, qos=vlan["qos"] if vlan else None,
            vlan_proto=proto if vlan else None,
            spoofchk=None if not spoof or spoof["spoofchk"] == u32max else bool(spoof["spoofchk"]),
            trust=None if not trust or trust["trust"] == u32max else bool(trust["trust"]),
            link_state=LINK_STATE_NAMES[link["link_state"]] if link and link["link_state"] in LINK_STATE_NAMES else None,
            min_tx_rate=rate["min_tx_rate"] if rate else None, max_tx_rate=rate["max_tx_rate"] if rate else None,
            rss_query_en=None if not rss or rss["rss_query_en"] == u32max else bool(rss["rss_query_en"]),
            stats=stats,
        ))
    return out


def _rich_reply() -> ifinfmsg:
    infos = [("IFLA_VF_INFO", {"attrs": [
        ("IFLA_VF_MAC", {"vf": i, "mac": f"52:54:00:00:00:{i:02x}"}),
        ("IFLA_VF_VLAN", {"vf": i, "vlan": 5 + i, "qos": i}),
        ("IFLA_VF_RATE", {"vf": i, "min_tx_rate": i, "max_tx_rate": 100 * i}),
        ("IFLA_VF_SPOOFCHK", {"vf": i, "spoofchk": 1}),
        ("IFLA_VF_LINK_STATE", {"vf": i, "link_state": 2}),
        ("IFLA_VF_RSS_QUERY_EN", {"vf": i, "rss_query_en": 0}),
        ("IFLA_VF_TRUST", {"vf": i, "trust": 0}),
        ("IFLA_VF_VLAN_LIST", {"attrs": [("IFLA_VF_VLAN_INFO", {"vf": i, "vlan": 5 + i, "qos": i,
                                                                 "proto": 0x88A8 if i == 1 else 0x8100})]}),
        ("IFLA_VF_STATS", {"attrs": [("IFLA_VF_STATS_RX_PACKETS", 10 + i), ("IFLA_VF_STATS_TX_BYTES", 1 << 40)]}),
    ]}) for i in range(3)]
    msg = ifinfmsg()
    msg["index"] = 7
    msg["attrs"] = [("IFLA_ADDRESS", "00:1b:21:3a:4c:10"), ("IFLA_VFINFO_LIST", {"attrs": infos})]
    msg.encode()
    out = ifinfmsg(msg.data[: msg["header"]["length"]])
    out.decode()
    return out


def test_our_decoding_equals_pyroute2s() -> None:
    for reply in (_reply(256), _rich_reply()):
        assert parse_vfinfo_list(reply) == pyroute2_decoding(reply)
    rich = parse_vfinfo_list(_rich_reply())
    assert [v.vlan_proto for v in rich] == ["802.1Q", "802.1ad", "802.1Q"]
    assert rich[2].stats == {"rx_packets": 12, "tx_bytes": 1 << 40} and rich[1].link_state == "disable"


def test_a_malformed_reply_is_an_error_not_a_crash() -> None:
    wire = bytes(_rich_reply().data)
    for cut in (20, 40, 77, len(wire) - 3):
        broken = bytearray(wire[:cut])
        broken[0:4] = len(wire).to_bytes(4, "little")  # the header still claims the whole message
        with contextlib.suppress(NetlinkError):  # cut at an attribute: fewer VFs; inside one: an error
            decode_vfinfo(broken)
    bad = bytearray(wire)
    bad[32:34] = (2).to_bytes(2, "little")  # an attribute length below its own header
    with pytest.raises(NetlinkError):
        decode_vfinfo(bad)
    assert LINK_STATE_NAMES


def test_a_256_vf_reply_decodes_completely() -> None:
    reply = _reply(256)
    assert len(reply.data) > 256 * 100  # tens of KiB in one message: the socket buffer is raised for it
    vfs = parse_vfinfo_list(reply)
    assert [v.vf for v in vfs] == list(range(256))
    v = vfs[200]
    assert (v.mac, v.vlan, v.qos, v.max_tx_rate, v.spoofchk, v.link_state, v.trust) == \
        ("52:54:00:aa:00:c8", 200, 0, 2000, False, "disable", True)
    assert vfs[7].trust is None  # the kernel's -1: the driver does not report it
    assert all(x.rss_query_en is None for x in vfs)


def test_one_setlink_carries_every_vf_in_kernel_order() -> None:
    _pad_vlan_info()
    changes = [VfChange(3, "trust", True), VfChange(3, "mac", "52:54:00:00:00:03"), VfChange(0, "vlan", (42, 3, "802.1Q")),
               VfChange(1, "vlan", (7, 0, "802.1ad")), VfChange(0, "rate", (0, 100)), VfChange(2, "link_state", "disable")]
    msg = ifinfmsg()
    msg["index"] = 7
    msg["attrs"] = [("IFLA_VFINFO_LIST", {"attrs": vfinfo_attrs(changes)})]
    msg.encode()
    back = ifinfmsg(msg.data[: msg["header"]["length"]])
    back.decode()
    infos = back.get_attr("IFLA_VFINFO_LIST").get_attrs("IFLA_VF_INFO")
    assert len(infos) == 4
    assert [a[0] for a in infos[0]["attrs"]] == ["IFLA_VF_VLAN", "IFLA_VF_RATE"]
    ivvi = infos[1].get_attr("IFLA_VF_VLAN_LIST").get_attrs("IFLA_VF_VLAN_INFO")[0]
    assert ivvi["proto"] == 0x88A8 and ivvi["vlan"] == 7
    raw = msg.data[: msg["header"]["length"]]
    at = raw.find(bytes.fromhex("01000000" "07000000" "00000000" "88a8"))  # vf 1, vlan 7, qos 0, proto 802.1ad
    assert at > 4
    nla_len = int.from_bytes(raw[at - 4:at - 2], "little")  # the IFLA_VF_VLAN_INFO header just before
    assert nla_len == 4 + 16  # struct ifla_vf_vlan_info is 16 bytes: the kernel refuses less with EINVAL
    assert infos[2].get_attr("IFLA_VF_LINK_STATE")["link_state"] == 2
    assert [a[0] for a in infos[3]["attrs"]] == ["IFLA_VF_MAC", "IFLA_VF_TRUST"]
    assert infos[3].get_attr("IFLA_VF_MAC")["mac"] == "52:54:00:00:00:03"


# ---------------------------------------------------------------- beyond 64 KiB (hand-built: pyroute2 cannot)

def _nla(typ: int, payload: bytes) -> bytes:
    import struct

    length = 4 + len(payload)
    return struct.pack("=HH", length & 0xFFFF, typ) + payload + b"\0" * (-length % 4)


def _raw_reply(n: int, cut: int | None = None) -> bytes:
    """An RTM_NEWLINK as the kernel writes it for n VFs (MAC, VLAN, spoof check, trust each), the VF list nest's
    16-bit length wrapped as nla_nest_end() leaves it; ``cut`` drops bytes from the end."""
    import struct

    entries = b"".join(_nla(1, b"".join([
        _nla(1, struct.pack("=I", i) + bytes([0x52, 0x54, 0, 0xAA, i >> 8, i & 0xFF]) + bytes(26)),
        _nla(2, struct.pack("=III", i, i % 4096, i % 8)),
        _nla(4, struct.pack("=II", i, i % 2)),
        _nla(9, struct.pack("=II", i, 1))])) for i in range(n))
    vflist = struct.pack("=HH", (4 + len(entries)) & 0xFFFF, 22 | 0x8000) + entries
    attrs = _nla(3, b"ens2f0\0") + _nla(1, bytes([0, 0x1B, 0x21, 0x3A, 0x4C, 0x10])) + _nla(21, struct.pack("=I", n)) \
        + vflist + _nla(13, struct.pack("=I", 1500))  # an attribute after the list, as the kernel puts more
    body = struct.pack("=BxHiII", 0, 1, 7, 0, 0) + attrs
    msg = struct.pack("=IHHII", 16 + len(body), 16, 0, 1, 0) + body
    return msg[: len(msg) - cut] if cut else msg


@pytest.mark.parametrize("n", [64, 256, 512, 1024])
def test_a_vf_list_past_64_kib_is_read_whole(n: int) -> None:
    from sriovctl.host.vfinfo import num_vf

    wire = _raw_reply(n)
    vfs = decode_vfinfo(wire)
    assert [v.vf for v in vfs] == list(range(n)) and num_vf(wire) == n
    last = vfs[-1]
    assert (last.mac, last.vlan, last.trust) == (f"52:54:00:aa:{(n - 1) >> 8:02x}:{(n - 1) & 0xFF:02x}", (n - 1) % 4096, True)
    if n >= 1024:
        assert len(wire) > 65536 * 1  # the case iproute2 prints as "Truncated VF list"


def test_a_reply_cut_short_lists_fewer_vfs_than_num_vf() -> None:
    from sriovctl.host.vfinfo import num_vf

    wire = _raw_reply(256, cut=5000)
    try:
        vfs = decode_vfinfo(wire)
    except NetlinkError:
        vfs = []
    assert len(vfs) < 256 and num_vf(wire) == 256  # the caller then refuses to call the rest verified


def test_setlink_is_split_so_every_vf_list_fits_sixteen_bits() -> None:
    from sriovctl.host.netlink_real import batches

    changes = [VfChange(vf, attr, value) for vf in range(1024) for attr, value in
               (("mac", f"52:54:00:00:{vf >> 8:02x}:{vf & 0xFF:02x}"), ("vlan", (vf % 4000, 0, "802.1Q")),
                ("spoofchk", False), ("trust", True))]
    parts = batches(changes)
    assert len(parts) >= 2 and [c for p in parts for c in p] == changes  # all of them, in kernel order
    for part in parts:
        msg = ifinfmsg()
        msg["index"] = 7
        msg["attrs"] = [("IFLA_VFINFO_LIST", {"attrs": vfinfo_attrs(part)})]
        msg.encode()  # pyroute2 raises on a nest over 65,535 bytes
        assert msg["header"]["length"] < 65536
    assert all(parts[i][-1].vf < parts[i + 1][0].vf for i in range(len(parts) - 1))  # a VF is never split


def test_vfs_missing_from_the_read_back_are_named_not_verified() -> None:
    from sriovctl.errors import PartialError
    from sriovctl.host.sim.catalog import open_sim
    from sriovctl.inventory import read_inventory
    from sriovctl.ops.vfattrs import VfSettings, set_vfs

    host = open_sim("e810-2x256")
    inv = read_inventory(host, netlink=False)
    vfs = inv.vfs_of(inv.pfs[0])
    real = host.netlink()

    class ShortReply:  # a PF whose reply lists only the first 100 of its 256 VFs
        requests = 0
        last_num_vf = 256

        def set_vfs(self, ifname: str, changes: list[VfChange]) -> None:
            real.set_vfs(ifname, changes)

        def get_vfs(self, ifname: str, stats: bool = False) -> list[VfNetlink]:
            return real.get_vfs(ifname)[:100]

    host._netlink = ShortReply()
    with pytest.raises(PartialError) as e:
        set_vfs(host, inv, [(v, VfSettings(trust=True)) for v in vfs])
    out = e.value.outcome
    assert len(out.applied) == 100 and len(out.refused) == 156 and out.verified is False
    assert out.refused[0][1] == "not read back: the PF's reply lists 100 VFs of 256"
    assert "ens2f0#100: trust on: not read back" in e.value.message


def _pyroute2_setlink(seq: int, index: int, changes: list[VfChange]) -> bytes:
    _pad_vlan_info()
    msg = ifinfmsg()
    msg["family"] = 0
    msg["index"] = index
    msg["attrs"] = [("IFLA_VFINFO_LIST", {"attrs": vfinfo_attrs(changes)})]
    msg["header"]["type"] = 19
    msg["header"]["flags"] = 5
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data[: msg["header"]["length"]])


def test_the_struct_encoder_writes_pyroute2s_bytes_for_every_attribute() -> None:
    from sriovctl.host.vfencode import setlink

    changes = [VfChange(3, "trust", True), VfChange(3, "mac", "52:54:00:00:00:03"), VfChange(0, "vlan", (42, 3, "802.1Q")),
               VfChange(1, "vlan", (7, 0, "802.1ad")), VfChange(0, "rate", (10, 100)), VfChange(2, "link_state", "disable"),
               VfChange(2, "spoofchk", False), VfChange(4, "rss_query_en", True), VfChange(4, "link_state", "auto"),
               VfChange(5, "vlan", (0, 0, "802.1Q")), VfChange(65535, "trust", False)]
    assert setlink(9, 7, changes, 5) == _pyroute2_setlink(9, 7, changes)


def test_the_struct_encoder_matches_pyroute2_for_every_1024_vf_batch() -> None:
    from sriovctl.host.netlink_real import batches
    from sriovctl.host.vfencode import setlink

    changes = [VfChange(vf, attr, value) for vf in range(1024) for attr, value in
               (("mac", f"52:54:00:00:{vf >> 8:02x}:{vf & 0xFF:02x}"), ("vlan", (vf % 4000, vf % 8, "802.1Q")),
                ("spoofchk", bool(vf % 2)), ("trust", True))]
    parts = batches(changes)
    assert len(parts) == 2
    for seq, part in enumerate(parts, 1):
        ours = setlink(seq, 12, part, 5)
        assert ours == _pyroute2_setlink(seq, 12, part) and len(ours) < 65536


def test_getlink_is_the_request_pyroute2_encodes() -> None:
    """RTM_GETLINK packed by host/vfencode.py: byte for byte what pyroute2 sent before our own socket."""
    from pyroute2.netlink import NLM_F_REQUEST
    from pyroute2.netlink.rtnl import RTM_GETLINK

    from sriovctl.host.vfencode import getlink

    for index, mask in ((7, 1), (123456, 1 | 8)):
        msg = ifinfmsg()
        msg["family"] = 0
        msg["index"] = index
        msg["attrs"] = [("IFLA_EXT_MASK", mask)]
        msg["header"]["type"] = RTM_GETLINK
        msg["header"]["flags"] = NLM_F_REQUEST
        msg["header"]["sequence_number"] = 42
        msg.encode()
        assert getlink(42, index, mask, NLM_F_REQUEST) == bytes(msg.data[: msg["header"]["length"]])


def test_our_socket_against_this_kernel() -> None:
    """The request/ack cycle of host/netlink_real.py on the kernel this test runs on (no SR-IOV device here:
    the loopback answers a VF read with no VF list and a VF write with the kernel's own refusal)."""
    import errno

    from sriovctl.host.netlink_real import RtNetlink

    nl = RtNetlink()
    try:
        assert nl.get_vfs("lo") == [] and nl.last_num_vf is None
        assert nl.get_vfs("lo", stats=True) == []
        with pytest.raises(NetlinkError) as e:
            nl.get_vfs("sriovctl-none0")
        assert e.value.errno == errno.ENODEV
        with pytest.raises(NetlinkError) as e:  # do_setvfinfo(): lo has no ndo_set_vf_mac
            nl.set_vfs("lo", [VfChange(0, "mac", "52:54:00:00:00:01")])
        assert e.value.errno == errno.EOPNOTSUPP, e.value
        assert nl.get_vfs("lo") == []  # the socket is still in step after an error: the next reply is ours
        assert nl.requests == 4  # the unknown name is refused by its ifindex lookup, before any request
    finally:
        nl.close()
