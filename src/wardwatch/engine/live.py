"""Live monitoring: frames from interfaces through the fast path into the store, continuously, with events.

A monitor run is a series of *segments*, each one capture in the store (format ``live``, path
``live:<sensor>:<interfaces>``) holding at most ``segment_s`` seconds of traffic. Every ``flush_s`` the open
segment is resolved and ingested again (the store replaces a capture's flows and merges its devices, so a
re-ingest is idempotent): a new device is in the database about one flush after its first frame, and the cost
of a flush is bounded by the segment, not by the whole run. When a segment ends, its claimed TCP connections
still open are dissected (as at the end of a file), it is ingested a last time and the next one starts.

After each ingest the monitor compares what the store now holds with what it held before, and logs events:
new devices, changed identities, paths not in the baseline (every path the store knew when the run started,
plus those learned during ``learn_s``), devices gone silent and back, kernel drops, interfaces lost and back.

The monitor only reads from its interfaces (``capture.live``) and writes to the store; it transmits nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import select
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from wardwatch.capture.batch import RecordBatch, join_batches
from wardwatch.capture.live import LiveSource, RingStats, link_down
from wardwatch.capture.rotate import PcapngRotator, RotationError
from wardwatch.engine import Engine, FastSession, _fewer_collections
from wardwatch.errors import InterfaceError
from wardwatch.inventory import InventoryBuilder, MapEdges
from wardwatch.model import Analysis, CaptureId, CaptureInfo, Device, DeviceId, DeviceKind, Edge
from wardwatch.model.event import Event, EventKind, InterfaceStatus
from wardwatch.model.flow import proto_name
from wardwatch.store.repository import Store

IDENTITY_FIELDS = ("vendor", "model", "device_type", "firmware", "os")
#: Seconds between two attempts to reopen a lost interface.
RETRY_S = 1.0
#: Longest wait for frames in one step of the loop (also how fast a stop request is noticed).
STEP_S = 0.2
#: Seconds between two ingests of every device of a segment; in between only devices whose addresses, identity
#: or evidence changed are merged (so the store's first/last-seen times and counts lag by up to this much).
FULL_S = 30.0
#: Niceness added to a writer child: on a busy CPU the capturing process is served first (writes only lag).
WRITER_NICE = 10
#: After a flush of T seconds, the next one comes no sooner than this many times T later (``MonitorOptions``).
FLUSH_DUTY = 2.0


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    """How often the monitor writes, how long a segment lasts, and when it calls a device silent."""

    flush_s: float = 1.0
    """Seconds between two ingests of the open segment (and status updates), at least: a write that took T
    seconds (in the writer child, or here) is followed by ``FLUSH_DUTY`` x T seconds without one, so that
    writing never takes more than a third of the sensor's CPU however large the segment (a new device then
    waits up to about 3 T + T: ~1 s on a ward, several seconds for a hospital's 2,000 devices at 300 k pkt/s)."""
    segment_s: float = 60.0
    """Seconds of traffic per stored capture segment."""
    silent_after_s: float = 600.0
    """A device seen during the run and quiet this long gets a ``device-silent`` event."""
    learn_s: float = 0.0
    """For this long after the start, new devices and paths join the baseline without events."""
    writer_process: bool = True
    """Write to the store in a forked child while this process reads on (where ``os.fork`` exists)."""
    backlog_mb: int = 256
    """Frames copied out of the kernel's rings and not yet analysed, at most (MiB, all interfaces each)."""


@dataclass(slots=True)
class _Interface:
    capture: LiveSource
    state: str = "capturing"
    message: str = ""
    packets: int = 0
    bytes: int = 0
    retry_at: float = 0.0
    last_packets: int = 0
    last_bytes: int = 0
    last_stats: RingStats | None = None
    """The kernel figures when they were last accounted (what is new since is accounted at the next flush)."""
    reader: _Reader | None = None


