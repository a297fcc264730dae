"""The monitor's logic (segments, flushes, events, status) over a replayed source and a real store.

``Replay`` stands in for ``LiveCapture``, which needs root and an interface (the ward-lab tests in
tests/lab/test_monitor_live.py run the real one): it hands the monitor batches read from capture files, and
the kernel figures a test sets. The clock is the tests' own, so silence is decided without waiting.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, write_pcap
from wardwatch.capture.batch import BatchReader, RecordBatch
from wardwatch.capture.live import RingStats
from wardwatch.engine import Engine
from wardwatch.engine.live import Monitor, MonitorOptions
from wardwatch.errors import InterfaceError
from wardwatch.model.event import EventKind
from wardwatch.store import Store

T0 = 1_796_000_000_000_000_000  # 2026-12


class Replay:
    """A ``LiveSource`` that hands over what the test fed it (see the module docstring)."""

    linktype = 1

    def __init__(self, interface: str = "span0") -> None:
        self.interface = interface
        self.pending: list[RecordBatch] = []
        self.opened = False
        self.fail_open: str | None = None
        self.fail_read: str | None = None
        self.drops = 0
        self.outgoing = 0
        self.seen = 0
        self._r, self._w = os.pipe()
        os.write(self._w, b"x")  # always readable: the monitor's poll returns at once

    @property
    def is_open(self) -> bool:
        return self.opened

    def open(self) -> None:
        if self.fail_open:
            raise InterfaceError(self.interface, self.fail_open)
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def fileno(self) -> int:
        return self._r

    def check(self) -> None:
        if self.fail_read:
            raise InterfaceError(self.interface, self.fail_read)

    def wait(self, timeout_s: float) -> bool:
        if not self.pending and not self.fail_read:
            time.sleep(min(timeout_s, 0.01))
        return bool(self.pending) or bool(self.fail_read)

    def feed(self, path: Path, shift_ns: int = 0) -> None:
        """Queue every record of ``path`` (times moved by ``shift_ns``)."""
        for b in BatchReader(path):
            self.pending.append(
                dataclasses.replace(
                    b, buf=bytes(b.buf), start=b.start.copy(), caplen=b.caplen.copy(), wirelen=b.wirelen.copy(),
                    ts=b.ts + shift_ns, number=b.number.copy(), linktype=b.linktype.copy(), iface=b.iface.copy(),
                    offset=b.offset.copy(),
                )
            )  # fmt: skip

    def batches(self, first_number: int = 1) -> Iterator[RecordBatch]:
        while self.pending:
            b = self.pending.pop(0)
            self.seen += len(b)
            yield dataclasses.replace(b, number=b.number - b.number[0] + first_number)
            first_number += len(b)

    def stats(self) -> RingStats:
        return RingStats(self.seen + self.drops, self.drops, 0, self.outgoing, len(self.pending), 8)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    st = Store.open(db_url)
    yield st
    st.close()


def monitor(store: Store, source: Replay, clock: Clock, **options: float) -> Monitor:
    # flushes only when a test says, in this process unless a test asks for the writer process
    opts = MonitorOptions(**{"flush_s": 3600.0, "segment_s": 3600.0, "writer_process": False, **options})  # type: ignore[arg-type]
    return Monitor(Engine(), store, [source], "test", opts, sensor="sensor1", clock=clock)


def sample_shift() -> int:
    """How far to move SAMPLE's times so that its last packet is at T0."""
    last = max(int(b.ts.max()) for b in BatchReader(SAMPLE))
    return T0 - last


