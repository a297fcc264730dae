"""Engine: bad input never loses work; skipped packets are counted with their reason."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from generate_ward import ethernet, ip4, ipv4, udp
from tests.conftest import corpus_captures, write_pcap
from wardwatch.engine import Engine, analyze

A, B = ip4("10.0.0.1"), ip4("10.0.0.2")
MAC_A, MAC_B = bytes.fromhex("0009fb000001"), bytes.fromhex("005056000002")


def udp_frame(i: int) -> bytes:
    return ethernet(MAC_A, MAC_B, None, 0x0800, ipv4(A, B, 17, udp(A, B, 1000 + i % 3, 514, b"log"), 64, i))


def test_malformed_packets_are_counted_not_fatal(tmp_path: Path) -> None:
    good = [(i * 1000, udp_frame(i)) for i in range(10)]
    bad_ihl = bytearray(udp_frame(99))
    bad_ihl[14] = 0x41
    frames = [*good[:5], (6000, bytes(bad_ihl)), (7000, udp_frame(7)[:30]), *good[5:]]
    # a DHCP packet whose option runs past the end
    from generate_ward import dhcp

    broken = dhcp(1, 3, 1, MAC_A, b"\x00" * 4, b"\x00" * 4, None, None, None)[:-1] + bytes([12, 40]) + b"x"
    frames.append(
        (
            9000,
            ethernet(
                MAC_A,
                b"\xff" * 6,
                None,
                0x0800,
                ipv4(b"\x00" * 4, b"\xff" * 4, 17, udp(b"\x00" * 4, b"\xff" * 4, 68, 67, broken), 64, 1),
            ),
        )
    )
    path = write_pcap(tmp_path / "mixed.pcap", frames)
    result = analyze([path])
    a = result.analysis
    assert result.errors == ()
    assert a.captures[0].packets == 13 and a.captures[0].complete
    reasons = {s.reason: (s.count, s.examples) for s in a.skipped}
    assert reasons == {
        "IPv4 header length 4 < 20": (1, (6,)),
        "truncated IPv4 header": (1, (7,)),
        "dhcp: DHCP option 12 runs past the end of the message": (1, (13,)),
    }
    syslog = [f for f in a.flows if f.dst_port == 514]
    assert sum(f.packets for f in syslog) == 10  # every good packet counted


def test_unreadable_files_do_not_stop_the_run(tmp_path: Path) -> None:
    good = write_pcap(tmp_path / "good.pcap", [(1000, udp_frame(1))])
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"\x00garbage" * 50)
    result = analyze([garbage, tmp_path / "missing.pcap", good])
    assert len(result.errors) == 2
    assert [c.path for c in result.analysis.captures] == [str(good)]
    assert str(garbage) in str(result.errors[0]) and "offset 0" in str(result.errors[0])
    assert len(result.analysis.errors) == 2


def test_unknown_link_type_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "usb.pcap", [(1000, b"\x00" * 40), (2000, b"\x00" * 40)], linktype=189)
    result = analyze([path])
    (err,) = result.errors
    assert "link type 189 is not supported" in str(err) and str(path) in str(err) and err.offset == 24
    (skip,) = result.analysis.skipped
    assert (skip.reason, skip.count) == ("unsupported link type 189", 2)
    assert result.analysis.captures[0].packets == 2


def test_truncated_capture_keeps_everything_before_the_damage(tmp_path: Path) -> None:
    full = write_pcap(tmp_path / "full.pcap", [(i * 1000, udp_frame(i)) for i in range(20)]).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(full[: len(full) - 10])
    result = analyze([cut])
    (err,) = result.errors
    cap = result.analysis.captures[0]
    assert cap.packets == 19 and not cap.complete and cap.error_offset == err.offset
    assert sum(f.packets for f in result.analysis.flows) == 19


def test_progress_callback_reaches_the_end(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "p.pcap", [(i, udp_frame(i)) for i in range(5000)])
    calls: list[tuple[int, int, int]] = []
    Engine().analyze([path], lambda _p, done, total, n: calls.append((done, total, n)))
    assert calls[-1] == (path.stat().st_size, path.stat().st_size, 5000)
    assert len(calls) >= 2


@pytest.mark.parametrize("fast", [True, False])
def test_collector_runs_less_often_while_analysing_and_as_before_after(tmp_path: Path, fast: bool) -> None:
    """While analysing, the youngest generation is collected every GC_THRESHOLD allocations; the process's own
    thresholds come back afterwards, also when the analysis fails."""
    import gc

    from wardwatch.engine import GC_THRESHOLD

    path = write_pcap(tmp_path / "p.pcap", [(i, udp_frame(i)) for i in range(10)])
    seen: list[tuple[int, int, int]] = []
    before = gc.get_threshold()
    gc.set_threshold(500, 9, 8)
    try:
        Engine(fast=fast).analyze([path], lambda *_: seen.append(gc.get_threshold()))
        assert seen and all(t == (GC_THRESHOLD, 9, 8) for t in seen)
        assert gc.get_threshold() == (500, 9, 8)

        def boom(*_: object) -> None:
            raise RuntimeError("progress display failed")

        with pytest.raises(RuntimeError):
            Engine(fast=fast).analyze([path], boom)
        assert gc.get_threshold() == (500, 9, 8)
    finally:
        gc.set_threshold(*before)


CORPUS = corpus_captures()


@pytest.mark.corpus
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_truncating_corpus_files_at_random_offsets(tmp_path: Path, path: Path) -> None:
    """Acceptance: every corpus file cut at random places: no crash, partial results kept, the error named."""
    data = path.read_bytes()
    full = analyze([path]).analysis
    rng = random.Random(path.name)
    for offset in sorted({rng.randrange(1, len(data)) for _ in range(6)}):
        cut = tmp_path / f"cut-{offset}{path.suffix}"
        cut.write_bytes(data[:offset])
        result = analyze([cut])
        if not result.analysis.captures:  # cut inside the file header: nothing to keep, but a clear error
            (err,) = result.errors
            assert str(cut) in str(err)
            continue
        cap = result.analysis.captures[0]
        assert cap.packets <= full.captures[0].packets
        if result.errors:
            assert not cap.complete and cap.error_offset is not None and cap.error_offset <= offset
            assert str(cut) in str(result.errors[0])
        packets = sum(f.packets for f in result.analysis.flows)
        assert packets <= sum(f.packets for f in full.flows)


@pytest.mark.corpus
def test_corrupting_corpus_blocks_is_reported(tmp_path: Path) -> None:
    """A pcapng block with a bad length in the middle of a real capture: earlier packets kept, offset named."""
    src = next((p for p in CORPUS if p.suffix == ".pcapng"), None)
    if src is None:
        pytest.skip("no pcapng in the corpus")
    data = bytearray(src.read_bytes())
    # find the 3rd packet block and break its length
    pos, seen = 0, 0
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 6:
            seen += 1
            if seen == 3:
                struct.pack_into("<I", data, pos + 4, 7)
                break
        pos += blen
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(data))
    result = analyze([bad])
    (err,) = result.errors
    assert err.offset == pos and "bad length 7" in str(err)
    assert result.analysis.captures[0].packets == 2


def test_snaplen_cut_packets_count_wire_bytes(tmp_path: Path) -> None:
    """A capture taken with a small snaplen: headers that survive still make flows, with on-the-wire sizes."""
    big = [(i * 1000, udp_frame(i) + b"\x00" * 200) for i in range(4)]
    frames = [(ts, data[:42], len(data)) for ts, data in big]  # Ethernet + IPv4 + UDP header survive
    frames.append((9000, big[0][1][:38], len(big[0][1])))  # cut inside the UDP header
    path = write_pcap(tmp_path / "snap.pcap", frames, snaplen=42)
    a = analyze([path]).analysis
    assert sum(f.packets for f in a.flows if f.proto == 17) == 4
    assert sum(f.bytes for f in a.flows if f.proto == 17) == sum(len(d) for _, d in big)
    assert [(s.reason, s.count, s.examples) for s in a.skipped] == [("truncated UDP header", 1, (5,))]
