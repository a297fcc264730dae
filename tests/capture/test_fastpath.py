"""The fast path gives exactly what the reference path gives: records, decoded fields, and whole analyses.

Checked on every corpus capture, the bundled sample, generated captures with the hard cases (VLAN/QinQ, IPv4
options and fragments, IPv6 extension headers, tunnels, snaplen cuts, ARP and non-IP frames, several pcapng
interfaces with different link types and resolutions), and random byte mutations of real captures.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generate_ward import arp, ethernet, ip4, ipv4, tcp, udp
from tests.capture.test_pcapng import block, epb, idb, shb
from tests.conftest import SAMPLE, corpus_captures, write_pcap
from wardwatch.capture import batch as batch_module
from wardwatch.capture import decode, open_capture
from wardwatch.capture.batch import BatchReader
from wardwatch.capture.vector import FRAGMENT_CODE, decode_batch
from wardwatch.dissect import PayloadTest, Registry, Selector, default_registry
from wardwatch.engine import Engine, _selected, _Tables
from wardwatch.errors import CaptureError
from wardwatch.inventory import native

A, B = ip4("10.1.0.5"), ip4("10.2.0.9")
MA, MB = bytes.fromhex("0009fb000005"), bytes.fromhex("e80ab9000001")
S6 = bytes.fromhex("20010db8000000000000000000000001")
D6 = bytes.fromhex("20010db8000000000000000000000002")


def ipv6(src: bytes, dst: bytes, nh: int, payload: bytes, hlim: int = 64) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hlim, src, dst) + payload


def hard_frames() -> list[tuple[int, bytes] | tuple[int, bytes, int]]:
    """One of every frame shape the fast path must either decode or hand over."""
    t = 1_700_000_000_000_000_000
    seg = tcp(A, B, 40000, 2575, 7, 0, 0x02, b"")
    data = tcp(A, B, 40000, 2575, 8, 1, 0x18, b"MSH|^~\\&|x")
    frames: list[tuple[int, bytes] | tuple[int, bytes, int]] = [
        (t, ethernet(MA, MB, None, 0x0800, ipv4(A, B, 6, seg, 64, 1))),
        (t + 1, ethernet(MA, MB, 10, 0x0800, ipv4(A, B, 6, data, 64, 2))),
        (t + 2, MB + MA + bytes.fromhex("88a8 0064 8100 000a 0800") + ipv4(B, A, 17, udp(B, A, 53, 5000, b"x"), 63, 3)),
        (t + 3, MB + MA + bytes.fromhex("8100 0000 0800") + ipv4(A, B, 17, udp(A, B, 1, 2, b""), 64, 4)),  # VID 0
    ]
    body = udp(A, B, 7, 9, b"opt")
    with_opts = struct.pack("!BBHHHBBH4s4s", 0x47, 0, 28 + len(body), 5, 0, 64, 17, 0, A, B) + bytes(8) + body
    frames.append((t + 4, ethernet(MA, MB, 20, 0x0800, with_opts)))
    first = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 6, 0x2000, 64, 17, 0, A, B) + body
    later = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 6, 0x0003, 64, 17, 0, A, B) + b"fragment"
    frames += [(t + 5, ethernet(MA, MB, 20, 0x0800, first)), (t + 6, ethernet(MA, MB, 20, 0x0800, later))]
    tcp6 = struct.pack("!HHIIBBHHH", 443, 40001, 1, 2, 5 << 4, 0x12, 1024, 0, 0)
    frames.append((t + 7, ethernet(MB, MA, None, 0x86DD, ipv6(D6, S6, 6, tcp6))))
    hbh = bytes([17, 0]) + b"\x01\x04\x00\x00\x00\x00"
    frames.append((t + 8, ethernet(MB, MA, None, 0x86DD, ipv6(D6, S6, 0, hbh + udp(b"", b"", 5, 6, b"")[:8]))))
    frames.append((t + 9, ethernet(MA, MB, None, 0x0800, ipv4(A, B, 41, ipv6(S6, D6, 59, b""), 64, 7))))  # 6in4
    frames.append(
        (
            t + 10,
            ethernet(
                MA,
                MB,
                None,
                0x0800,
                ipv4(A, B, 47, b"\x00\x00\x08\x00" + ipv4(B, A, 1, b"\x08\x00\x00\x00", 64, 1), 64, 8),
            ),
        )
    )
    full = ethernet(MA, MB, 30, 0x0800, ipv4(A, B, 6, tcp(A, B, 1, 2, 3, 4, 0x10, b"x" * 400), 64, 9))
    frames += [(t + 11, full[:54], len(full)), (t + 12, full[:40], len(full)), (t + 13, full[:20], len(full))]
    frames.append((t + 14, arp(1, MA, A, b"\x00" * 6, B, 10, b"\xff" * 6)))
    frames.append((t + 15, bytes.fromhex("0180c2000000") + MA + b"\x00\x26" + bytes.fromhex("424203") + bytes(35)))
    bad_tcp = bytearray(ethernet(MA, MB, None, 0x0800, ipv4(A, B, 6, tcp(A, B, 3, 4, 0, 0, 0x02, b""), 64, 10)))
    bad_tcp[14 + 20 + 12] = 0x30  # data offset 3 words
    frames.append((t + 16, bytes(bad_tcp)))
    frames.append((t + 17, ethernet(MA, MB, None, 0x0800, ipv4(A, B, 132, b"\x00" * 16, 64, 11))))  # SCTP
    frames.append((t + 18, ethernet(b"\xff" * 6, MB, None, 0x0800, ipv4(A, B, 17, udp(A, B, 1, 2, b""), 64, 12))))
    frames.append(
        (t + 19, ethernet(MA, MB, None, 0x0800, ipv4(A, ip4("224.0.0.251"), 17, udp(A, B, 5353, 5353, b""), 255, 13)))
    )
    return frames


def hard_pcapng(path: Path) -> Path:
    o = "<"
    raw = ipv4(A, B, 17, udp(A, B, 3, 4, b"raw"), 64, 2)
    frames = hard_frames()
    blocks = [shb(o), idb(o, 1, tsresol=9), idb(o, 101), idb(o, 1, tsresol=0x80 | 20, tsoffset=5)]
    for i, item in enumerate(frames):
        ts, data = item[0], item[1]
        wirelen = item[2] if len(item) == 3 else len(data)  # type: ignore[misc]
        blocks.append(epb(o, 0, ts, data, wirelen))
        if i % 5 == 0:
            blocks.append(epb(o, 1, ts // 1000, raw))
            blocks.append(block(o, 3, struct.pack(o + "I", len(data)) + data))
            blocks.append(epb(o, 2, 3 << 20, data))
    blocks.append(block(o, 5, bytes(12)))
    path.write_bytes(b"".join(blocks))
    return path


def records(path: Path, use_c: bool = True) -> tuple[list[object], tuple[int | None, str] | None]:
    got: list[object] = []
    try:
        reader = BatchReader(path)
    except CaptureError as exc:
        return got, (exc.offset, exc.message)
    reader.use_c = use_c
    try:
        for b in reader:
            got += [b.record(i) for i in range(len(b))]
    except CaptureError as exc:
        return got, (exc.offset, exc.message)
    finally:
        reader.close()
    return got, None


def reference_records(path: Path) -> tuple[list[object], tuple[int | None, str] | None]:
    got: list[object] = []
    try:
        reader = open_capture(path)
    except CaptureError as exc:
        return got, (exc.offset, exc.message)
    try:
        got.extend(reader)
    except CaptureError as exc:
        return got, (exc.offset, exc.message)
    finally:
        reader.close()
    return got, None


def same_analysis(paths: list[Path]) -> None:
    """The reference path, the fast path with the C accumulators and the fast path with the numpy ones agree."""
    ref = Engine(fast=False).analyze(paths)
    fast = Engine(fast=True).analyze(paths)
    c_accum = native.c_accum
    native.c_accum = None
    try:
        numpy_only = Engine(fast=True).analyze(paths)
    finally:
        native.c_accum = c_accum
    for got in (fast, numpy_only):
        assert [str(e) for e in got.errors] == [str(e) for e in ref.errors]
        for part in ("captures", "devices", "flows", "edges", "skipped", "errors"):
            assert getattr(got.analysis, part) == getattr(ref.analysis, part), part


CAPTURES = [*corpus_captures(), SAMPLE]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_records_and_analysis_match_reference(path: Path) -> None:
    expected = reference_records(path)
    assert records(path, use_c=True) == expected
    assert records(path, use_c=False) == expected
    same_analysis([path])


@pytest.mark.parametrize("use_c", [True, False], ids=["C", "numpy"])
def test_decoded_columns_match_reference_decoder(tmp_path: Path, use_c: bool) -> None:
    paths = [write_pcap(tmp_path / "hard.pcap", hard_frames()), hard_pcapng(tmp_path / "hard.pcapng"), *CAPTURES]
    fast_rows = 0
    for path in paths:
        for b in BatchReader(path):
            cols = decode_batch(b, use_c=use_c)
            fast_rows += int((~cols.slow).sum())
            for i in range(len(b)):
                p = decode(b.record(i))
                assert cols.problems.get(i) == p.problem
                assert bool(cols.has_smac[i]) == (p.src_mac is not None)
                if p.src_mac is not None:
                    assert int(cols.smac[i]) == int.from_bytes(p.src_mac, "big")
                assert int(cols.vlan[i]) == (p.vlans[-1] if p.vlans else -1)
                if p.src_ip is not None and p.dst_ip is not None:
                    assert int(cols.ipver[i]) == p.ip_version
                    src = (int(cols.src_hi[i]) << 64) | int(cols.src_lo[i])
                    assert src == int.from_bytes(p.src_ip, "big")
                else:
                    assert cols.ipver[i] == 0
                assert int(cols.proto[i]) == (-1 if p.proto is None else p.proto)
                assert int(cols.sport[i]) == (-1 if p.src_port is None else p.src_port)
                assert int(cols.dport[i]) == (-1 if p.dst_port is None else p.dst_port)
                assert int(cols.ttl[i]) == (-1 if p.ttl is None else p.ttl)
                assert int(cols.frag[i]) == FRAGMENT_CODE[p.fragment]
                assert int(cols.tflags[i]) == p.tcp_flags
                assert int(cols.tseq[i]) == (-1 if p.tcp_seq is None else p.tcp_seq)
                if not cols.slow[i]:  # the payload, as the decoder bounds it
                    assert cols.pay_start is not None and cols.pay_end is not None
                    s0 = int(b.start[i])
                    assert bytes(b.buf[s0 + int(cols.pay_start[i]) : s0 + int(cols.pay_end[i])]) == p.payload
    assert fast_rows > 3000  # the vectorised decoder did the bulk of the work


def test_packets_built_from_columns_equal_decoded_packets(tmp_path: Path) -> None:
    """Dissectors get Packets built from the C decoder's columns: exactly what the reference decoder gives."""
    paths = [write_pcap(tmp_path / "hard.pcap", hard_frames()), hard_pcapng(tmp_path / "hard.pcapng"), *CAPTURES]
    built = 0
    for path in paths:
        for b in BatchReader(path):
            cols = decode_batch(b, use_c=True)
            for i in range(len(b)):
                assert cols.packet(i) == decode(b.record(i))
                built += not cols.slow[i]
    assert built > 3000


