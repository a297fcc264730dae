"""The one place that wires capture -> dissect -> inventory -> (risk) -> store.

``analyze`` reads capture files one after the other, decodes every record, feeds flows and the inventory,
offers packets to the dissectors that want them, and resolves devices at the end. Nothing is dropped
silently: packets that could not be fully analysed are counted per reason in ``Analysis.skipped``, and a file
that cannot be read to its end keeps everything before the damage (``CaptureInfo.error``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import multiprocessing
import os
import pickle
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from wardwatch.capture import decode, open_capture
from wardwatch.capture.batch import BatchReader, PcapngState, RecordBatch, scan_parts
from wardwatch.capture.interface import TS_INVALID
from wardwatch.capture.vector import Columns, decode_batch
from wardwatch.dissect import (
    Limits,
    MalformedPacket,
    Reassembler,
    Registry,
    Selector,
    StreamDissector,
    TcpStream,
    default_registry,
)
from wardwatch.dissect.reassembly import ConnKey, conn_key, half_stream
from wardwatch.errors import CaptureError, UnsupportedLinkTypeError
from wardwatch.inventory import FlowTable, InventoryBuilder, MapEdges, Timeouts, native, preload_registry
from wardwatch.inventory.catalog import Catalog
from wardwatch.inventory.catalog import builtin as builtin_catalog
from wardwatch.inventory.streams import StreamHeads
from wardwatch.inventory.vflows import (
    CFlowTable,
    FlowRecords,
    HashCollision,
    NotMergeable,
    VectorFlowTable,
    new_flow_table,
)
from wardwatch.model import (
    Analysis,
    CaptureId,
    CaptureInfo,
    DeviceId,
    Flow,
    FlowColumns,
    Fragment,
    LinkType,
    Packet,
    PacketRef,
    Severity,
    Skipped,
    flow_sort_key,
)
from wardwatch.model.event import Event, EventKind
from wardwatch.model.packet import RAW_ALIASES

if TYPE_CHECKING:  # the store (SQLAlchemy) is loaded by the commands that write: `analyze --no-store` starts faster
    from wardwatch.store.repository import Store

#: Frame numbers kept as examples per skip reason.
MAX_EXAMPLES = 5
#: Records between two progress callbacks.
PROGRESS_EVERY = 4096
SUPPORTED_LINKTYPES = frozenset(int(lt) for lt in LinkType) | RAW_ALIASES
BAD_TIME = "record time out of range (corrupt record)"
#: Files smaller than this are not worth splitting across worker processes.
SPLIT_MIN_BYTES = 64 * 1024 * 1024
#: A single file is split only with at least this many workers: splitting costs one extra pass over the file
#: (to find record boundaries and hash it), which two workers on two vCPUs did not win back (bench/run.py).
SPLIT_MIN_JOBS = 4
FRAGMENT = "IP fragment after the first (fragments are counted, not reassembled)"
#: Allocations between two collections of the youngest garbage-collector generation while analysing (Python's
#: default is 700). Analysis makes ~10^5 short-lived objects that form no reference cycles (packets,
#: observations, spans); collecting every 700 of them cost ~15 % of the benchmark's analysis time.
GC_THRESHOLD = 100_000

ProgressCallback = Callable[[str, int, int, int], None]
"""Called as ``(path, bytes_read, file_size, packets)`` while a file is read."""


@dataclass(slots=True)
class _SkipCounter:
    """Skip reasons of one capture with counts and example frame numbers."""

    reasons: dict[str, list[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, number: int) -> None:
        n = self.counts.get(reason, 0)
        self.counts[reason] = n + 1
        if n < MAX_EXAMPLES:
            self.reasons.setdefault(reason, []).append(number)

    def add_count(self, reason: str, count: int, number: int) -> None:
        """``count`` occurrences of ``reason`` at once (``number``: an example frame)."""
        if count > 0:
            self.add(reason, number)
            self.counts[reason] += count - 1

    def merge(self, other: _SkipCounter) -> None:
        """Add what ``other`` counted, as if it came after what this one did."""
        for reason, count in other.counts.items():
            examples = other.reasons.get(reason, [])
            n = self.counts.get(reason, 0)
            self.counts[reason] = n + count
            room = MAX_EXAMPLES - len(self.reasons.get(reason, ()))
            if examples and room > 0:
                self.reasons.setdefault(reason, []).extend(examples[:room])

    def result(self, capture: CaptureId) -> list[Skipped]:
        return [
            Skipped(capture=capture, reason=reason, count=count, examples=tuple(self.reasons.get(reason, ())))
            for reason, count in sorted(self.counts.items())
        ]


@dataclass(frozen=True, slots=True)
class RunResult:
    """An analysis and the input errors met while producing it (each names a file and offset)."""

    analysis: Analysis
    errors: tuple[CaptureError, ...]


class Engine:
    """Analyses capture files into an ``Analysis``.

    ``fast`` (the default) reads files in batches through the vectorised header path; ``fast=False`` uses the
    straightforward per-packet reference path. Both give the same analysis (the tests check it).
    """

    def __init__(
        self,
        registry: Registry | None = None,
        timeouts: Timeouts | None = None,
        fast: bool = True,
        sha256: bool = False,
        catalog: Catalog | None = None,
        deep_process: bool = True,
    ) -> None:
        self.registry = registry if registry is not None else default_registry()
        self.deep_process = deep_process
        """On the fast path, dissect claimed TCP connections in a second process while this one reads on, when
        the machine has a second CPU and a capture has more than ``DEEP_PROCESS_AFTER`` of them (``_DeepProcess``)."""
        self.catalog = catalog if catalog is not None else builtin_catalog()
        """The taxonomy and fingerprint rules applied to every device (``inventory.catalog``)."""
        self.timeouts = timeouts
        self.fast = fast
        self.sha256 = sha256
        """Also compute each file's SHA-256 (chain of custody; costs about as much CPU as the analysis)."""

    def analyze(
        self, paths: Iterable[str | os.PathLike[str]], progress: ProgressCallback | None = None, jobs: int = 1
    ) -> RunResult:
        """Analyse ``paths`` in order; unreadable files are reported in ``errors``, never abort the run.

        With ``jobs`` > 1 and several files, files are analysed in that many worker processes and merged in file
        order: the result is exactly the serial one.
        """
        paths = list(paths)
        with _fewer_collections():
            if self.fast:
                try:
                    return self._analyze(paths, progress, fast=True, jobs=jobs)
                except HashCollision:  # astronomically rare: redo the run on the reference path
                    pass
            return self._analyze(paths, progress, fast=False, jobs=1)

    def _analyze(
        self, paths: list[str | os.PathLike[str]], progress: ProgressCallback | None, fast: bool, jobs: int
    ) -> RunResult:
        inventory = InventoryBuilder()
        captures: list[CaptureInfo] = []
        tables: list[tuple[FlowSource, CaptureId]] = []
        skipped: list[Skipped] = []
        errors: list[CaptureError] = []
        rename: dict[CaptureId, CaptureId] = {}
        split = None
        if fast and jobs >= SPLIT_MIN_JOBS and len(paths) == 1:
            split = self._split_file(paths[0], jobs, progress)
        if split is not None:
            outcomes: Iterable[FileOutcome] = [split]
        elif fast and jobs > 1 and len(paths) > 1:
            outcomes = self._parallel(paths, jobs, progress, inventory)
        else:
            outcomes = (self._one_file(index, path, inventory, progress, fast) for index, path in enumerate(paths))
        for index, outcome in enumerate(outcomes):
            provisional = CaptureId(f"#{index}")
            if isinstance(outcome, CaptureError):
                errors.append(outcome)
                continue
            info, table, skips, file_errors, file_inventory = outcome
            if file_inventory is not None:
                inventory.merge(file_inventory)
            rename[provisional] = info.id
            captures.append(info)
            tables.append((table, info.id))
            skipped += skips
            errors += file_errors
        resolution = inventory.resolve(rename, self.catalog)
        del inventory  # let the accumulators go before the flows are built
        flows: Sequence[Flow]
        if fast:
            parts: list[FlowColumns] = []
            while tables:
                table, capture_id = tables.pop(0)
                records = table if isinstance(table, FlowRecords) else cast(_HasRecords, table).records()
                del table
                parts.append(records.columns(resolution, capture_id))
            flows = FlowColumns.concat(parts).sorted() if parts else FlowColumns.empty()
        else:
            objects: list[Flow] = []
            for table, capture_id in tables:
                objects += table.flows(resolution.device_of, capture_id)
            objects.sort(key=flow_sort_key)
            flows = tuple(objects)
        analysis = Analysis(
            captures=tuple(captures),
            devices=resolution.devices,
            flows=flows,
            edges=MapEdges(flows),
            findings=(),
            skipped=tuple(skipped),
            errors=tuple(str(e) for e in errors),
        )
        return RunResult(analysis=analysis, errors=tuple(errors))

    def _dissect(
        self, pkt: Packet, provisional: CaptureId, inventory: InventoryBuilder, skips: _SkipCounter, stream: int = -1
    ) -> None:
        """Offer ``pkt`` (``stream``: its stream-head number, or -1) to the dissectors that want it; what they
        cannot read is counted, never raised."""
        if pkt.problem is not None and pkt.payload == b"":
            return
        for dissector in self.registry.for_packet(pkt, stream):
            ref = PacketRef(provisional, pkt.number)
            try:
                inventory.add_observations(dissector.dissect(pkt, ref))
            except MalformedPacket as exc:
                inventory.add_observations(exc.partial)
                skips.add(f"{dissector.name}: {exc}", pkt.number)
            except Exception as exc:  # a dissector bug must not lose the rest of the capture
                skips.add(f"{dissector.name} failed: {type(exc).__name__}: {exc}", pkt.number)

    def _one_file(
        self,
        index: int,
        path: str | os.PathLike[str],
        inventory: InventoryBuilder | None,
        progress: ProgressCallback | None,
        fast: bool,
    ) -> FileOutcome:
        """Analyse one file into ``inventory`` (or, when None, into its own builder, returned with the result)."""
        own = inventory is None
        target = InventoryBuilder() if inventory is None else inventory
        analyze_file = self._analyze_file_fast if fast else self._analyze_file
        try:
            info, table, skips, file_errors = analyze_file(os.fspath(path), CaptureId(f"#{index}"), target, progress)
        except CaptureError as exc:
            return exc
        if own and not isinstance(table, FlowTable):  # results may cross a process boundary: as plain columns
            return info, table.records(), skips, file_errors, target  # (a builder pickles its C tables as bytes)
        return info, table, skips, file_errors, target if own else None

    def _parallel(
        self,
        paths: list[str | os.PathLike[str]],
        jobs: int,
        progress: ProgressCallback | None,
        inventory: InventoryBuilder,
    ) -> Iterator[FileOutcome]:
        """Analyse files over ``jobs`` processes; yield their outcomes in file order.

        The calling process is one of the ``jobs``: it reads the first file straight into ``inventory`` (that
        file's results never cross a process boundary), then takes over files no worker has started yet, from
        the last one back, while ``jobs - 1`` worker processes take them from the front.
        """
        global _WORKER_ENGINE
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        _WORKER_ENGINE = self
        try:
            with ProcessPoolExecutor(max_workers=min(jobs - 1, len(paths) - 1), mp_context=context) as pool:
                futures = {i: pool.submit(_worker, i, os.fspath(p)) for i, p in enumerate(paths) if i > 0}
                yield self._one_file(0, paths[0], inventory, progress, fast=True)
                taken: dict[int, FileOutcome] = {}
                for index in range(1, len(paths)):
                    if index in taken:
                        yield taken.pop(index)
                        continue
                    future = futures.pop(index)
                    while not future.done():  # help: take the last file not yet started, if there is one
                        spare = next((i for i in sorted(futures, reverse=True) if futures[i].cancel()), None)
                        if spare is None:
                            break
                        del futures[spare]
                        taken[spare] = self._one_file(spare, paths[spare], None, progress, fast=True)
                    if index in taken:
                        yield taken.pop(index)
                        continue
                    if not future.done():
                        preload_registry()  # serial work of the resolution, done while the workers read
                    outcome = future.result()
                    if progress is not None and not isinstance(outcome, CaptureError):
                        info = outcome[0]
                        progress(os.fspath(paths[index]), info.size, info.size, info.packets)
                    yield outcome
        finally:
            _WORKER_ENGINE = None

    def _split_file(
        self, path: str | os.PathLike[str], jobs: int, progress: ProgressCallback | None
    ) -> FileOutcome | None:
        """Analyse one pcap or pcapng file in ``jobs`` parts at once, merged to exactly the serial result; None when
        the file cannot be split (compressed, damaged, too small), the parts cannot be merged exactly, or a
        dissector wants stream heads (a later part cannot know how many payload packets a connection already
        carried before its first record)."""
        if self.registry.head_limit:
            return None
        name = os.fspath(path)
        try:
            size = os.path.getsize(name)
        except OSError:
            return None
        if size < SPLIT_MIN_BYTES:
            return None
        scan = scan_parts(name, jobs, self.sha256)
        if scan is None or len(scan.parts) < 2:
            return None
        global _WORKER_ENGINE
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        _WORKER_ENGINE = self
        try:
            with ProcessPoolExecutor(max_workers=len(scan.parts), mp_context=context) as pool:
                mapped = pool.map(_part_worker, [(name, *part) for part in scan.parts])
                preload_registry()
                results = list(mapped)
        finally:
            _WORKER_ENGINE = None
        capture = CaptureId(scan.digest.split(":", 1)[1][:16])
        inventory: InventoryBuilder | None = None
        table: FlowRecords | None = None
        skips: dict[str, tuple[int, list[int]]] = {}
        errors: dict[str, CaptureError] = {}
        packets = total = 0
        firsts: list[int] = []
        lasts: list[int] = []
        for info, part_table, part_skips, part_errors, part_inventory in results:
            if inventory is None or table is None:
                inventory, table = part_inventory, part_table
            else:
                inventory.merge(part_inventory)
                try:
                    table = table.merge(part_table)
                except NotMergeable:
                    return None
            for s in part_skips:
                count, examples = skips.get(s.reason, (0, []))
                skips[s.reason] = (count + s.count, (examples + list(s.examples))[:MAX_EXAMPLES])
            for e in part_errors:  # unsupported link types: the first report of each
                errors.setdefault(e.message, e)
            packets += info.packets
            total += info.bytes
            firsts += [info.first_ns] if info.first_ns is not None else []
            lasts += [info.last_ns] if info.last_ns is not None else []
        assert inventory is not None and table is not None
        merged = CaptureInfo(
            id=capture, digest=scan.digest, sha256=scan.sha256, path=name, size=scan.size, format=scan.format,
            linktypes=scan.linktypes, packets=packets, bytes=total, first_ns=min(firsts) if firsts else None,
            last_ns=max(lasts) if lasts else None,
        )  # fmt: skip
        skipped = [
            Skipped(capture=capture, reason=r, count=c, examples=tuple(ex)) for r, (c, ex) in sorted(skips.items())
        ]
        if progress is not None:
            progress(name, scan.size, scan.size, packets)
        return merged, table, skipped, list(errors.values()), inventory

    def _analyze_file_fast(
        self,
        path: str,
        provisional: CaptureId,
        inventory: InventoryBuilder,
        progress: ProgressCallback | None,
        reader: BatchReader | None = None,
    ) -> tuple[CaptureInfo, VectorFlowTable | CFlowTable, list[Skipped], list[CaptureError]]:
        """The same as ``_analyze_file``, a batch of records at a time (see ``capture.vector``); ``reader``
        reads a part of the file instead of the whole."""
        if reader is None:
            reader = BatchReader(path, self.sha256)
        session = FastSession(self, path, provisional, inventory, self.deep_process)
        error: CaptureError | None = None
        try:
            for batch in reader:
                session.add(batch)
                if progress is not None:
                    progress(path, reader.bytes_read, reader.size, session.packets)
        except CaptureError as exc:
            error = exc
        finally:
            reader.close()
        session.finish()
        if progress is not None:
            progress(path, reader.bytes_read, reader.size, session.packets)
        table, skips, errors = session.table, session.skips, session.errors
        packets, total_bytes, first_ns, last_ns = session.packets, session.bytes, session.first_ns, session.last_ns
        info = _capture_info(path, reader, packets, total_bytes, first_ns, last_ns, error)
        if error is not None:
            errors.append(error)
        return info, table, skips.result(info.id), errors

    def _analyze_file(
        self,
        path: str,
        provisional: CaptureId,
        inventory: InventoryBuilder,
        progress: ProgressCallback | None,
    ) -> tuple[CaptureInfo, FlowTable, list[Skipped], list[CaptureError]]:
        reader = open_capture(path, self.sha256)
        table = FlowTable(provisional, self.timeouts)
        limit = self.registry.head_limit
        heads = StreamHeads(limit) if limit else None
        skips = _SkipCounter()
        streams = _Streams(self.registry.streams, provisional, inventory, skips) if self.registry.streams else None
        errors: list[CaptureError] = []
        unsupported: set[int] = set()
        packets = total_bytes = 0
        first_ns: int | None = None
        last_ns: int | None = None
        error: CaptureError | None = None
        try:
            for record in reader:
                packets += 1
                total_bytes += record.wirelen
                ts = record.ts_ns
                if ts == TS_INVALID:
                    skips.add(BAD_TIME, record.number)
                    continue
                if first_ns is None or ts < first_ns:
                    first_ns = ts
                if last_ns is None or ts > last_ns:
                    last_ns = ts
                if progress is not None and packets % PROGRESS_EVERY == 0:
                    progress(path, reader.bytes_read, reader.size, packets)
                if record.linktype not in SUPPORTED_LINKTYPES:
                    if record.linktype not in unsupported:
                        unsupported.add(record.linktype)
                        errors.append(
                            UnsupportedLinkTypeError(
                                path,
                                record.offset,
                                f"link type {record.linktype} is not supported; its packets are skipped",
                            )
                        )
                    skips.add(f"unsupported link type {record.linktype}", record.number)
                    continue
                pkt = decode(record)
                if pkt.problem is not None:
                    skips.add(pkt.problem, pkt.number)
                if pkt.fragment is Fragment.LATER:
                    skips.add(FRAGMENT, pkt.number)
                inventory.add_packet(pkt, provisional)
                table.add(pkt)
                index = heads.index(pkt) if heads is not None else -1
                self._dissect(pkt, provisional, inventory, skips, index)
                if streams is not None and pkt.proto == 6 and (index >= 0 or _ends(pkt.tcp_flags) or pkt.payload):
                    streams.offer(pkt, index)
        except CaptureError as exc:
            error = exc
        finally:
            reader.close()
        if streams is not None:
            streams.finish()
        if progress is not None:
            progress(path, reader.bytes_read, reader.size, packets)
        info = _capture_info(path, reader, packets, total_bytes, first_ns, last_ns, error)
        if error is not None:
            errors.append(error)
        return info, table, skips.result(info.id), errors


