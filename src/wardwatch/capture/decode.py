"""The reference header decoder: one record in, one ``Packet`` out.

Link layers: Ethernet II / 802.3 LLC+SNAP (IEEE 802.3, 802.2), Linux SLL and SLL2, raw IPv4/IPv6, BSD
NULL and OpenBSD LOOP. Tags and shims: 802.1Q / 802.1ad / QinQ VLAN tags (IEEE 802.1Q §9.6), PPPoE session
(RFC 2516 §4) with PPP (RFC 1661), MPLS label stacks (RFC 3032). Network: ARP (RFC 826), IPv4 (RFC 791,
options skipped by IHL, fragments flagged), IPv6 (RFC 8200 §4 extension headers), IP-in-IP (RFC 2003,
RFC 4213) and GRE (RFC 2784/2890). Transport: TCP (RFC 9293 §3.1), UDP (RFC 768), ICMP, ICMPv6.

Decoding never raises: a header that is malformed or cut by the snaplen ends decoding there, with the
reason in ``Packet.problem`` and every field decoded before it kept. This decoder is the straightforward
path that faster paths are checked against.
"""

from __future__ import annotations

from wardwatch.capture.interface import Record
from wardwatch.model.packet import Arp, Fragment, IpProto, LinkType, Packet

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8
ETH_QINQ_OLD = 0x9100
ETH_IPV6 = 0x86DD
ETH_PPPOE_SESSION = 0x8864
ETH_MPLS = 0x8847
ETH_MPLS_MC = 0x8848
VLAN_TPIDS = frozenset({ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD})

PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057

#: IPv6 extension headers with the generic (next header, length in 8-octet units beyond the first) layout.
IPV6_EXT_GENERIC = frozenset({0, 43, 60, 135, 139, 140})
IPV6_FRAGMENT = 44

#: BSD NULL/LOOP address families meaning IPv4 / IPv6 (AF_INET6 differs between BSDs, Linux and Windows).
AF_IPV4 = frozenset({2})
AF_IPV6 = frozenset({10, 23, 24, 28, 30})

#: Tunnels nest at most this deep (a hostile packet cannot make decoding loop).
MAX_TUNNELS = 4


class _Fields:
    """Mutable scratch space for one packet's fields while decoding (turned into a frozen Packet at the end)."""

    __slots__ = (
        "arp",
        "dst_ip",
        "dst_mac",
        "dst_port",
        "ethertype",
        "fragment",
        "icmp_code",
        "icmp_type",
        "ip_version",
        "llc_dsap",
        "llc_snap",
        "payload",
        "problem",
        "proto",
        "src_ip",
        "src_mac",
        "src_port",
        "tcp_flags",
        "tcp_seq",
        "ttl",
        "tunnels",
        "vlans",
    )

    def __init__(self) -> None:
        self.src_mac: bytes | None = None
        self.dst_mac: bytes | None = None
        self.vlans: list[int] = []
        self.ethertype: int | None = None
        self.llc_snap: tuple[int, int] | None = None
        self.llc_dsap: int | None = None
        self.tunnels: list[str] = []
        self.ip_version = 0
        self.src_ip: bytes | None = None
        self.dst_ip: bytes | None = None
        self.ttl: int | None = None
        self.proto: int | None = None
        self.fragment = Fragment.NONE
        self.src_port: int | None = None
        self.dst_port: int | None = None
        self.tcp_flags = 0
        self.tcp_seq: int | None = None
        self.icmp_type: int | None = None
        self.icmp_code: int | None = None
        self.arp: Arp | None = None
        self.payload = b""
        self.problem: str | None = None


def decode(record: Record) -> Packet:
    """Decode the headers of ``record`` (see the module docstring for what is understood)."""
    f = _Fields()
    data = record.data
    lt = record.linktype
    if lt == LinkType.ETHERNET:
        _ethernet(f, data)
    elif lt == LinkType.RAW or lt == LinkType.IPV4 or lt == LinkType.IPV6:
        _ip_by_version(f, data)
    elif lt == LinkType.LINUX_SLL:
        _sll(f, data)
    elif lt == LinkType.LINUX_SLL2:
        _sll2(f, data)
    elif lt == LinkType.NULL or lt == LinkType.LOOP:
        _null(f, data, network_order=lt == LinkType.LOOP)
    else:
        f.problem = f"unsupported link type {lt}"
    return Packet(
        number=record.number,
        ts_ns=record.ts_ns,
        wirelen=record.wirelen,
        caplen=record.caplen,
        linktype=lt,
        interface=record.interface,
        src_mac=f.src_mac,
        dst_mac=f.dst_mac,
        vlans=tuple(f.vlans),
        ethertype=f.ethertype,
        llc_snap=f.llc_snap,
        llc_dsap=f.llc_dsap,
        tunnels=tuple(f.tunnels),
        ip_version=f.ip_version,
        src_ip=f.src_ip,
        dst_ip=f.dst_ip,
        ttl=f.ttl,
        proto=f.proto,
        fragment=f.fragment,
        src_port=f.src_port,
        dst_port=f.dst_port,
        tcp_flags=f.tcp_flags,
        tcp_seq=f.tcp_seq,
        icmp_type=f.icmp_type,
        icmp_code=f.icmp_code,
        arp=f.arp,
        payload=f.payload,
        problem=f.problem,
    )