class _Reader:
    """Drains one interface's ring in a thread of its own, so that the ring empties while the monitor analyses
    and writes (the copying and the waits leave the interpreter to the monitor most of the time). With more than
    ``limit`` bytes copied out and not yet analysed it stops draining: the ring then fills and the kernel counts
    what it drops, so an overload is never silent."""

    def __init__(self, capture: LiveSource, limit: int, wake: threading.Event) -> None:
        self.capture = capture
        self.limit = limit
        self.wake = wake
        self.queue: deque[RecordBatch] = deque()
        self.bytes = 0
        self.lock = threading.Lock()
        self.error: InterfaceError | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"wardwatch-ring-{capture.interface}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                if self.bytes >= self.limit:
                    self.stopping.wait(0.005)
                    continue
                if not self.capture.wait(0.1):
                    continue
                self.capture.check()
                for batch in self.capture.batches():
                    with self.lock:
                        self.queue.append(batch)
                        self.bytes += len(batch.buf)
                    self.wake.set()
        except InterfaceError as exc:
            self.error = exc
        except Exception as exc:  # a bug here must not stop capture unseen: it is reported as a lost interface
            self.error = InterfaceError(self.capture.interface, f"capture failed: {type(exc).__name__}: {exc}")
        self.wake.set()

    def take(self) -> list[RecordBatch]:
        """The batches copied out so far, oldest first."""
        with self.lock:
            out = list(self.queue)
            self.queue.clear()
            self.bytes = 0
        return out

    @property
    def backlog(self) -> int:
        """Batches copied out of the ring and not yet analysed."""
        return len(self.queue)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


class _Background:
    """One thread doing this process's store writes in order (``Monitor._background``). ``lock`` is held while a
    job runs: a fork waits for the job in hand, so that no database connection is in use when it forks."""

    def __init__(self) -> None:
        self.jobs: deque[Callable[[], None]] = deque()
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.stopping = False
        self.errors = 0
        self.thread = threading.Thread(target=self._run, name="wardwatch-store", daemon=True)
        self.thread.start()

    def put(self, job: Callable[[], None]) -> None:
        self.jobs.append(job)
        self.ready.set()

    def _run(self) -> None:
        while True:
            self.ready.wait(0.5)
            self.ready.clear()
            while self.jobs:
                job = self.jobs.popleft()
                with self.lock:
                    try:
                        job()
                    except Exception:  # noqa: BLE001 - a failed status or event write must not end the writer
                        self.errors += 1
                        traceback.print_exc()
            if self.stopping and not self.jobs:
                return

    def stop(self) -> None:
        """Run what is queued, then end."""
        self.stopping = True
        self.ready.set()
        self.thread.join(timeout=60)


@dataclass(slots=True)
class _Writer:
    """A forked child writing a segment (``Monitor._fork_write``)."""

    pid: int
    fd: int
    segment: _Segment
    end_segment: bool
    started: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Segment:
    id: CaptureId
    started: float
    inventory: InventoryBuilder
    session: FastSession
    next_number: int = 1
    linktypes: set[int] = field(default_factory=set)
    stored: dict[str, tuple[object, ...]] = field(default_factory=dict)
    """What each device looked like when last ingested (``_shape``): unchanged ones are skipped between full
    ingests."""
    full_at: float = 0.0
    """When every device of the segment was last ingested (``time.monotonic``)."""


