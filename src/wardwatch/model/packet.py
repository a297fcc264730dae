"""Decoded frames: the ``Packet`` every later layer reads, and the numbers that describe it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import NamedTuple


class LinkType(IntEnum):
    """Link-layer header types (tcpdump.org LINKTYPE_* values) that wardwatch decodes."""

    NULL = 0
    """BSD loopback: 4-byte address family in the byte order of the capturing host."""
    ETHERNET = 1
    RAW = 101
    """Raw IP, version from the first nibble (also stored as DLT 12 or 14 on some systems)."""
    LOOP = 108
    """OpenBSD loopback: 4-byte address family in network byte order."""
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


#: DLT values some writers use for raw IP instead of LINKTYPE_RAW (101).
RAW_ALIASES = frozenset({12, 14})


class IpProto(IntEnum):
    """IP protocol numbers that wardwatch names (others keep their number)."""

    HOPOPT = 0
    ICMP = 1
    IGMP = 2
    IPIP = 4
    TCP = 6
    UDP = 17
    IPV6 = 41
    GRE = 47
    ESP = 50
    AH = 51
    ICMPV6 = 58
    NONE = 59
    SCTP = 132


class TcpFlag(IntFlag):
    """TCP header flags (RFC 9293 section 3.1, plus ECE/CWR of RFC 3168)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


def tcp_flag_names(flags: int) -> list[str]:
    """Names of the TCP flags set in ``flags``, in bit order (``["SYN", "ACK"]``)."""
    return [f.name for f in TcpFlag if f.name is not None and flags & f.value]


class Fragment(IntEnum):
    """Where a packet sits in IP fragmentation (fragments are counted, not reassembled)."""

    NONE = 0
    FIRST = 1
    """Offset 0 with more fragments to come: the transport header is present."""
    LATER = 2
    """Offset > 0: no transport header; counted but not part of a transport flow."""


@dataclass(frozen=True, slots=True)
class Arp:
    """An ARP (RFC 826) message for Ethernet/IPv4."""

    op: int
    """1 request, 2 reply."""
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes


class Packet(NamedTuple):
    """One decoded frame: link, network and transport header fields and the payload above them.

    Addresses are raw bytes (6 for MACs, 4 or 16 for IPs); ``wardwatch.model.addr`` formats them.
    Fields of layers the frame does not have are ``None``.

    Immutable like the frozen dataclasses of the other boundary types, but a named tuple: the fast path builds
    one for every packet a dissector wants, and a 28-field frozen dataclass costs four times as much to build.
    """

    number: int
    """1-based frame number within its capture (as Wireshark counts)."""
    ts_ns: int
    """Capture time, nanoseconds since the Unix epoch (UTC)."""
    wirelen: int
    """Original length of the frame on the wire (what byte totals count)."""
    caplen: int
    """Bytes actually captured (may be less than ``wirelen`` when a snaplen cut the frame)."""
    linktype: int
    interface: int = 0
    src_mac: bytes | None = None
    dst_mac: bytes | None = None
    vlans: tuple[int, ...] = ()
    """802.1Q / 802.1ad VLAN ids, outermost first."""
    ethertype: int | None = None
    """Ethertype of the network layer (after VLAN tags and PPPoE), or None for LLC frames."""
    llc_snap: tuple[int, int] | None = None
    """(OUI, protocol id) of an 802.2 SNAP frame (CDP is ``(0x00000c, 0x2000)``)."""
    llc_dsap: int | None = None
    """DSAP of an 802.2 LLC frame without SNAP (STP is 0x42)."""
    tunnels: tuple[str, ...] = ()
    """Encapsulations crossed before the innermost IP header (``"pppoe"``, ``"ipv4"``, ``"ipv6"``, ``"gre"``)."""
    ip_version: int = 0
    src_ip: bytes | None = None
    dst_ip: bytes | None = None
    ttl: int | None = None
    """IPv4 TTL or IPv6 hop limit of the innermost IP header."""
    proto: int | None = None
    """Transport protocol number (IPv4 protocol / last IPv6 next header)."""
    fragment: Fragment = Fragment.NONE
    src_port: int | None = None
    dst_port: int | None = None
    tcp_flags: int = 0
    tcp_seq: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    arp: Arp | None = None
    payload: bytes = b""
    """Bytes above the innermost decoded header (transport payload, or the L2 payload of non-IP frames)."""
    problem: str | None = None
    """Why decoding stopped early (malformed or cut header); the fields decoded before it are kept."""