class FastSession:
    """The fast path's state while one capture is read, a ``RecordBatch`` at a time (``add``), then ``finish``.

    A file is one session (``Engine._analyze_file_fast``); a live capture is a series of them, one per segment
    (``engine.live``). ``path`` names the source in error messages.
    """

    def __init__(
        self, engine: Engine, path: str, provisional: CaptureId, inventory: InventoryBuilder, deep_process: bool
    ) -> None:
        self.engine = engine
        self.path = path
        self.provisional = provisional
        self.inventory = inventory
        self.table = new_flow_table(provisional, engine.timeouts)
        self.skips = _SkipCounter()
        self.errors: list[CaptureError] = []
        self.unsupported: set[int] = set()
        self.packets = self.bytes = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        registry = engine.registry
        self.plain = _Tables.of(*registry.wanted(), registry.arp_wanted, registry.plain_head, registry.snap_wanted)
        self.tested = [(sel, _Tables.of_selector(sel)) for sel in registry.tested()]
        self.heads = StreamHeads(registry.head_limit) if registry.head_limit else None
        self.streams = _Streams(registry.streams, provisional, inventory, self.skips) if registry.streams else None
        if self.streams is not None:
            self.streams.deep_process = deep_process and _second_cpu()
        self._no_streams = np.zeros(0, dtype=np.int32)
        self._supported = np.array(sorted(SUPPORTED_LINKTYPES), dtype=np.int32)

    def add(self, batch: RecordBatch) -> None:
        """Account every record of ``batch``: flows, inventory, dissectors, stream heads; problems counted."""
        skips, inventory, provisional = self.skips, self.inventory, self.provisional
        n = len(batch)
        self.packets += n
        self.bytes += int(batch.wirelen.sum())
        ts_ok = batch.ts != TS_INVALID
        link = batch.linktype
        if n and (link == link[0]).all():  # the usual batch: one link type (np.isin costs more)
            link_ok = np.full(n, int(link[0]) in SUPPORTED_LINKTYPES)
        else:
            link_ok = np.isin(link, self._supported)
        usable = ts_ok & link_ok
        if not ts_ok.all():
            for number in batch.number[~ts_ok].tolist():
                skips.add(BAD_TIME, number)
        if not link_ok.all():
            for i in np.flatnonzero(ts_ok & ~link_ok).tolist():
                lt = int(batch.linktype[i])
                if lt not in self.unsupported:
                    self.unsupported.add(lt)
                    self.errors.append(
                        UnsupportedLinkTypeError(
                            self.path, int(batch.offset[i]), f"link type {lt} is not supported; its packets are skipped"
                        )
                    )
                skips.add(f"unsupported link type {lt}", int(batch.number[i]))
        if ts_ok.any():
            valid_ts = batch.ts[ts_ok]
            lo, hi = int(valid_ts.min()), int(valid_ts.max())
            self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
            self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)
        cols = decode_batch(batch)
        rows = np.flatnonzero(usable)
        for i, problem in sorted(cols.problems.items()):
            if usable[i]:
                skips.add(problem, int(batch.number[i]))
        later = usable & (cols.frag == 2)
        for number in batch.number[later].tolist():
            skips.add(FRAGMENT, number)
        inventory.add_columns(cols, provisional, rows)
        self.table.add(cols, usable)
        heads = self.heads
        stream = heads.index_columns(cols, rows) if heads is not None else self._no_streams
        want = _selected(cols, self.plain, stream)
        for sel, tables in self.tested:  # selected, and passing the payload test
            rows = np.flatnonzero(_selected(cols, tables, stream) & usable & ~want)
            if len(rows) and sel.payload is not None:
                test = sel.payload
                want[rows[cols.payload_test(rows, test.offset, test.mask, test.value, test.min_length)]] = True
        wanted = np.flatnonzero(want & usable)
        cols.prepare(wanted)
        if self.streams is not None:
            self.streams.offer_batch(cols, usable, stream)
        dissect = self.engine._dissect
        if heads is None:
            for i in wanted.tolist():
                dissect(cols.packet(i), provisional, inventory, skips)
        else:
            for i, number in zip(wanted.tolist(), stream[wanted].tolist(), strict=True):
                dissect(cols.packet(i), provisional, inventory, skips, number)

    def finish(self) -> None:
        """Dissect the claimed connections still open (the end of the capture ends them)."""
        if self.streams is not None:
            self.streams.finish()