def test_a_run_stores_what_a_file_analysis_would_and_reports_every_device_and_path(store: Store) -> None:
    source, clock = Replay(), Clock()
    mon = monitor(store, source, clock)
    mon.start()
    source.feed(SAMPLE, sample_shift())
    mon.settle()
    mon.close()
    reference = Engine().analyze([SAMPLE]).analysis
    devices = store.devices()
    assert {d.id for d in devices} == {d.id for d in reference.devices}
    ref_by_id = {d.id: d for d in reference.devices}
    for d in devices:  # same identities as the file path (the same fast path read the same frames)
        r = ref_by_id[d.id]
        assert (d.vendor, d.model, d.device_type, d.firmware, d.os) == (
            r.vendor,
            r.model,
            r.device_type,
            r.firmware,
            r.os,
        )
    assert len(store.flows()) == len(reference.flows)
    events = store.events()
    new_devices = {e.device for e in events if e.kind is EventKind.NEW_DEVICE}
    assert new_devices == {d.id for d in devices}
    paths = {(e.device, e.peer, e.service) for e in events if e.kind is EventKind.NEW_PATH}
    assert paths == {(e.src_device, e.dst_device, e.service) for e in reference.edges}
    assert [e.id for e in events] == sorted(e.id for e in events) and all(e.sensor == "sensor1" for e in events)
    (status,) = store.status()
    assert (status.interface, status.state, status.packets) == (
        "span0",
        "stopped",
        sum(c.packets for c in reference.captures),
    )
    (capture,) = store.captures()
    assert capture.format == "live" and capture.path == "live:sensor1:span0"


def test_a_restart_continues_where_it_left_off(store: Store) -> None:
    """Known devices and paths are the baseline of the next run: the same traffic again raises nothing."""
    shift = sample_shift()
    for run in range(2):
        source, clock = Replay(), Clock()
        mon = monitor(store, source, clock)
        mon.start()
        source.feed(SAMPLE, shift)
        mon.settle()
        mon.close()
        kinds = [e.kind for e in store.events()]
        if run == 0:
            first = len(kinds)
            assert EventKind.NEW_DEVICE in kinds
    assert len(store.events()) == first
    assert len(store.captures()) == 2  # one segment per run


def test_learning_takes_devices_and_paths_into_the_baseline_without_events(store: Store) -> None:
    source, clock = Replay(), Clock()
    mon = monitor(store, source, clock, learn_s=3600.0)
    mon.start()
    source.feed(SAMPLE, sample_shift())
    mon.settle()
    mon.close()
    assert store.devices()
    assert not [e for e in store.events() if e.kind in (EventKind.NEW_DEVICE, EventKind.NEW_PATH)]


def _frames(tmp_path: Path, name: str, frames: list[bytes], ts: int) -> Path:
    return write_pcap(tmp_path / name, [(ts + i * 1000, f) for i, f in enumerate(frames)])


def test_identity_change_silence_and_return(store: Store, tmp_path: Path) -> None:
    from generate_ward import SWITCH_MAC, arp, lldp_frame

    switch = SWITCH_MAC[:5] + b"\x30"  # the LLDP frame's sender
    hello = arp(1, switch, bytes([10, 1, 0, 2]), b"\x00" * 6, bytes([10, 1, 0, 1]), 0, b"\xff" * 6)
    source, clock = Replay(), Clock()
    mon = monitor(store, source, clock, silent_after_s=60.0)
    mon.start()
    source.feed(_frames(tmp_path, "a.pcap", [hello], T0))
    mon.settle()
    mon.flush(False)
    device = f"mac:{switch.hex(':')}"
    assert [e.device for e in store.events() if e.kind is EventKind.NEW_DEVICE] == [device]
    before = store.identities()[device]
    clock.now = T0 + 10**9
    source.feed(_frames(tmp_path, "b.pcap", [lldp_frame()], clock.now))
    mon.settle()
    mon.flush(False)
    after = store.identities()[device]
    assert after != before
    (change,) = [e for e in store.events() if e.kind is EventKind.IDENTITY_CHANGED]
    assert change.device == device
    changed = dict(change.detail)
    assert changed and all(" -> " in v for v in changed.values())
    for field, (old, new) in zip(
        ("vendor", "model", "device_type", "firmware", "os"), zip(before, after, strict=True), strict=True
    ):
        assert (field in changed) == (old != new and new is not None), field
    # quiet for 61 s: silent (once), then heard again: back
    clock.now = T0 + 62 * 10**9
    mon.flush(False)
    mon.flush(False)
    assert [e.device for e in store.events() if e.kind is EventKind.DEVICE_SILENT] == [device]
    source.feed(_frames(tmp_path, "c.pcap", [hello], clock.now))
    mon.settle()
    mon.flush(False)
    assert [e.device for e in store.events() if e.kind is EventKind.DEVICE_BACK] == [device]
    mon.close()