# --- link layers -----------------------------------------------------------------------------------------


def _ethernet(f: _Fields, data: bytes) -> None:
    if len(data) < 14:
        f.problem = "truncated Ethernet header"
        return
    f.dst_mac = data[0:6]
    f.src_mac = data[6:12]
    _ethertype_chain(f, data, 12)


def _ethertype_chain(f: _Fields, data: bytes, pos: int) -> None:
    """Decode from the 2-byte type/length field at ``pos`` (after the MACs) through tags to the network layer."""
    etype = int.from_bytes(data[pos : pos + 2], "big")
    pos += 2
    while etype in VLAN_TPIDS:
        if len(data) < pos + 4:
            f.problem = "truncated VLAN tag"
            return
        vid = int.from_bytes(data[pos : pos + 2], "big") & 0x0FFF
        if vid:  # VID 0 is a priority tag, not a VLAN
            f.vlans.append(vid)
        etype = int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 4
    if etype <= 1500:
        _llc(f, data, pos, etype)
        return
    _network(f, data, pos, etype)


def _llc(f: _Fields, data: bytes, pos: int, length: int) -> None:
    """IEEE 802.3 frame: 802.2 LLC header, optionally SNAP (OUI + protocol id)."""
    end = min(len(data), pos + length)
    if end < pos + 3:
        f.problem = "truncated 802.2 LLC header"
        return
    dsap, ssap = data[pos], data[pos + 1]
    if dsap == 0xAA and ssap == 0xAA:
        if end < pos + 8:
            f.problem = "truncated SNAP header"
            return
        oui = int.from_bytes(data[pos + 3 : pos + 6], "big")
        pid = int.from_bytes(data[pos + 6 : pos + 8], "big")
        f.llc_snap = (oui, pid)
        if oui == 0:  # RFC 1042 encapsulation: the PID is an ethertype
            _network(f, data[:end], pos + 8, pid)
            return
        f.payload = data[pos + 8 : end]
        return
    f.llc_dsap = dsap
    f.payload = data[pos + 3 : end]


def _network(f: _Fields, data: bytes, pos: int, etype: int) -> None:
    f.ethertype = etype
    if etype in (ETH_IPV4, ETH_IPV6):
        _ip(f, data, pos, 4 if etype == ETH_IPV4 else 6)
    elif etype == ETH_ARP:
        _arp(f, data, pos)
    elif etype == ETH_PPPOE_SESSION:
        _pppoe(f, data, pos)
    elif etype in (ETH_MPLS, ETH_MPLS_MC):
        _mpls(f, data, pos)
    else:
        f.payload = data[pos:]


def _sll(f: _Fields, data: bytes) -> None:
    """Linux cooked capture v1: packet type, ARPHRD type, address length, 8-byte address, protocol."""
    if len(data) < 16:
        f.problem = "truncated Linux SLL header"
        return
    hatype = int.from_bytes(data[2:4], "big")
    halen = int.from_bytes(data[4:6], "big")
    if hatype == 1 and halen == 6:
        f.src_mac = data[6:12]
    _sll_protocol(f, data, 14, int.from_bytes(data[14:16], "big"))


def _sll2(f: _Fields, data: bytes) -> None:
    """Linux cooked capture v2: protocol, reserved, ifindex, ARPHRD type, packet type, address length, address."""
    if len(data) < 20:
        f.problem = "truncated Linux SLL2 header"
        return
    hatype = int.from_bytes(data[8:10], "big")
    halen = data[11]
    if hatype == 1 and halen == 6:
        f.src_mac = data[12:18]
    _sll_protocol(f, data, 18, int.from_bytes(data[0:2], "big"))


