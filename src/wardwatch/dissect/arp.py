"""ARP (RFC 826): the sender of every ARP message states its own MAC/IPv4 binding.

ARP probes (sender IP 0.0.0.0, RFC 5227) bind nothing.
"""

from __future__ import annotations

from wardwatch.dissect.interface import Selector, observe
from wardwatch.model.addr import ip_str, is_group_mac, is_null_mac, is_unicast_ip, mac_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet


class ArpDissector:
    """MAC-to-IPv4 bindings from ARP senders."""

    name = "arp"
    selector = Selector(arp=True)

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """The sender's binding, if it states one."""
        arp = packet.arp
        if arp is None or is_group_mac(arp.sender_mac) or is_null_mac(arp.sender_mac):
            return []
        if not is_unicast_ip(arp.sender_ip):
            return []
        return [
            observe(
                packet,
                ref,
                SubjectKind.MAC,
                mac_str(arp.sender_mac),
                Attribute.IP,
                ip_str(arp.sender_ip),
                0.95,
                "arp",
            )
        ]
