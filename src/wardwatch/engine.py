"""The one place that wires capture -> dissect -> inventory -> (risk) -> store.

``analyze`` reads capture files one after the other, decodes every record, feeds flows and the inventory,
offers packets to the dissectors that want them, and resolves devices at the end. Nothing is dropped
silently: packets that could not be fully analysed are counted per reason in ``Analysis.skipped``, and a file
that cannot be read to its end keeps everything before the damage (``CaptureInfo.error``).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

from wardwatch.capture import decode, open_capture
from wardwatch.capture.batch import BatchReader, PcapngState, scan_parts
from wardwatch.capture.interface import TS_INVALID
from wardwatch.capture.vector import Columns, decode_batch
from wardwatch.dissect import MalformedPacket, Registry, Selector, default_registry
from wardwatch.errors import CaptureError, UnsupportedLinkTypeError
from wardwatch.inventory import FlowTable, InventoryBuilder, MapEdges, Timeouts, preload_registry
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
    Skipped,
    flow_sort_key,
)
from wardwatch.model.packet import RAW_ALIASES

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
    ) -> None:
        self.registry = registry if registry is not None else default_registry()
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
        resolution = inventory.resolve(rename)
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
        table = new_flow_table(provisional, self.timeouts)
        skips = _SkipCounter()
        errors: list[CaptureError] = []
        unsupported: set[int] = set()
        packets = total_bytes = 0
        first_ns: int | None = None
        last_ns: int | None = None
        error: CaptureError | None = None
        registry = self.registry
        plain = _Tables.of(*registry.wanted(), registry.arp_wanted, registry.plain_head)
        tested = [(sel, _Tables.of_selector(sel)) for sel in registry.tested()]
        heads = StreamHeads(registry.head_limit) if registry.head_limit else None
        no_streams = np.zeros(0, dtype=np.int32)
        supported = np.array(sorted(SUPPORTED_LINKTYPES), dtype=np.int32)
        try:
            for batch in reader:
                n = len(batch)
                packets += n
                total_bytes += int(batch.wirelen.sum())
                ts_ok = batch.ts != TS_INVALID
                link = batch.linktype
                if n and (link == link[0]).all():  # the usual batch: one link type (np.isin costs more)
                    link_ok = np.full(n, int(link[0]) in SUPPORTED_LINKTYPES)
                else:
                    link_ok = np.isin(link, supported)
                usable = ts_ok & link_ok
                if not ts_ok.all():
                    for number in batch.number[~ts_ok].tolist():
                        skips.add(BAD_TIME, number)
                if not link_ok.all():
                    for i in np.flatnonzero(ts_ok & ~link_ok).tolist():
                        lt = int(batch.linktype[i])
                        if lt not in unsupported:
                            unsupported.add(lt)
                            errors.append(
                                UnsupportedLinkTypeError(
                                    path,
                                    int(batch.offset[i]),
                                    f"link type {lt} is not supported; its packets are skipped",
                                )
                            )
                        skips.add(f"unsupported link type {lt}", int(batch.number[i]))
                if ts_ok.any():
                    valid_ts = batch.ts[ts_ok]
                    lo, hi = int(valid_ts.min()), int(valid_ts.max())
                    first_ns = lo if first_ns is None else min(first_ns, lo)
                    last_ns = hi if last_ns is None else max(last_ns, hi)
                cols = decode_batch(batch)
                rows = np.flatnonzero(usable)
                for i, problem in sorted(cols.problems.items()):
                    if usable[i]:
                        skips.add(problem, int(batch.number[i]))
                later = usable & (cols.frag == 2)
                for number in batch.number[later].tolist():
                    skips.add(FRAGMENT, number)
                inventory.add_columns(cols, provisional, rows)
                table.add(cols, usable)
                stream = heads.index_columns(cols, rows) if heads is not None else no_streams
                want = _selected(cols, plain, stream)
                for sel, tables in tested:  # selected, and passing the payload test
                    rows = np.flatnonzero(_selected(cols, tables, stream) & usable & ~want)
                    if len(rows) and sel.payload is not None:
                        test = sel.payload
                        want[rows[cols.payload_test(rows, test.offset, test.mask, test.value, test.min_length)]] = True
                wanted = np.flatnonzero(want & usable)
                cols.prepare(wanted)
                if heads is None:
                    for i in wanted.tolist():
                        self._dissect(cols.packet(i), provisional, inventory, skips)
                else:
                    for i, number in zip(wanted.tolist(), stream[wanted].tolist(), strict=True):
                        self._dissect(cols.packet(i), provisional, inventory, skips, number)
                if progress is not None:
                    progress(path, reader.bytes_read, reader.size, packets)
                del rows
        except CaptureError as exc:
            error = exc
        finally:
            reader.close()
        if progress is not None:
            progress(path, reader.bytes_read, reader.size, packets)
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
                self._dissect(pkt, provisional, inventory, skips, heads.index(pkt) if heads is not None else -1)
        except CaptureError as exc:
            error = exc
        finally:
            reader.close()
        if progress is not None:
            progress(path, reader.bytes_read, reader.size, packets)
        info = _capture_info(path, reader, packets, total_bytes, first_ns, last_ns, error)
        if error is not None:
            errors.append(error)
        return info, table, skips.result(info.id), errors


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

    @classmethod
    def of(
        cls,
        udp: Iterable[int],
        tcp: Iterable[int],
        protos: Iterable[int],
        ethertypes: Iterable[int],
        arp: bool,
        head: int = 0,
    ) -> _Tables:
        def table(values: Iterable[int], size: int) -> BOOL:
            t = np.zeros(size + 2, dtype=bool)
            t[[v + 1 for v in values if 0 <= v < size]] = True
            return t

        return cls(table(udp, 65536), table(tcp, 65536), table(protos, 256), table(ethertypes, 65536), arp, head)

    @classmethod
    def of_selector(cls, sel: Selector) -> _Tables:
        return cls.of(sel.udp_ports, sel.tcp_ports, sel.ip_protos, sel.ethertypes, sel.arp, sel.stream_head)


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
