"""The claimed TCP connections a stream dissector receives: the same on the reference path (``_Streams.offer``,
``Reassembler``), on the fast path with the C ``StreamTable`` and on the fast path without the C helpers."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wardwatch.engine as engine_module
from generate_ward import ethernet, ip4, ipv4, tcp
from tests.conftest import write_pcap
from wardwatch.dissect import PayloadTest, Registry, StreamSelector, TcpStream
from wardwatch.dissect.reassembly import Limits
from wardwatch.engine import Engine
from wardwatch.inventory import native
from wardwatch.model.observation import Observation

A, B, C = ip4("10.1.0.5"), ip4("10.2.0.9"), ip4("10.2.0.10")
MAC = {A: bytes.fromhex("0009fb000005"), B: bytes.fromhex("e80ab9000001"), C: bytes.fromhex("e80ab9000002")}
SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


class Recorder:
    """A stream dissector that keeps every connection it is handed (and says nothing)."""

    def __init__(self, name: str, stream: StreamSelector) -> None:
        self.name = name
        self.stream = stream
        self.got: list[TcpStream] = []

    def dissect_stream(self, stream: TcpStream) -> Iterator[Observation]:
        self.got.append(dataclasses.replace(stream, capture="c"))  # type: ignore[arg-type]
        return iter(())


def recorders() -> list[Recorder]:
    return [
        Recorder("mllp", StreamSelector(claim=(PayloadTest(0, 0xFF, 0x0B),), packets=3, byte_limit=40,
                                        count_after=b"\rPID|")),
        Recorder("port", StreamSelector(tcp_ports=frozenset({104}), packets=5, byte_limit=24)),
    ]  # fmt: skip


def run(paths: list[Path], fast: bool, c: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    """What each recorder received, and the analysis's skipped counts, on one path."""
    with monkeypatch.context() as m:
        if not c:
            m.setattr(native, "c_accum", None)
        registry = Registry()
        recs = recorders()
        for r in recs:
            registry.register(r)
        result = Engine(registry, fast=fast).analyze(paths)
    return tuple(tuple(r.got) for r in recs), result.analysis.skipped


def same_on_every_path(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    ref = run(paths, False, True, monkeypatch)
    assert run(paths, True, True, monkeypatch) == ref
    assert run(paths, True, False, monkeypatch) == ref
    return ref


# one event: (connection 0-2, from the client?, kind, sequence offset, payload); offset -1: the next in order, -2:
# the direction's previous segment again (a retransmission), -3: two bytes before the next (an overlap)
EVENTS = st.tuples(
    st.sampled_from([0, 0, 0, 1, 2]),
    st.booleans(),
    st.sampled_from(["data"] * 30 + ["syn", "fin", "rst", "ack"]),
    st.sampled_from([-1] * 6 + [-2, -2, -3, -3, 0, 3, 8, 20, 50, -8]),
    st.sampled_from(
        [
            b"\x0bMSH|x\r",
            b"\x0bMSH|\rPID|1|",
            b"\rPID|1|",
            b"PID|",
            b"\r",
            b"abcdefgh",
            b"\x0b",
            b"\x1c\r\x0bMSH|\rPID|9\r",
            b"z" * 30,
        ]
    ),
)


Event = tuple[int, bool, str, int, bytes]


def frames(events: list[Event]) -> list[tuple[int, bytes]]:
    out = []
    after: dict[tuple[int, bool], int] = {}  # the next sequence offset in order, per direction
    previous: dict[tuple[int, bool], tuple[int, bytes]] = {}
    for n, (conn, client, kind, off, payload) in enumerate(events):
        if kind == "data" and off == -2:
            off, payload = previous.get((conn, client), (0, payload))
        server = (B, 2575) if conn < 2 else (C, 104)
        a, b = (A, 40000 + conn), server
        src, dst = (a, b) if client else (b, a)
        flags = {"data": PSH | ACK, "syn": SYN, "fin": FIN | ACK, "rst": RST, "ack": ACK}[kind]
        data = payload if kind == "data" else b""
        at = after.get((conn, client), 0) - (2 if off == -3 else 0) if off in (-1, -3) else off
        after[(conn, client)] = max(after.get((conn, client), 0), at + len(data))
        if data:
            previous[(conn, client)] = (at, data)
        seq = (0xFFFFFFF0 + at) % (1 << 32)  # near the wrap: offsets are modulo 2^32
        segment = tcp(src[0], dst[0], src[1], dst[1], seq, 0, flags, data)
        packet = ethernet(MAC[src[0]], MAC[dst[0]], None, 0x0800, ipv4(src[0], dst[0], 6, segment, 64, n))
        out.append((10**18 + n * 1000, packet))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(EVENTS, min_size=1, max_size=60))