@pytest.mark.parametrize("use_c", [True, False], ids=["C", "numpy"])
def test_payload_tests_over_columns_match_the_packets(use_c: bool) -> None:
    """``Columns.payload_test`` says what ``PayloadTest.passes`` says of each decoded packet (both vectorised
    decoders bound the payload as the reference decoder does)."""
    tests = [
        PayloadTest(2, 0x80, 0x80, 12),
        PayloadTest(0, 0xFF, 0x0B),
        PayloadTest(5, 0x01, 0x00, 40),
        PayloadTest(0, b"\xff\xff", b"\x0bM"),  # an MLLP block starting a message ("MSH")
        PayloadTest(0, b"\xff\xff\xf0", b"\x16\x03\x00"),  # a TLS handshake record
        PayloadTest(2, b"\x80\x00", b"\x80\x00", 12),  # DNS responses, over two bytes
    ]
    checked = 0
    passed: dict[PayloadTest, int] = {}
    for b in BatchReader(SAMPLE):
        cols = decode_batch(b, use_c=use_c)
        rows = np.arange(len(b), dtype=np.int64)
        for t in tests:
            got = cols.payload_test(rows, t.offset, t.mask, t.value, t.min_length)
            payloads = [decode(b.record(i)).payload for i in range(len(b))]
            expected = [t.passes(p) for p in payloads]
            assert got.tolist() == expected, t
            checked += expected.count(False)
            need = max(t.min_length, t.offset + t.width)
            passed[t] = passed.get(t, 0) + sum(ok and len(p) >= need for ok, p in zip(expected, payloads, strict=True))
    assert checked > 100
    assert all(n > 0 for n in passed.values()), passed  # every test also finds what it looks for


