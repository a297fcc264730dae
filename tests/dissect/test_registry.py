"""One extension path: built-ins register like plugins; duplicate names are refused; dispatch by selector."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.dissect.helpers import udp_packet
from wardwatch.dissect import PayloadTest, Registry, Selector, default_registry
from wardwatch.errors import DissectorRegistrationError
from wardwatch.model import Observation, Packet, PacketRef


class Dummy:
    def __init__(self, name: str, selector: Selector) -> None:
        self.name = name
        self.selector = selector

    def dissect(self, packet: Packet, ref: PacketRef) -> Iterable[Observation]:
        return []


def test_builtins_and_dispatch() -> None:
    reg = default_registry()
    assert set(reg.names) >= {"arp", "dhcp", "dhcpv6", "dns", "nbns", "ndp"}
    assert [d.name for d in reg.for_packet(udp_packet(b"", 68, 67))] == ["dhcp"]
    assert [d.name for d in reg.for_packet(udp_packet(b"", 5353, 5353))] == ["dns"]
    assert reg.for_packet(udp_packet(b"", 40000, 40001)) == []


def test_duplicate_and_empty_registrations_are_refused() -> None:
    reg = default_registry(plugins=False)
    with pytest.raises(DissectorRegistrationError, match="already registered"):
        reg.register(Dummy("dns", Selector(udp_ports=frozenset({53}))))
    with pytest.raises(DissectorRegistrationError, match="selects no packets"):
        reg.register(Dummy("nothing", Selector()))


def test_third_party_dissector_registers_the_same_way() -> None:
    reg = Registry()
    reg.register(Dummy("syslog", Selector(udp_ports=frozenset({514}))))
    reg.register(Dummy("also-514", Selector(udp_ports=frozenset({514}))))
    assert [d.name for d in reg.for_packet(udp_packet(b"", 40000, 514))] == ["syslog", "also-514"]
    extra = default_registry(extra=[Dummy("bacnet", Selector(udp_ports=frozenset({47808})))], plugins=False)
    assert "bacnet" in extra.names


def test_payload_tests_keep_packets_a_dissector_cannot_learn_from_away() -> None:
    reg = default_registry(plugins=False)
    query = b"\x12\x34\x01\x00" + bytes(8)
    response = b"\x12\x34\x81\x80" + bytes(8)
    assert reg.for_packet(udp_packet(query, 40000, 53)) == []
    assert [d.name for d in reg.for_packet(udp_packet(response, 53, 40000))] == ["dns"]
    assert [d.name for d in reg.for_packet(udp_packet(b"\x00\x00\x00", 53, 40000))] == ["dns"]  # too short: reported
    # a plain dissector on the same port still gets the query
    reg.register(Dummy("dns-log", Selector(udp_ports=frozenset({53}))))
    assert [d.name for d in reg.for_packet(udp_packet(query, 40000, 53))] == ["dns-log"]
    assert 53 in reg.wanted()[0] and [s.udp_ports for s in reg.tested()] == [frozenset({53, 5353, 5355})]
    test = PayloadTest(1, 0xF0, 0x10, min_length=4)
    assert test.passes(b"\x00\x1f\x00\x00") and not test.passes(b"\x00\x2f\x00\x00") and test.passes(b"\x00\x2f")


def test_multi_byte_payload_tests() -> None:
    smb = PayloadTest(4, b"\x00\xff\xff\xff", b"\x00SMB")
    assert smb.width == 4
    assert smb.passes(b"\x00\x00\x00\x54\xffSMBr") and smb.passes(b"\x00\x00\x00\x54\xfeSMB@")
    assert not smb.passes(b"\x00\x00\x00\x54\xffSMC") and smb.passes(b"\x00\x00\x00")  # too short: offered
    for bad in (
        (0, b"\xff", b"\x01\x02"),
        (0, b"", b""),
        (0, 0x1FF, 1),
        (-1, 1, 1),
        (0, b"\xff" * 17, b"\x00" * 17),
        (0, b"\xfe", b"M"),
        (0, 0x0F, 0x10),
    ):
        with pytest.raises(ValueError, match="payload test"):
            PayloadTest(*bad)  # type: ignore[arg-type]
