"""The live capture ring (``capture.live``), its BPF compiler and the interface checks.

The ring tests need root and network namespaces (CI has both): a veth pair between two namespaces, frames sent
from one end (some tagged on a VLAN sub-interface), captured at the other end by ``live_probe.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.wardlab import missing
from wardwatch.capture.bpf import FilterError, compile_filter, run_filter
from wardwatch.capture.live import interface_exists, silence_problems

PROBE = str(Path(__file__).with_name("live_probe.py"))


def _udp_frame(dport: int, vlan: int | None = None) -> bytes:
    from generate_ward import ethernet, ipv4, udp

    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    return ethernet(b"\x02" * 6, b"\x04" * 6, vlan, 0x0800, ipv4(a, b, 17, udp(a, b, 40000, dport, b"hi"), 64, 1))


def _tcp_frame(dport: int) -> bytes:
    from generate_ward import ethernet, ipv4, tcp

    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    return ethernet(
        b"\x02" * 6, b"\x04" * 6, None, 0x0800, ipv4(a, b, 6, tcp(a, b, 40000, dport, 1, 0, 0x02, b""), 64, 1)
    )


def test_filters_compile_with_libpcap_and_select_what_they_say() -> None:
    program = compile_filter("udp port 53")
    assert program and all(len(insn) == 4 for insn in program)
    assert run_filter(program, _udp_frame(53)) > 0
    assert run_filter(program, _udp_frame(54)) == 0
    assert run_filter(program, _tcp_frame(53)) == 0
    vlan = compile_filter("vlan 100 and udp")
    assert run_filter(vlan, _udp_frame(9, vlan=100)) > 0 and run_filter(vlan, _udp_frame(9)) == 0


def test_a_filter_that_does_not_compile_says_why() -> None:
    with pytest.raises(FilterError, match="does not compile"):
        compile_filter("udp port eleventy")


def test_a_missing_interface_is_a_reason_not_a_crash() -> None:
    assert not interface_exists("nosuchif0")
    assert silence_problems("nosuchif0") == ["no interface nosuchif0 in this network namespace"]


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """Namespaces (capture side, sender side) joined by a veth pair: cap0 <-> snd0."""
    why = missing()
    if why:
        pytest.skip(why)
    tag = f"wwlive{os.getpid() % 100000}"
    cap_ns, snd_ns = f"{tag}c", f"{tag}s"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    ip("netns", "add", cap_ns)
    ip("netns", "add", snd_ns)
    try:
        ip("link", "add", "cap0", "netns", cap_ns, "type", "veth", "peer", "name", "snd0", "netns", snd_ns)
        for ns, dev in ((cap_ns, "cap0"), (snd_ns, "snd0")):
            with open("/dev/null") as _:
                pass
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
        ip("-n", cap_ns, "link", "set", "cap0", "arp", "off", "up")
        ip("-n", snd_ns, "addr", "add", "10.88.0.1/24", "dev", "snd0")
        ip("-n", snd_ns, "link", "set", "snd0", "up")
        # static neighbours: the sender needs no ARP, so what is captured is exactly what the test sends
        ip("-n", snd_ns, "neigh", "add", "10.88.0.2", "lladdr", "02:00:00:00:00:02", "dev", "snd0")
        yield cap_ns, snd_ns
    finally:
        for ns in (cap_ns, snd_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


SEND = """
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(("snd0", 0))
for i, frame in enumerate(sys.argv[1:]):
    u.sendto(b"untagged%d" % i, ("10.88.0.2", 5000))
    raw.send(bytes.fromhex(frame))  # an 802.1Q-tagged frame: the receiving kernel moves the tag into metadata
t = socket.socket()
t.setblocking(False)
try:
    t.connect(("10.88.0.2", 6000))
except OSError:
    pass
