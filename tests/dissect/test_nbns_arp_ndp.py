"""NBNS names, ARP and NDP bindings."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generate_ward import nbns_registration
from tests.dissect.helpers import MAC_A, MAC_B, REF, udp_packet
from wardwatch.dissect.arp import ArpDissector
from wardwatch.dissect.interface import MalformedPacket
from wardwatch.dissect.nbns import NbnsDissector, decode_netbios_name
from wardwatch.dissect.ndp import NdpDissector
from wardwatch.model import Arp, LinkType, Packet


def test_netbios_name_encoding() -> None:
    # "FRED" padded with spaces to 15 characters, suffix 0x00 (RFC 1001 §14.1 example)
    encoded = "EGFCEFEECACACACACACACACACACACAAA"
    assert decode_netbios_name(encoded) == ("FRED", 0)
    assert decode_netbios_name("too-short") is None


def test_registration_names_the_host() -> None:
    msg = nbns_registration(0x7001, "NURSE-WS-01", bytes([10, 30, 0, 101]))
    (obs,) = NbnsDissector().dissect(udp_packet(msg, 137, 137), REF)
    assert (obs.subject.value, obs.value, obs.source) == ("10.30.0.101", "NURSE-WS-01", "nbns-registration")


def test_group_names_and_queries_are_not_host_names() -> None:
    group = bytearray(nbns_registration(1, "WORKGROUP", bytes([10, 0, 0, 1])))
    group[-6] |= 0x80  # NB flags: group name
    assert NbnsDissector().dissect(udp_packet(bytes(group), 137, 137), REF) == []
    query = bytearray(nbns_registration(1, "PACS", bytes([10, 0, 0, 1])))
    struct.pack_into("!H", query, 2, 0x0110)  # opcode 0 query, not a response
    assert NbnsDissector().dissect(udp_packet(bytes(query), 137, 137), REF) == []
    with pytest.raises(MalformedPacket):
        NbnsDissector().dissect(udp_packet(b"\x00\x01", 137, 137), REF)


def arp_packet(op: int, sender_ip: bytes) -> Packet:
    arp = Arp(op=op, sender_mac=MAC_A, sender_ip=sender_ip, target_mac=b"\x00" * 6, target_ip=bytes([10, 0, 0, 9]))
    return Packet(
        number=3,
        ts_ns=0,
        wirelen=60,
        caplen=60,
        linktype=LinkType.ETHERNET,
        src_mac=MAC_A,
        dst_mac=b"\xff" * 6,
        ethertype=0x0806,
        arp=arp,
    )


def test_arp_sender_binding_and_probe() -> None:
    (obs,) = ArpDissector().dissect(arp_packet(1, bytes([10, 0, 0, 5])), REF)
    assert (obs.subject.value, obs.value, obs.source, obs.confidence) == ("00:09:fb:00:00:01", "10.0.0.5", "arp", 0.95)
    assert ArpDissector().dissect(arp_packet(1, b"\x00" * 4), REF) == []  # RFC 5227 probe


LL = bytes.fromhex("fe800000000000000209fbfffe000001")
TARGET = bytes.fromhex("20010db8000000000000000000000007")


def icmp6(icmp_type: int, body: bytes, src_ip: bytes = LL) -> Packet:
    return Packet(
        number=4,
        ts_ns=0,
        wirelen=90,
        caplen=90,
        linktype=LinkType.ETHERNET,
        src_mac=MAC_A,
        dst_mac=MAC_B,
        ethertype=0x86DD,
        ip_version=6,
        src_ip=src_ip,
        dst_ip=TARGET,
        ttl=255,
        proto=58,
        icmp_type=icmp_type,
        icmp_code=0,
        payload=body,
    )


def test_ndp_bindings() -> None:
    na = struct.pack("!I", 0x60000000) + TARGET + bytes([2, 1]) + MAC_B  # target link-layer address option
    out = NdpDissector().dissect(icmp6(136, na), REF)
    assert {(o.subject.value, o.value) for o in out} == {("00:50:56:00:00:02", "2001:db8::7")}
    ns = b"\x00" * 4 + TARGET + bytes([1, 1]) + MAC_A  # source link-layer address option
    out = NdpDissector().dissect(icmp6(135, ns), REF)
    assert {(o.subject.value, o.value) for o in out} == {("00:09:fb:00:00:01", "fe80::209:fbff:fe00:1")}
    with pytest.raises(MalformedPacket, match="length 0"):
        NdpDissector().dissect(icmp6(135, b"\x00" * 20 + bytes([1, 0]) + MAC_A), REF)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([133, 134, 135, 136, 1, 128]))
def test_nbns_and_ndp_fuzz(payload: bytes, icmp_type: int) -> None:
    for run in (
        lambda: NbnsDissector().dissect(udp_packet(payload, 137, 137), REF),
        lambda: NdpDissector().dissect(icmp6(icmp_type, payload), REF),
    ):
        with contextlib.suppress(MalformedPacket):
            run()
