"""LLDP (IEEE 802.1AB-2016 §8) with the LLDP-MED inventory TLVs (ANSI/TIA-1057 §10.2.6) and the IEEE 802.1
port VLAN TLV (802.1Q Annex D.2.1).

Everything is about the sender (the frame's source MAC): its system name and description, capabilities (→ role),
management address, the port it speaks from, and — from LLDP-MED endpoints such as IP phones, patient monitors
and infusion pump docks — hardware/firmware/software revision, serial number, manufacturer, model and asset id.
"""

from __future__ import annotations

from collections.abc import Callable

from wardwatch.dissect.interface import Facts, MalformedPacket, Selector
from wardwatch.dissect.wire import clean_text
from wardwatch.model.addr import ip_str, is_group_mac, mac_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet

ETHERTYPE_LLDP = 0x88CC
TLV_END, TLV_CHASSIS, TLV_PORT, TLV_TTL, TLV_PORT_DESC = 0, 1, 2, 3, 4
TLV_SYS_NAME, TLV_SYS_DESC, TLV_CAPS, TLV_MGMT, TLV_ORG = 5, 6, 7, 8, 127
OUI_MED = 0x0012BB
OUI_8021 = 0x0080C2
#: Chassis / port id subtypes holding a MAC address (802.1AB Tables 8-2, 8-3).
CHASSIS_MAC, PORT_MAC = 4, 3
CHASSIS_NETADDR, PORT_NETADDR = 5, 4
#: System capability bits (802.1AB Table 8-4) -> role.
CAPABILITY_ROLES = {0x0004: "switch", 0x0008: "wlan-ap", 0x0010: "router", 0x0020: "ip-phone"}
#: LLDP-MED inventory TLV subtypes (TIA-1057 Table 11) -> attribute.
MED_INVENTORY = {
    5: Attribute.HARDWARE,
    6: Attribute.FIRMWARE,
    7: Attribute.SOFTWARE,
    8: Attribute.SERIAL,
    9: Attribute.VENDOR,
    10: Attribute.MODEL,
    11: Attribute.ASSET_ID,
}
MED_DEVICE_CLASSES = {
    1: "lldp-med-endpoint-class-1",
    2: "lldp-med-endpoint-class-2",
    3: "lldp-med-endpoint-class-3",
    4: "lldp-med-network-connectivity",
}
SOURCE = "lldp"

Add = Callable[[Attribute, str, float, str], None]
"""``add(attribute, value, confidence, source)``: record one observation about the sender."""


def tlvs(data: bytes) -> tuple[list[tuple[int, bytes]], str | None]:
    """(type, value) of every TLV up to End of LLDPDU, and why reading stopped early (None: it did not)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos + 2 <= len(data):
        head = int.from_bytes(data[pos : pos + 2], "big")
        kind, length = head >> 9, head & 0x1FF
        if kind == TLV_END:
            return out, None
        if pos + 2 + length > len(data):
            return out, f"LLDP TLV type {kind} runs past the end of the frame"
        out.append((kind, data[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    return out, "LLDPDU without an End TLV" if out else "empty LLDPDU"


def _text(value: bytes) -> str:
    return clean_text(value.rstrip(b"\x00"))  # some senders count a C string's terminator


def _id_text(subtype: int, value: bytes, mac_kind: int, net_kind: int) -> str:
    if subtype == mac_kind and len(value) == 6:
        return mac_str(value)
    if subtype == net_kind and len(value) in (5, 17):  # IANA address family + address
        return ip_str(value[1:])
    return _text(value)


class LldpDissector:
    """System identity, capabilities, management address, port and LLDP-MED inventory from LLDP frames."""

    name = "lldp"
    selector = Selector(ethertypes=frozenset({ETHERTYPE_LLDP}))

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Observations about the frame's sender; a broken TLV ends the frame (what came before is kept)."""
        if packet.src_mac is None or is_group_mac(packet.src_mac):
            return []
        items, problem = tlvs(packet.payload)
        mac = mac_str(packet.src_mac)
        out = Facts(packet, ref, SubjectKind.MAC, mac)
        add = out.add

        chassis = port = port_desc = ""
        for kind, value in items:
            if kind == TLV_CHASSIS and len(value) > 1:
                chassis = _id_text(value[0], value[1:], CHASSIS_MAC, CHASSIS_NETADDR)
            elif kind == TLV_PORT and len(value) > 1:
                port = _id_text(value[0], value[1:], PORT_MAC, PORT_NETADDR)
            elif kind == TLV_PORT_DESC:
                port_desc = _text(value)
            elif kind == TLV_SYS_NAME:
                add(Attribute.HOSTNAME, _text(value), 0.9, "lldp-system-name")
            elif kind == TLV_SYS_DESC:
                add(Attribute.DESCRIPTION, _text(value), 0.9, "lldp-system-description")
            elif kind == TLV_CAPS and len(value) >= 4:
                enabled = int.from_bytes(value[2:4], "big")
                for bit, role in CAPABILITY_ROLES.items():
                    if enabled & bit:
                        add(Attribute.ROLE, role, 0.8, SOURCE)
            elif kind == TLV_MGMT and len(value) >= 2:
                n = value[0]  # address string length: the subtype byte + the address
                if n in (5, 17) and len(value) >= 1 + n and value[1] in (1, 2):
                    add(Attribute.IP, ip_str(value[2 : 1 + n]), 0.6, "lldp-management-address")
            elif kind == TLV_ORG and len(value) >= 4:
                self._org(int.from_bytes(value[:3], "big"), value[3], value[4:], add)
        if port:
            where = f"{port} ({port_desc})" if port_desc and port_desc != port else port
            add(Attribute.SWITCH_PORT, f"{where} on {chassis}" if chassis else where, 0.9, SOURCE)
        if problem is not None:
            raise MalformedPacket(problem, out)
        return out

    @staticmethod
    def _org(oui: int, subtype: int, body: bytes, add: Add) -> None:
        if oui == OUI_MED:
            if subtype in MED_INVENTORY:
                add(MED_INVENTORY[subtype], _text(body), 0.9, "lldp-med")
            elif subtype == 1 and len(body) >= 3 and body[2] in MED_DEVICE_CLASSES:
                add(Attribute.ROLE, MED_DEVICE_CLASSES[body[2]], 0.8, "lldp-med")
        elif oui == OUI_8021 and subtype == 1 and len(body) >= 2:
            vid = int.from_bytes(body[:2], "big")
            if vid:
                add(Attribute.VLAN, str(vid), 0.7, "lldp-port-vlan")