class _Probe:
    """A dissector that only selects (for checking the engine's batch selection against ``for_packet``)."""

    def __init__(self, name: str, selector: Selector) -> None:
        self.name, self.selector = name, selector

    def dissect(self, packet: object, ref: object) -> list[object]:
        return []


@pytest.mark.parametrize("use_c", [True, False], ids=["C", "numpy"])
def test_batch_selection_matches_for_packet(tmp_path: Path, use_c: bool) -> None:
    """The lookup tables the engine selects batches with pick exactly the packets ``Registry.for_packet`` offers
    to some dissector (ports on either side, IP protocols, ethertypes, ARP; absent fields select nothing)."""
    registry = Registry()
    for d in (
        _Probe("udp", Selector(udp_ports=frozenset({53, 67, 2575, 65535}))),
        _Probe("tcp", Selector(tcp_ports=frozenset({0, 104, 443, 2575}))),
        _Probe("proto", Selector(ip_protos=frozenset({1, 58, 47}))),
        _Probe("ether", Selector(ethertypes=frozenset({0x88CC, 0x86DD}))),
        _Probe("arp", Selector(arp=True)),
    ):
        registry.register(d)
    tables = _Tables.of(*registry.wanted(), registry.arp_wanted)
    paths = [SAMPLE, write_pcap(tmp_path / "hard.pcap", hard_frames()), hard_pcapng(tmp_path / "hard.pcapng")]
    hits = 0
    for path in paths:
        for b in BatchReader(path):
            cols = decode_batch(b, use_c=use_c)
            got = _selected(cols, tables)
            for i in range(len(b)):
                assert bool(got[i]) == bool(registry.for_packet(cols.packet(i))), (path.name, i)
            hits += int(got.sum())
    assert hits > 500