def _sll_protocol(f: _Fields, data: bytes, type_pos: int, proto: int) -> None:
    body = type_pos + 2
    if proto in VLAN_TPIDS:
        _ethertype_chain(f, data, type_pos)
    elif proto == 0x0004:  # 802.2 LLC frame without a length field
        _llc(f, data, body, len(data) - body)
    elif proto > 1500:
        _network(f, data, body, proto)
    else:
        f.payload = data[body:]


def _null(f: _Fields, data: bytes, network_order: bool) -> None:
    if len(data) < 4:
        f.problem = "truncated loopback header"
        return
    family = int.from_bytes(data[0:4], "big" if network_order else "little")
    if not network_order and family > 0xFFFF:  # written on a host of the other byte order
        family = int.from_bytes(data[0:4], "big")
    if family in AF_IPV4:
        _ip(f, data, 4, 4)
    elif family in AF_IPV6:
        _ip(f, data, 4, 6)
    else:
        f.problem = f"loopback address family {family} is not IP"


def _ip_by_version(f: _Fields, data: bytes) -> None:
    if not data:
        f.problem = "empty raw IP packet"
        return
    version = data[0] >> 4
    if version not in (4, 6):
        f.problem = f"raw IP packet with version {version}"
        return
    _ip(f, data, 0, version)


# --- shims ---------------------------------------------------------------------------------------------------


def _pppoe(f: _Fields, data: bytes, pos: int) -> None:
    if len(data) < pos + 8:
        f.problem = "truncated PPPoE session header"
        return
    length = int.from_bytes(data[pos + 4 : pos + 6], "big")
    proto = int.from_bytes(data[pos + 6 : pos + 8], "big")
    end = min(len(data), pos + 6 + length)
    f.tunnels.append("pppoe")
    if proto == PPP_IPV4:
        _ip(f, data[:end], pos + 8, 4)
    elif proto == PPP_IPV6:
        _ip(f, data[:end], pos + 8, 6)
    else:
        f.payload = data[pos + 8 : end]


def _mpls(f: _Fields, data: bytes, pos: int) -> None:
    f.tunnels.append("mpls")
    while True:
        if len(data) < pos + 4:
            f.problem = "truncated MPLS label stack"
            return
        bottom = data[pos + 2] & 0x01
        pos += 4
        if bottom:
            break
    if len(data) <= pos:
        return
    version = data[pos] >> 4
    if version in (4, 6):
        _ip(f, data, pos, version)
    else:
        f.payload = data[pos:]


def _arp(f: _Fields, data: bytes, pos: int) -> None:
    if len(data) < pos + 28:
        f.problem = "truncated ARP message"
        return
    htype = int.from_bytes(data[pos : pos + 2], "big")
    ptype = int.from_bytes(data[pos + 2 : pos + 4], "big")
    if htype != 1 or ptype != ETH_IPV4 or data[pos + 4] != 6 or data[pos + 5] != 4:
        f.payload = data[pos:]
        return
    op = int.from_bytes(data[pos + 6 : pos + 8], "big")
    f.arp = Arp(
        op=op,
        sender_mac=data[pos + 8 : pos + 14],
        sender_ip=data[pos + 14 : pos + 18],
        target_mac=data[pos + 18 : pos + 24],
        target_ip=data[pos + 24 : pos + 28],
    )


# --- IP ------------------------------------------------------------------------------------------------------


def _ip(f: _Fields, data: bytes, pos: int, version: int) -> None:
    for _ in range(MAX_TUNNELS + 1):
        nxt = _ipv4(f, data, pos) if version == 4 else _ipv6(f, data, pos)
        if nxt is None:
            return
        data, pos, version, tunnel = nxt
        f.tunnels.append(tunnel)
    f.problem = "too many nested tunnels"


def _ipv4(f: _Fields, data: bytes, pos: int) -> tuple[bytes, int, int, str] | None:
    if len(data) < pos + 20:
        f.problem = "truncated IPv4 header"
        return None
    if data[pos] >> 4 != 4:
        f.problem = f"IPv4 header with version {data[pos] >> 4}"
        return None
    ihl = (data[pos] & 0x0F) * 4
    if ihl < 20:
        f.problem = f"IPv4 header length {ihl} < 20"
        return None
    f.ip_version = 4
    f.src_ip = data[pos + 12 : pos + 16]
    f.dst_ip = data[pos + 16 : pos + 20]
    f.ttl = data[pos + 8]
    proto = data[pos + 9]
    f.proto = proto
    total = int.from_bytes(data[pos + 2 : pos + 4], "big")
    frag = int.from_bytes(data[pos + 6 : pos + 8], "big")
    if frag & 0x1FFF:
        f.fragment = Fragment.LATER
    elif frag & 0x2000:
        f.fragment = Fragment.FIRST
    if len(data) < pos + ihl:
        f.problem = "truncated IPv4 options"
        return None
    # trim Ethernet padding and trailers: the IP total length says where the packet ends (TSO may give 0)
    end = pos + total if total >= ihl else len(data)
    if end < len(data):
        data = data[:end]
    if f.fragment is Fragment.LATER:
        f.payload = data[pos + ihl :]
        return None
    return _transport(f, data, pos + ihl, proto)