U64 = npt.NDArray[np.uint64]


#: A packet limit that stands for "every payload packet" in the batch prefilter of ``_Streams``.
ALL_PACKETS = 1 << 30


def _within(ends: BOOL, index: npt.NDArray[np.int32], payload: BOOL, limit: npt.NDArray[np.int32]) -> BOOL:
    """Rows of claimed connections ``_Streams.offer`` can use: ends, payload packets within the claimers' limit,
    and, for claimers that count a pattern past it (limit ``ALL_PACKETS``), every payload packet."""
    return ends | ((index >= 0) & (index < limit)) | (payload & (limit >= ALL_PACKETS))


class _TailCounts:
    """Occurrences of a pattern in each direction of a connection past its reassembled part, in sequence order:
    retransmitted bytes are not counted twice, a pattern split across two segments is (a hole starts afresh)."""

    __slots__ = ("dirs", "pattern")

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        self.dirs: dict[tuple[bytes, int], list[Any]] = {}
        """(ip, port) -> [next sequence number, the last bytes (a pattern's beginning), count]."""

    def see(self, src: tuple[bytes, int], seq: int, payload: bytes) -> None:
        state = self.dirs.get(src)
        if state is None:
            state = self.dirs[src] = [seq, b"", 0]
        rel = (seq - state[0]) % (1 << 32)
        rel = rel - (1 << 32) if rel >= 1 << 31 else rel
        if rel < 0:  # begins with bytes already counted (a retransmission, an overlap)
            if -rel >= len(payload):
                return
            payload, seq, rel = payload[-rel:], (seq - rel) % (1 << 32), 0
        text = (state[1] if rel == 0 else b"") + payload
        state[2] += text.count(self.pattern)
        keep = len(self.pattern) - 1
        state[1] = text[-keep:] if keep else b""
        state[0] = (seq + len(payload)) % (1 << 32)

    def counts(self, ip: bytes, port: int) -> int:
        state = self.dirs.get((ip, port))
        return int(state[2]) if state is not None else 0


