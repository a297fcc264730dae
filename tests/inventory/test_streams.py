"""Stream heads: the first payload packets of each direction of each TCP connection, on every path alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generate_ward import ethernet, ip4, ipv4, tcp, udp
from tests.capture.test_fastpath import CAPTURES, hard_frames, hard_pcapng
from tests.conftest import SAMPLE, write_pcap
from wardwatch.capture import decode, open_capture
from wardwatch.capture.batch import BatchReader
from wardwatch.capture.vector import decode_batch
from wardwatch.dissect import PayloadTest, Registry, Selector, default_registry
from wardwatch.dissect.interface import observe
from wardwatch.engine import Engine
from wardwatch.errors import DissectorRegistrationError
from wardwatch.inventory import native
from wardwatch.inventory.streams import StreamHeads
from wardwatch.model import Analysis, Packet, PacketRef
from wardwatch.model.addr import ip_str
from wardwatch.model.observation import Attribute, Observation, SubjectKind

A, B = ip4("10.1.0.5"), ip4("10.2.0.9")
MA, MB = bytes.fromhex("0009fb000005"), bytes.fromhex("e80ab9000001")
SYN, SYN_ACK, ACK, PSH_ACK, FIN_ACK, RST = 0x02, 0x12, 0x10, 0x18, 0x11, 0x04


def segment(src: bytes, dst: bytes, flags: int, data: bytes = b"", seq: int = 1, sport: int = 40000) -> bytes:
    sp, dp = (sport, 2575) if src == A else (2575, sport)
    return ethernet(MA, MB, None, 0x0800, ipv4(src, dst, 6, tcp(src, dst, sp, dp, seq, 0, flags, data), 64, 1))


def by_reference(path: Path, limit: int) -> list[int]:
    heads = StreamHeads(limit)
    return [heads.index(decode(b.record(i))) for b in BatchReader(path) for i in range(len(b))]


def by_columns(path: Path, limit: int) -> list[int]:
    heads = StreamHeads(limit)
    out: list[int] = []
    for b in BatchReader(path):
        out += heads.index_columns(decode_batch(b), np.arange(len(b), dtype=np.int64)).tolist()
    return out


@pytest.fixture(params=["C", "python"])
def accumulators(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of numbering batches: the C tables, and the reference rules without them."""
    if request.param == "python":
        monkeypatch.setattr(native, "c_accum", None)
    elif native.c_accum is None:
        pytest.skip("the C accumulators were not built")
    return str(request.param)


def test_the_first_payload_packets_of_each_direction_and_connection(tmp_path: Path, accumulators: str) -> None:
    frames = [
        segment(A, B, SYN),
        segment(B, A, SYN_ACK),
        segment(A, B, ACK),  # no payload: not numbered
        segment(A, B, PSH_ACK, b"MSH|1"),
        segment(B, A, PSH_ACK, b"MSA|1"),
        segment(A, B, PSH_ACK, b"MSH|2"),
        segment(A, B, PSH_ACK, b"MSH|3"),  # the third from A: past a limit of 2
        segment(B, A, ACK),
        ethernet(MA, MB, None, 0x0800, ipv4(A, B, 17, udp(A, B, 40000, 2575, b"udp"), 64, 1)),  # not TCP
        segment(A, B, FIN_ACK),
        segment(A, B, SYN, seq=900),  # the same ports again: a new connection, both directions anew
        segment(B, A, SYN_ACK),
        segment(A, B, PSH_ACK, b"MSH|4", seq=901),
        segment(B, A, PSH_ACK, b"MSA|4"),
        segment(A, B, PSH_ACK, b"x", sport=40001),  # another connection, seen mid-stream
        segment(B, A, RST),
    ]
    path = write_pcap(tmp_path / "s.pcap", [(1_700_000_000_000_000_000 + i, f) for i, f in enumerate(frames)])
    expected = [-1, -1, -1, 0, 0, 1, -1, -1, -1, -1, -1, -1, 0, 0, 0, -1]
    assert by_reference(path, 2) == expected
    assert by_columns(path, 2) == expected
    assert by_columns(path, 1) == [-1 if i > 0 else i for i in expected]


