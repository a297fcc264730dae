"""Batched record walking: pcap and pcapng files read in large chunks into column arrays.

The only serial step is walking record headers (a tight loop over offsets); every field of every record is
then extracted with numpy over the whole batch. Error handling mirrors the streaming readers exactly: the
records before a damaged one are yielded, then the same ``CaptureFormatError`` (message and offset) is
raised. Gzip-compressed files are read through the streaming readers and repacked into batches.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from wardwatch.capture.files import GZIP_MAGIC, PCAPNG_MAGIC, open_capture
from wardwatch.capture.interface import TS_MAX, CaptureReader, Record
from wardwatch.capture.pcap import MAGICS, MAX_RECORD
from wardwatch.capture.pcapng import (
    BYTE_ORDER_MAGIC,
    EPB,
    IDB,
    MAX_BLOCK,
    PB_OBSOLETE,
    SHB,
    SPB,
    Interface,
    interface_from_idb,
)
from wardwatch.capture.stream import FileDigest
from wardwatch.errors import CaptureError, CaptureFormatError
from wardwatch.model.packet import RAW_ALIASES, LinkType

c_walk: types.ModuleType | None
try:  # the serial header walk in C (optional: built when a compiler is available)
    from wardwatch.capture import _walk as c_walk
except ImportError:  # pragma: no cover - exercised on machines without a compiler
    c_walk = None

#: Bytes read from the file per step (records spanning a step boundary are carried over). Batches hold the
#: complete records of one window, so this sets the batch size too: ~5,800 packets of a typical capture. Small
#: enough that the window is still in the CPU cache when it is hashed, walked and decoded after the copy
#: (measured on the benchmark: 4 MiB is ~17 % faster than 32 MiB, more so with two processes sharing memory
#: bandwidth); large enough that per-batch overhead stays small.
CHUNK = 4 * 1024 * 1024
#: Records per batch at most.
BATCH = 65536
#: Spare bytes after the data in the window, so fixed-width row gathers never run off its end.
GUARD = 256

I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class RecordBatch:
    """Consecutive records of one file as columns; ``start`` points into ``buf``."""

    buf: bytes | bytearray
    """The bytes the records point into (a reused window: valid until the next batch is requested)."""
    start: I64
    caplen: I64
    wirelen: I64
    ts: I64
    number: I64
    linktype: npt.NDArray[np.int32]
    iface: npt.NDArray[np.int32]
    offset: I64
    """File offset of each record (header or block), for error messages."""

    def __len__(self) -> int:
        return len(self.start)

    def record(self, i: int) -> Record:
        """Record ``i`` as the streaming readers would give it."""
        s = int(self.start[i])
        c = int(self.caplen[i])
        return Record(
            int(self.number[i]),
            int(self.ts[i]),
            int(self.iface[i]),
            int(self.linktype[i]),
            c,
            int(self.wirelen[i]),
            bytes(self.buf[s : s + c]),
            int(self.offset[i]),
        )


def join_batches(batches: list[RecordBatch]) -> RecordBatch:
    """Consecutive batches as one (their buffers copied end to end: each must end with ``GUARD`` spare bytes,
    as every batch does). Fewer, larger batches cost the vectorised path less per packet."""
    if len(batches) == 1:
        return batches[0]
    bases = np.cumsum([0] + [len(b.buf) for b in batches[:-1]])
    return RecordBatch(
        buf=bytearray().join(b.buf for b in batches),
        start=np.concatenate([b.start + base for b, base in zip(batches, bases.tolist(), strict=True)]),
        caplen=np.concatenate([b.caplen for b in batches]),
        wirelen=np.concatenate([b.wirelen for b in batches]),
        ts=np.concatenate([b.ts for b in batches]),
        number=np.concatenate([b.number for b in batches]),
        linktype=np.concatenate([b.linktype for b in batches]),
        iface=np.concatenate([b.iface for b in batches]),
        offset=np.concatenate([b.offset for b in batches]),
    )


class BatchReader:
    """Reads a capture file as ``RecordBatch`` values, with the same results and errors as ``open_capture``."""

    def __init__(self, path: str | os.PathLike[str], sha256: bool = False) -> None:
        self.path = os.fspath(path)
        try:
            self._raw: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
            self.size = os.fstat(self._raw.fileno()).st_size
            head = self._raw.read(4)
            self._raw.seek(0)
        except OSError as exc:
            raise CaptureError(self.path, None, exc.strerror or str(exc)) from exc
        self._hash = FileDigest(sha256)
        self._consumed = 0
        self._window = bytearray(CHUNK + GUARD)
        self._fill = 0
        self._limit: int | None = None
        self._range: tuple[int, int] | None = None  # (file offset of the first record, records before it)
        self._state: PcapngState | None = None  # what a pcapng part starts from
        self.checkpoints: list[tuple[int, PcapngState]] | None = None
        """When a list (``scan_parts`` sets it), a pcapng read appends where each batch's walk began and what the
        reader knew there: the places a pcapng file can be cut."""
        self._fallback: CaptureReader | None = None
        self.use_c = c_walk is not None
        """Walk record headers with the C helper (tests switch it off to check the Python walkers)."""
        self.linktypes_seen: dict[int, None] = {}
        if head[:2] == GZIP_MAGIC or not (head in MAGICS or head == PCAPNG_MAGIC):
            # compressed or not a capture: the streaming reader decides (and raises the same errors)
            self._raw.close()
            self._fallback = open_capture(self.path, sha256)
            self.format = self._fallback.format
        elif head == PCAPNG_MAGIC:
            self.format = "pcapng"
        else:
            self.format = "pcap-nsec" if MAGICS[head][1] else "pcap"

    @classmethod
    def part(
        cls, path: str | os.PathLike[str], begin: int, end: int, number: int, state: PcapngState | None = None
    ) -> BatchReader:
        """A reader of the records between file offsets ``begin`` and ``end`` (record or block boundaries found
        by ``scan_parts``), numbered after ``number`` earlier records; a pcapng part starts from ``state``, what
        the reader knew at ``begin`` (none for the part at the start of the file). It computes no digest."""
        reader = cls(path)
        pcapng = reader.format == "pcapng"
        if reader.format not in ("pcap", "pcap-nsec", "pcapng") or (pcapng and state is None and begin != 0):
            reader.close()
            raise ValueError("only pcap and pcapng files are read in parts (pcapng ones from a scanned state)")
        reader._range = (begin, number)
        reader._state = state
        reader._limit = end
        return reader

    # --- the common reader interface ---------------------------------------------------------------------

    @property
    def linktypes(self) -> tuple[int, ...]:
        """Link types seen so far."""
        if self._fallback is not None:
            return self._fallback.linktypes
        return tuple(self.linktypes_seen)

    def digest(self) -> str:
        """xxh3-128 digest of the file as stored (complete once iteration ended): its identity."""
        if self._fallback is not None:
            return self._fallback.digest()
        return self._hash.digest()

    def sha256(self) -> str | None:
        """SHA-256 of the file as stored, when asked for."""
        if self._fallback is not None:
            return self._fallback.sha256()
        return self._hash.sha256()

    @property
    def bytes_read(self) -> int:
        """Bytes of the file consumed so far."""
        return self._fallback.bytes_read if self._fallback is not None else self._consumed

    def close(self) -> None:
        """Release the file."""
        if self._fallback is not None:
            self._fallback.close()
        else:
            self._raw.close()

    def __iter__(self) -> Iterator[RecordBatch]:
        """Batches in file order; the file is closed when iteration ends (normally or by an error)."""
        try:
            if self._fallback is not None:
                yield from self._from_records(self._fallback)
            elif self.format in ("pcap", "pcap-nsec"):
                yield from self._pcap()
            else:
                yield from self._pcapng()
        finally:
            self.close()

    # --- plumbing --------------------------------------------------------------------------------------------

    def _read(self, n: int) -> bytes:
        data = self._raw.read(n)
        self._hash.update(data)
        self._consumed += len(data)
        return data

    def _refill(self, pos: int) -> tuple[bytearray, int, bool]:
        """Keep the unread bytes from ``pos`` at the front of the window and read up to CHUNK more after them.

        Returns (window, bytes held, end of file). The window is reused: a batch is valid until the next one
        is requested.
        """
        keep = self._fill - pos
        win = self._window
        if keep + CHUNK + GUARD > len(win):  # a record larger than the free space: grow the window
            bigger = bytearray(keep + CHUNK + GUARD)
            bigger[:keep] = win[pos : self._fill]
            self._window = win = bigger
        elif keep and pos:
            win[:keep] = win[pos : self._fill]
        want = CHUNK if self._limit is None else max(0, min(CHUNK, self._limit - self._raw.tell()))
        view = memoryview(win)[keep : keep + want]
        got = cast(io.BufferedReader, self._raw).readinto(view) if want else 0
        if got:
            self._hash.update(view[:got])
            self._consumed += got
        view.release()
        self._fill = keep + got
        return win, self._fill, got == 0

    def _fail(self, offset: int, message: str) -> CaptureFormatError:
        while chunk := self._read(CHUNK):
            del chunk
        return CaptureFormatError(self.path, offset, message)

    @staticmethod
    def _from_records(reader: CaptureReader) -> Iterator[RecordBatch]:
        pending: list[Record] = []
        for rec in reader:
            pending.append(rec)
            if len(pending) >= 4096:
                yield records_to_batch(pending)
                pending = []
        if pending:
            yield records_to_batch(pending)

    # --- classic pcap ----------------------------------------------------------------------------------------

    def _pcap(self) -> Iterator[RecordBatch]:
        header = self._read(24)
        if len(header) < 24:
            raise self._fail(0, f"file header cut short ({len(header)} of 24 bytes)")
        order, nsec, rec_len = MAGICS[header[:4]]
        major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", header, 4)
        if major != 2:
            raise self._fail(4, f"unsupported pcap version {major}")
        linktype = network & 0x03FFFFFF
        if linktype in RAW_ALIASES:
            linktype = LinkType.RAW
        self.linktypes_seen[linktype] = None
        limit = max(snaplen, MAX_RECORD)
        base = 24  # file offset of buf[0]
        number = 0
        if self._range is not None:
            base, number = self._range
            self._raw.seek(base)
        unpack = struct.Struct(order + "I").unpack_from
        dt = np.dtype(order + "u4")
        scale = 1 if nsec else 1000
        buf = self._window
        end = 0
        pos = 0
        eof = False
        while True:
            if not eof and end - pos < CHUNK:
                base += pos
                buf, end, eof = self._refill(pos)
                pos = 0
            bad = -1
            bad_len = 0
            if self.use_c and c_walk is not None:
                raw_offs, pos, status, caplen = c_walk.walk_pcap(buf, pos, end, rec_len, limit, order == ">", BATCH)
                o = np.frombuffer(raw_offs, dtype=np.int64)
                if status == 1:
                    bad, bad_len = pos, caplen
                full = status == 2
            else:
                offs: list[int] = []
                append = offs.append
                count = 0
                while pos + rec_len <= end and count < BATCH:
                    caplen = unpack(buf, pos + 8)[0]
                    if caplen > limit:
                        bad, bad_len = pos, caplen
                        break
                    nxt = pos + rec_len + caplen
                    if nxt > end:
                        break
                    append(pos)
                    count += 1
                    pos = nxt
                o = np.array(offs, dtype=np.int64)
                full = count >= BATCH
            if len(o):
                arr = np.frombuffer(buf, dtype=np.uint8)
                hdr = rows(arr, o, 16).view(dt).astype(np.int64)
                n = len(o)
                yield RecordBatch(
                    buf=buf,
                    start=o + rec_len,
                    caplen=hdr[:, 2],
                    wirelen=hdr[:, 3],
                    ts=hdr[:, 0] * 1_000_000_000 + hdr[:, 1] * scale,
                    number=np.arange(number + 1, number + n + 1, dtype=np.int64),
                    linktype=np.full(n, linktype, dtype=np.int32),
                    iface=np.zeros(n, dtype=np.int32),
                    offset=o + base,
                )
                number += n
            if bad >= 0:
                raise self._fail(
                    base + bad, f"packet {number + 1} claims {bad_len} captured bytes (limit {limit}): file is corrupt"
                )
            if full:
                continue
            if eof:
                rest = end - pos
                if rest == 0:
                    return
                if rest < rec_len:
                    raise self._fail(
                        base + pos, f"cut short in the header of packet {number + 1} ({rest} of {rec_len} bytes)"
                    )
                caplen = unpack(buf, pos + 8)[0]
                raise self._fail(
                    base + pos,
                    f"cut short in the middle of packet {number + 1} ({rest - rec_len} of {caplen} bytes)",
                )

    # --- pcapng ----------------------------------------------------------------------------------------------

    def _pcapng(self) -> Iterator[RecordBatch]:
        interfaces: list[Interface] = []
        buf = self._window
        end = 0
        base = 0
        pos = 0
        number = 0
        eof = False
        order = "<"
        section_base = 0
        seen_shb = False
        last_ts = 0
        if self._range is not None:
            base, number = self._range
            self._raw.seek(base)
            if self._state is not None:
                order, section_base, last_ts = self._state.order, self._state.section_base, self._state.last_ts
                interfaces = list(self._state.interfaces)
                seen_shb = True
        checkpoints = self.checkpoints
        while True:
            if not eof and end - pos < CHUNK:
                base += pos
                buf, end, eof = self._refill(pos)
                pos = 0
            if checkpoints is not None and seen_shb and pos < end:
                checkpoints.append((base + pos, PcapngState(order, section_base, tuple(interfaces), last_ts, number)))
            found = _Found()
            error: tuple[int, str] | None = None
            unpack2 = struct.Struct(order + "II").unpack_from
            while pos + 8 <= end and found.count < BATCH:
                if seen_shb and self.use_c and c_walk is not None:
                    # runs of packet blocks in C; anything else falls through to the Python code below
                    raw, kinds, pos, _status = c_walk.walk_pcapng(buf, pos, end, order == ">", BATCH - found.count)
                    if raw:
                        found.add_run(
                            np.frombuffer(raw, dtype=np.int64),
                            np.frombuffer(kinds, dtype=np.uint8),
                            section_base,
                            order,
                            len(interfaces),
                        )
                    if pos + 8 > end or found.count >= BATCH:
                        break
                head = bytes(buf[pos : pos + 4])
                if head == b"\x0a\x0d\x0d\x0a":
                    if pos + 12 > end:
                        break
                    bom = bytes(buf[pos + 8 : pos + 12])
                    if struct.unpack("<I", bom)[0] == BYTE_ORDER_MAGIC:
                        order = "<"
                    elif struct.unpack(">I", bom)[0] == BYTE_ORDER_MAGIC:
                        order = ">"
                    else:
                        error = (pos + 8, f"section header has a bad byte-order magic ({bom.hex()})")
                        break
                    unpack2 = struct.Struct(order + "II").unpack_from
                    seen_shb = True
                    section_base = len(interfaces)
                elif not seen_shb:
                    error = (pos, f"not a pcapng file (first block type {head.hex()})")
                    break
                btype, blen = unpack2(buf, pos)
                if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                    error = (pos, f"block of type 0x{btype:08x} has a bad length {blen}")
                    break
                if pos + blen > end:
                    break
                (trailer,) = struct.unpack_from(order + "I", buf, pos + blen - 4)
                if trailer != blen:
                    error = (pos, f"block of type 0x{btype:08x}: trailing length {trailer} != {blen}")
                    break
                if btype in (EPB, PB_OBSOLETE, SPB):
                    found.add_one(pos, btype, section_base, order, len(interfaces))
                elif btype == SHB:
                    body = bytes(buf[pos + 8 : pos + blen - 4])
                    major = struct.unpack_from(order + "H", body, 4)[0] if len(body) >= 6 else 0
                    if major != 1:
                        error = (pos, f"unsupported pcapng version {major}")
                        break
                elif btype == IDB:
                    body = bytes(buf[pos + 8 : pos + blen - 4])
                    if len(body) < 8:
                        error = (pos, "interface description block too short")
                        break
                    iface = interface_from_idb(body, order)
                    interfaces.append(iface)
                    self.linktypes_seen[iface.linktype] = None
                pos += blen
            batch, last_ts, stop = _pcapng_batch(buf, base, found, interfaces, number, last_ts)
            if batch is not None:
                number += len(batch)
                yield batch
            if stop is not None:
                error = stop if error is None or stop[0] < error[0] else error
            if error is not None:
                raise self._fail(base + error[0], error[1])
            if found.count >= BATCH:
                continue
            if eof:
                rest = end - pos
                if rest == 0:
                    return
                if rest < 8:
                    raise self._fail(base + pos, f"cut short in a block header ({rest} of 8 bytes)")
                if buf[pos : pos + 4] == b"\x0a\x0d\x0d\x0a" and rest < 12:
                    raise self._fail(base + pos, "cut short in a section header block")
                btype, blen = struct.unpack_from(order + "II", buf, pos)
                raise self._fail(base + pos, f"cut short in a block of type 0x{btype:08x} ({rest} of {blen} bytes)")


class _Found:
    """Packet blocks found in one pass, as runs sharing section, byte order and declared interfaces."""

    def __init__(self) -> None:
        self.runs: list[tuple[I64, npt.NDArray[np.uint8], int, str, int]] = []
        self._pos: list[int] = []
        self._kind: list[int] = []
        self._meta: tuple[int, str, int] | None = None
        self.count = 0

    def add_run(self, pos: I64, kinds: npt.NDArray[np.uint8], section_base: int, order: str, declared: int) -> None:
        self._flush()
        self.runs.append((pos, kinds, section_base, order, declared))
        self.count += len(pos)

    def add_one(self, pos: int, kind: int, section_base: int, order: str, declared: int) -> None:
        if self._meta != (section_base, order, declared):
            self._flush()
            self._meta = (section_base, order, declared)
        self._pos.append(pos)
        self._kind.append(kind)
        self.count += 1

    def _flush(self) -> None:
        if self._pos and self._meta is not None:
            sb, order, declared = self._meta
            self.runs.append(
                (np.array(self._pos, dtype=np.int64), np.array(self._kind, dtype=np.uint8), sb, order, declared)
            )
        self._pos, self._kind, self._meta = [], [], None

    def arrays(self) -> tuple[I64, I64, I64, npt.NDArray[np.bool_], I64]:
        """(positions, kinds, section bases, big-endian flags, declared interface counts) per block."""
        self._flush()
        if len(self.runs) == 1:  # the usual batch: one run of packet blocks from the C walker
            pos, kinds, sb, order, declared_n = self.runs[0]
            n = len(pos)
            return (
                pos,
                kinds.astype(np.int64),
                np.full(n, sb, dtype=np.int64),
                np.full(n, order == ">", dtype=bool),
                np.full(n, declared_n, dtype=np.int64),
            )
        pos = np.concatenate([r[0] for r in self.runs])
        kind = np.concatenate([r[1] for r in self.runs]).astype(np.int64)
        lengths = [len(r[0]) for r in self.runs]
        sbase = np.repeat(np.array([r[2] for r in self.runs], dtype=np.int64), lengths)
        big = np.repeat(np.array([r[3] == ">" for r in self.runs], dtype=bool), lengths)
        declared = np.repeat(np.array([r[4] for r in self.runs], dtype=np.int64), lengths)
        return pos, kind, sbase, big, declared


def _pcapng_batch(
    buf: bytes | bytearray, base: int, found: _Found, interfaces: list[Interface], number: int, last_ts: int
) -> tuple[RecordBatch | None, int, tuple[int, str] | None]:
    """Columns for the packet blocks found; stops at the first block the streaming reader would refuse."""
    if found.count == 0:
        return None, last_ts, None
    pos, kind, sbase, big, declared = found.arrays()
    n = len(pos)
    arr = np.frombuffer(buf, dtype=np.uint8)
    # block length and the 20 bytes after it (clipped at the buffer end: such blocks are too short anyway)
    raw = rows(arr, np.minimum(pos + 4, len(arr) - 24), 24).copy()
    le = raw.view("<u4").astype(np.int64)
    if big.any():
        be = raw.view(">u4").astype(np.int64)
        le[big] = be[big]
    blen = le[:, 0]
    fields = le[:, 1:]
    ifid = fields[:, 0].copy()
    pb = kind == PB_OBSOLETE
    if pb.any():  # obsolete PB: 16-bit interface id, then 16-bit drops count
        le16 = raw[:, 4:6].copy().view("<u2").astype(np.int64)[:, 0]
        if big.any():
            be16 = raw[:, 4:6].copy().view(">u2").astype(np.int64)[:, 0]
            le16[big] = be16[big]
        ifid[pb] = le16[pb]
    ts_hi, ts_lo, caplen, wirelen = fields[:, 1], fields[:, 2], fields[:, 3].copy(), fields[:, 4].copy()
    start = pos + 28
    spb = kind == SPB
    index = sbase + ifid
    index[spb] = sbase[spb]
    short = ~spb & (blen - 12 < 20)
    short_spb = spb & (blen - 12 < 4)
    if spb.any():
        wirelen[spb] = fields[spb, 0]
        caplen[spb] = np.minimum(wirelen[spb], blen[spb] - 16)
        snap = np.array([interfaces[i].snaplen if i < len(interfaces) else 0 for i in index[spb]], dtype=np.int64)
        caplen[spb] = np.where(snap > 0, np.minimum(caplen[spb], snap), caplen[spb])
        start[spb] = pos[spb] + 12
    # the first block the streaming reader refuses ends the batch (same checks, same order)
    no_iface_spb = spb & (sbase >= declared)
    too_long = ~spb & ~short & (caplen > blen - 32)
    undeclared = ~spb & ~short & ~too_long & (index >= declared)
    problems = short | short_spb | no_iface_spb | too_long | undeclared
    stop: tuple[int, str] | None = None
    count = n
    if problems.any():
        count = int(np.argmax(problems))
        i = count
        if short[i]:
            stop = (int(pos[i]), "packet block too short")
        elif short_spb[i]:
            stop = (int(pos[i]), "simple packet block too short")
        elif no_iface_spb[i]:
            stop = (int(pos[i]), "simple packet block before any interface description")
        elif too_long[i]:
            stop = (int(pos[i]), f"packet block claims {caplen[i]} bytes but holds {blen[i] - 32}")
        else:
            stop = (int(pos[i]), f"packet block names undeclared interface {ifid[i]}")
    if count == 0:
        return None, last_ts, stop
    sl = slice(0, count)
    idx = index[sl]
    ticks_u = (ts_hi[sl].astype(np.uint64) << np.uint64(32)) | ts_lo[sl].astype(np.uint64)
    ts = np.zeros(count, dtype=np.int64)
    linktype = np.zeros(count, dtype=np.int32)
    first = int(idx[0])
    # the usual batch has one interface: no sort, no masks
    uniform = bool((idx == first).all())
    groups: list[tuple[int, slice | npt.NDArray[np.bool_]]] = (
        [(first, slice(None))] if uniform else [(i, idx == i) for i in np.unique(idx).tolist()]
    )
    for i, sel in groups:
        iface = interfaces[i]
        linktype[sel] = iface.linktype
        ups = iface.units_per_second
        t_sel = ticks_u[sel]
        if ups <= 1_000_000_000 and 1_000_000_000 % ups == 0:
            factor = 1_000_000_000 // ups
            offset_ns = iface.offset_seconds * 1_000_000_000
            safe_max = (TS_MAX - abs(offset_ns)) // factor
            if safe_max > 0 and int(t_sel.max()) <= safe_max:
                ts[sel] = t_sel.astype(np.int64) * factor + offset_ns
                continue
        # unusual resolution or out-of-range values: exact integer arithmetic per record
        ts[sel] = [iface.ts_ns(t) for t in t_sel.tolist()]
    # simple packet blocks carry no time: the previous packet's (or 0)
    spb_c = spb[sl]
    if spb_c.any():
        has = np.where(~spb_c, np.arange(count), -1)
        prev = np.maximum.accumulate(has)
        ts[spb_c] = np.where(prev[spb_c] >= 0, ts[np.maximum(prev[spb_c], 0)], last_ts)
    batch = RecordBatch(
        buf=buf,
        start=start[sl],
        caplen=caplen[sl],
        wirelen=wirelen[sl],
        ts=ts,
        number=np.arange(number + 1, number + count + 1, dtype=np.int64),
        linktype=linktype,
        iface=idx.astype(np.int32),
        offset=pos[sl] + base,
    )
    return batch, int(ts[-1]), stop


@dataclass(frozen=True, slots=True)
class PcapngState:
    """What a pcapng reader knows at a block boundary: enough to start reading there (a part of the file)."""

    order: str
    """Byte order of the section (``<`` or ``>``)."""
    section_base: int
    """Index of the section's first interface in ``interfaces``."""
    interfaces: tuple[Interface, ...]
    """Every interface declared so far, in file order (the global interface numbers)."""
    last_ts: int
    """Time of the last packet so far (a simple packet block carries none and takes it)."""
    number: int
    """Records before the boundary."""