def _ends(flags: int) -> bool:
    """A FIN, an RST or a pure SYN: the packet can end a claimed connection (``_Streams.offer``)."""
    return bool(flags & 0x05) or flags & 0x12 == 0x02


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def _conn_hashes(cols: Columns, rows: npt.NDArray[np.int64]) -> U64:
    """A direction-independent 64-bit hash of the TCP connection of each of ``rows`` (equal for both directions;
    a collision only offers a packet more to ``_Streams.offer``, which checks the exact connection)."""

    def endpoint(hi: npt.NDArray[Any], lo: npt.NDArray[Any], port: npt.NDArray[Any]) -> U64:
        h = hi[rows].astype(np.uint64) * _MIX[0]
        h ^= lo[rows].astype(np.uint64) * _MIX[1]
        h ^= port[rows].astype(np.uint64) * _MIX[2]
        return cast(U64, h)

    return endpoint(cols.src_hi, cols.src_lo, cols.sport) + endpoint(cols.dst_hi, cols.dst_lo, cols.dport)


class _Streams:
    """The stream dissectors of one capture: which connections they claim, their reassembly, their dissection.

    ``offer`` is the rule, one packet (with its stream-head index) at a time, as the reference path calls it; a
    connection is claimed by the first payload packet of either direction (index 0) that a stream dissector's
    ``StreamSelector`` claims, and from then on its payload packets (index below ``Registry.stream_limit``) are
    reassembled. ``offer_batch`` finds, over a decoded batch, the packets that can matter (first packets that
    pass a claim test, packets of claimed connections) and offers those, in order: the same result. With the C
    accumulators built, ``offer_batch`` hands those rows to ``_accum.StreamTable``, which applies ``_offer``'s and
    ``Reassembler``'s rules in C and hands back the connections that ended (``_feed``); the tests check all three
    ways against each other.
    """

    def __init__(
        self,
        dissectors: Sequence[StreamDissector],
        capture: CaptureId,
        inventory: InventoryBuilder,
        skips: _SkipCounter,
    ) -> None:
        self.dissectors = {d.name: d for d in dissectors}
        self.limit = max(d.stream.packets for d in dissectors)
        self.reassembler = Reassembler(capture, Limits(stream_bytes=max(d.stream.byte_limit for d in dissectors)))
        self.inventory = inventory
        self.skips = skips
        self.port_tables: dict[str, BOOL] = {}
        """Per dissector claiming by port: a lookup table over ``port + 1`` (-1, "no port", on slot 0)."""
        for d in dissectors:
            if d.stream.tcp_ports:
                table = self.port_tables[d.name] = np.zeros(65537, dtype=bool)
                table[[p + 1 for p in d.stream.tcp_ports]] = True
        self.tests = list(dict.fromkeys(t for d in dissectors for t in d.stream.claim))
        self.open: dict[ConnKey, int] = {}
        """Claimed connections not finished yet, with their ``_conn_hashes`` value (fast path only)."""
        self.key_limit: dict[ConnKey, int] = {}
        """Claimed connections -> how many payload packets per direction their dissectors read."""
        self.patterns = {d.name: d.stream.count_after for d in dissectors if d.stream.count_after}
        """Dissectors that count a pattern past what they reassemble (``StreamSelector.count_after``)."""
        self.tails: dict[ConnKey, _TailCounts] = {}
        """Claimed connections whose claimer counts a pattern past the reassembled part."""
        self._hash_array: U64 | None = None
        self._limit_array: npt.NDArray[np.int32] | None = None
        self.truncated = 0
        self.first_truncated = 0
        self._table: Any = None
        """The C ``StreamTable`` doing ``_offer``'s work over whole batches (``offer_batch`` with the accumulators
        built); an instance is offered either packets or batches, never both."""
        self._claimers: dict[int, tuple[str, ...]] = {}
        """A ``StreamTable`` claimers mask -> the dissectors' names."""
        self.deep_process = False
        """Dissect in a second process once ``DEEP_PROCESS_AFTER`` connections were handed over (``_DeepProcess``)."""
        self._deep: _DeepProcess | None = None
        self._handed = 0

    def offer(self, pkt: Packet, index: int, claimers: Sequence[str] | None = None) -> bool:
        """One TCP packet and its stream-head index (-1: no payload, or past the head); True when it claimed
        its connection. A FIN or RST finishes a claimed connection. ``claimers``: the dissectors whose selector
        claims this packet's connection, when the caller already decided it (``StreamSelector.claims``)."""
        if pkt.src_ip is None or pkt.dst_ip is None:
            return False
        return self._offer(
            (pkt.src_ip, pkt.src_port or 0), (pkt.dst_ip, pkt.dst_port or 0), pkt.tcp_flags, pkt.tcp_seq or 0,
            pkt.payload, pkt.number, pkt.ts_ns, pkt.src_mac, pkt.vlans[-1] if pkt.vlans else None, index, claimers,
        )  # fmt: skip

    def _offer(
        self,
        src: tuple[bytes, int],
        dst: tuple[bytes, int],
        flags: int,
        seq: int,
        payload: bytes,
        number: int,
        ts: int,
        mac: bytes | None,
        vlan: int | None,
        index: int,
        claimers: Sequence[str] | None,
    ) -> bool:
        """``offer`` on the fields of a packet (the fast path passes them from its columns)."""
        key = conn_key(src, dst)
        re = self.reassembler
        claimed = False
        if flags & 0x12 == 0x02 and re.claimed(key):  # a pure SYN: a new connection, the old one ends
            self._end(key)
        if 0 <= index < self.limit:
            if index == 0 and not re.claimed(key):
                for d in self.dissectors.values():
                    if d.name in claimers if claimers is not None else d.stream.claims(payload, src[1], dst[1]):
                        re.claim(key, d.name)
                        self.key_limit[key] = max(self.key_limit.get(key, 0), d.stream.packets)
                        if d.name in self.patterns and key not in self.tails:
                            self.tails[key] = _TailCounts(self.patterns[d.name])
                        claimed = True
            if re.claimed(key) and index < self.key_limit.get(key, self.limit):
                done = re.add(src, dst, seq, payload, number, ts, flags, mac, vlan)
                if done is not None:
                    self._dissect(done, key)
                return claimed
        if payload and key in self.tails and re.claimed(key):  # past the reassembled part: only counted
            self.tails[key].see(src, seq, payload)
        if flags & 0x05 and re.claimed(key):  # FIN or RST without payload (or past the head)
            self._end(key)
        return claimed

    def _end(self, key: ConnKey) -> None:
        done = self.reassembler.close(key)
        if done is not None:
            self._dissect(done, key)
        else:
            self._forget(key)

    def offer_batch(self, cols: Columns, usable: npt.NDArray[np.bool_], stream: npt.NDArray[np.int32]) -> None:
        """Offer the packets of a decoded batch that can matter (see the class)."""
        if len(stream) == 0:
            return
        head = (stream >= 0) & (stream < self.limit)
        flags = cols.tflags
        ends = (cols.proto == 6) & (((flags & 0x05) != 0) | ((flags & 0x12) == 0x02)) & ~head  # FIN/RST, pure SYN
        has_payload = np.zeros(len(stream), dtype=bool)
        if self.patterns and cols.pay_start is not None and cols.pay_end is not None:
            # payload packets past the heads matter to connections whose claimer counts a pattern in them
            has_payload = (cols.proto == 6) & (cols.pay_end > cols.pay_start) & ~cols.slow
            for i in np.flatnonzero(cols.slow & (cols.proto == 6) & usable).tolist():
                has_payload[i] = bool(cols.packet(i).payload)
        cand = np.flatnonzero(usable & (head | ends | has_payload))
        if len(cand) == 0:
            return
        first = cand[stream[cand] == 0]
        # which dissectors claim each first payload packet (StreamSelector.claims, over the batch), and how many
        # packets per direction the claimers read
        claim_lim = np.zeros(len(first), dtype=np.int32)
        by_row: dict[int, tuple[str, ...]] = {}
        names: list[tuple[str, BOOL]] = []
        if len(first):
            length = np.where(cols.slow[first], 0, cols.pay_end[first] - cols.pay_start[first])  # type: ignore[index]
            for k in np.flatnonzero(cols.slow[first]).tolist():
                length[k] = len(cols.packet(int(first[k])).payload)
            passed = {
                t: cols.payload_test(first, t.offset, t.mask, t.value) & (length >= t.offset + t.width)
                for t in self.tests
            }
            for d in self.dissectors.values():
                hit = np.zeros(len(first), dtype=bool)
                for t in d.stream.claim:
                    hit |= passed[t]
                table = self.port_tables.get(d.name)
                if table is not None:
                    hit |= table[cols.sport[first] + 1] | table[cols.dport[first] + 1]
                packets = ALL_PACKETS if d.name in self.patterns else d.stream.packets
                claim_lim = np.where(hit, np.maximum(claim_lim, packets), claim_lim)
                names.append((d.name, hit))
            for k in np.flatnonzero(claim_lim).tolist():
                by_row[int(first[k])] = tuple(name for name, hit in names if hit[k])
        if self._table is None and len(self.dissectors) <= 32 and native.c_accum is not None:
            limits = self.reassembler.limits
            self._table = native.c_accum.StreamTable(
                [(d.stream.packets, d.stream.count_after) for d in self.dissectors.values()],
                limits.stream_bytes, limits.segments, limits.total_bytes,
            )  # fmt: skip
        if self._table is not None and cols.pay_start is not None and cols.pay_end is not None:
            self._feed(cols, stream, cand, first, names)
            return
        claimers, claimer_lim = first[claim_lim > 0], claim_lim[claim_lim > 0]
        if not self.open and len(claimers) == 0:
            return
        hashes = _conn_hashes(cols, cand)
        member = np.zeros(len(cand), dtype=bool)
        if self.open:
            if self._hash_array is None or self._limit_array is None:
                by_hash: dict[int, int] = {}
                for key, h in self.open.items():
                    reads = ALL_PACKETS if key in self.tails else self.key_limit.get(key, self.limit)
                    by_hash[h] = max(by_hash.get(h, 0), reads)
                self._hash_array = np.fromiter(sorted(by_hash), dtype=np.uint64, count=len(by_hash))
                self._limit_array = np.array([by_hash[h] for h in self._hash_array.tolist()], dtype=np.int32)
            pos = np.minimum(np.searchsorted(self._hash_array, hashes), len(self._hash_array) - 1)
            known = self._hash_array[pos] == hashes
            # packets of a claimed connection past what its dissectors read matter only when they end it (or
            # carry payload its claimer counts a pattern in)
            member |= known & _within(ends[cand], stream[cand], has_payload[cand], self._limit_array[pos])
        if len(claimers):
            ch = _conn_hashes(cols, claimers)
            order = np.argsort(ch, kind="stable")
            ch, lim = ch[order], claimer_lim[order]
            pos = np.minimum(np.searchsorted(ch, hashes), len(ch) - 1)
            member |= (ch[pos] == hashes) & _within(ends[cand], stream[cand], has_payload[cand], lim[pos])
        chosen = cand[member]
        slow = cols.slow[chosen]
        if cols.pay_start is None or cols.pay_end is None or slow.all():  # no column payloads: Packets
            fields = None
        else:  # the fields offer needs, straight from the columns (no Packet objects)
            b = cols.batch
            v6 = (cols.ipver[chosen] == 6).tolist()
            start = (b.start[chosen] + cols.pay_start[chosen]).tolist()
            end = (b.start[chosen] + cols.pay_end[chosen]).tolist()
            fields = (
                v6, cols.src_hi[chosen].tolist(), cols.src_lo[chosen].tolist(), cols.dst_hi[chosen].tolist(),
                cols.dst_lo[chosen].tolist(), cols.sport[chosen].tolist(), cols.dport[chosen].tolist(),
                cols.tflags[chosen].tolist(), cols.tseq[chosen].tolist(), start, end, b.number[chosen].tolist(),
                b.ts[chosen].tolist(), cols.has_smac[chosen].tolist(), cols.smac[chosen].tolist(),
                cols.vlan[chosen].tolist(),
            )  # fmt: skip
        buf = cols.batch.buf
        slow_rows = slow.tolist()
        for k, (i, index, h) in enumerate(zip(chosen.tolist(), stream[chosen].tolist(), hashes[member].tolist(),
                                              strict=True)):  # fmt: skip
            hint = by_row.get(i, ()) if index == 0 else None
            if fields is None or slow_rows[k]:
                pkt = cols.packet(i)
                if pkt.src_ip is None or pkt.dst_ip is None:
                    continue
                src, dst = (pkt.src_ip, pkt.src_port or 0), (pkt.dst_ip, pkt.dst_port or 0)
                got = self.offer(pkt, index, hint)
            else:
                (v6, shi, slo, dhi, dlo, sport, dport, tfl, tseq, start, end, num, tss, has_mac, smac, vl) = fields
                width = 16 if v6[k] else 4
                src = (((shi[k] << 64) | slo[k]).to_bytes(width, "big"), sport[k])
                dst = (((dhi[k] << 64) | dlo[k]).to_bytes(width, "big"), dport[k])
                mac = smac[k].to_bytes(6, "big") if has_mac[k] else None
                got = self._offer(src, dst, tfl[k], max(tseq[k], 0), bytes(buf[start[k] : end[k]]), num[k], tss[k],
                                  mac, vl[k] if vl[k] >= 0 else None, index, hint)  # fmt: skip
            if got:
                key = conn_key(src, dst)
                if self.reassembler.claimed(key):
                    self.open[key] = h
                    self._hash_array = None

    def _feed(
        self,
        cols: Columns,
        stream: npt.NDArray[np.int32],
        cand: npt.NDArray[np.intp],
        first: npt.NDArray[np.intp],
        names: list[tuple[str, BOOL]],
    ) -> None:
        """``offer_batch`` with the C ``StreamTable``: every candidate row goes to it, in order."""
        assert cols.pay_start is not None and cols.pay_end is not None
        b = cols.batch
        n = len(b)
        claim = np.zeros(n, dtype=np.uint32)
        for k, (_name, hit) in enumerate(names):
            claim[first[hit]] |= np.uint32(1 << k)
        pay_start = b.start + cols.pay_start
        pay_end = b.start + cols.pay_end
        in_extra = np.zeros(n, dtype=np.uint8)
        extra = b""
        slow = cand[cols.slow[cand]]
        if len(slow):  # decoded by the reference decoder: their payload from their Packet
            parts: list[bytes] = []
            pos = 0
            for i in slow.tolist():
                payload = cols.packet(i).payload
                pay_start[i], pay_end[i] = pos, pos + len(payload)
                pos += len(payload)
                parts.append(payload)
            in_extra[slow] = 1
            extra = b"".join(parts)
        done = self._table.feed(
            cand.astype(np.int64, copy=False), b.buf, extra, cols.ipver, cols.src_hi, cols.src_lo, cols.dst_hi,
            cols.dst_lo, cols.sport, cols.dport, cols.tflags, cols.tseq, b.number, b.ts,
            cols.has_smac.view(np.uint8), cols.smac, cols.vlan, stream, claim, pay_start, pay_end,
            in_extra,
        )  # fmt: skip
        if done:
            self._hand(done)

    def _hand(self, conns: list[tuple[Any, ...]]) -> None:
        """Dissect connections the C ``StreamTable`` handed back: here, or in the second process once there are
        enough of them for it to pay."""
        if self._deep is None and self.deep_process and self._handed >= DEEP_PROCESS_AFTER:
            self.deep_process = False  # one attempt
            self._deep = _DeepProcess.start(self)
        self._handed += len(conns)
        if self._deep is not None:
            self._deep.put(conns)
            return
        for conn in conns:
            self._run(self._stream_of(conn))

    def _stream_of(self, conn: tuple[Any, ...]) -> TcpStream:
        """A connection the C ``StreamTable`` handed back, as ``Reassembler`` delivers it."""
        mask, closed, peer_ip, peer_port, halves = conn
        claimed_by = self._claimers.get(mask)
        if claimed_by is None:
            names = list(self.dissectors)
            claimed_by = self._claimers[mask] = tuple(names[k] for k in range(len(names)) if mask >> k & 1)
        cap = self.reassembler.limits.stream_bytes
        made = [half_stream(h[:8], h[8], h[9], cap) for h in halves]
        return TcpStream(
            capture=self.reassembler.capture,
            orig=made[0],
            resp=made[1] if len(made) > 1 else None,
            claimed_by=claimed_by,
            peer=(peer_ip, peer_port),
            closed=closed,
        )

    def _forget(self, key: ConnKey) -> None:
        self.key_limit.pop(key, None)
        self.tails.pop(key, None)
        if self.open.pop(key, None) is not None:
            self._hash_array = None

    def _dissect(self, stream: TcpStream, key: ConnKey | None = None) -> None:
        if key is None:
            key = conn_key((stream.orig.ip, stream.orig.port), stream.peer)
        tail = self.tails.get(key)
        if tail is not None:
            halves = [
                dataclasses.replace(h, counted=tail.counts(h.ip, h.port)) if h is not None else None
                for h in (stream.orig, stream.resp)
            ]
            assert halves[0] is not None
            stream = dataclasses.replace(stream, orig=halves[0], resp=halves[1])
        self._forget(key)
        self._run(stream)

    def _run(self, stream: TcpStream) -> None:
        """Hand a finished connection to the dissectors that claimed it."""
        first_frame = stream.orig.starts[0][1]
        for half in (stream.orig, stream.resp):
            if half is not None and half.truncated:
                self.truncated += 1
                self.first_truncated = self.first_truncated or half.starts[0][1]
        for name in stream.claimed_by:
            dissector = self.dissectors[name]
            try:
                self.inventory.add_observations(dissector.dissect_stream(stream))
            except MalformedPacket as exc:
                self.skips.add(f"{name}: {exc}", first_frame)
            except Exception as exc:  # a dissector bug must not lose the rest of the capture
                self.skips.add(f"{name} failed: {type(exc).__name__}: {exc}", first_frame)

    def finish(self) -> None:
        """The capture ended: dissect the connections still open, count what the caps cut."""
        re = self.reassembler
        refused = re.refused
        if self._table is not None:
            self._hand(self._table.finish())
            refused += self._table.counters()[1]
        if self._deep is not None:
            self._deep.close(self)
            self._deep = None
        for stream in re.finish():
            self._dissect(stream)
        cap = re.limits.stream_bytes
        if self.truncated:
            self.skips.add_count(
                f"tcp reassembly: direction longer than {cap} bytes or {re.limits.segments} segments, "
                "the rest not reassembled (count: directions)",
                self.truncated,
                self.first_truncated,
            )
        if refused:
            self.skips.add_count(
                f"tcp reassembly: {re.limits.total_bytes} bytes buffered in all, segment refused (count: segments)",
                refused,
                0,
            )


