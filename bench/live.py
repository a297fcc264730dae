#!/usr/bin/env python3
"""Live monitoring load benchmark: the highest replay rate the sensor takes with zero kernel drops.

Two network namespaces joined by a veth pair: ``tcpreplay`` replays the benchmark capture (``bench/run.py``'s,
generated on first use) out of one end at a fixed packet rate; ``wardwatch monitor`` (identification on, the
default) captures at the other end into a fresh SQLite store. For each rate the run replays the same first
``--packets`` packets and reads the sensor's own figures from ``wardwatch status``: frames analysed and frames
the kernel dropped because the ring was full. Rates rise until one drops frames. tcpreplay runs on the same
2 vCPUs, so the figures are the sensor's rate while sharing the machine with its traffic source.

Needs root, iproute2 and tcpreplay (``make test``/``make bench`` install them). Prints figures; asserts nothing.
Usage: ``python bench/live.py [--packets 1500000] [--rates 100000,150000,...] [--no-deep]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
WARDWATCH = str(Path(sys.executable).parent / "wardwatch")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def status(ns: str, db: Path) -> dict[str, float]:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, WARDWATCH, "status", "--db", str(db), "--format", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    rows = json.loads(out)
    return rows[0] if rows else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 1.5 M packets (~1.1 GB) per rate: far more than the sensor's backlog (256 MiB) could hide
    parser.add_argument("--packets", type=int, default=1_500_000, help="packets replayed per rate")
    parser.add_argument("--rates", default="100000,150000,200000,250000,300000,350000")
    parser.add_argument("--ring-mb", type=int, default=64)
    parser.add_argument(
        "--pin", action="store_true", help="the sensor (and its children) on CPU 0 only, tcpreplay on CPU 1: one core"
    )
    parser.add_argument("--warmup", type=int, default=100_000, help="pkt/s of a first replay, not counted (0: none)")
    parser.add_argument("--no-deep", action="store_true", help="identification off (the per-packet dissectors only)")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("tcpreplay") is None:
        sys.exit("bench/live.py needs root and tcpreplay")
    from run import build  # the benchmark capture of bench/run.py

    pcap, _ = build(ROOT / "bench" / "out", 1.0)
    tag = f"wwbench{os.getpid() % 10000}"
    sensor, source = f"{tag}m", f"{tag}r"
    work = Path(tempfile.mkdtemp(prefix="wardwatch-live-"))
    db = work / "live.db"
    ip("netns", "add", sensor)
    ip("netns", "add", source)
    monitor: subprocess.Popen[bytes] | None = None
    try:
        ip("link", "add", "mon0", "netns", sensor, "type", "veth", "peer", "name", "rep0", "netns", source)
        subprocess.run(
            ["ip", "netns", "exec", source, "sysctl", "-qw", "net.ipv6.conf.rep0.disable_ipv6=1"], check=True
        )
        ip("-n", source, "link", "set", "rep0", "up")
        exe = os.environ.get("WARDWATCH_BENCH_EXE", WARDWATCH).split()  # e.g. a wrapper that times the sensor
        cmd = [
            *exe,
            "monitor",
            "-i",
            "mon0",
            "--harden",
            "--db",
            str(db),
            "--no-events",
            "--ring-mb",
            str(args.ring_mb),
        ]
        if args.no_deep:
            cmd.append("--no-deep")
        log = open(work / "monitor.log", "wb")  # noqa: SIM115 - closed below
        pin_sensor, pin_source = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if args.pin else ([], [])
        monitor = subprocess.Popen(
            ["ip", "netns", "exec", sensor, *pin_sensor, *cmd], stdout=log, stderr=subprocess.STDOUT
        )
        if os.environ.get("WARDWATCH_BENCH_PROFILE"):  # py-spy the sensor while it works
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    os.environ["WARDWATCH_BENCH_PROFILE"],
                    "-p",
                    str(monitor.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (db.exists() and status(sensor, db).get("state") == "capturing"):
            time.sleep(0.2)
        print(f"replaying the first {args.packets:,} packets of {pcap.name} into a sensor (identification "
              f"{'off' if args.no_deep else 'on'}, ring {args.ring_mb} MiB"
              f"{', sensor on CPU 0 and tcpreplay on CPU 1' if args.pin else ''}), rate by rate")  # fmt: skip
        print("| asked pkt/s | replayed pkt/s | analysed | kernel drops | s until all analysed and stored |")
        print("|---|---|---|---|---|")

        def replay(rate: int) -> tuple[float, int, int, float]:
            """One replay at ``rate``: (replayed pkt/s, analysed, dropped, seconds until all were read)."""
            before = status(sensor, db)
            rep = subprocess.run(
                ["ip", "netns", "exec", source, *pin_source, "tcpreplay", "-q", "-i", "rep0", f"--pps={rate}",
                 f"--limit={args.packets}", str(pcap)],
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            match = re.search(r"Rated:.*?([\d.]+) pps", rep.stdout)
            replayed = float(match.group(1)) if match else float("nan")
            sent = time.monotonic()
            ok = re.search(r"Successful packets:\s+(\d+)", rep.stdout)
            expected = before.get("packets", 0) + before.get("drops", 0) + (int(ok.group(1)) if ok else args.packets)
            after = status(sensor, db)
            while time.monotonic() - sent < 300 and after["packets"] + after["drops"] < expected:
                time.sleep(0.2)  # until the sensor has read (or lost) every frame that was sent
                after = status(sensor, db)
            if os.environ.get("WARDWATCH_BENCH_VERBOSE"):
                print(rep.stdout, after, file=sys.stderr)
            analysed = int(after["packets"] - before.get("packets", 0))
            return replayed, analysed, int(after["drops"] - before.get("drops", 0)), time.monotonic() - sent

        if args.warmup:
            # a sensor runs for days: the rates are measured once the capture's devices and paths are known (the
            # first minute of a new sensor, with every device and path new, is this warm-up row)
            replayed, analysed, drops, lag = replay(args.warmup)
            print(f"| warm-up {args.warmup:,} | {replayed:,.0f} | {analysed:,} | {drops:,} | {lag:.1f} |", flush=True)
        best = 0.0
        for rate in (int(r) for r in args.rates.split(",")):
            replayed, analysed, drops, lag = replay(rate)
            print(f"| {rate:,} | {replayed:,.0f} | {analysed:,} | {drops:,} | {lag:.1f} |", flush=True)
            if drops:
                break
            best = max(best, replayed)
        print(f"highest replayed rate with zero kernel drops: {best:,.0f} packets/s")
    finally:
        if monitor is not None:
            monitor.send_signal(signal.SIGTERM)
            monitor.wait(timeout=120)
        for ns in (sensor, source):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        if not os.environ.get("WARDWATCH_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