def test_hard_cases_analyse_identically(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "hard.pcap", hard_frames())
    ng = hard_pcapng(tmp_path / "hard.pcapng")
    for path in (pcap, ng):
        assert records(path) == reference_records(path)
        assert records(path, use_c=False) == reference_records(path)
    same_analysis([pcap])
    same_analysis([ng])
    same_analysis([pcap, ng, SAMPLE])


def test_big_endian_pcap_and_batches_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks and batches: records straddle chunk boundaries; flows and spans merge across batches."""
    monkeypatch.setattr(batch_module, "CHUNK", 4096)
    monkeypatch.setattr(batch_module, "BATCH", 50)
    frames = [
        (i * 1_000_000 + 1_700_000_000_000_000_000, f) for i, f in enumerate([item[1] for item in hard_frames()] * 30)
    ]
    for order in ("<", ">"):
        path = write_pcap(tmp_path / f"be{order == '>'}.pcap", frames, order=order)
        assert records(path) == reference_records(path)
        assert records(path, use_c=False) == reference_records(path)
        same_analysis([path])
    same_analysis([SAMPLE])


def test_port_reuse_and_idle_timeouts_split_flows_alike(tmp_path: Path) -> None:
    t = 1_700_000_000_000_000_000
    sec = 1_000_000_000
    f = []
    for k, (flags, seq) in enumerate(
        [(0x02, 1), (0x02, 1), (0x12, 0), (0x10, 0), (0x11, 0), (0x02, 99), (0x12, 0), (0x04, 0), (0x02, 5), (0x02, 6)]
    ):
        src, dst = (A, B) if flags in (0x02, 0x10, 0x11) else (B, A)
        sp, dp = (40000, 104) if src == A else (104, 40000)
        f.append(
            (
                t + k * sec,
                ethernet(
                    MA, MB, 10 + k % 2, 0x0800, ipv4(src, dst, 6, tcp(src, dst, sp, dp, seq, 0, flags, b""), 64, k)
                ),
            )
        )
    for k, at in enumerate((20, 420, 1120, 1520, 2300)):  # UDP with two idle gaps longer than 600 s
        f.append((t + at * sec, ethernet(MA, MB, None, 0x0800, ipv4(A, B, 17, udp(A, B, 123, 123, b"n"), 64, k))))
    path = write_pcap(tmp_path / "reuse.pcap", sorted(f, key=lambda x: x[0]))
    same_analysis([path])
    flows = Engine().analyze([path]).analysis.flows
    assert len([x for x in flows if x.proto == 6]) == 3 and len([x for x in flows if x.proto == 17]) == 3
    # a SYN with the same sequence number after FIN, and after RST, still starts a new connection
    again = []
    for k, (src, dst, flags) in enumerate([(A, B, 0x02), (A, B, 0x11), (A, B, 0x02), (B, A, 0x04), (A, B, 0x02)]):
        sp, dp = (40000, 104) if src == A else (104, 40000)
        again.append(
            (
                t + k * sec,
                ethernet(MA, MB, None, 0x0800, ipv4(src, dst, 6, tcp(src, dst, sp, dp, 7, 0, flags, b""), 64, k)),
            )
        )
    path = write_pcap(tmp_path / "again.pcap", again)
    same_analysis([path])
    assert [f.packets for f in Engine().analyze([path]).analysis.flows] == [2, 2, 1]


@pytest.mark.parametrize("path", CAPTURES[:: max(1, len(CAPTURES) // 12)], ids=lambda p: p.name)
def test_random_mutations_match_reference(tmp_path: Path, path: Path) -> None:
    """Damaged real captures: the same records, the same error (message and offset), the same analysis."""
    data = path.read_bytes()
    rng = random.Random(path.name)
    for k in range(8):
        d = bytearray(data)
        if k % 3 == 0:
            d = d[: rng.randrange(1, len(d))]
        else:
            for _ in range(rng.randint(1, 6)):
                d[rng.randrange(0, min(len(d), 2048 if k % 2 else len(d)))] = rng.randrange(256)
        bad = tmp_path / f"m{k}{path.suffix}"
        bad.write_bytes(bytes(d))
        expected = reference_records(bad)
        assert records(bad) == expected
        assert records(bad, use_c=False) == expected
        same_analysis([bad])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=6000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(min_value=100, max_value=20000),
)
def test_fuzz_chunk_walker_against_reference(tmp_path: Path, edits: list[tuple[int, int]], cut: int) -> None:
    """Hypothesis: byte mutations and truncations of the sample's first blocks, both walkers vs the reader."""
    data = bytearray(SAMPLE.read_bytes()[:cut])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    path = tmp_path / "fuzz.pcapng"
    path.write_bytes(bytes(data))
    expected = reference_records(path)
    assert records(path) == expected
    assert records(path, use_c=False) == expected


