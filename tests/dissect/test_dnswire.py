"""The C parser of the DNS wire format (_dnswire.c) against its Python reference (wire.py, dns.py).

Same names, positions, records and error messages on real messages, on generated ones full of compression
pointers (good, looping, out of range), and on random bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generate_ward import dns_answer, mdns_announce
from tests.conftest import SAMPLE, corpus_captures
from wardwatch.capture.batch import BatchReader
from wardwatch.capture.vector import decode_batch
from wardwatch.dissect import native
from wardwatch.dissect.dns import Message, parse_message, parse_message_py
from wardwatch.dissect.interface import MalformedPacket
from wardwatch.dissect.wire import MAX_LABELS, read_name, read_name_py

pytestmark = pytest.mark.skipif(native.c_dnswire is None, reason="the C DNS parser was not built (no C compiler)")

Outcome = tuple[str, object]


def both_parse(data: bytes) -> tuple[Outcome, Outcome]:
    """(C, Python) results of parse_message: ("ok", message) or ("error", message text)."""
    out: list[Outcome] = []
    for parse in (parse_message, parse_message_py):
        try:
            out.append(("ok", parse(data)))
        except MalformedPacket as exc:
            out.append(("error", str(exc)))
    return out[0], out[1]


def both_names(data: bytes, pos: int) -> tuple[Outcome, Outcome]:
    out: list[Outcome] = []
    for read in (read_name, read_name_py):
        try:
            out.append(("ok", read(data, pos)))
        except MalformedPacket as exc:
            out.append(("error", str(exc)))
    return out[0], out[1]


def dns_payloads(path: Path) -> list[bytes]:
    """UDP payloads of the port 53/5353/5355/137 packets of a capture."""
    found = []
    for batch in BatchReader(path):
        cols = decode_batch(batch)
        for i in range(len(batch)):
            pkt = cols.packet(i)
            if pkt.proto == 17 and {pkt.src_port, pkt.dst_port} & {53, 5353, 5355, 137}:
                found.append(pkt.payload)
    return found


def assert_parse_alike(payloads: list[bytes]) -> int:
    """Messages parsed alike by both; returns how many parsed without error."""
    parsed = 0
    for data in payloads:
        c, py = both_parse(data)
        assert c == py
        parsed += c[0] == "ok"
    return parsed


def test_sample_messages_parse_alike() -> None:
    payloads = dns_payloads(SAMPLE)
    assert len(payloads) > 30 and assert_parse_alike(payloads) > 30


@pytest.mark.corpus
def test_corpus_messages_parse_alike(corpus: Path) -> None:
    payloads = [p for path in corpus_captures() for p in dns_payloads(path)]
    assert len(payloads) > 200 and assert_parse_alike(payloads) > 100


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_messages_parse_alike(data: st.DataObject) -> None:
    payloads = [dns_answer(7, "pacs.ward.example", bytes([10, 20, 0, 50])),
                mdns_announce("ZD621-WARD", bytes([10, 30, 0, 60]), "_pdl-datastream._tcp.local")]  # fmt: skip
    msg = bytearray(data.draw(st.sampled_from(payloads)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        at = data.draw(st.integers(min_value=0, max_value=len(msg) - 1))
        msg[at] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(msg)))
    c, py = both_parse(bytes(msg[:cut]))
    assert c == py


def name_bytes(labels: list[bytes], pointer: int | None) -> bytes:
    out = b"".join(bytes([len(x)]) + x for x in labels)
    return out + (struct.pack("!H", 0xC000 | pointer) if pointer is not None else b"\x00")


label = st.binary(min_size=1, max_size=8) | st.sampled_from([b"a.b", b"x\\y", b"\x00\xff", b"host-7", b" "])


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_generated_messages_with_compression_parse_alike(data: st.DataObject) -> None:
    """Questions and records whose names point back at earlier names (or anywhere): the per-message cache of
    the C parser answers as the Python one's does."""
    body = bytearray()
    starts: list[int] = [12]
    qd = data.draw(st.integers(min_value=0, max_value=3))
    nrec = data.draw(st.integers(min_value=0, max_value=6))
    for i in range(qd + nrec):
        labels = data.draw(st.lists(label, max_size=4))
        if data.draw(st.booleans()):
            target = data.draw(st.sampled_from(starts) | st.integers(min_value=0, max_value=12 + len(body) + 8))
        else:
            target = None
        starts.append(12 + len(body))
        body += name_bytes(labels, target)
        if i < qd:
            body += struct.pack("!HH", 1, 1)
        else:
            rdata = data.draw(st.binary(max_size=6))
            body += struct.pack("!HHIH", data.draw(st.sampled_from([1, 5, 12, 28, 33])), 0x8001, 60, len(rdata))
            body += rdata
    header = struct.pack("!HHHHHH", 1, 0x8400, qd, nrec, 0, 0)
    msg = header + bytes(body)
    c, py = both_parse(msg)
    assert c == py
    for pos in starts:
        c_name, py_name = both_names(msg, pos)
        assert c_name == py_name


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120), st.integers(min_value=-2, max_value=130))
def test_random_bytes_parse_alike(data: bytes, pos: int) -> None:
    c, py = both_parse(b"\x00\x01\x84\x00" + data)
    assert c == py
    if pos >= 0:
        c_name, py_name = both_names(data, pos)
        assert c_name == py_name


def test_long_names_behind_pointers_are_refused_by_both() -> None:
    """A 100-label name, then a name of 100 labels pointing at it: 200 labels is over MAX_LABELS for both,
    with the cache (parse_message) and without (read_name)."""
    first = name_bytes([b"a"] * 100, None)
    second = name_bytes([b"b"] * 100, 12)
    msg = struct.pack("!HHHHHH", 1, 0x8400, 2, 0, 0, 0) + first + b"\0\1\0\1" + second + b"\0\1\0\1"
    c, py = both_parse(msg)
    assert c == py == ("error", "DNS name has too many labels")
    assert both_names(msg, 12 + len(first) + 4) == (("error", "DNS name has too many labels"),) * 2
    ok = name_bytes([b"b"] * (MAX_LABELS - 100), 12)
    msg = struct.pack("!HHHHHH", 1, 0x8400, 2, 0, 0, 0) + first + b"\0\1\0\1" + ok + b"\0\1\0\1"
    c, py = both_parse(msg)
    assert c == py and c[0] == "ok"
    assert isinstance(c[1], Message) and c[1].questions[1].count(".") == MAX_LABELS - 1


def test_escapes_are_the_references() -> None:
    raw = name_bytes([bytes(range(256))[i : i + 60] for i in range(0, 240, 60)] + [b"x.y\\z"], None)
    c, py = both_names(raw, 0)
    assert c == py and c[0] == "ok"
    text = c[1][0]  # type: ignore[index]
    assert "\\000" in text and "\\." in text and "\\\\" in text and "\\127" in text
