"""Cisco Discovery Protocol (802.2 SNAP, OUI 00-00-0C, protocol 0x2000; TLV layout as documented by Cisco and
implemented in Wireshark's packet-cdp.c).

About the sender: device id (its name), software version, platform (its model), addresses, the port it
speaks from, capabilities (→ role) and native VLAN.
"""

from __future__ import annotations

import re

from wardwatch.dissect.interface import Facts, MalformedPacket, Selector
from wardwatch.dissect.wire import clean_text
from wardwatch.model.addr import ip_str, is_group_mac, mac_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet

SNAP_CDP = (0x00000C, 0x2000)
TLV_DEVICE_ID, TLV_ADDRESSES, TLV_PORT_ID, TLV_CAPABILITIES = 0x01, 0x02, 0x03, 0x04
TLV_SOFTWARE, TLV_PLATFORM, TLV_NATIVE_VLAN = 0x05, 0x06, 0x0A
CAPABILITY_ROLES = {0x01: "router", 0x08: "switch", 0x80: "ip-phone"}
NLPID_IP = 0xCC
SOURCE = "cdp"
VERSION = re.compile(r"Version ([0-9][^ ,]*)")
FAMILIES = ("NX-OS", "IOS-XE", "IOS XE", "IOS-XR", "IOS", "CatOS")


def cdp_tlvs(data: bytes) -> tuple[list[tuple[int, bytes]], str | None]:
    """(type, value) of the TLVs after the 4-byte header, and why reading stopped early (None: it did not)."""
    if len(data) < 4:
        return [], "CDP frame shorter than its header"
    if data[0] not in (1, 2):
        return [], f"CDP version {data[0]} unknown"
    out: list[tuple[int, bytes]] = []
    pos = 4
    while pos + 4 <= len(data):
        kind = int.from_bytes(data[pos : pos + 2], "big")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 4 or pos + length > len(data):
            return out, f"CDP TLV {kind:#06x} has a bad length"
        out.append((kind, data[pos + 4 : pos + length]))
        pos += length
    return out, None


def software_version(text: str) -> str:
    """``IOS 11.2(12)P`` from a software version banner (its ``Version …`` and family), else ''."""
    found = VERSION.search(text)
    if found is None:
        return ""
    family = next((f for f in FAMILIES if f in text), "")
    return f"{family} {found.group(1)}".strip()


def addresses(value: bytes) -> list[str]:
    """IPv4 addresses of an Addresses TLV (count, then NLPID-typed entries)."""
    out: list[str] = []
    if len(value) < 4:
        return out
    pos, count = 4, int.from_bytes(value[:4], "big")
    for _ in range(min(count, 16)):
        if pos + 2 > len(value):
            break
        ptype, plen = value[pos], value[pos + 1]
        proto = value[pos + 2 : pos + 2 + plen]
        pos += 2 + plen
        if pos + 2 > len(value):
            break
        alen = int.from_bytes(value[pos : pos + 2], "big")
        addr = value[pos + 2 : pos + 2 + alen]
        pos += 2 + alen
        if ptype == 1 and proto == bytes([NLPID_IP]) and len(addr) == 4:
            out.append(ip_str(addr))
    return out


class CdpDissector:
    """Name, software, platform, addresses, port and capabilities of a CDP speaker."""

    name = "cdp"
    selector = Selector(llc_snap=frozenset({SNAP_CDP}))

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Observations about the frame's sender (what came before a broken TLV is kept)."""
        if packet.src_mac is None or is_group_mac(packet.src_mac):
            return []
        items, problem = cdp_tlvs(packet.payload)
        mac = mac_str(packet.src_mac)
        out = Facts(packet, ref, SubjectKind.MAC, mac)
        add = out.add

        for kind, value in items:
            if kind == TLV_DEVICE_ID:
                add(Attribute.HOSTNAME, clean_text(value), 0.9, "cdp-device-id")
            elif kind == TLV_SOFTWARE:
                text = clean_text(value.replace(b"\n", b" ").replace(b"\r", b""))
                add(Attribute.DESCRIPTION, text, 0.9, "cdp-software-version")
                add(Attribute.FIRMWARE, software_version(text), 0.7, "cdp-software-version")
            elif kind == TLV_PLATFORM:
                add(Attribute.MODEL, clean_text(value), 0.9, "cdp-platform")
            elif kind == TLV_PORT_ID:
                add(Attribute.SWITCH_PORT, clean_text(value), 0.9, SOURCE)
            elif kind == TLV_ADDRESSES:
                for ip in addresses(value):
                    add(Attribute.IP, ip, 0.6, "cdp-address")
            elif kind == TLV_CAPABILITIES and len(value) >= 4:
                caps = int.from_bytes(value[:4], "big")
                for bit, role in CAPABILITY_ROLES.items():
                    if caps & bit:
                        add(Attribute.ROLE, role, 0.8, SOURCE)
            elif kind == TLV_NATIVE_VLAN and len(value) >= 2:
                add(Attribute.VLAN, str(int.from_bytes(value[:2], "big")), 0.7, "cdp-native-vlan")
        if problem is not None:
            raise MalformedPacket(problem, out)
        return out
