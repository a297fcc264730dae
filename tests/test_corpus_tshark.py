"""Acceptance: for every corpus capture, TCP and UDP flows agree with Debian's tshark (defragmentation off).

Same unordered endpoint pairs (proto, ip:port, ip:port), same packet and frame-byte totals (frame length on
the wire). tshark's conversation taps are read through a Lua listener that prints exact byte counts.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, corpus_captures
from wardwatch.capture import open_capture
from wardwatch.engine import analyze

LUA = Path(__file__).parent / "data" / "conv_tap.lua"
Key = tuple[str, tuple[str, int], tuple[str, int]]


def tshark_conversations(tshark: str, path: Path) -> tuple[Counter[Key], Counter[Key]]:
    out = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-q",
            "-n",
            "-o",
            "ip.defragment:FALSE",
            "-o",
            "ipv6.defragment:FALSE",
            "-X",
            f"lua_script:{LUA}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    packets: Counter[Key] = Counter()
    sizes: Counter[Key] = Counter()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 6 or parts[0] not in ("tcp", "udp"):
            continue
        proto, a, ap, b, bp, length = parts
        ends = sorted([(a, int(ap)), (b, int(bp))])
        key = (proto, ends[0], ends[1])
        packets[key] += 1
        sizes[key] += int(length)
    return packets, sizes


def our_conversations(path: Path) -> tuple[Counter[Key], Counter[Key]]:
    result = analyze([path])
    assert result.errors == ()
    packets: Counter[Key] = Counter()
    sizes: Counter[Key] = Counter()
    for f in result.analysis.flows:
        if f.proto not in (6, 17):
            continue
        assert f.src_port is not None and f.dst_port is not None
        ends = sorted([(f.src_ip, f.src_port), (f.dst_ip, f.dst_port)])
        key = ("tcp" if f.proto == 6 else "udp", ends[0], ends[1])
        packets[key] += f.packets
        sizes[key] += f.bytes
    return packets, sizes


CAPTURES = [*corpus_captures(), SAMPLE]


@pytest.mark.tshark
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_flows_agree_with_tshark(tshark: str, path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} not present")
    theirs_packets, theirs_bytes = tshark_conversations(tshark, path)
    ours_packets, ours_bytes = our_conversations(path)
    assert set(ours_packets) == set(theirs_packets)
    assert ours_packets == theirs_packets
    assert ours_bytes == theirs_bytes


@pytest.mark.tshark
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_frame_times_and_lengths_agree_with_tshark(tshark: str, path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} not present")
    out = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-n",
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.interface_id",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    records = list(open_capture(path))
    assert len(records) == len(out)
    for record, line in zip(records, out, strict=True):
        epoch, wirelen, caplen, _iface = line.split("\t")
        seconds, _, fraction = epoch.partition(".")
        assert record.ts_ns == int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])
        assert (record.wirelen, record.caplen) == (int(wirelen), int(caplen))
