"""DHCPv4/v6 dissectors on annotated messages (RFC 2131, 2132, 4702, 8415, 4704)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generate_ward import dhcp
from tests.dissect.helpers import REF, udp_packet
from wardwatch.dissect.dhcp import DhcpDissector, Dhcpv6Dissector, dhcp_options
from wardwatch.dissect.interface import MalformedPacket
from wardwatch.model import Attribute

CLIENT = bytes.fromhex("0011321749f0")
ZERO = b"\x00" * 4


def facts(obs: list) -> set[tuple[str, str, str, str]]:  # type: ignore[type-arg]
    return {(o.subject.value, o.attribute.value, o.value, o.source) for o in obs}


def hostnames(obs: list) -> list:  # type: ignore[type-arg]
    return [o for o in obs if o.attribute == "hostname"]


def test_request_with_hostname_and_fqdn() -> None:
    msg = dhcp(1, 3, 0x1234, CLIENT, ZERO, ZERO, "nas1", "nas1.lab.example", None)
    out = DhcpDissector().dissect(udp_packet(msg, 68, 67), REF)
    assert facts(out) == {
        ("00:11:32:17:49:f0", "hostname", "nas1", "dhcp-option-12"),
        ("00:11:32:17:49:f0", "hostname", "nas1.lab.example", "dhcp-option-81"),
        # the builder's parameter request list (55) and client id (61): what the client's DHCP stack asks for
        ("00:11:32:17:49:f0", "fingerprint", "dhcp:1,3,6,15,31,33,43", "dhcp-option-55"),
        ("00:11:32:17:49:f0", "client_id", "01:00:11:32:17:49:f0", "dhcp-option-61"),
    }
    assert all(o.packet == REF for o in out)
    assert {o.confidence for o in out if o.attribute == "hostname"} == {0.9}


def test_ack_binds_granted_address() -> None:
    msg = dhcp(2, 5, 0x1234, CLIENT, bytes([10, 16, 1, 4]), ZERO, None, None, bytes([10, 16, 1, 1]))
    (obs,) = DhcpDissector().dissect(udp_packet(msg, 67, 68), REF)
    assert (obs.attribute, obs.value, obs.source, obs.confidence) == (Attribute.IP, "10.16.1.4", "dhcp-ack", 0.95)
    # an OFFER grants nothing yet
    offer = dhcp(2, 2, 0x1234, CLIENT, bytes([10, 16, 1, 4]), ZERO, None, None, bytes([10, 16, 1, 1]))
    assert DhcpDissector().dissect(udp_packet(offer, 67, 68), REF) == []


def test_fqdn_in_dns_wire_format() -> None:
    # option 81: flags 0x05 (S + E: canonical wire format), rcode1, rcode2, then labels "ws7" "ward" "example"
    fqdn = bytes([0x05, 0, 0]) + b"\x03ws7\x04ward\x07example\x00"
    base = dhcp(1, 3, 1, CLIENT, ZERO, ZERO, None, None, None)
    msg = base[:-1] + bytes([81, len(fqdn)]) + fqdn + b"\xff"
    (obs,) = hostnames(DhcpDissector().dissect(udp_packet(msg, 68, 67), REF))
    assert obs.value == "ws7.ward.example"


def test_option_overload_and_long_options() -> None:
    base = bytearray(dhcp(1, 3, 1, CLIENT, ZERO, ZERO, None, None, None))
    # option 52 = 1: more options in the 128-byte file field (offset 108)
    base[108:114] = bytes([12, 4]) + b"filE"
    msg = bytes(base[:-1]) + bytes([52, 1, 1]) + b"\xff"
    opts = dhcp_options(msg)
    assert opts[12] == b"filE"
    # RFC 3396: a repeated option is one long option
    split = bytes(base[:-1]) + bytes([12, 3]) + b"abc" + bytes([12, 3]) + b"def" + b"\xff"
    assert dhcp_options(split)[12] == b"abcdef"


def test_malformed_messages() -> None:
    with pytest.raises(MalformedPacket, match="magic cookie"):
        DhcpDissector().dissect(udp_packet(b"\x01" * 100, 68, 67), REF)
    bad = dhcp(1, 3, 1, CLIENT, ZERO, ZERO, None, None, None)[:-1] + bytes([12, 50]) + b"short"
    with pytest.raises(MalformedPacket, match="option 12 runs past"):
        DhcpDissector().dissect(udp_packet(bad, 68, 67), REF)


def test_hostname_from_the_wire_is_sanitised() -> None:
    msg = dhcp(1, 3, 1, CLIENT, ZERO, ZERO, "<script>\x07x", None, None)
    (obs,) = hostnames(DhcpDissector().dissect(udp_packet(msg, 68, 67), REF))
    assert obs.value == "<script>\\x07x"  # control characters escaped; HTML escaping is the renderer's job


def v6(msg_type: int, *options: tuple[int, bytes]) -> bytes:
    return bytes([msg_type]) + b"\x00\x00\x01" + b"".join(struct.pack("!HH", c, len(v)) + v for c, v in options)


def test_dhcpv6_fqdn_and_reply_address() -> None:
    fqdn = (39, b"\x01" + b"\x05infus\x04ward\x00")
    solicit = v6(1, (1, b"\x00\x03\x00\x01" + bytes.fromhex("0009fb000001")), fqdn)
    (obs,) = hostnames(Dhcpv6Dissector().dissect(udp_packet(solicit, 546, 547), REF))
    assert (obs.subject.value, obs.value, obs.source) == ("00:09:fb:00:00:01", "infus.ward", "dhcpv6-fqdn")
    addr = bytes.fromhex("20010db8000000000000000000000042")
    ia_addr = struct.pack("!HH", 5, 24) + addr + struct.pack("!II", 3600, 7200)
    reply = v6(7, (3, struct.pack("!III", 1, 0, 0) + ia_addr))
    (obs,) = Dhcpv6Dissector().dissect(udp_packet(reply, 547, 546), REF)
    # a Reply goes to the client: the binding is about the destination MAC
    assert (obs.subject.value, obs.value, obs.source) == ("00:50:56:00:00:02", "2001:db8::42", "dhcpv6-reply")
    with pytest.raises(MalformedPacket):
        Dhcpv6Dissector().dissect(udp_packet(v6(1)[:4] + b"\x00\x27\x00\x10ab", 546, 547), REF)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_dhcp_fuzz(payload: bytes) -> None:
    for dissector, ports in ((DhcpDissector(), (68, 67)), (Dhcpv6Dissector(), (546, 547))):
        try:
            out = dissector.dissect(udp_packet(payload, *ports), REF)
        except MalformedPacket:
            continue
        assert all(0 < o.confidence <= 1 for o in out)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_dhcp_fuzz_options(tail: bytes) -> None:
    msg = dhcp(1, 3, 1, CLIENT, ZERO, ZERO, None, None, None)[:-1] + tail
    with contextlib.suppress(MalformedPacket):
        DhcpDissector().dissect(udp_packet(msg, 68, 67), REF)