class Monitor:
    """Runs until ``stop`` is set (``run``); see the module docstring.

    ``warnings``: what the silence check found on the interfaces (kept in their status). ``on_event`` is called
    with every event once it is stored. ``clock`` gives nanoseconds since the epoch (the frames' clock).
    """

    def __init__(
        self,
        engine: Engine,
        store: Store,
        captures: Sequence[LiveSource],
        tool_version: str,
        options: MonitorOptions | None = None,
        sensor: str | None = None,
        on_event: Callable[[Event], None] | None = None,
        warnings: dict[str, str] | None = None,
        clock: Callable[[], int] = time.time_ns,
        rotator: PcapngRotator | None = None,
    ) -> None:
        if not captures:
            raise ValueError("a monitor needs at least one interface")
        self.engine = engine
        self.store = store
        self.rotator = rotator
        """Raw frames also written to rotating pcapng files (forensics), when given."""
        self.options = options or MonitorOptions()
        self.tool_version = tool_version
        self.sensor = sensor or socket.gethostname()
        self.on_event = on_event
        self.clock = clock
        self.interfaces = [_Interface(c, message=(warnings or {}).get(c.interface, "")) for c in captures]
        self.started_ns = clock()
        self._started = time.monotonic()
        self._seq = 0
        self._run = os.urandom(8).hex()  # two runs started in the same nanosecond still get their own segments
        self.identities: dict[str, tuple[str | None, ...]] = {}
        self.paths: set[tuple[str, str, int, int | None]] = set()
        self.last_seen: dict[str, int] = {}
        self.silent: set[str] = set()
        self.segments = 0
        self.events_logged = 0
        self._segment: _Segment | None = None
        self._wake = threading.Event()
        self._writer: _Writer | None = None
        self._background: _Background | None = None
        """With writer children: this process's own store writes (status, its events), in a thread, so that the
        capture never waits for the database a child is writing to."""
        self._count_lock = threading.Lock()
        self._write_after = 0.0
        """No new writer child before this time (``time.monotonic``): the duty cycle of ``flush_s``."""
        self.write_failures = 0
        """Writes whose child process failed (each was done again in this process or by the next write)."""
        self._next_flush = 0.0
        self.last_flush_s = 0.0
        """How long the last periodic flush took."""
        self._status_at = time.monotonic()

    # --- the loop --------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Capture, ingest every ``flush_s`` and log events until ``stop`` is set; then dissect what is still
        open, ingest it and mark the interfaces stopped. Interfaces that fail are retried, never fatal."""
        with _fewer_collections():  # as for files: the young generation collected every 10^5 allocations
            self.start()
            try:
                while not stop.is_set():
                    self.step()
            finally:
                self.close()

    def start(self) -> None:
        """Load the baseline (devices and paths the store knows), open the interfaces, begin a segment."""
        self.identities = self.store.identities()
        self.paths = {(e.src_device, e.dst_device, e.proto, e.port) for e in self.store.edges()}
        if self.options.writer_process and hasattr(os, "fork"):
            self._background = _Background()
        for iface in self.interfaces:
            self._open(iface, report=False)
        self._segment = self._new_segment()
        self._next_flush = time.monotonic() + self.options.flush_s

    def step(self) -> None:
        """One turn of the loop: retry lost interfaces, read what arrives within ``STEP_S``, flush when due
        (ending the segment when it is ``segment_s`` old)."""
        now = time.monotonic()
        self._reopen(now)
        self._read(min(STEP_S, max(0.0, self._next_flush - now)))
        now = time.monotonic()
        if now >= self._next_flush:
            assert self._segment is not None
            self.flush(now - self._segment.started >= self.options.segment_s)
            took = time.monotonic() - now
            self.last_flush_s = took
            self._next_flush = now + max(self.options.flush_s, took + FLUSH_DUTY * took)

    def close(self) -> None:
        """Analyse what has arrived, end the segment (its open connections dissected), mark the interfaces
        stopped."""
        self.settle()
        for iface in self.interfaces:
            self._stop_reader(iface)
        if self._background is not None:  # from here on this process writes itself, in order
            self._background.stop()
            self._background = None
        self.flush(True, last=True)
        if self.rotator is not None:
            self.rotator.close()
        for iface in self.interfaces:
            iface.capture.close()
            iface.state = "stopped"
        self._put_status()

    def _new_segment(self) -> _Segment:
        self._seq += 1
        names = ",".join(i.capture.interface for i in self.interfaces)
        key = f"live|{self.sensor}|{names}|{self.started_ns}|{self._run}|{self._seq}"
        seg_id = CaptureId(hashlib.sha256(key.encode()).hexdigest()[:16])
        inventory = InventoryBuilder()
        path = f"live:{self.sensor}:{names}"
        session = FastSession(self.engine, path, seg_id, inventory, deep_process=False)
        self.segments += 1
        return _Segment(seg_id, time.monotonic(), inventory, session)

    def _open(self, iface: _Interface, report: bool) -> None:
        try:
            iface.capture.open()
            iface.reader = _Reader(iface.capture, self.options.backlog_mb * 1024 * 1024, self._wake)
        except InterfaceError as exc:
            if iface.state != "lost" or iface.message != exc.message:
                iface.state, iface.message = "lost", exc.message
                self._log([self._event(EventKind.INTERFACE_LOST, f"{iface.capture.interface}: {exc.message}", iface)])
            iface.retry_at = time.monotonic() + RETRY_S
            return
        back = iface.state == "lost"
        if back and report:
            self._log([self._event(EventKind.INTERFACE_BACK, f"{iface.capture.interface}: capturing again", iface)])
        iface.state, iface.message = "capturing", "" if back else iface.message
        if back and report:
            self._put_status()

    def _reopen(self, now: float) -> None:
        for iface in self.interfaces:
            if iface.state == "lost" and now >= iface.retry_at:
                self._open(iface, report=True)

    def _lose(self, iface: _Interface, exc: InterfaceError) -> None:
        assert self._segment is not None
        self._stop_reader(iface)
        self._log(self._account(self._segment, iface))
        iface.capture.close()
        iface.state, iface.message = "lost", exc.message
        iface.retry_at = time.monotonic() + RETRY_S
        self._log([self._event(EventKind.INTERFACE_LOST, f"{iface.capture.interface}: {exc.message}", iface)])
        self._put_status()  # a state change is visible at once, not at the next flush

    def _read(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for frames on any interface; analyse every batch its reader copied out."""
        self._wake.wait(timeout_s)
        self._wake.clear()
        seg = self._segment
        assert seg is not None
        for iface in self.interfaces:
            reader = iface.reader
            if reader is None:
                continue
            for group in _groups(reader.take()):
                self._add(seg, iface, join_batches(group))
            if reader.error is not None:
                self._lose(iface, reader.error)

    def _stop_reader(self, iface: _Interface) -> None:
        """Stop ``iface``'s reader and analyse what it had copied out."""
        reader, iface.reader = iface.reader, None
        if reader is None:
            return
        reader.stop()
        assert self._segment is not None
        for batch in reader.take():
            self._add(self._segment, iface, batch)

    def settle(self) -> None:
        """Analyse everything the interfaces have received so far (the readers are stopped meanwhile, then
        started again): what ``close`` does before its last write, and what tests use to be exact."""
        assert self._segment is not None
        for iface in self.interfaces:
            if iface.reader is None:
                continue
            self._stop_reader(iface)
            try:
                for batch in iface.capture.batches():
                    self._add(self._segment, iface, batch)
            except InterfaceError as exc:
                self._lose(iface, exc)
                continue
            iface.reader = _Reader(iface.capture, self.options.backlog_mb * 1024 * 1024, self._wake)

    def _add(self, seg: _Segment, iface: _Interface, batch: RecordBatch) -> None:
        if self.rotator is not None:
            try:
                self.rotator.write(batch)
            except RotationError as exc:  # the disk is full or gone: analysis goes on, and says so
                self.rotator = None
                self._log([Event(EventKind.SENSOR_FAULT, self.clock(), f"raw capture to disk stopped: {exc}")])
        batch.number = np.arange(seg.next_number, seg.next_number + len(batch), dtype=np.int64)
        seg.session.add(batch)
        seg.next_number += len(batch)
        seg.linktypes.add(iface.capture.linktype)
        iface.packets += len(batch)
        iface.bytes += int(batch.wirelen.sum())

    # --- writing ---------------------------------------------------------------------------------------------

    def flush(self, end_segment: bool, last: bool = False) -> None:
        """Write the open segment to the store (dissecting its open connections first when it ends, and starting
        the next unless ``last``), log events, write the status.

        With ``writer_process`` the write runs in a forked copy of this process (``_fork_write``) while this one
        reads on; a write still running when the next is due makes that one wait for the next turn. The last
        write (``last``) is done here, after the running one has ended."""
        seg = self._segment
        assert seg is not None
        self._account_kernel(seg)
        self._collect_writer(block=last)
        if self._writer is None and (last or end_segment or time.monotonic() >= self._write_after):
            if last or not self.options.writer_process or not hasattr(os, "fork"):
                self._write(seg, end_segment)
            else:
                self._fork_write(seg, end_segment)
            if end_segment and not last:
                self._segment = self._new_segment()
        if not last:
            self._put_status()

    def _write(self, seg: _Segment, end_segment: bool) -> None:
        """Resolve and ingest ``seg``, then log what changed (see ``flush``)."""
        if end_segment:
            seg.session.finish()
        session = seg.session
        if session.packets or session.skips.counts:
            resolution = seg.inventory.resolve(None, self.engine.catalog)
            flows = session.table.records().columns(resolution, seg.id).sorted()
            info = CaptureInfo(
                id=seg.id, digest=f"live:{seg.id}", sha256=None, path=session.path, size=session.bytes,
                format="live", linktypes=tuple(sorted(seg.linktypes)), packets=session.packets, bytes=session.bytes,
                first_ns=session.first_ns, last_ns=session.last_ns,
            )  # fmt: skip
            full = end_segment or time.monotonic() - seg.full_at >= FULL_S
            devices = resolution.devices
            if not full:
                devices = tuple(d for d in devices if seg.stored.get(d.id) != _shape(d))
            else:
                seg.full_at = time.monotonic()
            seg.stored.update((d.id, _shape(d)) for d in devices)
            edges = MapEdges(flows)
            analysis = Analysis(
                captures=(info,), devices=devices, flows=flows, edges=edges, findings=(),
                skipped=tuple(session.skips.result(seg.id)), errors=tuple(str(e) for e in session.errors),
            )  # fmt: skip
            self.store.ingest(analysis, self.tool_version, self.clock())
            self._log(self._changes(resolution.devices, edges))
        self._log(self._silence())

    def _fork_write(self, seg: _Segment, end_segment: bool) -> None:
        """``_write`` in a forked child: a copy-on-write snapshot of this moment, written while this process
        reads on. The child sends back what it learnt (known identities and paths, last sightings, silences)."""
        read_fd, write_fd = os.pipe()
        # no database connection may cross the fork: SQLite keeps per-process lock state that a child would
        # inherit and corrupt the file with (and a PostgreSQL socket must not be shared); this process
        # reconnects when it next writes. The background writer is held between two of its jobs meanwhile.
        background = self._background
        if background is not None:
            background.lock.acquire()
        pid = -1
        try:
            self.store.engine.dispose()
            pid = os.fork()
        finally:
            if background is not None and pid != 0:
                background.lock.release()
        if pid == 0:  # the child: only the snapshot, a connection of its own, then _exit
            code = 1
            try:
                self._background = None  # its thread is not in the child: the child writes itself
                os.close(read_fd)
                os.nice(WRITER_NICE)  # capture is the foreground work: when CPU is short, writing waits
                logged = self.events_logged
                self._write(seg, end_segment)
                state = (self.identities, self.paths, self.last_seen, self.silent, self.events_logged - logged,
                         seg.stored, seg.full_at)  # fmt: skip
                with os.fdopen(write_fd, "wb") as out:
                    out.write(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
                code = 0
            except BaseException:  # noqa: BLE001 - reported on stderr; the parent sees the exit code
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(write_fd)
        self._writer = _Writer(pid, read_fd, seg, end_segment)

    def _collect_writer(self, block: bool) -> None:
        """Take the results of a finished writer child (waiting for it when ``block``); a child that failed
        has its write done again here, so that nothing it held is lost."""
        writer = self._writer
        if writer is None:
            return
        if not block and not select.select([writer.fd], [], [], 0)[0]:
            return
        chunks = []
        while chunk := os.read(writer.fd, 1 << 20):
            chunks.append(chunk)
        os.close(writer.fd)
        _, status = os.waitpid(writer.pid, 0)
        self._writer = None
        took = time.monotonic() - writer.started  # writing takes at most a third of the time (see flush_s)
        self._write_after = time.monotonic() + FLUSH_DUTY * took - self.options.flush_s
        data = b"".join(chunks)
        if os.waitstatus_to_exitcode(status) == 0 and data:
            identities, paths, last_seen, silent, logged, stored, full_at = pickle.loads(data)  # noqa: S301 - our child
            self.identities, self.paths, self.last_seen, self.silent = identities, paths, last_seen, silent
            with self._count_lock:
                self.events_logged += logged
            writer.segment.stored, writer.segment.full_at = stored, full_at
            return
        self.write_failures += 1
        code = os.waitstatus_to_exitcode(status)
        self._log(
            [
                Event(
                    EventKind.SENSOR_FAULT,
                    self.clock(),
                    f"a store write (child process) failed with exit code {code}: done again",
                )
            ]
        )
        if writer.end_segment:  # the segment's last write: do it here
            self._write(writer.segment, True)

    def _account_kernel(self, seg: _Segment) -> None:
        """Kernel drops and frames the host sent since the last flush, on every open interface."""
        events = []
        for iface in self.interfaces:
            if iface.capture.is_open:
                events += self._account(seg, iface)
        self._log(events)

    def _account(self, seg: _Segment, iface: _Interface) -> list[Event]:
        """What the kernel counted on ``iface`` since the last time: drops and frames this host sent go into the
        segment's ``skipped`` (stored with the traffic they belong to); drops are also an event."""
        stats = iface.capture.stats()
        before = iface.last_stats
        drops = stats.drops - (before.drops if before else 0)
        outgoing = stats.outgoing - (before.outgoing if before else 0)
        iface.last_stats = stats
        name = iface.capture.interface
        number = max(1, seg.next_number - 1)
        if outgoing > 0:
            seg.session.skips.add_count(
                f"sent by this host on {name}: not analysed (a silent sensor sends nothing)", outgoing, number
            )
        if drops <= 0:
            return []
        seg.session.skips.add_count(f"dropped by the kernel on {name} (capture ring full): not analysed", drops, number)
        text = f"{name}: the kernel dropped {drops} frames (capture ring full)"
        return [self._event(EventKind.CAPTURE_LOSS, text, iface, detail=(("drops", str(drops)),))]

    def _changes(self, devices: Sequence[Device], edges: Sequence[Edge]) -> list[Event]:
        """New devices, changed identities and new paths, against what the store held before this ingest."""
        learning = time.monotonic() - self._started < self.options.learn_s
        now = self.clock()
        events: list[Event] = []
        stored = self.store.identities()
        for device in devices:
            self.last_seen[device.id] = max(self.last_seen.get(device.id, 0), device.last_ns)
            if device.id in self.silent and now - device.last_ns < self.options.silent_after_s * 1e9:
                self.silent.discard(device.id)
                events.append(Event(EventKind.DEVICE_BACK, device.last_ns, f"{device.id} is heard again", device.id))
            new = stored.get(device.id)
            if new is None:  # folded into a MAC device by the store
                continue
            old = self.identities.get(device.id)
            if old is None:
                if not learning:
                    what = ", ".join(v for v in new if v) or "no identity yet"
                    events.append(
                        Event(
                            EventKind.NEW_DEVICE, device.first_ns, f"new device {device.id} ({what})", device.id,
                            detail=tuple((f, v) for f, v in zip(IDENTITY_FIELDS, new, strict=True) if v),
                        )
                    )  # fmt: skip
            elif old != new:
                changed = tuple(
                    (f, f"{a or '-'} -> {b or '-'}")
                    for f, a, b in zip(IDENTITY_FIELDS, old, new, strict=True)
                    if a != b and b is not None
                )
                if changed and not learning:
                    text = "; ".join(f"{f} {v}" for f, v in changed)
                    summary = f"{device.id}: {text}"
                    events.append(Event(EventKind.IDENTITY_CHANGED, device.last_ns, summary, device.id, detail=changed))
            self.identities[device.id] = new
        for edge in edges:
            key = (edge.src_device, edge.dst_device, edge.proto, edge.port)
            if key in self.paths:
                continue
            self.paths.add(key)
            if not learning:
                service = proto_name(edge.proto) if edge.port is None else f"{proto_name(edge.proto)}/{edge.port}"
                events.append(
                    Event(
                        EventKind.NEW_PATH, edge.first_ns, f"new path {edge.src_device} -> {edge.dst_device} {service}",
                        edge.src_device, edge.dst_device, service,
                        detail=(("flows", str(edge.flows)), ("packets", str(edge.packets))),
                    )
                )  # fmt: skip
        return sorted(events, key=lambda e: (e.ts_ns, e.kind, e.device or ""))

    def _silence(self) -> list[Event]:
        """Devices with a MAC address of their own, seen during this run, quiet for ``silent_after_s``."""
        now = self.clock()
        limit = int(self.options.silent_after_s * 1e9)
        events = []
        for device, last in sorted(self.last_seen.items()):
            if device in self.silent or not device.startswith(f"{DeviceKind.MAC.value}:") or now - last < limit:
                continue
            self.silent.add(device)
            quiet = (now - last) / 1e9
            events.append(
                Event(
                    EventKind.DEVICE_SILENT, now, f"{device} has sent nothing for {quiet:.0f} s", DeviceId(device),
                    detail=(("last_seen_ns", str(last)),),
                )
            )  # fmt: skip
        return events

    def _event(
        self, kind: EventKind, summary: str, iface: _Interface, detail: tuple[tuple[str, str], ...] = ()
    ) -> Event:
        return Event(kind, self.clock(), summary, detail=(("interface", iface.capture.interface), *detail))

    def _log(self, events: Sequence[Event]) -> None:
        if not events:
            return
        named = [e if e.sensor else dataclasses.replace(e, sensor=self.sensor) for e in events]
        if self._background is not None:
            self._background.put(lambda: self._store_events(named))
        else:
            self._store_events(named)

    def _store_events(self, events: list[Event]) -> None:
        stored = self.store.add_events(events)
        with self._count_lock:
            self.events_logged += len(stored)
        if self.on_event is not None:
            for e in stored:
                self.on_event(e)

    def _put_status(self) -> None:
        now = self.clock()
        mono = time.monotonic()
        interval_s, self._status_at = mono - self._status_at, mono
        rows = []
        for iface in self.interfaces:
            stats = iface.capture.stats()
            pps = (iface.packets - iface.last_packets) / interval_s if interval_s > 0 else 0.0
            bps = (iface.bytes - iface.last_bytes) / interval_s if interval_s > 0 else 0.0
            iface.last_packets, iface.last_bytes = iface.packets, iface.bytes
            rows.append(
                InterfaceStatus(
                    interface=iface.capture.interface, sensor=self.sensor, state=iface.state,
                    started_ns=self.started_ns, updated_ns=now, packets=iface.packets, bytes=iface.bytes,
                    kernel_packets=stats.packets, drops=stats.drops, outgoing=stats.outgoing,
                    queue_blocks=stats.blocks_waiting, ring_blocks=stats.ring_blocks,
                    backlog=iface.reader.backlog if iface.reader is not None else 0, packets_per_s=round(pps, 1),
                    bytes_per_s=round(bps, 1), message=_message(iface),
                )
            )  # fmt: skip
        if self._background is not None:
            self._background.put(lambda: self.store.put_status(rows))
        else:
            self.store.put_status(rows)


def _message(iface: _Interface) -> str:
    """The status message of ``iface``: why it is lost, that its link is down, or the silence check's note."""
    if iface.state == "capturing" and link_down(iface.capture.interface):
        return "; ".join(m for m in ("link down: nothing arrives", iface.message) if m)
    return iface.message


def _shape(device: Device) -> tuple[object, ...]:
    """What of ``device`` matters between two full ingests: its addresses, identity, names and which evidence
    it has (not when or how often each was seen)."""
    return (
        tuple((a.ip, a.vlan) for a in device.addresses), device.vlans, device.vendor, device.model,
        device.device_type, device.firmware, device.os, device.hostnames, device.router, device.via,
        tuple((e.attribute, e.value, e.source) for e in device.evidence),
    )  # fmt: skip


#: Ring blocks waiting in a reader's backlog are analysed this many bytes at a time at most (``_groups``).
JOIN_BYTES = 8 * 1024 * 1024


def _groups(batches: list[RecordBatch]) -> list[list[RecordBatch]]:
    """``batches`` in runs of up to ``JOIN_BYTES``: under load the backlog holds many 1 MiB blocks, and the
    fast path costs less per packet on a few large batches than on many small ones."""
    groups: list[list[RecordBatch]] = []
    size = JOIN_BYTES
    for batch in batches:
        if size + len(batch.buf) > JOIN_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(batch)
        size += len(batch.buf)
    return groups
