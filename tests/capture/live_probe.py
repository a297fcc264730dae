"""Run inside a network namespace by tests/capture/test_live.py: capture from an interface with ``LiveCapture``
for a while and print what arrived, one JSON object per frame (as the reference decoder reads it)."""

from __future__ import annotations

import json
import sys
import time

from wardwatch.capture import decode
from wardwatch.capture.live import LiveCapture


def main(interface: str, seconds: float, bpf: str | None) -> None:
    frames = []
    with LiveCapture(interface, bpf=bpf or None, ring_mb=4, block_kb=64, timeout_ms=20) as cap:
        print("ready", flush=True)
        deadline = time.monotonic() + seconds
        number = 1
        while time.monotonic() < deadline:
            if cap.wait(0.05):
                for batch in cap.batches(number):
                    number += len(batch)
                    for i in range(len(batch)):
                        pkt = decode(batch.record(i))
                        frames.append(
                            {"vlans": list(pkt.vlans), "proto": pkt.proto, "dport": pkt.dst_port,
                             "caplen": int(batch.caplen[i]), "wirelen": int(batch.wirelen[i]),
                             "payload": pkt.payload.hex(), "ts": int(batch.ts[i])}
                        )  # fmt: skip
        stats = cap.stats()
    print(json.dumps({"frames": frames, "drops": stats.drops, "outgoing": stats.outgoing, "kernel": stats.packets}))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
