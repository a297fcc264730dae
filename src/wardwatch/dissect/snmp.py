"""SNMP v1 (RFC 1157) and v2c (RFC 3416) messages, BER-encoded (X.690 §8), on UDP 161 and 162.

From an agent's GetResponse: sysDescr, sysObjectID (its enterprise number names the vendor, via the fingerprint
catalog) and sysName (RFC 3418). From v1 traps: the enterprise OID. The community string is a password sent
in clear: that one was seen is recorded on both sides, its value never. SNMPv3 is only noted as a version.
"""

from __future__ import annotations

from collections.abc import Callable

from wardwatch.dissect.interface import MalformedPacket, Selector, observe
from wardwatch.dissect.wire import clean_text
from wardwatch.model.addr import ip_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet

SEQUENCE, INTEGER, OCTETS, OID = 0x30, 0x02, 0x04, 0x06
GET_RESPONSE, TRAP_V1, TRAP_V2 = 0xA2, 0xA4, 0xA7
SYS_DESCR, SYS_OBJECT_ID, SYS_NAME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.5.0"
VERSIONS = {0: "snmp:v1", 1: "snmp:v2c", 3: "snmp:v3"}
#: Variable bindings read from one message.
MAX_VARBINDS = 64


def tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, value, next position) of the BER element at ``pos`` (definite lengths only)."""
    if pos + 2 > len(data):
        raise MalformedPacket("SNMP element header runs past the end")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise MalformedPacket("SNMP element with an unsupported or cut length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > len(data):
        raise MalformedPacket("SNMP element runs past the end of the message")
    return tag, data[pos : pos + length], pos + length


def oid_text(raw: bytes) -> str:
    """Dotted form of a BER OBJECT IDENTIFIER."""
    if not raw:
        raise MalformedPacket("empty SNMP object identifier")
    parts: list[int] = []
    value = 0
    for b in raw:
        value = value << 7 | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    first = parts[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(p) for p in head + parts[1:])


def elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, value) elements of a constructed value."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data) and len(out) < MAX_VARBINDS + 8:
        tag, value, pos = tlv(data, pos)
        out.append((tag, value))
    return out


class SnmpDissector:
    """System description, object id and name of SNMP agents; cleartext communities; protocol versions."""

    name = "snmp"
    selector = Selector(udp_ports=frozenset({161, 162}))

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Observations about the sender (and, for the community, the receiver) of one SNMP message."""
        if packet.src_ip is None or packet.dst_ip is None:
            return []
        tag, body, _ = tlv(packet.payload, 0)
        if tag != SEQUENCE:
            raise MalformedPacket("SNMP message is not a BER sequence")
        parts = elements(body)
        if len(parts) < 2 or parts[0][0] != INTEGER:
            raise MalformedPacket("SNMP message without a version")
        version = int.from_bytes(parts[0][1], "big")
        sender, receiver = ip_str(packet.src_ip), ip_str(packet.dst_ip)
        out: list[Observation] = []

        def add(ip: str, attribute: Attribute, value: str, conf: float, source: str = "snmp") -> None:
            if value:
                out.append(observe(packet, ref, SubjectKind.IP, ip, attribute, value, conf, source))

        if version in VERSIONS:
            add(sender, Attribute.PROTOCOL, VERSIONS[version], 0.9)
        if version not in (0, 1) or len(parts) < 3 or parts[1][0] != OCTETS:
            return out
        for ip in (sender, receiver):
            add(ip, Attribute.CLEARTEXT_SECRET, "snmp-community", 1.0, "snmp-community")
        try:
            self._pdu(parts[2], sender, add)
        except MalformedPacket as exc:
            raise MalformedPacket(str(exc), out) from None
        return out

    @staticmethod
    def _pdu(part: tuple[int, bytes], sender: str, add: Callable[..., None]) -> None:
        pdu_tag, pdu = part
        fields = elements(pdu)
        if pdu_tag == TRAP_V1 and fields and fields[0][0] == OID:
            add(sender, Attribute.FINGERPRINT, f"sysobjectid:{oid_text(fields[0][1])}", 0.6, "snmp-trap-enterprise")
        if pdu_tag not in (GET_RESPONSE, TRAP_V2) or len(fields) < 4 or fields[3][0] != SEQUENCE:
            return
        for vtag, varbind in elements(fields[3][1])[:MAX_VARBINDS]:
            pair = elements(varbind) if vtag == SEQUENCE else []
            if len(pair) != 2 or pair[0][0] != OID:
                continue
            name = oid_text(pair[0][1])
            value_tag, value = pair[1]
            if name == SYS_DESCR and value_tag == OCTETS:
                add(sender, Attribute.DESCRIPTION, clean_text(value.rstrip(b"\x00")), 0.9, "snmp-sysdescr")
            elif name == SYS_OBJECT_ID and value_tag == OID:
                add(sender, Attribute.FINGERPRINT, f"sysobjectid:{oid_text(value)}", 0.9, "snmp-sysobjectid")
            elif name == SYS_NAME and value_tag == OCTETS:
                add(sender, Attribute.HOSTNAME, clean_text(value.rstrip(b"\x00")), 0.85, "snmp-sysname")
