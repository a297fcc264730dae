"""Passive capture from a live Linux interface: an AF_PACKET socket with a memory-mapped TPACKET_V3 ring.

The socket is receive-only by construction: ``LiveCapture`` never calls ``send``, ``sendto`` or ``sendmsg``
and keeps its socket private, and no TX ring is set up. What the kernel puts in the ring is copied out a block
at a time into ``RecordBatch`` values (the same columns the file readers give, so the same fast path analyses
them), and the block is handed back to the kernel at once. A VLAN tag the NIC stripped (``TP_STATUS_VLAN_VALID``)
is put back into the frame, as libpcap does, so VLANs are seen as in a capture file.

The interface itself must not make the host talk either: ``silence_problems`` lists what would (addresses,
ARP, IPv6 autoconfiguration), ``harden`` switches it off. Frames the host sends on the interface anyway
(``PACKET_OUTGOING``) are counted, never analysed: a sensor that transmits is visible in its own figures.
"""

from __future__ import annotations

import errno
import mmap
import os
import select
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from wardwatch.capture.batch import GUARD, RecordBatch, c_walk
from wardwatch.capture.bpf import compile_filter
from wardwatch.errors import InterfaceError
from wardwatch.model.packet import LinkType

# linux/if_packet.h, linux/if_ether.h, asm-generic/socket.h
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_LOSING = 1 << 2
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
PACKET_OUTGOING = 4
#: ``TPACKET_ALIGN(sizeof(struct tpacket3_hdr))``: where ``struct sockaddr_ll`` follows each frame header.
SLL_OFFSET = 48
#: ``sll_pkttype`` within ``struct sockaddr_ll``.
PKTTYPE_OFFSET = 10
#: ARPHRD_* (``/sys/class/net/IF/type``) -> link type of the frames the socket gives.
LINKTYPES = {1: int(LinkType.ETHERNET), 772: int(LinkType.ETHERNET), 65534: int(LinkType.RAW)}
IFF_UP = 0x1
IFF_NOARP = 0x80
SYSFS = Path("/sys/class/net")
PROCFS = Path("/proc/sys/net/ipv6/conf")

_BLOCK = struct.Struct("<III")  # tpacket_hdr_v1: block_status, num_pkts, offset_to_first_pkt (at +8)
_BLOCK_LEN = struct.Struct("<IIII")  # … and blk_len
_FRAME = struct.Struct("<IIIIIIHH")  # tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac, net
_VLAN = struct.Struct("<IH")  # hv1: vlan_tci, vlan_tpid (at +32)


@dataclass(frozen=True, slots=True)
class RingStats:
    """What the kernel and the ring reader counted for one interface since it was first opened (over reopenings)."""

    packets: int
    """Frames the kernel passed the filter (``tp_packets``, drops included)."""
    drops: int
    """Frames the kernel dropped because the ring was full (``tp_drops``)."""
    freezes: int
    """Times the ring was full and the kernel froze its queue (``tp_freeze_q_cnt``)."""
    outgoing: int
    """Frames this host itself sent on the interface (a silent sensor has 0): counted, not analysed."""
    blocks_waiting: int
    """Ring blocks full and not yet read at the last read (the queue depth)."""
    ring_blocks: int


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def interface_exists(interface: str) -> bool:
    """True when the kernel knows ``interface`` (in this network namespace)."""
    return (SYSFS / interface).is_dir()


def link_down(interface: str) -> bool:
    """True when ``interface`` exists and its link is down (no carrier, or administratively down): it is still
    captured from, but nothing arrives."""
    return _read(SYSFS / interface / "operstate") in ("down", "lowerlayerdown", "notpresent")


def silence_problems(interface: str) -> list[str]:
    """What would let this host transmit on ``interface`` by itself (empty: nothing found).

    Checked: no IPv4 or IPv6 address (no ARP replies, DHCP, MLD/DAD, DNS), ARP off, IPv6 disabled or at least no
    router advertisements accepted. Read from /sys, /proc and ``ip -j addr``: asking sends nothing.
    """
    if not interface_exists(interface):
        return [f"no interface {interface} in this network namespace"]
    problems: list[str] = []
    flags = int(_read(SYSFS / interface / "flags") or "0", 16)
    if not flags & IFF_NOARP:
        problems.append(f"ARP is on (`ip link set dev {interface} arp off`)")
    disabled = _read(PROCFS / interface / "disable_ipv6")
    if disabled not in ("1", None):
        problems.append(f"IPv6 is enabled (sysctl net.ipv6.conf.{interface}.disable_ipv6=1)")
        if _read(PROCFS / interface / "accept_ra") not in ("0", None):
            problems.append(f"router advertisements are accepted (sysctl net.ipv6.conf.{interface}.accept_ra=0)")
    addresses = interface_addresses(interface)
    if addresses is None:
        problems.append("cannot list its addresses (`ip` from iproute2 is needed)")
    elif addresses:
        problems.append(f"it has addresses {', '.join(addresses)} (`ip addr flush dev {interface}`)")
    return problems


