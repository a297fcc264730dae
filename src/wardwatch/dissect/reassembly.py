"""Bounded TCP stream reassembly: the first bytes of each direction of a connection, in order.

Only connections a stream dissector claimed are reassembled (``Reassembler.claim``), and only their first
packets (the engine offers at most ``StreamSelector.packets`` payload packets per direction). Each direction
keeps the segments it was given, keyed by their offset from the first sequence number seen in it; when the
connection finishes (a cap is reached, FIN or RST, or the capture ends) the segments are laid end to end:

- a retransmission (same offset, same length) is counted and dropped;
- overlapping segments keep the bytes that arrived first (the "first" policy of most IDS reassemblers; a
  later, different copy of the same bytes is counted as an inconsistent overlap, a classic evasion sign);
- an out-of-order segment waits for the hole before it; a segment that arrives before the first one seen
  (reordered across the start) moves the start back, so nothing is lost;
- a connection finishes at a FIN or RST (``close``), when both directions reached their byte cap, or when
  the capture ends; the same endpoints can then be claimed again by a new connection;
- a hole that never fills ends the delivered data there (``HalfStream.gap``): a dissector never sees bytes
  glued across missing data.

Hard caps: ``Limits.stream_bytes`` per direction (bytes past it are cut, ``truncated``), ``segments`` per
direction, and ``total_bytes`` buffered across all open connections: segments refused because of it are
counted in ``Reassembler.refused`` (the engine records them as skipped). A hostile or broken stream cannot
make it hold more than these bounds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from wardwatch.model.observation import CaptureId

SEQ_MOD = 1 << 32
HALF = 1 << 31

Endpoint = tuple[bytes, int]
"""(IP address bytes, port)."""
ConnKey = tuple[Endpoint, Endpoint]
"""A connection, direction-independent: its two endpoints in sorted order."""


def conn_key(src: Endpoint, dst: Endpoint) -> ConnKey:
    """The direction-independent key of the connection between ``src`` and ``dst``."""
    return (src, dst) if src <= dst else (dst, src)


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps of one reassembler."""

    stream_bytes: int = 64 * 1024
    """Bytes kept per direction of a connection (from its first byte)."""
    segments: int = 256
    """Segments kept per direction (retransmissions included)."""
    total_bytes: int = 32 * 1024 * 1024
    """Bytes buffered across all open connections of one capture."""

    def __post_init__(self) -> None:
        if min(self.stream_bytes, self.segments, self.total_bytes) < 1:
            raise ValueError("reassembly limits must be positive")


@dataclass(frozen=True, slots=True)
class HalfStream:
    """What one endpoint sent, reassembled from its first byte on (as far as it is contiguous and capped)."""

    mac: bytes | None
    ip: bytes
    port: int
    data: bytes
    starts: tuple[tuple[int, int, int], ...]
    """(offset in ``data``, frame number, capture time ns) of each segment that contributed bytes, in order."""
    vlan: int | None
    packets: int
    """Payload packets offered (retransmissions included)."""
    gap: bool = False
    """Data stops before a hole that was never filled (bytes after it were seen but are not delivered)."""
    truncated: bool = False
    """The direction was longer than the cap (``Limits.stream_bytes``): ``data`` is its beginning."""
    retransmissions: int = 0
    inconsistent: int = 0
    """Overlapping segments whose bytes differed from the ones kept."""
    counted: int = 0
    """Occurrences of the claimer's ``StreamSelector.count_after`` bytes after the reassembled part (set by the
    engine when the connection ends)."""

    def frame_at(self, offset: int) -> tuple[int, int]:
        """(frame number, time ns) of the segment that carried byte ``offset`` (the first one for ``0``)."""
        found = self.starts[0]
        for start in self.starts:
            if start[0] > offset:
                break
            found = start
        return found[1], found[2]


@dataclass(frozen=True, slots=True)
class TcpStream:
    """A reassembled connection of one capture: ``orig`` spoke first, ``resp`` answered (None if it did not)."""

    capture: CaptureId
    orig: HalfStream
    resp: HalfStream | None
    claimed_by: tuple[str, ...]
    """Names of the stream dissectors that claimed it."""
    peer: Endpoint
    """The endpoint ``orig`` sent to (known even when ``resp`` said nothing)."""
    closed: bool = False
    """A FIN or RST was seen in an offered packet."""

    @property
    def peer_ip(self) -> bytes:
        """IP address of the responder."""
        return self.peer[0]


