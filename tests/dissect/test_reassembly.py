"""Bounded TCP reassembly: order, retransmissions, overlaps, holes and the caps (dissect/reassembly.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wardwatch.dissect.reassembly import Limits, Reassembler, TcpStream, conn_key
from wardwatch.model.observation import CaptureId

A = (b"\x0a\x00\x00\x01", 40000)
B = (b"\x0a\x00\x00\x02", 2575)
ISN = 0xFFFFFF00  # close to the wrap: offsets must be computed modulo 2^32


def reassembler(**limits: int) -> Reassembler:
    re = Reassembler(CaptureId("t"), Limits(**limits) if limits else None)
    re.claim(conn_key(A, B), "test")
    return re


def segments(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(i, data[i : i + size]) for i in range(0, len(data), size)]


def feed(re: Reassembler, segs: list[tuple[int, bytes]], src: tuple[bytes, int] = A) -> TcpStream | None:
    dst = B if src == A else A
    done = None
    for n, (off, chunk) in enumerate(segs, 1):
        done = re.add(src, dst, (ISN + off) % (1 << 32), chunk, n, n * 1000) or done
    return done


def only(re: Reassembler) -> TcpStream:
    streams = list(re.finish())
    assert len(streams) == 1
    return streams[0]


def test_in_order_and_both_directions() -> None:
    re = reassembler()
    feed(re, [(0, b"\x0bMSH|"), (5, b"^~\\&|A")])
    feed(re, [(0, b"\x0bMSH|ACK")], src=B)
    s = only(re)
    assert s.orig.data == b"\x0bMSH|^~\\&|A" and s.resp is not None and s.resp.data == b"\x0bMSH|ACK"
    assert s.orig.starts == ((0, 1, 1000), (5, 2, 2000)) and s.orig.frame_at(7) == (2, 2000)
    assert s.peer == B and s.claimed_by == ("test",) and not (s.orig.gap or s.orig.truncated)


def test_out_of_order_retransmission_and_overlap_first_wins() -> None:
    re = reassembler()
    feed(re, [(4, b"EFGH"), (0, b"ABCD"), (4, b"EFGH"), (2, b"CDxx"), (8, b"IJ")])
    s = only(re)
    assert s.orig.data == b"ABCDEFGHIJ"
    assert s.orig.retransmissions == 1  # the identical copy of EFGH
    assert s.orig.inconsistent == 1  # CDxx disagrees with the bytes kept (an evasion sign, counted)


def test_segment_before_the_first_one_seen_moves_the_start_back() -> None:
    re = reassembler()
    feed(re, [(10, b"KLM"), (0, b"ABCDEFGHIJ")])
    assert only(re).orig.data == b"ABCDEFGHIJKLM"


def test_a_hole_stops_the_data_and_is_reported() -> None:
    re = reassembler()
    feed(re, [(0, b"ABC"), (10, b"XYZ")])
    s = only(re)
    assert s.orig.data == b"ABC" and s.orig.gap


def test_fin_or_rst_finishes_and_the_endpoints_can_be_claimed_again() -> None:
    re = reassembler()
    done = feed(re, [(0, b"ABC")])
    assert done is None
    s = re.close(conn_key(A, B))
    assert s is not None and s.closed and s.orig.data == b"ABC"
    assert not re.claimed(conn_key(A, B)) and list(re.finish()) == []
    assert feed(re, [(0, b"new")]) is None and list(re.finish()) == []  # not claimed any more


def test_hostile_stream_is_capped_per_direction_and_in_total() -> None:
    """An endless stream keeps at most the cap; a flood of connections at most the total; both are counted."""
    re = reassembler(stream_bytes=1000, segments=50, total_bytes=10_000)
    chunk = bytes(range(256)) * 4
    feed(re, [(i * 100, chunk[:100]) for i in range(5000)])  # 500 kB from one side
    assert re.buffered <= 1000
    s = feed(re, [(i * 100, chunk[:100]) for i in range(5000)], src=B)  # both at their cap: finished
    assert s is not None and list(re.finish()) == []
    assert len(s.orig.data) == 1000 and s.orig.truncated and s.orig.data == (chunk[:100] * 10)
    assert re.cut > 0 and re.buffered == 0
    many = Reassembler(CaptureId("t"), Limits(stream_bytes=1000, total_bytes=5000))
    for port in range(100):  # 100 connections of 1000 bytes each
        src = (A[0], 1000 + port)
        many.claim(conn_key(src, B), "test")
        many.add(src, B, 0, b"x" * 1000, port, port)
        assert many.buffered <= 5000
    assert many.refused == 95
    streams = list(many.finish())
    assert sum(1 for s in streams if s.orig.data) == 5 and many.buffered == 0


def test_segment_cap_counts_retransmission_floods() -> None:
    re = reassembler(segments=10)
    feed(re, [(0, b"A")] + [(1 + i, bytes([i % 256])) for i in range(100)])
    s = only(re)
    assert len(s.orig.data) == 10 and s.orig.truncated and re.cut == 91


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(stream_bytes=0)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=3000),
    size=st.integers(1, 400),
    seed=st.integers(0, 2**32),
    dupes=st.integers(0, 5),
)
def test_any_order_with_duplicates_gives_the_original(data: bytes, size: int, seed: int, dupes: int) -> None:
    """Segments in any order, some sent again, reassemble to exactly what was sent (the first one seen may be
    any of them: the start moves back)."""
    segs = segments(data, size)
    rng = random.Random(seed)
    segs += [rng.choice(segs) for _ in range(dupes)]
    rng.shuffle(segs)
    re = reassembler()
    feed(re, segs)
    s = only(re)
    assert s.orig.data == data and not s.orig.gap
    assert s.orig.retransmissions == dupes


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=300)), max_size=60))
def test_arbitrary_segments_never_exceed_the_caps(segs: list[tuple[int, bytes]]) -> None:
    re = reassembler(stream_bytes=2000, segments=20, total_bytes=3000)
    for n, (seq, chunk) in enumerate(segs):
        re.add(A, B, seq, chunk, n, n)
        assert re.buffered <= 2000
    for s in re.finish():
        assert len(s.orig.data) <= 2000