def interface_addresses(interface: str) -> list[str] | None:
    """IPv4 and IPv6 addresses on ``interface`` (None: ``ip`` could not tell)."""
    try:
        out = subprocess.run(
            ["ip", "-o", "addr", "show", "dev", interface], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = []
    for line in out.splitlines():
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word in ("inet", "inet6"):
                found.append(words[i + 1])
    return found


def harden(interface: str) -> list[str]:
    """Make ``interface`` receive-only at the host level: IPv6 off (no link-local address, no RS/MLD/DAD), no
    router advertisements, ARP off, addresses flushed, then up (promiscuous mode comes with the capture socket).
    Returns what was done; raises ``InterfaceError`` when a step fails."""
    if not interface_exists(interface):
        raise InterfaceError(interface, "no such interface in this network namespace")
    done = []
    for name, value in (("disable_ipv6", "1"), ("accept_ra", "0"), ("autoconf", "0")):
        path = PROCFS / interface / name
        if path.exists() and _read(path) != value:
            try:
                path.write_text(value)
            except OSError as exc:
                raise InterfaceError(interface, f"cannot set {name}={value}: {exc.strerror or exc}") from exc
            done.append(f"net.ipv6.conf.{interface}.{name}={value}")
    for args, what in (
        (["link", "set", "dev", interface, "arp", "off"], "arp off"),
        (["addr", "flush", "dev", interface], "addresses flushed"),
        (["link", "set", "dev", interface, "up"], "up"),
    ):
        try:
            subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=True)
        except subprocess.CalledProcessError as exc:
            raise InterfaceError(interface, f"`ip {' '.join(args)}` failed: {exc.stderr.strip()}") from exc
        except (OSError, subprocess.SubprocessError) as exc:
            raise InterfaceError(interface, f"`ip {' '.join(args)}` could not run: {exc}") from exc
        done.append(what)
    return done


class LiveSource(Protocol):
    """What a monitor reads frames from: ``LiveCapture``, or anything that behaves like it (a replay)."""

    interface: str
    linktype: int

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def fileno(self) -> int: ...

    def check(self) -> None: ...

    def wait(self, timeout_s: float) -> bool: ...

    def batches(self, first_number: int = 1) -> Iterator[RecordBatch]: ...

    def stats(self) -> RingStats: ...