@dataclass(slots=True)
class _Half:
    mac: bytes | None
    ip: bytes
    port: int
    vlan: int | None
    base: int
    """Sequence number of offset 0 (the first payload packet seen; may move back)."""
    segments: list[tuple[int, bytes, int, int]] = field(default_factory=list)
    """(offset, bytes, frame number, ts) as they arrived."""
    bytes: int = 0
    packets: int = 0
    retransmissions: int = 0
    truncated: bool = False

    def offset(self, seq: int) -> int:
        rel = (seq - self.base) % SEQ_MOD
        return rel - SEQ_MOD if rel >= HALF else rel

    def assemble(self, cap: int) -> HalfStream:
        inconsistent = 0
        retrans = self.retransmissions
        data: bytes | bytearray = b""
        starts: list[tuple[int, int, int]] = []
        gap = False
        segs = self.segments
        if segs and all(segs[i + 1][0] == segs[i][0] + len(segs[i][1]) for i in range(len(segs) - 1)):
            # the usual case: in order, no overlap, no hole (what the general case below would make of it)
            data = b"".join(s[1] for s in segs)[:cap]
            origin = segs[0][0]
            starts = [(s[0] - origin, s[2], s[3]) for s in segs if s[0] - origin < len(data)]
        elif segs:
            origin = min(s[0] for s in self.segments)
            span = max(s[0] + len(s[1]) for s in self.segments) - origin
            buf, written = bytearray(span), bytearray(span)
            contributed: list[tuple[int, int, int]] = []
            for off, chunk, number, ts in self.segments:  # in arrival order: the first copy of a byte wins
                rel, end = off - origin, off - origin + len(chunk)
                have = written[rel:end]
                free = have.count(0)
                if free == len(chunk):
                    buf[rel:end] = chunk
                    written[rel:end] = b"\x01" * len(chunk)
                    contributed.append((rel, number, ts))
                    continue
                if free == 0:
                    if buf[rel:end] == chunk:
                        retrans += 1
                    else:
                        inconsistent += 1
                    continue
                first_new = None
                differs = False
                for i in range(len(chunk)):  # a partial overlap (rare): byte by byte
                    if written[rel + i]:
                        differs = differs or buf[rel + i] != chunk[i]
                    else:
                        buf[rel + i] = chunk[i]
                        written[rel + i] = 1
                        first_new = rel + i if first_new is None else first_new
                inconsistent += differs
                if first_new is not None:
                    contributed.append((first_new, number, ts))
            hole = written.find(0)
            length = span if hole < 0 else hole
            gap = hole >= 0
            data = buf[: min(length, cap)]
            starts = sorted(c for c in contributed if c[0] < len(data))
        return HalfStream(
            mac=self.mac,
            ip=self.ip,
            port=self.port,
            data=bytes(data),
            starts=tuple(starts) or ((0, 0, 0),),
            vlan=self.vlan,
            packets=self.packets,
            gap=gap,
            truncated=self.truncated,
            retransmissions=retrans,
            inconsistent=inconsistent,
        )


HalfHead = tuple[bytes | None, bytes, int, int | None, int, int, bool, int]
"""(mac, ip, port, vlan, packets, retransmissions, truncated, counted) of a direction collected elsewhere."""


def half_stream(head: HalfHead, data: bytes | None, layout: Sequence[tuple[Any, ...]], cap: int) -> HalfStream:
    """A direction collected elsewhere (the fast path's ``StreamTable``) as ``Reassembler`` delivers it: ``data``
    the segments that arrived in order laid end to end (cut at ``cap``) and ``layout`` its ``starts``; or ``data``
    None and ``layout`` the kept segments ``(offset, bytes, frame, ts)`` in arrival order, laid out here."""
    mac, ip, port, vlan, packets, retransmissions, truncated, counted = head
    if data is None:
        segments = cast(list[tuple[int, bytes, int, int]], list(layout))
        half = _Half(mac=mac, ip=ip, port=port, vlan=vlan, base=0, segments=segments, packets=packets,
                     retransmissions=retransmissions, truncated=truncated)  # fmt: skip
        done = half.assemble(cap)
        return dataclasses.replace(done, counted=counted) if counted else done
    starts = cast(tuple[tuple[int, int, int], ...], layout) or ((0, 0, 0),)
    return HalfStream(mac, ip, port, data, starts, vlan, packets, False, truncated, retransmissions, 0, counted)


@dataclass(slots=True)
class _Conn:
    halves: list[_Half]
    claimed_by: tuple[str, ...]
    peer: Endpoint
    closed: bool = False


