"""IPv6 Neighbor Discovery (RFC 4861 §4): link-layer address options bind MACs to IPv6 addresses.

Router/Neighbor Solicitations and Router Advertisements carry the sender's link-layer address (option 1);
Neighbor Advertisements carry the target's (option 2) for the target address they announce.
"""

from __future__ import annotations

from wardwatch.dissect.interface import MalformedPacket, Selector, observe
from wardwatch.model.addr import ip_str, is_group_mac, is_null_mac, is_unicast_ip, mac_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import IpProto, Packet

RS, RA, NS, NA = 133, 134, 135, 136
#: Bytes between the ICMPv6 header and the options, per message type.
FIXED = {RS: 4, RA: 12, NS: 20, NA: 20}
OPT_SOURCE_LL = 1
OPT_TARGET_LL = 2


def ll_options(data: bytes, pos: int) -> dict[int, bytes]:
    """Link-layer address options (type -> address) from the option list at ``pos``."""
    found: dict[int, bytes] = {}
    while pos + 2 <= len(data):
        otype, olen = data[pos], data[pos + 1] * 8
        if olen == 0:
            raise MalformedPacket("NDP option with length 0")
        if pos + olen > len(data):
            raise MalformedPacket("NDP option runs past the end of the message")
        if otype in (OPT_SOURCE_LL, OPT_TARGET_LL) and olen >= 8:
            found.setdefault(otype, data[pos + 2 : pos + 8])
        pos += olen
    return found


class NdpDissector:
    """MAC-to-IPv6 bindings from Neighbor Discovery."""

    name = "ndp"
    selector = Selector(ip_protos=frozenset({IpProto.ICMPV6}))

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Bindings stated by one NDP message."""
        kind = packet.icmp_type
        if kind not in FIXED or packet.icmp_code != 0:
            return []
        data = packet.payload  # after type, code, checksum
        fixed = FIXED[kind]
        if len(data) < fixed:
            raise MalformedPacket("NDP message shorter than its fixed part")
        options = ll_options(data, fixed)
        out = []
        source_ll = options.get(OPT_SOURCE_LL)
        if source_ll and packet.src_ip is not None and is_unicast_ip(packet.src_ip):
            out.append((source_ll, packet.src_ip, 0.9))
        if kind == NA:
            target = data[4:20]
            mac = options.get(OPT_TARGET_LL, packet.src_mac)
            if mac is not None and is_unicast_ip(target):
                out.append((mac, target, 0.95))
        return [
            observe(packet, ref, SubjectKind.MAC, mac_str(mac), Attribute.IP, ip_str(ip), conf, "ndp")
            for mac, ip, conf in out
            if not is_group_mac(mac) and not is_null_mac(mac)
        ]