class LiveCapture:
    """Frames arriving on one interface, read from a TPACKET_V3 ring (``open``, then ``batches``; ``close``).

    ``index`` is the interface's number in the session (the ``iface`` column of the batches). ``bpf``: a
    pcap-filter expression applied in the kernel. The ring holds ``ring_mb`` MiB in blocks of ``block_kb`` KiB;
    the kernel hands over a block when it is full or ``timeout_ms`` after its first frame.
    """

    def __init__(
        self,
        interface: str,
        index: int = 0,
        bpf: str | None = None,
        ring_mb: int = 64,
        block_kb: int = 1024,
        timeout_ms: int = 100,
        promiscuous: bool = True,
    ) -> None:
        self.interface = interface
        self.index = index
        self.bpf = bpf
        self.block_size = max(mmap.PAGESIZE, (block_kb * 1024) // mmap.PAGESIZE * mmap.PAGESIZE)
        self.block_nr = max(2, (ring_mb * 1024 * 1024) // self.block_size)
        self.timeout_ms = timeout_ms
        self.promiscuous = promiscuous
        self.linktype = int(LinkType.ETHERNET)
        self._sock: socket.socket | None = None
        self._ring: mmap.mmap | None = None
        self._next = 0
        self._packets = self._drops = self._freezes = self._outgoing = 0
        self._waiting = 0
        self._stats_lock = threading.Lock()  # stats are read by the monitor while a reader thread drains the ring

    # --- lifetime --------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Bind the receive socket and map its ring; raises ``InterfaceError`` with the reason it cannot."""
        if self._sock is not None:
            return
        name = self.interface
        if not interface_exists(name):
            raise InterfaceError(name, "no such interface in this network namespace")
        arphrd = int(_read(SYSFS / name / "type") or "0")
        if arphrd not in LINKTYPES:
            raise InterfaceError(name, f"link type ARPHRD {arphrd} is not supported (Ethernet, loopback, raw IP)")
        self.linktype = LINKTYPES[arphrd]
        try:
            # protocol 0: nothing is queued before the ring and the filter are in place; bind() starts reception
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as exc:
            raise InterfaceError(name, "capturing needs root or CAP_NET_RAW") from exc
        except OSError as exc:
            raise InterfaceError(name, f"cannot open a packet socket: {exc.strerror or exc}") from exc
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frame = 2048
            req = struct.pack(
                "<7I", self.block_size, self.block_nr, frame, self.block_size * self.block_nr // frame,
                self.timeout_ms, 0, 0,
            )  # fmt: skip
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            if self.bpf:
                self._attach(sock, self.bpf, name)
            ring = mmap.mmap(
                sock.fileno(), self.block_size * self.block_nr, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
            sock.bind((name, ETH_P_ALL))
            if self.promiscuous:
                ifindex = socket.if_nametoindex(name)
                sock.setsockopt(
                    SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("<iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
                )
        except OSError as exc:
            sock.close()
            raise InterfaceError(name, f"cannot set up the capture ring: {exc.strerror or exc}") from exc
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock, self._ring, self._next = sock, ring, 0

    @staticmethod
    def _attach(sock: socket.socket, expression: str, interface: str) -> None:
        import ctypes

        program = compile_filter(expression, interface=interface)
        insns = (ctypes.c_uint64 * len(program))(*(code | jt << 16 | jf << 24 | k << 32 for code, jt, jf, k in program))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("@HP", len(program), ctypes.addressof(insns)))

    def close(self) -> None:
        """Unmap the ring and close the socket (the figures so far are kept)."""
        if self._sock is not None:
            self._collect_stats()
        with self._stats_lock:
            if self._ring is not None:
                self._ring.close()
            if self._sock is not None:
                self._sock.close()
            self._sock = self._ring = None

    def __enter__(self) -> LiveCapture:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def fileno(self) -> int:
        """The socket's descriptor, for ``select.poll`` (readable: a block is ready)."""
        if self._sock is None:
            raise InterfaceError(self.interface, "not open")
        return self._sock.fileno()

    def check(self) -> None:
        """Raise ``InterfaceError`` when the socket reports an error (the interface went down or away)."""
        if self._sock is None:
            raise InterfaceError(self.interface, "not open")
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise InterfaceError(self.interface, f"capture stopped: {os.strerror(code)}")
        if not interface_exists(self.interface):
            raise InterfaceError(self.interface, f"capture stopped: {os.strerror(errno.ENODEV)}")

    # --- reading ---------------------------------------------------------------------------------------------

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a ready block; True when one is (an error also wakes the wait)."""
        if self._ring is not None and self._ready(self._next):
            return True
        poller = select.poll()
        poller.register(self.fileno(), select.POLLIN | select.POLLERR)
        events = poller.poll(max(0, int(timeout_s * 1000)))
        if any(ev & select.POLLERR for _, ev in events):
            self.check()
        return bool(events)

    def _ready(self, block: int) -> bool:
        assert self._ring is not None
        status = _BLOCK.unpack_from(self._ring, block * self.block_size + 8)[0]
        return bool(status & TP_STATUS_USER)

    def batches(self, first_number: int = 1) -> Iterator[RecordBatch]:
        """The blocks ready now, one batch each, in arrival order (numbered on from ``first_number``); each
        block goes back to the kernel before its batch is yielded."""
        if self._ring is None:
            raise InterfaceError(self.interface, "not open")
        number = first_number
        ready = 0
        while self._ready(self._next):
            batch = self._take(self._next, number)
            self._next = (self._next + 1) % self.block_nr
            ready += 1
            number += len(batch)
            if len(batch):
                yield batch
        self._waiting = ready
        self._collect_stats()

    def _take(self, block: int, first_number: int) -> RecordBatch:
        """Copy block ``block`` out as a batch (``take_block``) and give it back to the kernel."""
        ring = self._ring
        assert ring is not None
        base = block * self.block_size
        batch, outgoing = take_block(ring, base, self.block_size, self.linktype, self.index, first_number)
        struct.pack_into("<I", ring, base + 8, TP_STATUS_KERNEL)  # the block is the kernel's again
        self._outgoing += outgoing
        return batch

    def _collect_stats(self) -> None:
        with self._stats_lock:
            if self._sock is None:
                return
            try:
                raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
            except OSError:
                return
            packets, drops, freezes = struct.unpack("<III", raw)  # reading resets the kernel's counters
            self._packets += packets
            self._drops += drops
            self._freezes += freezes

    def stats(self) -> RingStats:
        """The counters so far (the kernel's are read and added up here)."""
        self._collect_stats()
        return RingStats(self._packets, self._drops, self._freezes, self._outgoing, self._waiting, self.block_nr)


def take_block(
    ring: mmap.mmap | bytes | bytearray,
    base: int,
    block_size: int,
    linktype: int,
    index: int,
    first_number: int,
    use_c: bool = True,
) -> tuple[RecordBatch, int]:
    """The TPACKET_V3 block at ``ring[base:]`` copied out as a batch, and how many frames in it this host sent
    (counted, not in the batch).

    One copy of the whole block; frames point into it. A frame whose VLAN tag the kernel moved into its header
    is copied once more, tag put back after the MAC addresses, after the block (each part followed by ``GUARD``
    spare bytes, as the decoder wants). A frame header past the block's end ends the walk: a damaged block keeps
    what came before. In C (``_walk.take_tpacket3``) when built; this Python walk gives the same batches.
    """
    ether = linktype == LinkType.ETHERNET
    if use_c and c_walk is not None:
        buf, raw, outgoing = c_walk.take_tpacket3(ring, base, block_size, ether, GUARD)
        rows = np.frombuffer(raw, dtype=np.int64).reshape(-1, 4)
        start, caplen, wirelen, ts = (rows[:, k].copy() for k in range(4))
    else:
        buf, start, caplen, wirelen, ts, outgoing = _take_py(ring, base, block_size, ether)
    n = len(start)
    return (
        RecordBatch(
            buf=buf,
            start=start,
            caplen=caplen,
            wirelen=wirelen,
            ts=ts,
            number=np.arange(first_number, first_number + n, dtype=np.int64),
            linktype=np.full(n, linktype, dtype=np.int32),
            iface=np.full(n, index, dtype=np.int32),
            offset=np.zeros(n, dtype=np.int64),
        ),  # fmt: skip
        outgoing,
    )


def _take_py(
    ring: mmap.mmap | bytes | bytearray, base: int, block_size: int, ether: bool
) -> tuple[bytearray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    _status, count, offset, length = _BLOCK_LEN.unpack_from(ring, base + 8)
    length = min(max(length, offset), block_size)
    buf = bytearray(length + GUARD)
    buf[:length] = memoryview(ring)[base : base + length]
    extra = bytearray()
    starts: list[int] = []
    caplens: list[int] = []
    wirelens: list[int] = []
    stamps: list[int] = []
    outgoing = 0
    at = offset
    unpack, vlan_unpack = _FRAME.unpack_from, _VLAN.unpack_from
    for _ in range(count):
        if at + SLL_OFFSET + PKTTYPE_OFFSET >= length:
            break
        nxt, sec, nsec, snap, wire, status, mac, _net = unpack(buf, at)
        if buf[at + SLL_OFFSET + PKTTYPE_OFFSET] == PACKET_OUTGOING:
            outgoing += 1
        else:
            frame = min(at + mac, length)
            snap = max(0, min(snap, length - frame))
            if status & TP_STATUS_VLAN_VALID and ether and snap >= 12:
                tci, tpid = vlan_unpack(buf, at + 32)
                tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID and tpid else 0x8100
                starts.append(length + GUARD + len(extra))
                extra += (
                    buf[frame : frame + 12] + struct.pack(">HH", tpid, tci & 0xFFFF) + buf[frame + 12 : frame + snap]
                )
                snap += 4
                wire += 4
            else:
                starts.append(frame)
            caplens.append(snap)
            wirelens.append(wire)
            stamps.append(sec * 1_000_000_000 + nsec)
        if not nxt:
            break
        at += nxt
    if extra:
        buf += extra + bytes(GUARD)
    i64 = np.int64
    return (
        buf, np.array(starts, dtype=i64), np.array(caplens, dtype=i64), np.array(wirelens, dtype=i64),
        np.array(stamps, dtype=i64), outgoing,
    )  # fmt: skip