#: Connections dissected in the calling process before stream dissection moves to a second one (forking and
#: merging back cost a few milliseconds: not worth it for small captures).
DEEP_PROCESS_AFTER = 512
#: Connections sent to the second process at a time.
DEEP_SEND_EVERY = 256
#: Batches of connections received by the second process and not dissected yet, at most.
DEEP_IN_FLIGHT = 64


def _second_cpu() -> bool:
    """Whether this process may run on two CPUs and can fork (``_DeepProcess``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return cpus >= 2 and "fork" in multiprocessing.get_all_start_methods()


class _DeepProcess:
    """Stream dissection in a second process: the fast path hands it finished connections (as the C
    ``StreamTable`` gives them) through a pipe and reads and decodes on meanwhile; the process dissects them in
    order, exactly as ``_Streams._run`` does here, into an inventory builder and a skip counter of its own, which
    it sends back when the capture ends; they are merged as if the connections had been dissected here (its
    connections all came after the ones dissected here). The pipe's buffer bounds what is in flight: when the
    second process is behind, ``put`` waits for it. A forked child of the analysing process: it opens nothing,
    sends nothing but its answer to its parent, and never touches a network interface."""

    def __init__(self, process: Any, pipe: Any) -> None:
        self.process = process
        self.pipe = pipe
        self.pending: list[tuple[Any, ...]] = []
        self.taken = 0
        """Connections handed to the process (sent, or lost with it)."""

    @classmethod
    def start(cls, streams: _Streams) -> _DeepProcess | None:
        """The second process, forked now (it inherits ``streams``: its dissectors, claimer names, limits); None
        when it cannot be started (dissection then stays in this process)."""
        try:
            context = multiprocessing.get_context("fork")
            mine, theirs = context.Pipe()
            process = context.Process(target=_deep_main, args=(streams, theirs, mine), daemon=True)
            process.start()
        except (AssertionError, OSError, ValueError):  # e.g. a daemonic pool worker may not have children
            return None
        theirs.close()
        return cls(process, mine)

    def put(self, conns: list[tuple[Any, ...]]) -> None:
        self.pending.extend(conns)
        self.taken += len(conns)
        if len(self.pending) >= DEEP_SEND_EVERY:
            self._send()

    def _send(self) -> None:
        if self.pending:
            with contextlib.suppress(OSError):  # the process died: close() says what was lost
                self.pipe.send(self.pending)
            self.pending = []

    def close(self, streams: _Streams) -> None:
        """Wait for the process's answer and merge it into ``streams``' inventory and skips; if it died, count
        the connections it took as not dissected (nothing is lost silently)."""
        self._send()
        answer = None
        with contextlib.suppress(OSError, EOFError):
            self.pipe.send(None)
            answer = self.pipe.recv()
        self.pipe.close()
        self.process.join()
        if answer is None:
            streams.skips.add_count(
                f"stream dissection process ended unexpectedly (exit code {self.process.exitcode}): "
                "its connections not dissected (count: connections)",
                self.taken,
                0,
            )
            return
        inventory, skips, truncated, first_truncated = answer
        streams.inventory.merge(inventory)
        streams.skips.merge(skips)
        streams.truncated += truncated
        streams.first_truncated = streams.first_truncated or first_truncated


def _deep_main(streams: _Streams, pipe: Any, parent_end: Any) -> None:
    """The second process of ``_DeepProcess``: dissect what arrives until None, answer, exit."""
    parent_end.close()
    streams.inventory = InventoryBuilder()
    streams.skips = _SkipCounter()
    streams.truncated = streams.first_truncated = 0
    streams._table = None
    # a thread takes what arrives off the pipe at once (the parent's send would otherwise wait for each batch to be
    # dissected before the next one is written); a bounded queue still makes the parent wait when this is behind
    arrived: queue.Queue[bytes | None] = queue.Queue(maxsize=DEEP_IN_FLIGHT)

    def receive() -> None:
        try:
            while True:
                arrived.put(pipe.recv_bytes())
        except (EOFError, OSError):
            arrived.put(None)

    # the reader needs the interpreter between two reads of a message: do not make it wait 5 ms each time
    sys.setswitchinterval(0.0002)
    threading.Thread(target=receive, daemon=True).start()
    with _fewer_collections():
        while True:
            message = arrived.get()
            conns = pickle.loads(message) if message is not None else None
            if conns is None:
                break
            for conn in conns:
                streams._run(streams._stream_of(conn))
    pipe.send((streams.inventory, streams.skips, streams.truncated, streams.first_truncated))
    pipe.close()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect the youngest generation every ``GC_THRESHOLD`` allocations (not every 700) while inside;
    cycles are still collected. The previous thresholds come back afterwards (they are process-wide)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


BOOL = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class _Tables:
    """What a selector selects, as lookup tables over ``value + 1`` (-1, "absent", falls on the False slot 0;
    any value past the table clips onto its False last slot): one gather per column instead of ``np.isin``."""

    udp: BOOL
    tcp: BOOL
    proto: BOOL
    ethertype: BOOL
    arp: bool
    head: int
    """Stream-head numbers below this are selected."""
    snap: frozenset[tuple[int, int]] = frozenset()
    """SNAP (OUI, protocol id) pairs selected (such frames are rare and decoded by the reference decoder)."""

    @classmethod
    def of(
        cls,
        udp: Iterable[int],
        tcp: Iterable[int],
        protos: Iterable[int],
        ethertypes: Iterable[int],
        arp: bool,
        head: int = 0,
        snap: frozenset[tuple[int, int]] = frozenset(),
    ) -> _Tables:
        def table(values: Iterable[int], size: int) -> BOOL:
            t = np.zeros(size + 2, dtype=bool)
            t[[v + 1 for v in values if 0 <= v < size]] = True
            return t

        return cls(table(udp, 65536), table(tcp, 65536), table(protos, 256), table(ethertypes, 65536), arp, head, snap)

    @classmethod
    def of_selector(cls, sel: Selector) -> _Tables:
        return cls.of(
            sel.udp_ports, sel.tcp_ports, sel.ip_protos, sel.ethertypes, sel.arp, sel.stream_head, sel.llc_snap
        )


def _selected(cols: Columns, tables: _Tables, stream: npt.NDArray[np.int32] | None = None) -> BOOL:
    """Rows of a batch that these ports, protocols, ethertypes, ARP and stream heads (``stream``: the batch's
    stream-head numbers, see ``inventory.streams``) select (``Registry.for_packet``)."""

    def hit(table: BOOL, column: npt.NDArray[np.int32]) -> BOOL:
        return cast(BOOL, np.take(table, column.astype(np.int64) + 1, mode="clip"))

    proto = cols.proto
    want = hit(tables.proto, proto) | hit(tables.ethertype, cols.ethertype)
    ported = cols.sport >= 0
    if tables.udp.any():
        want |= (proto == 17) & ported & (hit(tables.udp, cols.sport) | hit(tables.udp, cols.dport))
    if tables.tcp.any():
        want |= (proto == 6) & ported & (hit(tables.tcp, cols.sport) | hit(tables.tcp, cols.dport))
    if tables.arp:
        want |= cols.arp
    if tables.head and stream is not None and len(stream):
        want |= (stream >= 0) & (stream < tables.head)
    if tables.snap:
        for i in np.flatnonzero(cols.slow & (cols.ethertype < 0) & ~cols.arp).tolist():
            if cols.packet(i).llc_snap in tables.snap:
                want[i] = True
    return want


class _ReaderFacts(Protocol):
    """What both kinds of reader tell about the file they read."""

    @property
    def format(self) -> str: ...
    @property
    def linktypes(self) -> tuple[int, ...]: ...
    @property
    def size(self) -> int: ...
    def digest(self) -> str: ...
    def sha256(self) -> str | None: ...


def _capture_info(
    path: str,
    reader: _ReaderFacts,
    packets: int,
    total: int,
    first_ns: int | None,
    last_ns: int | None,
    error: CaptureError | None,
) -> CaptureInfo:
    """The CaptureInfo of a file once it has been read (its id comes from its digest)."""
    digest = reader.digest()
    return CaptureInfo(
        id=CaptureId(digest.split(":", 1)[1][:16]), digest=digest, sha256=reader.sha256(), path=path,
        size=reader.size, format=reader.format, linktypes=reader.linktypes, packets=packets, bytes=total,
        first_ns=first_ns, last_ns=last_ns, error=None if error is None else error.message,
        error_offset=None if error is None else error.offset,
    )  # fmt: skip


class _HasRecords(Protocol):
    def records(self) -> FlowRecords: ...


class FlowSource(Protocol):
    """A flow table (live or as columns): gives its flows once devices are resolved."""

    def flows(self, device_of: Callable[[bytes, int], DeviceId | None], capture: CaptureId) -> list[Flow]: ...


FileOutcome = tuple[CaptureInfo, FlowSource, list[Skipped], list[CaptureError], InventoryBuilder | None] | CaptureError
"""What analysing one file gives: its results (and its own inventory in worker processes), or the error."""

_WORKER_ENGINE: Engine | None = None
"""The engine whose settings worker processes use (inherited through fork)."""


def _part_worker(
    job: tuple[str, int, int, int, PcapngState | None],
) -> tuple[CaptureInfo, FlowRecords, list[Skipped], list[CaptureError], InventoryBuilder]:
    """Analyse one part of a file (in a worker process) into its own inventory and flow table."""
    path, begin, end, before, state = job
    engine = _WORKER_ENGINE if _WORKER_ENGINE is not None else Engine()
    inventory = InventoryBuilder()
    reader = BatchReader.part(path, begin, end, before, state)
    info, table, skips, errors = engine._analyze_file_fast(path, CaptureId("#0"), inventory, None, reader)
    return info, table.records(), skips, errors, inventory  # the builder pickles its C tables as bytes


def _worker(index: int, path: str) -> FileOutcome:
    engine = _WORKER_ENGINE if _WORKER_ENGINE is not None else Engine()
    return engine._one_file(index, path, None, None, fast=True)


def analyze(paths: Sequence[str | os.PathLike[str]], progress: ProgressCallback | None = None) -> RunResult:
    """Analyse ``paths`` with the default dissectors (convenience for callers and tests)."""
    return Engine().analyze(paths, progress)


def assess_store(store: Store, severities: dict[str, Severity] | None = None) -> Analysis:
    """Everything in ``store`` with the base rules' findings, live monitoring's new devices and paths included
    (suppressions are the caller's to apply: ``Store.active_suppressions``)."""
    events = store.events(kinds=[EventKind.NEW_DEVICE.value, EventKind.NEW_PATH.value])
    return assess(store.analysis(), severities=severities, events=events)


def assess(
    analysis: Analysis,
    catalog: Catalog | None = None,
    severities: dict[str, Severity] | None = None,
    events: Sequence[Event] = (),
) -> Analysis:
    """``analysis`` with the findings of the base risk rules (``risk``) over its devices and map edges, with
    ``severities`` overriding rules' own; a rule that fails is reported in ``errors``, the others' kept."""
    from wardwatch.risk import RiskContext, default_rules, evaluate

    ctx = RiskContext(analysis.devices, analysis.edges, catalog if catalog is not None else builtin_catalog(), events)
    findings, problems = evaluate(default_rules(), ctx, severities)
    return dataclasses.replace(analysis, findings=findings, errors=(*analysis.errors, *problems))
