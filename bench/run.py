#!/usr/bin/env python3
"""Benchmark of the current (reference) analysis path: prints figures, asserts nothing about time.

Builds a larger capture by replaying the bundled ward sample N times with shifted clocks and shifted host
addresses (so flows and devices grow with it), then times, in one run:

* reading records only (the file walk),
* ``Engine.analyze`` (decode + flows + inventory + dissectors), without the store,
* the same plus ingest into a fresh SQLite store,
* a plain dpkt loop that decodes Ethernet/IP/TCP/UDP of every frame (the common Python baseline).

Usage: ``python bench/run.py [--copies N] [--out DIR]`` (``make bench`` runs it with the defaults).
"""

from __future__ import annotations

import argparse
import os
import resource
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from wardwatch.capture import open_capture  # noqa: E402
from wardwatch.engine import Engine  # noqa: E402
from wardwatch.store import Store  # noqa: E402


def build_capture(copies: int, out: Path) -> tuple[Path, int]:
    """Write a pcap of ``copies`` replays of the sample; copy k moves every 10.x.y.z host to 10.x.(y+k).z."""
    frames = [(r.ts_ns, r.data) for r in open_capture(ROOT / "samples" / "ward.pcapng")]
    span = frames[-1][0] - frames[0][0] + 1_000_000_000
    path = out / f"ward-x{copies}.pcap"
    count = 0
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for k in range(copies):
            for ts, data in frames:
                frame = bytearray(data)
                # shift the third octet of private 10.x addresses in IPv4 headers (VLAN-tagged frames)
                if len(frame) > 18 + 20 and frame[16:18] == b"\x08\x00":
                    for off in (18 + 12, 18 + 16):
                        if frame[off] == 10:
                            frame[off + 2] = (frame[off + 2] + k) % 256
                # IPv4 header checksums are not recomputed: nothing here validates them
                t = ts + k * span
                sec, nsec = divmod(t, 1_000_000_000)
                fh.write(struct.pack("<IIII", sec, nsec, len(frame), len(frame)) + frame)
                count += 1
    return path, count


def timed(label: str, fn, packets: int, size: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<38} {elapsed:8.2f} s {packets / elapsed:12,.0f} pkt/s {size / elapsed / 1e6:8.1f} MB/s")
    return elapsed


def dpkt_loop(path: Path) -> int:
    import dpkt

    n = 0
    with open(path, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) and isinstance(ip.data, dpkt.tcp.TCP | dpkt.udp.UDP):
                n += ip.data.sport
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=64, help="replays of the 3,117-packet sample (default 64)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the capture (default: temp dir)")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        run(args.copies, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="wardwatch-bench-") as tmp:
            run(args.copies, Path(tmp))


def run(copies: int, out: Path) -> None:
    """Build the capture in ``out`` and print the figures."""
    path, packets = build_capture(copies, out)
    size = path.stat().st_size
    print(
        f"capture: {path} - {packets:,} packets, {size / 1e6:.1f} MB; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    path.read_bytes()  # warm the page cache
    timed("read records (file walk only)", lambda: sum(1 for _ in open_capture(path)), packets, size)
    result = {}
    t_engine = timed("analyze (no store)", lambda: result.setdefault("a", Engine().analyze([path])), packets, size)
    db = out / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)

    def analyze_and_store() -> None:
        res = Engine().analyze([path])
        store = Store.open(str(db))
        store.ingest(res.analysis, "bench", time.time_ns())
        store.close()

    timed("analyze + SQLite store", analyze_and_store, packets, size)
    t_dpkt = timed("dpkt loop (Ethernet/IP/TCP/UDP decode)", lambda: dpkt_loop(path), packets, size)
    a = result["a"].analysis
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"devices {len(a.devices):,}, flows {len(a.flows):,}, edges {len(a.edges):,}; peak RSS {peak:,.0f} MB")
    print(f"analyze vs dpkt loop: {t_dpkt / t_engine:.2f}x")


if __name__ == "__main__":
    main()
