"""Build Packets around dissector payloads (dissectors only read decoded fields)."""

from __future__ import annotations

from collections.abc import Iterable

from wardwatch.engine import Engine
from wardwatch.model import LinkType, Packet, PacketRef
from wardwatch.model.observation import CaptureId

REF = PacketRef(CaptureId("test"), 1)
MAC_A = bytes.fromhex("0009fb000001")
MAC_B = bytes.fromhex("005056000002")


def udp_packet(
    payload: bytes,
    sport: int,
    dport: int,
    src_ip: bytes = b"\x0a\x00\x00\x01",
    dst_ip: bytes = b"\x0a\x00\x00\x02",
    src_mac: bytes = MAC_A,
    dst_mac: bytes = MAC_B,
    vlans: tuple[int, ...] = (),
) -> Packet:
    return Packet(
        number=1,
        ts_ns=5_000_000_000,
        wirelen=100,
        caplen=100,
        linktype=LinkType.ETHERNET,
        src_mac=src_mac,
        dst_mac=dst_mac,
        vlans=vlans,
        ethertype=0x0800 if len(src_ip) == 4 else 0x86DD,
        ip_version=4 if len(src_ip) == 4 else 6,
        src_ip=src_ip,
        dst_ip=dst_ip,
        ttl=64,
        proto=17,
        src_port=sport,
        dst_port=dport,
        payload=payload,
    )


def evidence_by_address(paths: Iterable[str]) -> dict[str, set[tuple[str, str]]]:
    """(attribute, value) of every device's evidence after analysing ``paths``, by each of its IPs and MACs."""
    out: dict[str, set[tuple[str, str]]] = {}
    for d in Engine().analyze(list(paths)).analysis.devices:
        for key in d.ips + d.macs:
            out.setdefault(key, set()).update((e.attribute, e.value) for e in d.evidence)
    return out