def test_land_packets_with_one_endpoint_on_both_sides(tmp_path: Path) -> None:
    """A LAND-style packet (source = destination, same port) is a flow of one endpoint with itself: a SYN-ACK has
    no other side to make the initiator."""
    t = 1_700_000_000_000_000_000
    frames = [
        (t + k, ethernet(MA, MB, None, 0x0800, ipv4(A, A, 6, tcp(A, A, 104, 104, 1, 0, flags, b""), 64, k)))
        for k, flags in enumerate((0x12, 0x02, 0x10))
    ]
    path = write_pcap(tmp_path / "land.pcap", frames)
    same_analysis([path])
    (flow,) = Engine().analyze([path]).analysis.flows
    assert (flow.src_ip, flow.dst_ip, flow.packets_src, flow.packets_dst) == ("10.1.0.5", "10.1.0.5", 3, 0)
    assert flow.initiator == "syn-ack"


HOSTS = [(MA, A), (MB, B), (bytes.fromhex("0009fb000007"), ip4("10.1.0.7")), (b"\xff" * 6, ip4("10.1.255.255"))]
FLAG_SETS = (0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x00)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # source host
            st.integers(0, 3),  # destination host
            st.sampled_from((6, 17, 1)),
            st.sampled_from((104, 40000)),
            st.sampled_from((104, 40000)),
            st.sampled_from(FLAG_SETS),
            st.integers(0, 3),  # sequence number
            st.sampled_from((None, 10, 20)),
            st.sampled_from((0, 1, 5 * 10**8, 700 * 10**9, -(10**9))),  # time step, sometimes backwards or idle
            st.sampled_from((64, 63, 128)),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_random_conversations_accumulate_alike(tmp_path: Path, packets: list[tuple[int, ...]]) -> None:
    """Hypothesis: random conversations (port reuse, SYN retransmissions, FIN/RST, idle gaps, time running
    backwards, VLAN changes, broadcast destinations) give the same flows and devices on every path."""
    t = 1_700_000_000_000_000_000
    frames: list[tuple[int, bytes]] = []
    for s_i, d_i, proto, sp, dp, flags, seq, vlan, step, ttl in packets:
        t += step
        (smac, sip), (dmac, dip) = HOSTS[s_i], HOSTS[d_i]
        if proto == 6:
            l4 = tcp(sip, dip, sp, dp, seq, 0, flags, b"")
        elif proto == 17:
            l4 = udp(sip, dip, sp, dp, b"u")
        else:
            l4 = b"\x08\x00\x00\x00\x00\x01\x00\x01"
        frames.append((t, ethernet(smac if s_i != 3 else MA, dmac, vlan, 0x0800, ipv4(sip, dip, proto, l4, ttl, 1))))
    same_analysis([write_pcap(tmp_path / "random.pcap", frames)])


