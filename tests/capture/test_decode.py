"""The reference header decoder on annotated frames, and never raising on arbitrary bytes."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from generate_ward import checksum, ethernet, ip4, ipv4, tcp, udp
from wardwatch.capture import Record, decode
from wardwatch.model import Fragment, LinkType, Packet
from wardwatch.model.addr import ip_str, mac_str

SRC_MAC = bytes.fromhex("0009fb000001")
DST_MAC = bytes.fromhex("005056000002")
A, B = ip4("10.1.2.3"), ip4("10.9.8.7")


def rec(data: bytes, linktype: int = LinkType.ETHERNET, wirelen: int | None = None) -> Record:
    return Record(1, 0, 0, linktype, len(data), wirelen or len(data), data, 0)


def dec(data: bytes, linktype: int = LinkType.ETHERNET) -> Packet:
    return decode(rec(data, linktype))


UDP_IP = ipv4(A, B, 17, udp(A, B, 1234, 53, b"hello"), 64, 7)


def test_ethernet_ipv4_udp() -> None:
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x0800, UDP_IP))
    assert (mac_str(p.src_mac or b""), mac_str(p.dst_mac or b"")) == ("00:09:fb:00:00:01", "00:50:56:00:00:02")
    assert p.vlans == () and p.ethertype == 0x0800 and p.ip_version == 4
    assert (ip_str(p.src_ip or b""), ip_str(p.dst_ip or b"")) == ("10.1.2.3", "10.9.8.7")
    assert (p.proto, p.src_port, p.dst_port, p.ttl, p.payload) == (17, 1234, 53, 64, b"hello")
    assert p.problem is None


def test_padding_is_not_payload() -> None:
    # 60-byte minimum frame: Ethernet padding after a short IP packet must not leak into the UDP payload
    frame = ethernet(SRC_MAC, DST_MAC, None, 0x0800, ipv4(A, B, 17, udp(A, B, 1, 2, b""), 64, 1))
    assert len(frame) == 60
    assert dec(frame).payload == b""


def test_vlan_and_qinq_and_priority_tag() -> None:
    # outer 802.1ad S-tag 100 (TPID 0x88a8), inner 802.1Q C-tag 10, then IPv4
    qinq = DST_MAC + SRC_MAC + bytes.fromhex("88a8 0064 8100 000a 0800") + UDP_IP
    p = dec(qinq)
    assert p.vlans == (100, 10) and p.src_port == 1234
    # priority-tagged frame (VID 0) is not a VLAN
    prio = DST_MAC + SRC_MAC + bytes.fromhex("8100 a000 0800") + UDP_IP
    assert dec(prio).vlans == ()


def test_ipv4_options_and_fragments() -> None:
    # IHL 6: one 4-byte option word (NOP NOP NOP EOL) before the UDP header
    body = udp(A, B, 7, 9, b"opt")
    hdr = struct.pack("!BBHHHBBH4s4s", 0x46, 0, 24 + len(body), 1, 0, 64, 17, 0, A, B) + b"\x01\x01\x01\x00"
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x0800, hdr + body))
    assert (p.src_port, p.dst_port, p.payload) == (7, 9, b"opt")
    first = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 2, 0x2000, 64, 17, 0, A, B) + body
    later = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 2, 0x0001, 64, 17, 0, A, B) + b"8 bytes!"
    p1, p2 = dec(ethernet(SRC_MAC, DST_MAC, None, 0x0800, first)), dec(ethernet(SRC_MAC, DST_MAC, None, 0x0800, later))
    assert p1.fragment is Fragment.FIRST and p1.src_port == 7
    assert p2.fragment is Fragment.LATER and p2.src_port is None and p2.payload == b"8 bytes!"


def ipv6(src: bytes, dst: bytes, nh: int, payload: bytes, hlim: int = 64) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hlim, src, dst) + payload


S6 = bytes.fromhex("20010db8000000000000000000000001")
D6 = bytes.fromhex("20010db8000000000000000000000002")


def test_ipv6_extension_headers() -> None:
    tcp_seg = struct.pack("!HHIIBBHHH", 40000, 443, 1, 0, 5 << 4, 0x02, 1024, 0, 0)
    hop_by_hop = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"  # next: destination options, PadN
    dest_opts = bytes([44, 0]) + b"\x01\x04\x00\x00\x00\x00"  # next: fragment
    fragment = bytes([6, 0]) + struct.pack("!HI", 0x0001, 99)  # offset 0, M=1 -> first fragment, next TCP
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x86DD, ipv6(S6, D6, 0, hop_by_hop + dest_opts + fragment + tcp_seg)))
    assert p.ip_version == 6 and p.proto == 6 and (p.src_port, p.dst_port) == (40000, 443)
    assert p.tcp_flags == 0x02 and p.fragment is Fragment.FIRST
    assert ip_str(p.src_ip or b"") == "2001:db8::1"


def test_tunnels_6in4_gre_pppoe_mpls() -> None:
    inner6 = ipv6(S6, D6, 17, udp(b"\x00" * 4, b"\x00" * 4, 5, 514, b"log")[:8] + b"log")
    sixin4 = ipv4(A, B, 41, inner6, 64, 3)
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x0800, sixin4))
    assert p.tunnels == ("ipv6",) and p.ip_version == 6 and p.dst_port == 514

    gre = struct.pack("!HH", 0x0000, 0x0800) + UDP_IP
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x0800, ipv4(B, A, 47, gre, 64, 4)))
    assert p.tunnels == ("gre",) and ip_str(p.src_ip or b"") == "10.1.2.3" and p.dst_port == 53

    ppp = struct.pack("!BBHHH", 0x11, 0, 0x0001, len(UDP_IP) + 2, 0x0021) + UDP_IP
    p = dec(ethernet(SRC_MAC, DST_MAC, 20, 0x8864, ppp))
    assert p.tunnels == ("pppoe",) and p.vlans == (20,) and p.src_port == 1234

    mpls = struct.pack("!I", (16 << 12) | 0x100 | 64) + UDP_IP  # label 16, bottom of stack
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x8847, mpls))
    assert p.tunnels == ("mpls",) and p.dst_port == 53


def test_arp() -> None:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, SRC_MAC, A, DST_MAC, B)
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x0806, body))
    assert p.arp is not None and p.arp.op == 2 and p.arp.sender_ip == A and p.arp.target_mac == DST_MAC
    assert p.src_ip is None


def test_llc_snap_cdp_and_stp() -> None:
    cdp = bytes.fromhex("01000ccccccc") + SRC_MAC + struct.pack("!H", 8 + 4) + bytes.fromhex("aaaa03 00000c 2000")
    p = dec(cdp + b"\x02\xb4\x00\x00")
    assert p.llc_snap == (0x00000C, 0x2000) and p.payload == b"\x02\xb4\x00\x00" and p.ethertype is None
    stp = bytes.fromhex("0180c2000000") + SRC_MAC + struct.pack("!H", 3 + 4) + bytes.fromhex("424203") + b"\x00" * 4
    assert dec(stp).llc_dsap == 0x42


def test_linux_sll_and_sll2() -> None:
    sll = struct.pack("!HHH8sH", 0, 1, 6, SRC_MAC + b"\x00\x00", 0x0800) + UDP_IP
    p = dec(sll, LinkType.LINUX_SLL)
    assert p.src_mac == SRC_MAC and p.dst_mac is None and p.dst_port == 53
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 4, 6, SRC_MAC + b"\x00\x00") + UDP_IP
    p = dec(sll2, LinkType.LINUX_SLL2)
    assert p.src_mac == SRC_MAC and p.src_port == 1234


def test_null_loop_and_raw() -> None:
    assert dec(struct.pack("<I", 2) + UDP_IP, LinkType.NULL).dst_port == 53  # little-endian host
    assert dec(struct.pack(">I", 2) + UDP_IP, LinkType.NULL).dst_port == 53  # big-endian host
    assert dec(struct.pack("<I", 30) + ipv6(S6, D6, 59, b""), LinkType.NULL).ip_version == 6  # macOS AF_INET6
    assert dec(struct.pack(">I", 2) + UDP_IP, LinkType.LOOP).dst_port == 53
    assert dec(UDP_IP, LinkType.RAW).dst_port == 53
    assert dec(ipv6(S6, D6, 59, b""), LinkType.IPV6).proto == 59
    assert dec(struct.pack("<I", 7) + UDP_IP, LinkType.NULL).problem == "loopback address family 7 is not IP"


def test_tcp_and_icmp() -> None:
    seg = tcp(A, B, 5555, 2575, 1000, 0, 0x02, b"")
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x0800, ipv4(A, B, 6, seg, 64, 1)))
    assert (p.tcp_flags, p.tcp_seq, p.dst_port) == (0x02, 1000, 2575)
    icmp = bytes([3, 3]) + b"\x00\x00" + b"\x00" * 4 + UDP_IP[:28]
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    p = dec(ethernet(SRC_MAC, DST_MAC, None, 0x0800, ipv4(B, A, 1, icmp, 64, 2)))
    # an ICMP error carries the offending header: it is not a UDP packet of that flow
    assert (p.proto, p.icmp_type, p.icmp_code, p.src_port) == (1, 3, 3, None)


def test_truncated_headers_keep_what_was_decoded() -> None:
    frame = ethernet(SRC_MAC, DST_MAC, None, 0x0800, ipv4(A, B, 6, tcp(A, B, 1, 2, 0, 0, 0x10, b""), 64, 1))
    cut = decode(Record(1, 0, 0, 1, 40, len(frame), frame[:40], 0))
    assert cut.problem == "truncated TCP header" and cut.src_ip == A and cut.src_port is None
    assert dec(frame[:20]).problem == "truncated IPv4 header" and dec(frame[:20]).src_mac == SRC_MAC
    assert dec(frame[:10]).problem == "truncated Ethernet header"
    bad_ihl = bytearray(ethernet(SRC_MAC, DST_MAC, None, 0x0800, UDP_IP))
    bad_ihl[14] = 0x43
    assert dec(bytes(bad_ihl)).problem == "IPv4 header length 12 < 20"
    assert decode(rec(b"\x00" * 30, 147)).problem == "unsupported link type 147"


@settings(max_examples=400, deadline=None)
@given(
    linktype=st.sampled_from([int(x) for x in LinkType] + [147]),
    data=st.binary(max_size=200),
)
def test_decode_never_raises(linktype: int, data: bytes) -> None:
    p = decode(Record(1, 0, 0, linktype, len(data), len(data), data, 0))
    assert p.number == 1 and p.caplen == len(data)
    if p.src_port is not None:
        assert p.proto in (6, 17) and p.dst_port is not None


@settings(max_examples=300, deadline=None)
@given(prefix=st.binary(max_size=80), cut=st.integers(min_value=0, max_value=120))
def test_decode_survives_mangled_real_frames(prefix: bytes, cut: int) -> None:
    """Real headers with random tails and random truncation: fields decoded are consistent, never a crash."""
    frame = (ethernet(SRC_MAC, DST_MAC, 10, 0x0800, UDP_IP) + prefix)[:cut]
    p = decode(Record(1, 0, 0, 1, len(frame), 200, frame, 0))
    if len(frame) >= 18 + 28:
        assert p.dst_port == 53 and p.vlans == (10,)
