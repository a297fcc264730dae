"""Classic pcap reader: byte orders, timestamp resolutions, variants and damaged files."""

from __future__ import annotations

import gzip
import struct
import tracemalloc
from pathlib import Path

import pytest

from generate_ward import ethernet, ip4, ipv4, udp
from tests.conftest import write_pcap
from wardwatch.capture import open_capture
from wardwatch.errors import CaptureError, CaptureFormatError

FRAME = ethernet(
    b"\x00\x09\xfb\x00\x00\x01",
    b"\xff" * 6,
    None,
    0x0800,
    ipv4(ip4("10.0.0.1"), ip4("10.0.0.2"), 17, udp(ip4("10.0.0.1"), ip4("10.0.0.2"), 1000, 2000, b"x"), 64, 1),
)
TS = 1_700_000_000_123_456_789


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nsec", [False, True])
def test_byte_orders_and_resolutions(tmp_path: Path, order: str, nsec: bool) -> None:
    path = write_pcap(
        tmp_path / "a.pcap", [(TS, FRAME), (TS + 1_000_000_000, FRAME[:40], len(FRAME))], order=order, nsec=nsec
    )
    reader = open_capture(path)
    records = list(reader)
    assert reader.format == ("pcap-nsec" if nsec else "pcap")
    assert reader.linktypes == (1,)
    assert [r.number for r in records] == [1, 2]
    expected_ts = TS if nsec else TS - TS % 1000  # microsecond files lose the nanoseconds
    assert records[0].ts_ns == expected_ts
    assert records[1].ts_ns == expected_ts + 1_000_000_000
    assert records[0].data == FRAME
    assert (records[1].caplen, records[1].wirelen) == (40, len(FRAME))
    assert records[0].offset == 24 and records[1].offset == 24 + 16 + len(FRAME)


def test_kuznetzov_variant(tmp_path: Path) -> None:
    header = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack("<IIII", 10, 5, len(FRAME), len(FRAME)) + struct.pack("<IHBx", 3, 0x0800, 0) + FRAME
    path = tmp_path / "k.pcap"
    path.write_bytes(header + rec + rec)
    records = list(open_capture(path))
    assert len(records) == 2 and records[1].data == FRAME and records[0].ts_ns == 10_000_005_000


def test_digests_and_size(tmp_path: Path) -> None:
    import hashlib

    import xxhash

    path = write_pcap(tmp_path / "a.pcap", [(TS, FRAME)] * 3)
    reader = open_capture(path)
    list(reader)
    assert reader.digest() == "xxh3-128:" + xxhash.xxh3_128(path.read_bytes()).hexdigest()
    assert reader.sha256() is None  # only on request: it costs as much CPU as the analysis
    assert reader.size == path.stat().st_size
    assert reader.bytes_read == reader.size
    with_sha = open_capture(path, sha256=True)
    list(with_sha)
    assert with_sha.sha256() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_gzip_compressed(tmp_path: Path) -> None:
    plain = write_pcap(tmp_path / "a.pcap", [(TS, FRAME)] * 5)
    packed = tmp_path / "a.pcap.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    reader = open_capture(packed)
    assert [r.data for r in reader] == [FRAME] * 5
    assert reader.format == "gzip+pcap"
    import xxhash

    assert reader.digest() == "xxh3-128:" + xxhash.xxh3_128(packed.read_bytes()).hexdigest()


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    plain = write_pcap(tmp_path / "a.pcap", [(TS + i, FRAME) for i in range(2000)])
    data = gzip.compress(plain.read_bytes())
    packed = tmp_path / "cut.pcap.gz"
    packed.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(CaptureFormatError) as exc:
        for r in open_capture(packed):
            got.append(r)
    assert 0 < len(got) < 2000
    assert str(packed) in str(exc.value)


@pytest.mark.parametrize("cut", [10, 24 + 8, 24 + 16 + 5])
def test_truncated_file_reports_offset(tmp_path: Path, cut: int) -> None:
    full = write_pcap(tmp_path / "a.pcap", [(TS, FRAME), (TS, FRAME)]).read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(full[:cut] if cut < 24 else full[: 24 + 16 + len(FRAME) + (cut - 24)])
    got = []
    with pytest.raises(CaptureFormatError) as exc:
        for r in open_capture(path):
            got.append(r)
    err = exc.value
    assert err.path == str(path)
    if cut < 24:
        assert err.offset == 0 and got == []
    else:
        assert got[0].data == FRAME and len(got) == 1  # the good packet before the damage is kept
        assert err.offset == 24 + 16 + len(FRAME)
        assert "cut short" in err.message
    assert f"offset {err.offset}" in str(err)


def test_garbage_and_empty_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"This is not a capture file at all\n" * 10)
    with pytest.raises(CaptureFormatError, match="not a pcap or pcapng file"):
        open_capture(garbage)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(CaptureFormatError, match="too short"):
        open_capture(empty)
    with pytest.raises(CaptureError, match="No such file"):
        open_capture(tmp_path / "missing.pcap")


def test_absurd_record_length_is_an_error(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "a.pcap", [(TS, FRAME)])
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 24 + 8, 50_000_000)  # caplen of the first record
    path.write_bytes(bytes(data))
    with pytest.raises(CaptureFormatError, match="claims 50000000 captured bytes") as exc:
        list(open_capture(path))
    assert exc.value.offset == 24


def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    """Streaming: reading a file 8x larger does not take 8x the memory (the reader buffers a chunk)."""

    def peak(count: int) -> int:
        path = write_pcap(tmp_path / f"{count}.pcap", [(TS + i, FRAME * 20) for i in range(count)])
        tracemalloc.start()
        n = sum(1 for _ in open_capture(path))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert n == count
        return top

    small, large = peak(2_000), peak(16_000)  # about 2.4 MB and 19 MB of packets
    assert large < small * 1.5 + 512 * 1024
    assert large < 4 * 1024 * 1024
