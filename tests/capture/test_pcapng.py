"""pcapng reader: sections, interfaces with their own link type and resolution, block types, damage."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from generate_ward import ethernet, ip4, ipv4, udp
from wardwatch.capture import open_capture
from wardwatch.errors import CaptureFormatError

FRAME = ethernet(
    b"\x00\x09\xfb\x00\x00\x01",
    b"\xff" * 6,
    None,
    0x0800,
    ipv4(ip4("10.0.0.1"), ip4("10.0.0.2"), 17, udp(ip4("10.0.0.1"), ip4("10.0.0.2"), 1, 2, b"pcapng"), 64, 1),
)
RAW = ipv4(ip4("10.0.0.3"), ip4("10.0.0.4"), 17, udp(ip4("10.0.0.3"), ip4("10.0.0.4"), 3, 4, b"raw"), 64, 2)


def block(o: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack(o + "II", btype, 12 + len(body)) + body + struct.pack(o + "I", 12 + len(body))


def opt(o: str, code: int, value: bytes) -> bytes:
    return struct.pack(o + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(o: str) -> bytes:
    return block(o, 0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(o: str, linktype: int, tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    body = struct.pack(o + "HHI", linktype, 0, 65535)
    if tsresol is not None:
        body += opt(o, 9, bytes([tsresol]))
    if tsoffset is not None:
        body += opt(o, 14, struct.pack(o + "q", tsoffset))
    return block(o, 1, body + opt(o, 0, b""))


def epb(o: str, iface: int, ticks: int, data: bytes, wirelen: int | None = None) -> bytes:
    head = struct.pack(o + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wirelen or len(data))
    return block(o, 6, head + data)


def test_interfaces_with_their_own_linktype_and_resolution(tmp_path: Path) -> None:
    o = "<"
    data = (
        shb(o)
        + idb(o, 1)  # default: microseconds
        + idb(o, 101, tsresol=9)  # nanoseconds, raw IP
        + idb(o, 1, tsresol=0x80 | 20, tsoffset=100)  # 2^-20 s units, +100 s offset
        + block(o, 4, b"\x00\x00\x00\x00")  # name resolution block: skipped
        + epb(o, 0, 1_700_000_000_000_001, FRAME)
        + epb(o, 1, 1_700_000_000_000_000_002, RAW)
        + epb(o, 2, 1 << 20, FRAME)
        + block(o, 3, struct.pack(o + "I", len(FRAME)) + FRAME)  # simple packet block, interface 0
        + block(o, 5, struct.pack(o + "III", 0, 0, 0))  # interface statistics: skipped
        + block(o, 0x40000BAD, b"\x00\x00\x00\x00custom")  # custom block: skipped
    )
    path = tmp_path / "multi.pcapng"
    path.write_bytes(data)
    reader = open_capture(path)
    records = list(reader)
    assert reader.format == "pcapng"
    assert reader.linktypes == (1, 101)
    assert [r.number for r in records] == [1, 2, 3, 4]
    assert [r.interface for r in records] == [0, 1, 2, 0]
    assert [r.linktype for r in records] == [1, 101, 1, 1]
    assert records[0].ts_ns == 1_700_000_000_000_001_000
    assert records[1].ts_ns == 1_700_000_000_000_000_002
    assert records[2].ts_ns == 101_000_000_000  # one second in 2^-20 units, plus the 100 s offset
    assert records[3].ts_ns == records[2].ts_ns  # SPB has no timestamp: previous packet's
    assert records[1].data == RAW and records[3].data == FRAME


def test_sections_with_different_byte_orders(tmp_path: Path) -> None:
    data = shb("<") + idb("<", 1) + epb("<", 0, 5, FRAME) + shb(">") + idb(">", 101) + epb(">", 0, 6, RAW)
    path = tmp_path / "two.pcapng"
    path.write_bytes(data)
    records = list(open_capture(path))
    # interfaces are numbered across sections; each section's packets use their own interfaces
    assert [(r.interface, r.linktype, r.data) for r in records] == [(0, 1, FRAME), (1, 101, RAW)]


def test_obsolete_packet_block(tmp_path: Path) -> None:
    body = struct.pack("<HHIIII", 0, 0, 0, 7, len(FRAME), len(FRAME)) + FRAME
    path = tmp_path / "old.pcapng"
    path.write_bytes(shb("<") + idb("<", 1) + block("<", 2, body))
    (record,) = list(open_capture(path))
    assert record.data == FRAME and record.ts_ns == 7000


def test_bad_block_length_names_offset(tmp_path: Path) -> None:
    good = shb("<") + idb("<", 1) + epb("<", 0, 1, FRAME)
    bad = bytearray(epb("<", 0, 2, FRAME))
    struct.pack_into("<I", bad, 4, 13)  # not a multiple of 4
    path = tmp_path / "bad.pcapng"
    path.write_bytes(good + bytes(bad))
    got = []
    with pytest.raises(CaptureFormatError, match="bad length 13") as exc:
        for r in open_capture(path):
            got.append(r)
    assert len(got) == 1 and exc.value.offset == len(good)


def test_trailing_length_mismatch(tmp_path: Path) -> None:
    good = shb("<") + idb("<", 1)
    bad = bytearray(epb("<", 0, 2, FRAME))
    struct.pack_into("<I", bad, len(bad) - 4, 999)
    path = tmp_path / "bad.pcapng"
    path.write_bytes(good + bytes(bad))
    with pytest.raises(CaptureFormatError, match="trailing length") as exc:
        list(open_capture(path))
    assert exc.value.offset == len(good)


def test_undeclared_interface_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "noif.pcapng"
    path.write_bytes(shb("<") + idb("<", 1) + epb("<", 3, 1, FRAME))
    with pytest.raises(CaptureFormatError, match="undeclared interface 3"):
        list(open_capture(path))
    full = shb("<") + idb("<", 1) + epb("<", 0, 1, FRAME) + epb("<", 0, 2, FRAME)
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(full[:-10])
    got = []
    with pytest.raises(CaptureFormatError, match="cut short"):
        for r in open_capture(cut):
            got.append(r)
    assert len(got) == 1


def test_bad_byte_order_magic(tmp_path: Path) -> None:
    data = bytearray(shb("<"))
    struct.pack_into("<I", data, 8, 0xDEADBEEF)
    path = tmp_path / "bom.pcapng"
    path.write_bytes(bytes(data))
    with pytest.raises(CaptureFormatError, match="byte-order magic") as exc:
        list(open_capture(path))
    assert exc.value.offset == 8