@dataclass(frozen=True, slots=True)
class PartScan:
    """Where to cut a classic pcap into parts at record boundaries, found by reading it once."""

    digest: str
    sha256: str | None
    size: int
    format: str
    linktypes: tuple[int, ...]
    parts: tuple[tuple[int, int, int, PcapngState | None], ...]
    """(first byte, end byte, records before the part, the pcapng state it starts from) of each part, in file
    order."""


def scan_parts(path: str | os.PathLike[str], parts: int, sha256: bool = False) -> PartScan | None:
    """Find ``parts`` ranges of a pcap or pcapng file of about equal size, cut at record (block) boundaries;
    also its digests.

    None when the file is neither, or is damaged (those are read in one piece, which reports the damage
    exactly). A pcapng file is cut where a batch's walk began, each part with the reader's state there.
    """
    try:
        reader = BatchReader(path, sha256)
    except CaptureError:
        return None
    pcapng = reader.format == "pcapng"
    if reader.format not in ("pcap", "pcap-nsec", "pcapng") or reader._fallback is not None or parts < 2:
        reader.close()
        return None
    size = reader.size
    first = 0 if pcapng else 24
    targets = [first + (size - first) * k // parts for k in range(1, parts)]
    cuts: list[tuple[int, int, PcapngState | None]] = []
    if pcapng:
        reader.checkpoints = []
    try:
        for b in reader:
            if pcapng:
                continue
            while len(cuts) < len(targets):
                j = int(np.searchsorted(b.offset, targets[len(cuts)]))
                if j >= len(b):
                    break
                cuts.append((int(b.offset[j]), int(b.number[j]) - 1, None))
    except CaptureError:
        return None
    if pcapng:
        points = reader.checkpoints or []
        offsets = [at for at, _ in points]
        for target in targets:
            j = int(np.searchsorted(offsets, target))
            if j < len(points) and points[j][0] > 0:
                cuts.append((points[j][0], points[j][1].number, points[j][1]))
    # tiny files: several targets may fall on one record
    bounds: list[tuple[int, int, PcapngState | None]] = [(first, 0, None), *{c[0]: c for c in cuts}.values()]
    ranges = tuple(
        (begin, bounds[i + 1][0] if i + 1 < len(bounds) else size, before, state)
        for i, (begin, before, state) in enumerate(bounds)
    )
    return PartScan(reader.digest(), reader.sha256(), size, reader.format, reader.linktypes, ranges)


def rows(arr: npt.NDArray[np.uint8], starts: I64, width: int) -> npt.NDArray[np.uint8]:
    """``width`` bytes from each start (``start + width <= len(arr)``) as contiguous rows: one memcpy per row."""
    if len(starts) == 0:
        return np.zeros((0, width), dtype=np.uint8)
    view = as_strided(arr, shape=(len(arr) - width + 1, width), strides=(1, 1), writeable=False)
    return view[starts]


def records_to_batch(records: list[Record]) -> RecordBatch:
    """Pack streaming records into a batch (for compressed files and tests)."""
    parts = []
    starts = []
    at = 0
    for r in records:
        starts.append(at)
        parts.append(r.data)
        at += len(r.data)
    return RecordBatch(
        buf=b"".join(parts) + bytes(GUARD),
        start=np.array(starts, dtype=np.int64),
        caplen=np.array([r.caplen for r in records], dtype=np.int64),
        wirelen=np.array([r.wirelen for r in records], dtype=np.int64),
        ts=np.array([r.ts_ns for r in records], dtype=np.int64),
        number=np.array([r.number for r in records], dtype=np.int64),
        linktype=np.array([r.linktype for r in records], dtype=np.int32),
        iface=np.array([r.interface for r in records], dtype=np.int32),
        offset=np.array([r.offset for r in records], dtype=np.int64),
    )


__all__ = ["BATCH", "CHUNK", "BatchReader", "RecordBatch", "gzip", "records_to_batch"]
