"""DHCPv4 (RFC 2131 §2 message format, RFC 2132 options) and DHCPv6 (RFC 8415 §8, §21) dissectors.

Client host names (v4 option 12 and client FQDN 81 of RFC 4702; v6 client FQDN 39 of RFC 4704), the address
a server granted (v4 yiaddr in DHCPACK, v6 IA Address in Reply), and what identifies the client's software:
the parameter request list (55: its order is the classic DHCP fingerprint), vendor class (60) and user class
(77, RFC 3004), client identifier (61), vendor-specific information (43); v6 option request order (6), vendor
class (16, RFC 8415 §21.16), user class (15) and the DUID (1, RFC 8415 §11).
"""

from __future__ import annotations

from collections.abc import Iterator

from wardwatch.dissect.interface import Facts, MalformedPacket, Selector
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
OPT_VENDOR_INFO = 43
OPT_PARAM_LIST = 55
OPT_VENDOR_CLASS = 60
OPT_CLIENT_ID = 61
OPT_USER_CLASS = 77
BOOTREQUEST = 1
#: Longest value kept of an identifier-like option (hex or text).
MAX_VALUE = 128
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
V6_OPT_CLIENT_ID = 1
V6_OPT_ORO = 6
V6_OPT_USER_CLASS = 15
V6_OPT_VENDOR_CLASS = 16
DUID_KINDS = {1: "duid-llt", 2: "duid-en", 3: "duid-ll", 4: "duid-uuid"}


def text_or_hex(value: bytes) -> str:
    """Printable ASCII as text, anything else as hex (both bounded)."""
    value = value[:MAX_VALUE]
    stripped = value.rstrip(b"\x00")
    if stripped and all(0x20 <= b < 0x7F for b in stripped):
        return stripped.decode("ascii")
    return value.hex(":")


def _prefixed(value: bytes, width: int) -> list[bytes] | None:
    out, pos = [], 0
    while pos < len(value):
        if pos + width > len(value):
            return None
        n = int.from_bytes(value[pos : pos + width], "big")
        if n == 0 or pos + width + n > len(value):
            return None
        out.append(value[pos + width : pos + width + n])
        pos += width + n
    return out


def user_classes(value: bytes, width: int = 1) -> list[str]:
    """User/vendor class strings: length-prefixed (RFC 3004, RFC 8415) or, as many clients send them, plain."""
    parts = _prefixed(value, width)
    if parts is None:
        return [text_or_hex(value)] if value else []
    return [text_or_hex(p) for p in parts]


def duid_text(duid: bytes) -> str:
    """A DUID as ``<kind>:<hex>`` (RFC 8415 §11: LLT, EN, LL, UUID)."""
    kind = DUID_KINDS.get(int.from_bytes(duid[:2], "big"), "duid") if len(duid) >= 2 else "duid"
    return f"{kind}:{duid[2:MAX_VALUE].hex(':')}"


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
        out = Facts(packet, ref, SubjectKind.MAC, mac)
        msg_type = options.get(OPT_MESSAGE_TYPE, b"\x00")[0]
        hostname = options.get(OPT_HOSTNAME)
        if hostname:
            name = clean_text(hostname.rstrip(b"\x00"))
            if name:
                out.add(Attribute.HOSTNAME, name, 0.9, "dhcp-option-12")
        if data[0] == BOOTREQUEST:  # what the client says of its own software
            self._fingerprints(out, options)
        vendor_info = options.get(OPT_VENDOR_INFO)
        if vendor_info:
            text = text_or_hex(vendor_info)
            out.add(Attribute.VENDOR_INFO, text, 0.6, "dhcp-option-43")
        fqdn = options.get(OPT_CLIENT_FQDN)
        if fqdn and len(fqdn) > 3:
            name2 = fqdn_name(fqdn[3:], fqdn[0] & FQDN_FLAG_E)
            if name2:
                out.add(Attribute.HOSTNAME, name2, 0.9, "dhcp-option-81")
        yiaddr = data[16:20]
        ciaddr = data[12:16]
        if msg_type == ACK and any(yiaddr):
            out.add(Attribute.IP, ip_str(yiaddr), 0.95, "dhcp-ack")
        if msg_type in (REQUEST, INFORM) and any(ciaddr):
            out.add(Attribute.IP, ip_str(ciaddr), 0.9, "dhcp-ciaddr")
        return out

    @staticmethod
    def _fingerprints(out: Facts, options: dict[int, bytes]) -> None:
        """What the client's own DHCP stack says of it: request order, classes, identifier."""
        add = out.add
        prl = options.get(OPT_PARAM_LIST)
        if prl:
            add(Attribute.FINGERPRINT, "dhcp:" + ",".join(str(b) for b in prl[:64]), 0.9, "dhcp-option-55")
        vendor = options.get(OPT_VENDOR_CLASS)
        if vendor:
            add(Attribute.VENDOR_CLASS, text_or_hex(vendor), 0.9, "dhcp-option-60")
        for user in user_classes(options.get(OPT_USER_CLASS, b"")):
            add(Attribute.VENDOR_CLASS, user, 0.7, "dhcp-option-77")
        client_id = options.get(OPT_CLIENT_ID)
        if client_id and len(client_id) >= 2:
            text = duid_text(client_id[5:]) if client_id[0] == 0xFF and len(client_id) > 7 else client_id.hex(":")
            add(Attribute.CLIENT_ID, text, 0.8, "dhcp-option-61")  # type 255: IAID + DUID (RFC 4361)


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
        out = Facts(packet, ref, SubjectKind.MAC, mac)
        add = out.add
        client_msg = msg_type in V6_CLIENT_MESSAGES

        for code, value in v6_options(data, 4):
            if not client_msg:
                pass
            elif code == V6_OPT_ORO and value and len(value) % 2 == 0:
                codes = [int.from_bytes(value[i : i + 2], "big") for i in range(0, min(len(value), 128), 2)]
                add(Attribute.FINGERPRINT, "dhcpv6:" + ",".join(map(str, codes)), 0.9, "dhcpv6-option-6")
            elif code == V6_OPT_CLIENT_ID and len(value) >= 4:
                add(Attribute.CLIENT_ID, duid_text(value), 0.8, "dhcpv6-duid")
            elif code == V6_OPT_VENDOR_CLASS and len(value) >= 4:
                enterprise = int.from_bytes(value[:4], "big")
                for text in user_classes(value[4:], 2):
                    add(Attribute.VENDOR_CLASS, f"{text} (enterprise {enterprise})", 0.9, "dhcpv6-option-16")
            elif code == V6_OPT_USER_CLASS and value:
                for text in user_classes(value, 2):
                    add(Attribute.VENDOR_CLASS, text, 0.7, "dhcpv6-option-15")
            if code == V6_OPT_CLIENT_FQDN and len(value) > 1:
                name = fqdn_name(value[1:], 1)
                if name:
                    out.add(Attribute.HOSTNAME, name, 0.9, "dhcpv6-fqdn")
            elif code == V6_OPT_IA_NA and msg_type == V6_REPLY and len(value) >= 12:
                for sub, subval in v6_options(value, 12):
                    if sub == V6_OPT_IAADDR and len(subval) >= 24:
                        addr = ip_str(subval[:16])
                        out.add(Attribute.IP, addr, 0.9, "dhcpv6-reply")
        return out