def _ipv6(f: _Fields, data: bytes, pos: int) -> tuple[bytes, int, int, str] | None:
    if len(data) < pos + 40:
        f.problem = "truncated IPv6 header"
        return None
    if data[pos] >> 4 != 6:
        f.problem = f"IPv6 header with version {data[pos] >> 4}"
        return None
    f.ip_version = 6
    f.src_ip = data[pos + 8 : pos + 24]
    f.dst_ip = data[pos + 24 : pos + 40]
    f.ttl = data[pos + 7]
    plen = int.from_bytes(data[pos + 4 : pos + 6], "big")
    nh = data[pos + 6]
    if plen:  # 0 means a jumbogram or TSO: keep what was captured
        end = pos + 40 + plen
        if end < len(data):
            data = data[:end]
    pos += 40
    while nh in IPV6_EXT_GENERIC or nh == IPV6_FRAGMENT or nh == IpProto.AH:
        if len(data) < pos + 8:
            f.proto = nh
            f.problem = "truncated IPv6 extension header"
            return None
        if nh == IPV6_FRAGMENT:
            offset = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if offset >> 3:
                f.fragment = Fragment.LATER
            elif offset & 0x1:
                f.fragment = Fragment.FIRST
            nh, pos = data[pos], pos + 8
        elif nh == IpProto.AH:
            nh, pos = data[pos], pos + (data[pos + 1] + 2) * 4
        else:
            nh, pos = data[pos], pos + (data[pos + 1] + 1) * 8
    f.proto = nh
    if f.fragment is Fragment.LATER:
        f.payload = data[pos:]
        return None
    return _transport(f, data, pos, nh)


def _transport(f: _Fields, data: bytes, pos: int, proto: int) -> tuple[bytes, int, int, str] | None:
    """Decode the transport header; return where an inner IP packet starts for tunnels, else None."""
    n = len(data)
    if proto == IpProto.TCP:
        if n < pos + 20:
            f.problem = "truncated TCP header"
            return None
        f.src_port = int.from_bytes(data[pos : pos + 2], "big")
        f.dst_port = int.from_bytes(data[pos + 2 : pos + 4], "big")
        f.tcp_seq = int.from_bytes(data[pos + 4 : pos + 8], "big")
        f.tcp_flags = data[pos + 13]
        hlen = (data[pos + 12] >> 4) * 4
        if hlen < 20:
            f.problem = f"TCP header length {hlen} < 20"
            return None
        f.payload = data[pos + hlen :]
    elif proto == IpProto.UDP:
        if n < pos + 8:
            f.problem = "truncated UDP header"
            return None
        f.src_port = int.from_bytes(data[pos : pos + 2], "big")
        f.dst_port = int.from_bytes(data[pos + 2 : pos + 4], "big")
        length = int.from_bytes(data[pos + 4 : pos + 6], "big")
        end = pos + length if length >= 8 else n
        f.payload = data[pos + 8 : end]
    elif proto == IpProto.ICMP or proto == IpProto.ICMPV6:
        if n < pos + 4:
            f.problem = "truncated ICMP header"
            return None
        f.icmp_type = data[pos]
        f.icmp_code = data[pos + 1]
        f.payload = data[pos + 4 :]
    elif proto == IpProto.IPIP:
        return data, pos, 4, "ipv4"
    elif proto == IpProto.IPV6:
        return data, pos, 6, "ipv6"
    elif proto == IpProto.GRE:
        return _gre(f, data, pos)
    else:
        f.payload = data[pos:]
    return None


def _gre(f: _Fields, data: bytes, pos: int) -> tuple[bytes, int, int, str] | None:
    if len(data) < pos + 4:
        f.problem = "truncated GRE header"
        return None
    flags = data[pos]
    ptype = int.from_bytes(data[pos + 2 : pos + 4], "big")
    hlen = 4 + 4 * (bool(flags & 0x80) + bool(flags & 0x20) + bool(flags & 0x10))
    inner = pos + hlen
    if ptype == ETH_IPV4:
        return data, inner, 4, "gre"
    if ptype == ETH_IPV6:
        return data, inner, 6, "gre"
    f.payload = data[inner:]
    return None
