"""DNS / mDNS / LLMNR answers -> host names of addresses (RFC 1035, RFC 6762)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generate_ward import dns_answer, dns_name, dns_query, mdns_announce
from tests.dissect.helpers import REF, udp_packet
from wardwatch.dissect.dns import DnsDissector, parse_message, reverse_name_ip
from wardwatch.dissect.interface import MalformedPacket
from wardwatch.dissect.wire import MAX_LABELS, NameCache, label_text, read_name


def pairs(out: list) -> set[tuple[str, str, str, float]]:  # type: ignore[type-arg]
    return {(o.subject.value, o.value, o.source, o.confidence) for o in out}


def test_unicast_answer() -> None:
    msg = dns_answer(7, "pacs.ward.example", bytes([10, 20, 0, 50]))
    out = DnsDissector().dissect(udp_packet(msg, 53, 40000), REF)
    assert pairs(out) == {("10.20.0.50", "pacs.ward.example", "dns", 0.5)}
    assert DnsDissector().dissect(udp_packet(dns_query(7, "pacs.ward.example"), 40000, 53), REF) == []


def test_cname_chain_names_what_was_asked() -> None:
    # www.vendor.example CNAME edge.cdn.example; edge.cdn.example A 203.0.113.9
    head = struct.pack("!HHHHHH", 1, 0x8180, 1, 2, 0, 0) + dns_name("www.vendor.example") + struct.pack("!HH", 1, 1)
    target = dns_name("edge.cdn.example")
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(target)) + target
    a_rec = dns_name("edge.cdn.example") + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([203, 0, 113, 9])
    out = DnsDissector().dissect(udp_packet(head + cname + a_rec, 53, 40000), REF)
    assert pairs(out) == {("203.0.113.9", "www.vendor.example", "dns", 0.5)}


def test_mdns_announcement_with_cache_flush_bit() -> None:
    msg = mdns_announce("ZD621-WARD", bytes([10, 30, 0, 60]), "_pdl-datastream._tcp.local")
    out = DnsDissector().dissect(
        udp_packet(msg, 5353, 5353, src_ip=bytes([10, 30, 0, 60]), dst_ip=bytes([224, 0, 0, 251])), REF
    )
    # the responder speaks for its own address: high confidence
    assert pairs(out) == {
        ("10.30.0.60", "ZD621-WARD.local", "mdns", 0.9),
        ("10.30.0.60", "_pdl-datastream._tcp", "mdns-service", 0.8),  # the printer service it announces
    }


def test_ptr_answers() -> None:
    assert reverse_name_ip("50.0.20.10.in-addr.arpa") == "10.20.0.50"
    nib = ".".join(reversed("20010db8000000000000000000000001")) + ".ip6.arpa"
    assert reverse_name_ip(nib) == "2001:db8::1"
    assert reverse_name_ip("not.a.reverse.name") is None
    head = struct.pack("!HHHHHH", 1, 0x8180, 0, 1, 0, 0)
    target = dns_name("pacs.ward.example")
    rec = dns_name("50.0.20.10.in-addr.arpa") + struct.pack("!HHIH", 12, 1, 60, len(target)) + target
    out = DnsDissector().dissect(udp_packet(head + rec, 53, 40000), REF)
    assert pairs(out) == {("10.20.0.50", "pacs.ward.example", "dns", 0.6)}


def test_compression_loops_and_truncation_are_malformed() -> None:
    loop = struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\xc0\x0c"  # a name that points at itself
    with pytest.raises(MalformedPacket, match="loop"):
        parse_message(loop)
    with pytest.raises(MalformedPacket):
        parse_message(dns_answer(1, "a.example", b"\x01\x02\x03\x04")[:-3])
    with pytest.raises(MalformedPacket, match="shorter than its header"):
        parse_message(b"\x00\x01")
    name, end = read_name(b"\x03a.b\x00", 0)  # a dot inside a label is escaped, not a separator
    assert (name, end) == ("a\\.b", 5)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_dns_fuzz(payload: bytes) -> None:
    try:
        out = DnsDissector().dissect(udp_packet(payload, 53, 40000), REF)
    except MalformedPacket:
        return
    assert all(o.subject.value for o in out)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=12, max_value=60))
def test_dns_fuzz_mutated_answer(noise: bytes, at: int) -> None:
    msg = bytearray(dns_answer(9, "monitor-7.icu.example", bytes([10, 1, 1, 7])))
    msg[at : at + len(noise)] = noise
    with contextlib.suppress(MalformedPacket):
        DnsDissector().dissect(udp_packet(bytes(msg), 53, 40000), REF)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=12, max_size=200), st.integers(min_value=0, max_value=199))
def test_name_cache_gives_the_same_names(data: bytes, pos: int) -> None:
    """Reading names through a per-message cache gives exactly what reading them afresh gives."""
    cache: NameCache = {}
    for start in (pos, 12, pos // 2, pos):
        try:
            fresh = read_name(data, start)
        except MalformedPacket:
            continue
        assert read_name(data, start, cache) == fresh


def reference_read_name(data: bytes, pos: int) -> tuple[str, int]:
    """RFC 1035 §4.1.4 name reading, label by label, the plain way (no cache, no joined fast path)."""
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if pos >= len(data):
            raise MalformedPacket("past the end")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise MalformedPacket("pointer cut short")
            end = pos + 2 if end is None else end
            jumps += 1
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            if jumps > MAX_LABELS or pos >= len(data):
                raise MalformedPacket("loop")
            continue
        if length & 0xC0:
            raise MalformedPacket("label type")
        if length == 0:
            return ".".join(labels), (end if end is not None else pos + 1)
        if pos + 1 + length > len(data):
            raise MalformedPacket("label cut short")
        labels.append(label_text(data[pos + 1 : pos + 1 + length]))
        pos += 1 + length
        if len(labels) > MAX_LABELS:
            raise MalformedPacket("too many labels")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=6) | st.sampled_from([b"a.b", b"x\\y", b"host7", b"\x00\xff"]), max_size=5),
    st.binary(max_size=40),
    st.integers(min_value=0, max_value=60),
)
def test_names_read_as_the_reference_reads_them(labels: list[bytes], noise: bytes, pos: int) -> None:
    """Well-formed names (escapes, dots in labels) and random bytes: the same text, end and errors."""
    name = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    for data, start in ((name, 0), (name + b"\xc0\x00", len(name)), (noise + name, pos % (len(noise) + 1))):
        try:
            expected: tuple[str, int] | None = reference_read_name(data, start)
        except MalformedPacket:
            expected = None
        try:
            got: tuple[str, int] | None = read_name(data, start)
        except MalformedPacket:
            got = None
        assert got == expected


def test_repeated_answers_are_read_once_and_say_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """A message seen again (another transaction id, another sender, another port) is not parsed again, and
    gives what parsing it would give: confidences still follow the packet (who sent it, DNS or mDNS)."""
    import wardwatch.dissect.dns as dns_module

    parsed: list[bytes] = []
    real = dns_module.answers

    def counting(data: bytes) -> tuple[tuple[str, str, bool], ...]:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(dns_module, "answers", counting)
    d = DnsDissector()
    first = d.dissect(udp_packet(dns_answer(7, "pacs.ward.example", bytes([10, 20, 0, 50])), 53, 40000), REF)
    again = d.dissect(udp_packet(dns_answer(8, "pacs.ward.example", bytes([10, 20, 0, 50])), 53, 40001), REF)
    assert len(parsed) == 1 and first == again and pairs(first) == {("10.20.0.50", "pacs.ward.example", "dns", 0.5)}
    announce = mdns_announce("zebra-3", bytes([10, 0, 0, 9]), "_pdl-datastream._tcp.local")
    own = d.dissect(udp_packet(announce, 5353, 5353, src_ip=bytes([10, 0, 0, 9])), REF)
    relayed = d.dissect(udp_packet(announce, 5353, 5353, src_ip=bytes([10, 0, 0, 1])), REF)
    assert len(parsed) == 2
    assert ("10.0.0.9", "zebra-3.local", "mdns", 0.9) in pairs(own)
    assert ("10.0.0.9", "zebra-3.local", "mdns", 0.8) in pairs(relayed)
    fresh = DnsDissector().dissect(udp_packet(announce, 5353, 5353, src_ip=bytes([10, 0, 0, 9])), REF)
    assert pairs(own) == pairs(fresh) and len(parsed) == 3  # a new dissector parses for itself
    broken = dns_answer(9, "a.example", b"\x01\x02\x03\x04")[:-3]
    for _ in range(2):  # malformed: the same error every time, from one parse
        with pytest.raises(MalformedPacket):
            d.dissect(udp_packet(broken, 53, 40000), REF)
    assert len(parsed) == 4
    monkeypatch.setattr(dns_module, "ANSWER_CACHE", 3)
    d.dissect(udp_packet(dns_answer(1, "other.example", bytes([10, 0, 0, 7])), 53, 40000), REF)  # full: starts again
    d.dissect(udp_packet(dns_answer(2, "pacs.ward.example", bytes([10, 20, 0, 50])), 53, 40000), REF)
    assert len(parsed) == 6
    monkeypatch.setattr(dns_module, "ANSWER_CACHE_BYTES", 20)  # larger messages are read every time
    for _ in range(2):
        d.dissect(udp_packet(dns_answer(3, "big.example", bytes([10, 0, 0, 8])), 53, 40000), REF)
    assert len(parsed) == 8


def test_dnssd_services_and_txt_keys_of_a_printer() -> None:
    """An IPP printer's announcement (Bonjour Printing Specification 1.2 TXT keys): the services it offers and
    its make and model; a query's service names are what somebody looks for, not what they are."""
    inst = "Ward3 Printer._ipp._tcp.local"
    txt = b"".join(bytes([len(kv)]) + kv for kv in (b"txtvers=1", b"ty=ZDesigner ZD621-203dpi", b"usb_MFG=Zebra",
                                                    b"usb_MDL=ZD621", b"note=ward 3", b"rp=ipp/print"))  # fmt: skip
    records = [
        dns_name("_ipp._tcp.local") + struct.pack("!HHIH", 12, 1, 4500, len(dns_name(inst))) + dns_name(inst),
        dns_name(inst) + struct.pack("!HHIH", 16, 0x8001, 4500, len(txt)) + txt,
        dns_name("_services._dns-sd._udp.local")
        + struct.pack("!HHIH", 12, 1, 4500, len(dns_name("_printer._tcp.local")))
        + dns_name("_printer._tcp.local"),
    ]
    msg = struct.pack("!HHHHHH", 0, 0x8400, 0, len(records), 0, 0) + b"".join(records)
    out = DnsDissector().dissect(udp_packet(msg, 5353, 5353, src_ip=bytes([10, 30, 0, 61])), REF)
    got = {(o.attribute.value, o.value, o.source) for o in out}
    assert got == {
        ("service", "_ipp._tcp", "mdns-service"), ("service", "_printer._tcp", "mdns-service"),
        ("model", "ZDesigner ZD621-203dpi", "mdns-txt"), ("model", "ZD621", "mdns-txt"),
        ("vendor", "Zebra", "mdns-txt"),
    }  # fmt: skip
    assert {o.subject.value for o in out} == {"10.30.0.61"}
    query = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + dns_name("_ipp._tcp.local") + struct.pack("!HH", 12, 1)
    assert DnsDissector().dissect(udp_packet(query, 5353, 5353), REF) == []