class Reassembler:
    """Reassembles the claimed connections of one capture within ``Limits``."""

    def __init__(self, capture: CaptureId, limits: Limits | None = None) -> None:
        self.capture = capture
        self.limits = limits or Limits()
        self._open: dict[ConnKey, _Conn] = {}
        self._claimed: dict[ConnKey, tuple[str, ...]] = {}
        self._buffered = 0
        self.refused = 0
        """Segments refused because ``Limits.total_bytes`` was reached."""
        self.cut = 0
        """Segments dropped because their direction was past its byte or segment cap."""

    def claim(self, key: ConnKey, name: str) -> None:
        """Reassemble the connection ``key`` for the stream dissector ``name`` (from its next segment)."""
        names = self._claimed.get(key, ())
        if name not in names:
            self._claimed[key] = (*names, name)
            conn = self._open.get(key)
            if conn is not None:
                conn.claimed_by = self._claimed[key]

    def claimed(self, key: ConnKey) -> bool:
        """Whether segments of ``key`` are wanted (claimed and not finished yet)."""
        return key in self._claimed

    def close(self, key: ConnKey) -> TcpStream | None:
        """A FIN or RST of ``key`` was seen: the connection, if it was claimed and had sent data."""
        if key not in self._claimed:
            return None
        if key not in self._open:
            del self._claimed[key]
            return None
        self._open[key].closed = True
        return self._finish(key)

    def add(
        self,
        src: Endpoint,
        dst: Endpoint,
        seq: int,
        payload: bytes,
        number: int,
        ts_ns: int,
        flags: int = 0,
        mac: bytes | None = None,
        vlan: int | None = None,
    ) -> TcpStream | None:
        """One payload segment from ``src`` to ``dst``; returns the connection when this segment finished it
        (a FIN/RST, or every direction at its byte cap)."""
        key = conn_key(src, dst)
        if key not in self._claimed:
            return None
        conn = self._open.get(key)
        if conn is None:
            conn = self._open[key] = _Conn(halves=[], claimed_by=self._claimed[key], peer=dst)
        half = next((h for h in conn.halves if (h.ip, h.port) == src), None)
        if half is None:
            half = _Half(mac=mac, ip=src[0], port=src[1], vlan=vlan, base=seq)
            conn.halves.append(half)
        half.packets += 1
        if payload:
            self._store(half, seq, payload, number, ts_ns)
        if flags & 0x05:  # FIN or RST
            conn.closed = True
            return self._finish(key)
        if all(h.truncated for h in conn.halves) and len(conn.halves) == 2:
            return self._finish(key)
        return None

    def _store(self, half: _Half, seq: int, payload: bytes, number: int, ts_ns: int) -> None:
        limits = self.limits
        off = half.offset(seq)
        if off >= limits.stream_bytes or off + len(payload) <= -limits.stream_bytes:
            half.truncated = half.truncated or off >= limits.stream_bytes
            self.cut += 1
            return
        if len(half.segments) >= limits.segments:
            half.truncated = True
            self.cut += 1
            return
        if off + len(payload) > limits.stream_bytes:
            payload = payload[: limits.stream_bytes - off]
            half.truncated = True
        if self._buffered + len(payload) > limits.total_bytes:
            self.refused += 1
            half.truncated = True
            return
        if any(s[0] == off and s[1] == payload for s in half.segments[-8:]):  # a plain retransmission
            half.retransmissions += 1
            return
        half.segments.append((off, payload, number, ts_ns))
        half.bytes += len(payload)
        self._buffered += len(payload)

    def _finish(self, key: ConnKey) -> TcpStream:
        conn = self._open.pop(key)
        del self._claimed[key]  # a new connection between the same endpoints can be claimed again
        for half in conn.halves:
            self._buffered -= half.bytes
        cap = self.limits.stream_bytes
        halves = [h.assemble(cap) for h in conn.halves]
        return TcpStream(
            capture=self.capture,
            orig=halves[0],
            resp=halves[1] if len(halves) > 1 else None,
            claimed_by=conn.claimed_by,
            peer=conn.peer,
            closed=conn.closed,
        )

    def finish(self) -> Iterator[TcpStream]:
        """Every connection still open (the capture ended), in the order they were first seen."""
        for key in list(self._open):
            yield self._finish(key)

    @property
    def buffered(self) -> int:
        """Bytes held right now across all open connections."""
        return self._buffered