def test_segments_end_and_connections_open_across_them_are_dissected(store: Store) -> None:
    """A segment that ends is its own capture; the HL7/DICOM connections still open in it are dissected then."""
    source, clock = Replay(), Clock()
    mon = monitor(store, source, clock)
    mon.start()
    source.feed(SAMPLE, sample_shift())
    mon.settle()
    mon.flush(True)  # the segment ends here
    assert len(store.captures()) == 1
    source.feed(SAMPLE, sample_shift() + 10**9)
    mon.settle()
    mon.close()
    captures = store.captures()
    assert len(captures) == 2 and len({c.id for c in captures}) == 2
    reference = Engine().analyze([SAMPLE]).analysis
    attrs = {(e.attribute, e.value) for d in store.devices() for e in d.evidence}
    ref_attrs = {(e.attribute, e.value) for d in reference.devices for e in d.evidence}
    assert {a for a in ref_attrs if a[0] in ("ae_title", "application", "implementation")} <= attrs


def test_kernel_drops_and_outgoing_frames_are_counted_never_silent(store: Store) -> None:
    source, clock = Replay(), Clock()
    mon = monitor(store, source, clock)
    mon.start()
    source.feed(SAMPLE, sample_shift())
    mon.settle()
    source.drops, source.outgoing = 17, 2
    mon.flush(False)
    mon.close()
    skipped = {s.reason: s.count for s in store.skipped()}
    assert skipped["dropped by the kernel on span0 (capture ring full): not analysed"] == 17
    assert skipped["sent by this host on span0: not analysed (a silent sensor sends nothing)"] == 2
    (loss,) = [e for e in store.events() if e.kind is EventKind.CAPTURE_LOSS]
    assert dict(loss.detail) == {"drops": "17", "interface": "span0"}
    (status,) = store.status()
    assert (status.drops, status.outgoing) == (17, 2)


def test_an_interface_lost_while_reading_is_retried_and_its_return_reported(store: Store) -> None:
    source, clock = Replay(), Clock()
    mon = monitor(store, source, clock)
    mon.start()
    source.fail_read = "capture stopped: No such device"
    for _ in range(100):  # the reader thread meets the failure; the monitor's next step handles it
        mon.step()
        if not source.is_open:
            break
    assert not source.is_open and store.status()[0].state == "lost"
    source.fail_read = None
    source.fail_open = "no such interface in this network namespace"
    mon._reopen(float("inf"))  # the retry comes (RETRY_S later): still gone, reported once
    source.fail_open = None
    mon._reopen(float("inf"))
    source.feed(SAMPLE, sample_shift())
    mon.settle()
    mon.close()
    kinds = [e.kind for e in store.events()]
    assert kinds.count(EventKind.INTERFACE_LOST) == 2  # the read failure, then the failed reopening
    assert kinds.count(EventKind.INTERFACE_BACK) == 1
    assert store.devices(), "what arrived after the return was analysed"


def test_writes_in_a_forked_writer_give_what_writes_in_process_give(db_url: str, tmp_path: Path) -> None:
    """The writer child's snapshot, its ingest and the state it sends back: the same store, the same events."""
    results = []
    for writer in (False, True):
        url = db_url if writer is False else (str(tmp_path / "forked.db") if "://" not in db_url else None)
        if url is None:  # a second PostgreSQL database would need another fixture: compare on SQLite then
            url = str(tmp_path / "inproc.db")
        st = Store.open(url)
        try:
            source, clock = Replay(), Clock()
            mon = monitor(st, source, clock, writer_process=writer)
            mon.start()
            source.feed(SAMPLE, sample_shift())
            mon.settle()
            mon.flush(False)  # forked: this returns at once; the next flush collects the child's results
            mon.flush(False)
            mon.close()
            assert mon.write_failures == 0
            results.append(
                (
                    sorted((d.id, d.vendor, d.model, d.device_type, d.os) for d in st.devices()),
                    len(st.flows()),
                    sorted((e.kind, e.device or "", e.peer or "") for e in st.events()),
                    mon.events_logged,
                )
            )
        finally:
            st.close()
    assert results[0] == results[1]
    assert results[0][3] == len(results[0][2]) > 0


