"""NetBIOS Name Service (RFC 1002 §4.2): names that Windows and SMB hosts register or resolve.

Registrations, refreshes and positive query responses carry NB records: (name, flags, IPv4 address).
Unique names with suffix 0x00 (workstation) or 0x20 (file server) are host names; group names and other
suffixes (domain, browser, messenger) are not.
"""

from __future__ import annotations

from wardwatch.dissect.dns import parse_message
from wardwatch.dissect.interface import Selector, observe
from wardwatch.dissect.wire import clean_text
from wardwatch.model.addr import ip_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet

TYPE_NB = 0x0020
OPCODE_QUERY = 0
OPCODE_REGISTRATION = 5
OPCODE_REFRESH = (8, 9)
OPCODE_MULTIHOMED = 15
HOST_SUFFIXES = frozenset({0x00, 0x20})
GROUP_FLAG = 0x8000


def decode_netbios_name(encoded: str) -> tuple[str, int] | None:
    """First-level decode (RFC 1001 §14.1): 32 letters A-P -> 15-character name and the suffix byte."""
    label = encoded.split(".", 1)[0].upper()
    if len(label) != 32 or any(not "A" <= c <= "P" for c in label):
        return None
    raw = bytes(((ord(label[i]) - 65) << 4) | (ord(label[i + 1]) - 65) for i in range(0, 32, 2))
    return clean_text(raw[:15].rstrip(b" \x00")), raw[15]


class NbnsDissector:
    """Host names from NetBIOS name registrations and query responses."""

    name = "nbns"
    selector = Selector(udp_ports=frozenset({137}))

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Hostname observations about the IPv4 addresses in NB records."""
        data = packet.payload
        msg = parse_message(data)  # NBNS shares the DNS message layout (RFC 1002 §4.2.1)
        opcode = (msg.flags >> 11) & 0x0F
        if msg.rcode:
            return []
        if msg.is_response and opcode != OPCODE_QUERY:
            return []  # registration responses repeat what the request said
        if not msg.is_response and opcode not in (OPCODE_REGISTRATION, OPCODE_MULTIHOMED, *OPCODE_REFRESH):
            return []  # a query names what somebody is looking for, not who they are
        source = "nbns-response" if msg.is_response else "nbns-registration"
        confidence = 0.85 if msg.is_response else 0.9
        out = []
        for rec in msg.records:
            if rec.rtype != TYPE_NB:
                continue
            decoded = decode_netbios_name(rec.name)
            if decoded is None:
                continue
            host, suffix = decoded
            rdata = data[rec.rdata_pos : rec.rdata_pos + rec.rdata_len]
            for i in range(0, len(rdata) - 5, 6):
                nb_flags = int.from_bytes(rdata[i : i + 2], "big")
                addr = rdata[i + 2 : i + 6]
                if nb_flags & GROUP_FLAG or suffix not in HOST_SUFFIXES or not host or not any(addr):
                    continue
                out.append(
                    observe(packet, ref, SubjectKind.IP, ip_str(addr), Attribute.HOSTNAME, host, confidence, source)
                )
        return out