"""


def _tagged(i: int) -> str:
    from generate_ward import ethernet, ipv4, udp

    a, b = bytes([10, 88, 100, 1]), bytes([10, 88, 100, 2])
    body = ipv4(a, b, 17, udp(a, b, 40000, 5100, b"tagged%d" % i), 64, i + 1)
    return ethernet(bytes.fromhex("020000000001"), bytes.fromhex("020000000002"), 100, 0x0800, body).hex()


def _capture(cap_ns: str, snd_ns: str, bpf: str | None) -> dict[str, object]:
    args = ["ip", "netns", "exec", cap_ns, sys.executable, PROBE, "cap0", "1.5", *([bpf] if bpf else [])]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=str(ROOT)) as probe:  # noqa: S603
        assert probe.stdout is not None
        assert probe.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        frames = [_tagged(i) for i in range(5)]
        subprocess.run(["ip", "netns", "exec", snd_ns, sys.executable, "-c", SEND, *frames], check=True, timeout=30)
        out, _ = probe.communicate(timeout=30)
    assert probe.returncode == 0
    result: dict[str, object] = json.loads(out)
    return result


def test_the_ring_gives_every_frame_with_its_vlan_tag_back(veth: tuple[str, str]) -> None:
    got = _capture(*veth, None)
    frames = got["frames"]
    assert isinstance(frames, list)
    udp = [f for f in frames if f["proto"] == 17]
    tagged = [f for f in udp if f["dport"] == 5100]
    untagged = [f for f in udp if f["dport"] == 5000]
    assert len(tagged) == 5 and len(untagged) == 5, frames
    assert all(f["vlans"] == [100] for f in tagged), tagged  # the tag the NIC path stripped is put back
    assert all(f["vlans"] == [] for f in untagged)
    assert {bytes.fromhex(f["payload"]) for f in tagged} == {b"tagged%d" % i for i in range(5)}
    assert all(f["caplen"] == f["wirelen"] for f in frames)
    assert {f["wirelen"] for f in tagged} == {len(bytes.fromhex(_tagged(0)))}  # with its 4 tag bytes
    assert any(f["proto"] == 6 and f["dport"] == 6000 for f in frames)
    now = time.time_ns()
    assert all(0 < now - f["ts"] < 60 * 10**9 for f in frames)  # kernel receive times, in ns
    assert got["drops"] == 0 and got["outgoing"] == 0 and got["kernel"] == len(frames)


def test_the_kernel_filter_passes_only_what_it_selects(veth: tuple[str, str]) -> None:
    got = _capture(*veth, "udp and not vlan")
    frames = got["frames"]
    assert isinstance(frames, list)
    assert frames and all(f["proto"] == 17 and f["vlans"] == [] for f in frames), frames
    assert sorted(bytes.fromhex(f["payload"]) for f in frames) == sorted(b"untagged%d" % i for i in range(5))


def test_a_vlan_filter_sees_the_tag_the_kernel_moved_out_of_the_frame(veth: tuple[str, str]) -> None:
    got = _capture(*veth, "vlan 100 and udp port 5100")
    frames = got["frames"]
    assert isinstance(frames, list)
    assert len(frames) == 5 and all(f["vlans"] == [100] for f in frames), frames


# --- the ring block walk, on blocks laid out by hand as the kernel lays them out (no root needed) -------------


def _block(frames: list[tuple[bytes, int, int, int, int]], size: int = 8192, truncate_chain: bool = False) -> bytes:
    """A TPACKET_V3 block: (frame, status, vlan_tci, vlan_tpid, sll_pkttype) each, 16-byte aligned headers."""
    import struct

    body = bytearray()
    first = 48
    at = first
    for k, (frame, status, tci, tpid, pkttype) in enumerate(frames):
        mac = 48 + 20 + 2  # after tpacket3_hdr and sockaddr_ll, as the kernel places it (TPACKET_ALIGN + padding)
        hdr_len = (mac + len(frame) + 15) & ~15
        nxt = 0 if k == len(frames) - 1 else hdr_len
        if truncate_chain and k == len(frames) - 1:
            nxt = 0
        hdr = struct.pack(
            "<IIIIIIHH", nxt, 1_796_000_000 + k, 1000 * k, len(frame), len(frame) + 7 * (k % 2), status, mac, mac + 14
        )
        hdr += struct.pack("<IIHH", 0, tci, tpid, 0) + bytes(8)
        sll = struct.pack("<HHiHBB8s", 17, 0x0800, 2, 1, pkttype, 6, b"")
        record = (hdr + sll).ljust(mac, b"\0") + frame
        body += record.ljust(hdr_len, b"\0")
        at += hdr_len
    length = first + len(body)
    head = struct.pack("<IIIIIIQ", 1, 48, 1, len(frames) + (3 if truncate_chain else 0), first, length, 7)
    block = head.ljust(first, b"\0") + body
    return bytes(block.ljust(size, b"\0"))


BLOCK_FRAMES = [
    (_udp_frame(53), 0x1, 0, 0, 0),  # untagged
    (_udp_frame(5100), 0x1 | 0x10, 100, 0, 0),  # tag in the header, no TPID: 802.1Q
    (_udp_frame(5101), 0x1 | 0x10 | 0x40, (3 << 13) | 200, 0x88A8, 0),  # with TPID (802.1ad) and a priority
    (_tcp_frame(80), 0x1, 0, 0, 4),  # sent by this host: counted, not kept
    (_udp_frame(54), 0x1, 0, 0, 0),
]


@pytest.mark.parametrize("truncated", [False, True])
def test_the_c_and_python_block_walks_agree(truncated: bool) -> None:
    from wardwatch.capture import decode
    from wardwatch.capture.batch import c_walk
    from wardwatch.capture.live import take_block

    if c_walk is None:
        pytest.skip("the C extension is not built here (no compiler): only the Python walk exists")
    ring = bytes(4096) + _block(BLOCK_FRAMES, truncate_chain=truncated)
    c_batch, c_out = take_block(ring, 4096, 8192, 1, 2, 10, use_c=True)
    py_batch, py_out = take_block(ring, 4096, 8192, 1, 2, 10, use_c=False)
    assert c_out == py_out == 1
    assert len(c_batch) == len(py_batch) == 4
    for field in ("start", "caplen", "wirelen", "ts", "number", "linktype", "iface"):
        assert getattr(c_batch, field).tolist() == getattr(py_batch, field).tolist(), field
    packets = [decode(c_batch.record(i)) for i in range(len(c_batch))]
    assert [p.vlans for p in packets] == [(), (100,), (200,), ()]
    assert [p.dst_port for p in packets] == [53, 5100, 5101, 54]
    assert [decode(py_batch.record(i)).payload for i in range(4)] == [p.payload for p in packets]
    tagged = c_batch.record(2).data
    assert tagged[12:16] == bytes.fromhex("88a8") + ((3 << 13) | 200).to_bytes(2, "big")
    assert c_batch.ts.tolist() == [
        1_796_000_000_000_000_000,
        1_796_000_001_000_001_000,
        1_796_000_002_000_002_000,
        1_796_000_004_000_004_000,
    ]
    assert c_batch.number.tolist() == [10, 11, 12, 13]


def test_a_damaged_block_keeps_the_frames_before_the_damage() -> None:
    from wardwatch.capture.live import take_block

    block = bytearray(_block(BLOCK_FRAMES))
    block[20:24] = (48 + 200).to_bytes(4, "little")  # blk_len: the block claims to end inside the second frame
    for use_c in (True, False):
        batch, _ = take_block(bytes(block), 0, 8192, 1, 0, 1, use_c=use_c)
        assert len(batch) <= 2 and all(s + c <= 48 + 200 + 256 for s, c in zip(batch.start, batch.caplen, strict=True))