def test_captures_number_alike(tmp_path: Path, accumulators: str) -> None:
    paths = [write_pcap(tmp_path / "hard.pcap", hard_frames()), hard_pcapng(tmp_path / "hard.pcapng"), *CAPTURES]
    numbered = 0
    for path in paths:
        for limit in (1, 3):
            expected = by_reference(path, limit)
            assert by_columns(path, limit) == expected, path.name
            numbered += sum(i >= 0 for i in expected)
    assert numbered > 200


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # from A (else from B)
            st.sampled_from((SYN, SYN_ACK, ACK, PSH_ACK, FIN_ACK, RST, 0x00)),
            st.sampled_from((b"", b"", b"d", b"data!")),
            st.sampled_from((40000, 40001)),
            st.integers(0, 3),  # sequence number
        ),
        min_size=1,
        max_size=50,
    ),
    st.integers(1, 4),
)
def test_random_conversations_number_alike(
    tmp_path: Path, accumulators: str, packets: list[tuple[bool, int, bytes, int, int]], limit: int
) -> None:
    frames = [
        (1_700_000_000_000_000_000 + i, segment(A if from_a else B, B if from_a else A, flags, data, seq, sport))
        for i, (from_a, flags, data, sport, seq) in enumerate(packets)
    ]
    path = write_pcap(tmp_path / "r.pcap", frames)
    assert by_columns(path, limit) == by_reference(path, limit)


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        StreamHeads(0)
    if native.c_accum is not None:
        with pytest.raises(ValueError, match="at least one"):
            native.c_accum.StreamHeads(0)


class HeadProbe:
    """A dissector of stream heads that says which packets it was offered (as ROLE evidence of the sender)."""

    def __init__(self, name: str, selector: Selector) -> None:
        self.name, self.selector = name, selector

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        assert packet.src_ip is not None
        value = f"offered {ref.number}"
        return [observe(packet, ref, SubjectKind.IP, ip_str(packet.src_ip), Attribute.ROLE, value, 0.5, self.name)]


def offered(analysis: Analysis, source: str) -> set[int]:
    return {
        int(e.value.split()[1])
        for d in analysis.devices
        for e in d.evidence
        if e.source == source and e.attribute == "role"
    }


def test_engine_offers_stream_heads_alike_on_every_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dissectors asking for the first two payload packets each way (and for first ones starting an MLLP block,
    0x0B): the reference path, the fast path and the fast path without the C accumulators offer exactly those
    packets."""
    reuse = [segment(A, B, SYN), segment(A, B, PSH_ACK, b"\x0bMSH|a"), segment(A, B, PSH_ACK, b"MSH|b"),
             segment(A, B, PSH_ACK, b"MSH|c"), segment(A, B, FIN_ACK), segment(A, B, SYN, seq=7),
             segment(A, B, PSH_ACK, b"\x0bx", seq=8), segment(B, A, PSH_ACK, b"no")]  # fmt: skip
    paths = [SAMPLE, write_pcap(tmp_path / "reuse.pcap", [(10**18 + i, f) for i, f in enumerate(reuse)])]
    probes = [
        HeadProbe("heads", Selector(stream_head=2)),
        HeadProbe("mllp-heads", Selector(stream_head=1, payload=PayloadTest(0, 0xFF, 0x0B))),
    ]
    results = {}
    for name, fast, c in (("reference", False, True), ("fast", True, True), ("numpy", True, False)):
        if not c:
            monkeypatch.setattr(native, "c_accum", None)
        results[name] = Engine(default_registry(probes), fast=fast).analyze(paths).analysis
    assert results["fast"] == results["reference"] == results["numpy"]
    for path in paths:  # the packets the reference numbering names
        heads = StreamHeads(2)
        numbered = [(r.number, heads.index(decode(r)), decode(r).payload) for r in open_capture(path)]
        got = Engine(default_registry(probes)).analyze([path]).analysis
        assert offered(got, "heads") == {n for n, i, _ in numbered if 0 <= i < 2}
        assert offered(got, "mllp-heads") == {n for n, i, p in numbered if i == 0 and p[:1] == b"\x0b"}
        assert offered(got, "mllp-heads")
    assert len(offered(results["fast"], "heads")) > 500
    # a dissector asking for stream heads keeps a single file from being split across workers
    import wardwatch.engine as engine_module

    monkeypatch.setattr(engine_module, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(engine_module, "SPLIT_MIN_JOBS", 2)
    monkeypatch.setattr(engine_module, "scan_parts", lambda *a: pytest.fail("split although stream heads are wanted"))
    pcap = paths[1]
    assert (
        Engine(default_registry(probes)).analyze([pcap], jobs=2).analysis
        == Engine(default_registry(probes), fast=False).analyze([pcap]).analysis
    )


def test_a_negative_stream_head_is_refused() -> None:
    with pytest.raises(DissectorRegistrationError, match="negative"):
        Registry().register(HeadProbe("bad", Selector(tcp_ports=frozenset({80}), stream_head=-1)))
    registry = Registry()
    registry.register(HeadProbe("only-heads", Selector(stream_head=3)))  # stream heads alone select packets
    assert registry.head_limit == 3 and registry.plain_head == 3