def test_parallel_analysis_equals_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files analysed in worker processes and merged in file order: exactly the serial result."""
    paths = [
        SAMPLE,
        write_pcap(tmp_path / "hard.pcap", hard_frames()),
        tmp_path / "missing.pcap",
        hard_pcapng(tmp_path / "hard.pcapng"),
        *CAPTURES[:6],
    ]
    serial = Engine().analyze(paths)
    assert len(serial.errors) >= 1
    # jobs=2: this process and one worker (this process takes files from the back while the worker reads);
    # a missing first file: this process's own file fails, the rest still merges in file order
    here: list[int] = []  # files this process read itself (the workers' calls happen in their own copies)
    one_file = Engine._one_file

    def spy(self: Engine, index: int, *args: Any, **kwargs: Any) -> Any:
        here.append(index)
        return one_file(self, index, *args, **kwargs)

    monkeypatch.setattr(Engine, "_one_file", spy)
    for files, jobs in ((paths, 2), (paths, 3), (paths[2:], 2)):
        expected = serial if files is paths else Engine().analyze(files)
        here.clear()
        parallel = Engine().analyze(files, jobs=jobs)
        assert parallel.analysis == expected.analysis, jobs
        assert [str(e) for e in parallel.errors] == [str(e) for e in expected.errors]
        assert here[0] == 0 and len(here) < len(files), here  # the first file here, most elsewhere
        if (files, jobs) == (paths, 2) and len(here) > 1:  # (unless the worker was done first)
            assert max(here) == len(files) - 1, here  # files nobody had started were taken from the back


def test_one_file_split_across_workers_equals_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A classic pcap cut at record boundaries into parts analysed in worker processes: the serial result."""
    import wardwatch.engine as engine_module

    monkeypatch.setattr(engine_module, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(engine_module, "SPLIT_MIN_JOBS", 2)
    frames = [(r.ts_ns, r.data, r.wirelen) for r in open_capture(SAMPLE)]
    frames += [(t + 700_000_000_000, d, w) for t, d, w in frames]  # flows continue across the cut
    pcap = write_pcap(tmp_path / "ward.pcap", frames, nsec=True)
    registry = default_registry(streams=False)  # stream dissectors make a split read the file whole
    serial = Engine(registry).analyze([pcap])
    assert Engine().analyze([pcap], jobs=2).analysis == Engine().analyze([pcap]).analysis
    for jobs in (2, 3, 5):
        split = Engine(registry).analyze([pcap], jobs=jobs)
        assert split.analysis == serial.analysis, jobs
    # a connection that starts again right at a cut cannot be merged exactly: the file is read whole
    reuse = write_pcap(tmp_path / "reuse.pcap", [(i * 1000, item[1]) for i, item in enumerate(hard_frames() * 50)])
    assert Engine().analyze([reuse], jobs=2).analysis == Engine().analyze([reuse]).analysis
    scan = batch_module.scan_parts(pcap, 3)
    assert (
        scan is not None
        and len(scan.parts) == 3
        and scan.parts[0][0] == 24
        and scan.parts[-1][1] == pcap.stat().st_size
    )


def test_one_pcapng_split_across_workers_equals_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pcapng file cut at block boundaries, each part starting from what the reader knew there (byte order,
    interfaces of earlier sections, the time a simple packet block inherits): the serial result."""
    import wardwatch.engine as engine_module

    monkeypatch.setattr(engine_module, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(engine_module, "SPLIT_MIN_JOBS", 2)
    monkeypatch.setattr(batch_module, "CHUNK", 16 * 1024)  # many windows: many places to cut
    records_ = [(r.ts_ns, r.data) for r in open_capture(SAMPLE)]
    raw = ipv4(A, B, 17, udp(A, B, 3, 4, b"raw"), 64, 2)
    log = ethernet(MA, MB, None, 0x0800, ipv4(A, B, 17, udp(A, B, 5514, 514, b"<14>spb"), 64, 3))
    blocks = [shb("<"), idb("<", 1, tsresol=9), idb("<", 101)]
    for i, (ts, data) in enumerate(records_):
        blocks.append(epb("<", 0, ts, data))
        if i % 7 == 0:
            blocks.append(block("<", 3, struct.pack("<I", len(log)) + log))  # a simple packet block: no time
            blocks.append(epb("<", 1, ts, raw))
    blocks += [shb(">"), idb(">", 1, tsresol=9)]  # a second, big-endian section: its own interface numbers
    blocks += [epb(">", 0, ts + 700_000_000_000, data) for ts, data in records_]  # flows continue across cuts
    path = tmp_path / "ward.pcapng"
    path.write_bytes(b"".join(blocks))
    scan = batch_module.scan_parts(path, 4)
    assert scan is not None and len(scan.parts) == 4 and scan.format == "pcapng"
    assert scan.parts[0][:3] == (0, scan.parts[1][0], 0) and scan.parts[0][3] is None
    states = [p[3] for p in scan.parts[1:]]
    assert all(s is not None for s in states) and {s.order for s in states if s is not None} == {"<", ">"}
    # stream dissectors (HL7, DICOM) make a split fall back to reading the file whole (a part cannot know
    # which connections an earlier part claimed): without them, the parts are merged
    registry = default_registry(streams=False)
    serial = Engine(registry).analyze([path])
    assert Engine().analyze([path], jobs=2).analysis == Engine().analyze([path]).analysis
    assert len(serial.analysis.flows) > 100
    merged: list[bool] = []
    split_file = Engine._split_file

    def spy(self: Engine, *args: Any) -> Any:
        outcome = split_file(self, *args)
        merged.append(outcome is not None)
        return outcome

    monkeypatch.setattr(Engine, "_split_file", spy)
    for jobs in (2, 3, 5):
        split = Engine(registry).analyze([path], jobs=jobs)
        assert split.analysis == serial.analysis, jobs
    # the parts were merged (where a connection is ambiguous at a cut, the file is read whole instead)
    assert len(merged) == 3 and merged.count(True) >= 2
    # every part read on its own gives the records of the whole file, in order
    whole = [r for b in BatchReader(path) for r in (b.record(i) for i in range(len(b)))]
    parts = []
    for begin, end, before, state in scan.parts:
        parts += [
            r for b in BatchReader.part(path, begin, end, before, state) for r in (b.record(i) for i in range(len(b)))
        ]
    assert parts == whole
    with pytest.raises(ValueError, match="scanned state"):
        BatchReader.part(path, scan.parts[1][0], scan.parts[1][1], 0)


def test_c_extensions_are_built() -> None:
    """CI builds the C walker and accumulators; without a compiler wardwatch falls back to numpy (the tests above
    cover both)."""
    assert batch_module.c_walk is not None
    assert native.c_accum is not None


def test_out_of_range_timestamps_are_skipped_alike(tmp_path: Path) -> None:
    o = "<"
    frame = hard_frames()[0][1]
    data = shb(o) + idb(o, 1, tsresol=9) + epb(o, 0, 2**64 - 5, frame) + epb(o, 0, 1_700_000_000_000_000_000, frame)
    data += idb(o, 1) + epb(o, 1, 2**63, frame)  # microseconds * 1000 overflows int64
    path = tmp_path / "ts.pcapng"
    path.write_bytes(data)
    same_analysis([path])
    skipped = Engine().analyze([path]).analysis.skipped
    assert [(s.reason, s.count, s.examples) for s in skipped] == [
        ("record time out of range (corrupt record)", 2, (1, 3))
    ]


def test_benchmark_generator_capture(tmp_path: Path) -> None:
    """A small run of the benchmark generator: fast == reference == dpkt (flow table), pcap and pcapng."""
    import dpkt

    from tests.conftest import ROOT

    sys_path_bench = str(ROOT / "bench")
    import sys

    sys.path.insert(0, sys_path_bench)
    try:
        import generate as bench_generate
    finally:
        sys.path.remove(sys_path_bench)
    builder, rows = bench_generate.generate_rows(0.004, 11)
    pcap, ng, count = bench_generate.write(builder, rows, tmp_path)
    assert count > 2000
    for path in (pcap, ng):
        assert records(path) == reference_records(path)
        same_analysis([path])
    flows = Engine().analyze([pcap]).analysis.flows
    ours: dict[tuple[object, ...], list[int]] = {}
    for f in flows:
        if f.proto in (6, 17):
            key = (f.proto, *sorted([(ip4_or_6(f.src_ip), f.src_port), (ip4_or_6(f.dst_ip), f.dst_port)]))
            agg = ours.setdefault(key, [0, 0])
            agg[0] += f.packets
            agg[1] += f.bytes
    theirs: dict[tuple[object, ...], list[int]] = {}
    with open(pcap, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                continue
            if isinstance(ip, dpkt.ip.IP) and ip.offset:
                continue
            l4 = ip.data
            if isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP):
                proto = 6 if isinstance(l4, dpkt.tcp.TCP) else 17
                key = (proto, *sorted([(bytes(ip.src), l4.sport), (bytes(ip.dst), l4.dport)]))
                agg = theirs.setdefault(key, [0, 0])
                agg[0] += 1
                agg[1] += len(buf)
    assert ours == theirs


def ip4_or_6(text: str) -> bytes:
    import ipaddress

    return ipaddress.ip_address(text).packed


def test_joined_batches_decode_as_their_parts() -> None:
    """``join_batches`` (the live monitor joins ring blocks): the same records, in order, at new offsets."""
    from tests.conftest import SAMPLE
    from wardwatch.capture.batch import BatchReader, RecordBatch, join_batches

    parts: list[RecordBatch] = []
    for b in BatchReader(SAMPLE):
        half = len(b) // 2
        for sl in (slice(0, half), slice(half, len(b))):
            lo = int(b.start[sl][0])
            hi = int(b.start[sl][-1] + b.caplen[sl][-1])
            buf = bytearray(b.buf[lo:hi]) + bytes(256)
            parts.append(
                RecordBatch(
                    buf=buf, start=b.start[sl] - lo, caplen=b.caplen[sl].copy(), wirelen=b.wirelen[sl].copy(),
                    ts=b.ts[sl].copy(), number=b.number[sl].copy(), linktype=b.linktype[sl].copy(),
                    iface=b.iface[sl].copy(), offset=b.offset[sl].copy(),
                )
            )  # fmt: skip
    joined = join_batches(parts)
    records = [p.record(i) for p in parts for i in range(len(p))]
    assert [joined.record(i) for i in range(len(joined))] == records
    assert join_batches(parts[:1]) is parts[0]
