"""DHCPv4 (RFC 2131 §2 message format, RFC 2132 options) and DHCPv6 (RFC 8415 §8, §21) dissectors.

This issue's scope: client host names (v4 option 12 and client FQDN 81 of RFC 4702; v6 client FQDN 39 of
RFC 4704) and the address a server granted (v4 yiaddr in DHCPACK, v6 IA Address in Reply). Fingerprints
(options 55/60/61/77/43, DUIDs) come with the identification work.
"""

from __future__ import annotations

from collections.abc import Iterator

from wardwatch.dissect.interface import MalformedPacket, Selector, observe
from wardwatch.dissect.wire import clean_text, read_name
from wardwatch.model.addr import ip_str, is_group_mac, is_null_mac, mac_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet

MAGIC_COOKIE = b"\x63\x82\x53\x63"
BOOTP_FIXED = 236
OPT_PAD, OPT_END = 0, 255
OPT_HOSTNAME = 12
OPT_REQUESTED_IP = 50
OPT_OVERLOAD = 52
OPT_MESSAGE_TYPE = 53
OPT_CLIENT_FQDN = 81
ACK = 5
REQUEST = 3
INFORM = 8
FQDN_FLAG_E = 0x04  # name in DNS wire format (RFC 4702 §2.1)

V6_CLIENT_MESSAGES = frozenset({1, 3, 4, 5, 6, 8, 9, 11})  # Solicit, Request, Confirm, Renew, Rebind …
V6_SERVER_MESSAGES = frozenset({2, 7})  # Advertise, Reply
V6_REPLY = 7
V6_OPT_IA_NA = 3
V6_OPT_IAADDR = 5
V6_OPT_CLIENT_FQDN = 39


def parse_options(data: bytes, pos: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield (code, value) of RFC 2132 options in ``data[pos:end]``; stops at the End option."""
    while pos < end:
        code = data[pos]
        if code == OPT_END:
            return
        if code == OPT_PAD:
            pos += 1
            continue
        if pos + 1 >= end:
            raise MalformedPacket(f"DHCP option {code} has no length byte")
        length = data[pos + 1]
        if pos + 2 + length > end:
            raise MalformedPacket(f"DHCP option {code} runs past the end of the message")
        yield code, data[pos + 2 : pos + 2 + length]
        pos += 2 + length


def dhcp_options(data: bytes) -> dict[int, bytes]:
    """All options of a DHCPv4 message, honouring option overload (52) into the file and sname fields.

    A repeated option is concatenated (RFC 3396 long-option encoding).
    """
    if len(data) < BOOTP_FIXED + 4 or data[BOOTP_FIXED : BOOTP_FIXED + 4] != MAGIC_COOKIE:
        raise MalformedPacket("not a DHCP message (no magic cookie)")
    options: dict[int, bytes] = {}

    def collect(pos: int, end: int) -> None:
        for code, value in parse_options(data, pos, end):
            options[code] = options.get(code, b"") + value

    collect(BOOTP_FIXED + 4, len(data))
    overload = options.get(OPT_OVERLOAD, b"\x00")[:1]
    if overload in (b"\x01", b"\x03"):
        collect(108, 236)  # file field
    if overload in (b"\x02", b"\x03"):
        collect(44, 108)  # sname field
    return options


def fqdn_name(value: bytes, wire_flag: int) -> str | None:
    """The name in a client FQDN option body after its flag/rcode bytes (RFC 4702 §2.3)."""
    if not value:
        return None
    if wire_flag:
        try:
            name, _ = read_name(value, 0)
        except MalformedPacket:
            return None
        return name or None
    text = clean_text(value)
    return text.rstrip(".") or None


class DhcpDissector:
    """Host names and granted addresses from DHCPv4."""

    name = "dhcp"
    selector = Selector(udp_ports=frozenset({67, 68}))

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Observations about the client (its chaddr) in one DHCPv4 message."""
        data = packet.payload
        options = dhcp_options(data)
        htype, hlen = data[1], data[2]
        chaddr = data[28:34]
        if htype != 1 or hlen != 6 or is_group_mac(chaddr) or is_null_mac(chaddr):
            return []
        mac = mac_str(chaddr)
        out: list[Observation] = []
        msg_type = options.get(OPT_MESSAGE_TYPE, b"\x00")[0]
        hostname = options.get(OPT_HOSTNAME)
        if hostname:
            name = clean_text(hostname.rstrip(b"\x00"))
            if name:
                out.append(observe(packet, ref, SubjectKind.MAC, mac, Attribute.HOSTNAME, name, 0.9, "dhcp-option-12"))
        fqdn = options.get(OPT_CLIENT_FQDN)
        if fqdn and len(fqdn) > 3:
            name2 = fqdn_name(fqdn[3:], fqdn[0] & FQDN_FLAG_E)
            if name2:
                out.append(observe(packet, ref, SubjectKind.MAC, mac, Attribute.HOSTNAME, name2, 0.9, "dhcp-option-81"))
        yiaddr = data[16:20]
        ciaddr = data[12:16]
        if msg_type == ACK and any(yiaddr):
            out.append(observe(packet, ref, SubjectKind.MAC, mac, Attribute.IP, ip_str(yiaddr), 0.95, "dhcp-ack"))
        if msg_type in (REQUEST, INFORM) and any(ciaddr):
            out.append(observe(packet, ref, SubjectKind.MAC, mac, Attribute.IP, ip_str(ciaddr), 0.9, "dhcp-ciaddr"))
        return out


def v6_options(data: bytes, pos: int) -> Iterator[tuple[int, bytes]]:
    """Yield (code, value) of DHCPv6 options from ``pos`` (RFC 8415 §21.1)."""
    while pos + 4 <= len(data):
        code = int.from_bytes(data[pos : pos + 2], "big")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if pos + 4 + length > len(data):
            raise MalformedPacket(f"DHCPv6 option {code} runs past the end of the message")
        yield code, data[pos + 4 : pos + 4 + length]
        pos += 4 + length
    if pos != len(data):
        raise MalformedPacket("DHCPv6 options end with a partial option header")


class Dhcpv6Dissector:
    """Host names (client FQDN) and granted addresses from DHCPv6."""

    name = "dhcpv6"
    selector = Selector(udp_ports=frozenset({546, 547}))

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Observations about the client of one DHCPv6 exchange (relay messages are not unwrapped yet)."""
        data = packet.payload
        if len(data) < 4:
            raise MalformedPacket("DHCPv6 message shorter than its header")
        msg_type = data[0]
        if msg_type in V6_CLIENT_MESSAGES:
            client = packet.src_mac
        elif msg_type in V6_SERVER_MESSAGES:
            client = packet.dst_mac
        else:
            return []
        if client is None or is_group_mac(client):
            return []
        mac = mac_str(client)
        out: list[Observation] = []
        for code, value in v6_options(data, 4):
            if code == V6_OPT_CLIENT_FQDN and len(value) > 1:
                name = fqdn_name(value[1:], 1)
                if name:
                    out.append(observe(packet, ref, SubjectKind.MAC, mac, Attribute.HOSTNAME, name, 0.9, "dhcpv6-fqdn"))
            elif code == V6_OPT_IA_NA and msg_type == V6_REPLY and len(value) >= 12:
                for sub, subval in v6_options(value, 12):
                    if sub == V6_OPT_IAADDR and len(subval) >= 24:
                        addr = ip_str(subval[:16])
                        out.append(observe(packet, ref, SubjectKind.MAC, mac, Attribute.IP, addr, 0.9, "dhcpv6-reply"))
        return out
