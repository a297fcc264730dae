"""``wardwatch events`` and ``status`` over a store a monitor wrote; the event formats a SIEM reads."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import EXE, run
from wardwatch.cli.monitor import event_cef, event_json, prometheus
from wardwatch.model.event import Event, EventKind, InterfaceStatus
from wardwatch.store import Store

EVENTS = [
    Event(EventKind.NEW_DEVICE, 1_796_000_000_123_000_000, "new device mac:00:09:fb:01:02:03 (Philips)",
          device=None, detail=(("vendor", "Philips Medical Systems"),), sensor="s1"),
    Event(EventKind.NEW_PATH, 1_796_000_001_000_000_000, "new path a -> b tcp/104", device=None, peer=None,
          service="tcp/104", detail=(("flows", "1"),), sensor="s1"),
    Event(EventKind.CAPTURE_LOSS, 1_796_000_002_000_000_000, "span0: the kernel dropped 5 frames | a=b \\ x",
          detail=(("drops", "5"), ("interface", "span0")), sensor="s1"),
]  # fmt: skip
STATUS = InterfaceStatus(
    interface="span0", sensor="s1", state="capturing", started_ns=1, updated_ns=1_796_000_002_000_000_000,
    packets=1000, bytes=64000, kernel_packets=1005, drops=5, outgoing=0, queue_blocks=1, ring_blocks=64, backlog=0,
    packets_per_s=250.0, bytes_per_s=16000.0, message="",
)  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "live.db"
    store = Store.open(str(path))
    try:
        store.add_events(EVENTS)
        store.put_status([STATUS])
    finally:
        store.close()
    return path


def test_events_are_json_lines_in_log_order(db: Path) -> None:
    proc = run("events", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["kind"] for x in lines] == ["new-device", "new-path", "capture-loss"]
    assert [x["id"] for x in lines] == [1, 2, 3]
    assert lines[0]["time"] == "2026-11-30T00:53:20.123Z" and lines[0]["ts_ns"] == 1_796_000_000_123_000_000
    assert lines[2]["detail"] == {"drops": "5", "interface": "span0"} and lines[2]["severity"] == 7
    proc = run("events", "--db", str(db), "--after", "1", "--kind", "capture-loss")
    assert [json.loads(x)["id"] for x in proc.stdout.splitlines()] == [3]


def test_cef_escapes_what_would_break_the_format() -> None:
    (stored,) = [e for e in EVENTS if e.kind is EventKind.CAPTURE_LOSS]
    line = event_cef(stored)
    head, _, ext = line.partition("|rt=")
    fields = head.split("|")
    assert fields[:6] == ["CEF:0", "wardwatch", "wardwatch", fields[3], "capture-loss", fields[5]]
    assert "\\|" in line and "a\\=b" in line and "\\\\" in line  # pipe in the header, = and \ in extensions
    assert "rt=1796000002000" in line and "dvchost=s1" in line
    assert json.loads(event_json(stored))["summary"] == stored.summary


def test_events_follow_prints_what_arrives_later(db: Path) -> None:
    with subprocess.Popen(  # noqa: S603
        [EXE, "events", "--db", str(db), "--follow", "--after", "3", "--poll-seconds", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            time.sleep(0.5)
            store = Store.open(str(db))
            try:
                store.add_events([Event(EventKind.DEVICE_SILENT, 1_796_000_100_000_000_000, "quiet", sensor="s1")])
            finally:
                store.close()
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert json.loads(line)["kind"] == "device-silent"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert proc.returncode == 0


def test_status_as_table_json_and_prometheus(db: Path) -> None:
    table = run("status", "--db", str(db))
    assert table.returncode == 0 and "span0" in table.stdout and "capturing" in table.stdout, table.stderr
    doc = json.loads(run("status", "--db", str(db), "--format", "json").stdout)
    assert doc == [_as_dict(STATUS)]
    text = run("status", "--db", str(db), "--format", "prometheus").stdout
    assert text == prometheus([STATUS])
    assert 'wardwatch_drops_total{sensor="s1",interface="span0",state="capturing"} 5' in text
    assert "# TYPE wardwatch_queue_blocks gauge" in text


def _as_dict(s: InterfaceStatus) -> dict[str, object]:
    import dataclasses

    return dataclasses.asdict(s)


def test_status_of_a_database_without_a_monitor_says_so(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    Store.open(str(db)).close()
    proc = run("status", "--db", str(db))
    assert proc.returncode == 0 and "no interface has been monitored" in proc.stderr