def test_random_connections_reach_the_dissectors_alike(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    events: list[tuple[int, bool, str, int, bytes]],
) -> None:
    """Reordered, retransmitted, overlapping and cut segments, SYNs reusing the endpoints, FINs and RSTs, patterns
    split across segments, connections claimed by content and by port, under tight caps."""
    claims = [(c, True, "data", -1, b"\x0bMSH|x\r") for c in range(3)]  # each connection claimed by its start
    path = write_pcap(tmp_path_factory.mktemp("s") / "s.pcap", frames(claims + events))
    with monkeypatch.context() as m:
        m.setattr(engine_module, "Limits", functools.partial(Limits, segments=4, total_bytes=90))
        same_on_every_path([path], m)


def test_the_paths_agree_on_a_known_conversation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claimed MLLP link: a segment out of order, PID segments past its 3-packet head (one split across two
    segments), a FIN, then its endpoints reused after a SYN; a connection claimed by its port. The C table hands
    them over as the reference does."""
    events = [
        (0, True, "syn", 0, b""),
        (0, True, "data", 1, b"\x0bMSH|x\r"),  # frame 2: claims the connection
        (0, True, "data", 15, b"abcdefgh"),  # frame 3: out of order, waits for the hole
        (0, True, "data", 8, b"\rPID|1|"),  # frame 4: fills it
        (0, False, "data", 0, b"\x0b"),
        (0, True, "data", 15, b"abcdefgh"),  # past the head: only counted from here on
        (0, True, "data", 23, b"\rPID|1|"),
        (0, True, "data", 30, b"\r"),
        (0, True, "data", 31, b"PID|"),  # a pattern split across two segments
        (0, True, "fin", 35, b""),
        (2, True, "syn", 0, b""),
        (2, True, "data", 1, b"abcdefgh"),  # not MLLP: claimed by its port
        (0, True, "syn", 40, b""),
        (0, True, "data", 41, b"\x0bMSH|y\r"),  # the endpoints again: a new connection
    ]
    (mllp, port), _skipped = same_on_every_path([write_pcap(tmp_path / "k.pcap", frames(events))], monkeypatch)
    first, again = mllp
    assert first.closed and first.claimed_by == ("mllp",) and not again.closed
    assert first.orig.data == b"\x0bMSH|x\r\rPID|1|abcdefgh" and [s[1] for s in first.orig.starts] == [2, 4, 3]
    assert first.orig.counted == 2 and first.resp is not None and first.resp.data == b"\x0b"
    assert again.orig.data == b"\x0bMSH|y\r"
    assert [(s.orig.data, s.claimed_by) for s in port] == [(b"abcdefgh", ("port",))]


def test_a_second_process_dissects_as_this_one_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stream dissection moved to a second process (from the first connection on, or after the first one) gives
    the analysis that dissecting everything in this process gives, and that the reference path gives."""
    from tests.conftest import SAMPLE, corpus_captures

    paths = [SAMPLE, *[p for p in corpus_captures() if p.stat().st_size < 4_000_000][:12]]
    forks: list[int] = []
    start = engine_module._DeepProcess.start

    def counted_start(streams: engine_module._Streams) -> engine_module._DeepProcess | None:
        forks.append(1)
        return start(streams)

    monkeypatch.setattr(engine_module, "DEEP_SEND_EVERY", 2)
    monkeypatch.setattr(engine_module._DeepProcess, "start", staticmethod(counted_start))
    monkeypatch.setattr(engine_module, "_second_cpu", lambda: True)
    for path in paths:
        one = Engine(deep_process=False).analyze([path]).analysis
        assert one == Engine(fast=False).analyze([path]).analysis, path.name
        for after in (0, 1):  # all connections there; the first ones here, the others there
            monkeypatch.setattr(engine_module, "DEEP_PROCESS_AFTER", after)
            assert Engine().analyze([path]).analysis == one, (path.name, after)
    assert len(forks) >= 2  # the sample and at least one corpus capture have more than one claimed connection


def test_a_second_process_that_dies_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the second process ends without answering, the connections it took are counted as not dissected."""
    from tests.conftest import SAMPLE

    monkeypatch.setattr(engine_module, "DEEP_PROCESS_AFTER", 0)
    monkeypatch.setattr(engine_module, "_second_cpu", lambda: True)
    monkeypatch.setattr(engine_module, "_deep_main", lambda streams, pipe, parent_end: None)  # answers nothing
    skipped = Engine().analyze([SAMPLE]).analysis.skipped
    lost = [s for s in skipped if s.reason.startswith("stream dissection process ended unexpectedly")]
    assert len(lost) == 1 and lost[0].count >= 1