def test_two_interfaces_feed_one_inventory_and_report_their_own_figures(store: Store, tmp_path: Path) -> None:
    from generate_ward import arp

    a, b = Replay("span0"), Replay("span1")
    clock = Clock()
    mon = Monitor(
        Engine(), store, [a, b], "test", MonitorOptions(flush_s=3600, writer_process=False), sensor="s", clock=clock
    )
    mon.start()
    mac_a, mac_b = bytes.fromhex("020000000a01"), bytes.fromhex("020000000b01")
    a.feed(
        _frames(
            tmp_path,
            "a.pcap",
            [arp(1, mac_a, bytes([10, 0, 0, 1]), bytes(6), bytes([10, 0, 0, 9]), 0, b"\xff" * 6)] * 3,
            T0,
        )
    )
    b.feed(
        _frames(
            tmp_path,
            "b.pcap",
            [arp(1, mac_b, bytes([10, 0, 1, 1]), bytes(6), bytes([10, 0, 1, 9]), 0, b"\xff" * 6)] * 5,
            T0,
        )
    )
    mon.settle()
    mon.close()
    assert {d.id for d in store.devices()} >= {"mac:02:00:00:00:0a:01", "mac:02:00:00:00:0b:01"}
    status = {s.interface: s for s in store.status()}
    assert (status["span0"].packets, status["span1"].packets) == (3, 5)
    (capture,) = store.captures()
    assert capture.packets == 8 and capture.path == "live:s:span0,span1"


def test_the_capture_and_monitor_code_never_sends() -> None:
    """Receive-only by construction: no send call in the live capture or the monitor, and the only socket they
    make is the capture's own (AF_PACKET, bound for reception; its ring is an RX ring)."""
    import ast

    import wardwatch.capture.live
    import wardwatch.engine.live

    sockets = {}
    for module in (wardwatch.capture.live, wardwatch.engine.live):
        assert module.__file__
        text = Path(module.__file__).read_text()
        calls = [
            node.func.attr
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        ]
        assert not set(calls) & {"send", "sendto", "sendmsg", "sendall", "sendfile"}, module.__name__
        assert "PACKET_TX_RING" not in text and "SOCK_DGRAM" not in text and "AF_INET" not in text
        sockets[module.__name__] = calls.count("socket")
    assert sockets == {"wardwatch.capture.live": 1, "wardwatch.engine.live": 0}


def test_raw_frames_go_to_rotating_pcapng_files_that_read_back_exactly(store: Store, tmp_path: Path) -> None:
    from wardwatch.capture.rotate import PcapngRotator

    rotator = PcapngRotator(tmp_path / "raw", [("span0", 1)], max_bytes=200_000, max_seconds=0, keep=3)
    source, clock = Replay(), Clock()
    mon = Monitor(
        Engine(), store, [source], "test", MonitorOptions(flush_s=3600, writer_process=False), clock=clock,
        rotator=rotator,
    )  # fmt: skip
    mon.start()
    for k in range(5):  # five batches of ~450 kB: every one ends its file (files end at batch boundaries)
        source.feed(SAMPLE, k * 10**12)
    mon.settle()
    mon.close()
    files = sorted((tmp_path / "raw").iterdir())
    assert len(files) == 3 and files == rotator.files  # five were written; the oldest went beyond keep=3
    kept = [r for path in files for b in BatchReader(path) for r in (b.record(i) for i in range(len(b)))]
    original = [r for b in BatchReader(SAMPLE) for r in (b.record(i) for i in range(len(b)))]
    expected = [(r.ts_ns + k * 10**12, r.data, r.wirelen) for k in (2, 3, 4) for r in original]
    assert [(r.ts_ns, r.data, r.wirelen) for r in kept] == expected
    assert {r.interface for r in kept} == {0}
    tshark = shutil.which("tshark")
    if tshark:  # Wireshark reads them too, with the interface's name
        out = subprocess.run(
            [tshark, "-r", str(files[0]), "-T", "fields", "-e", "frame.interface_name"],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout.split()  # fmt: skip
        assert out == ["span0"] * len(original)
