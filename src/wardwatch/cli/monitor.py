"""``wardwatch monitor``, ``events`` and ``status``: live passive monitoring, its event log and its figures."""

from __future__ import annotations

import dataclasses
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from wardwatch import __version__
from wardwatch.cli.common import DEFAULT_DB, DbOption, Exit, err, fail, open_store
from wardwatch.errors import CatalogError, InterfaceError
from wardwatch.model.event import SEVERITY, Event, InterfaceStatus


class EventFormat(StrEnum):
    """Output formats of ``wardwatch events``."""

    json = "json"
    cef = "cef"
    table = "table"


class StatusFormat(StrEnum):
    """Output formats of ``wardwatch status``."""

    table = "table"
    json = "json"
    prometheus = "prometheus"


def monitor(
    interface: Annotated[
        list[str],
        typer.Option(
            "--interface",
            "-i",
            envvar="WARDWATCH_INTERFACE",
            help="Interface to capture from (SPAN/TAP port); repeatable.",
        ),
    ],
    db: DbOption = DEFAULT_DB,
    bpf: Annotated[
        str | None,
        typer.Option("--bpf", envvar="WARDWATCH_BPF", help="Capture filter (tcpdump syntax), in the kernel."),
    ] = None,
    harden: Annotated[
        bool,
        typer.Option(
            "--harden/--no-harden",
            envvar="WARDWATCH_HARDEN",
            help="Make the interfaces receive-only first: IPv6 off, no router advertisements, ARP off, "
            "addresses flushed.",
        ),
    ] = False,
    allow_transmitting: Annotated[
        bool,
        typer.Option(
            "--allow-unhardened",
            envvar="WARDWATCH_ALLOW_UNHARDENED",
            help="Monitor even when an interface could make this host transmit (an address, ARP, IPv6): "
            "wardwatch itself still sends nothing, but the host's own stack may.",
        ),
    ] = False,
    flush: Annotated[
        float,
        typer.Option("--flush-seconds", envvar="WARDWATCH_FLUSH_SECONDS", min=0.1, help="Seconds between writes."),
    ] = 1.0,
    segment: Annotated[
        float,
        typer.Option(
            "--segment-seconds", envvar="WARDWATCH_SEGMENT_SECONDS", min=1, help="Seconds per stored segment."
        ),
    ] = 60.0,
    silent_after: Annotated[
        float,
        typer.Option(
            "--silent-after",
            envvar="WARDWATCH_SILENT_AFTER",
            min=1,
            help="Seconds of quiet before a device-silent event.",
        ),
    ] = 600.0,
    learn: Annotated[
        float,
        typer.Option(
            "--learn-seconds",
            envvar="WARDWATCH_LEARN_SECONDS",
            min=0,
            help="Learn devices and paths into the baseline for this long without events.",
        ),
    ] = 0.0,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", envvar="WARDWATCH_DURATION", min=0, help="Stop after this many seconds (0: on a signal)."
        ),
    ] = 0.0,
    ring_mb: Annotated[
        int, typer.Option("--ring-mb", envvar="WARDWATCH_RING_MB", min=1, help="Capture ring size per interface (MiB).")
    ] = 64,
    backlog_mb: Annotated[
        int,
        typer.Option(
            "--backlog-mb",
            envvar="WARDWATCH_BACKLOG_MB",
            min=1,
            help="Frames copied out of the ring and waiting for analysis, at most (MiB per interface).",
        ),
    ] = 256,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep/--no-deep", envvar="WARDWATCH_DEEP", help="Reassemble TCP connections for HL7, DICOM, TLS …"
        ),
    ] = True,
    print_events: Annotated[
        bool,
        typer.Option("--events/--no-events", envvar="WARDWATCH_EVENTS", help="Print events as JSON lines on stdout."),
    ] = True,
    syslog: Annotated[
        bool,
        typer.Option("--syslog", envvar="WARDWATCH_SYSLOG", help="Also send events in CEF to the local syslog."),
    ] = False,
    syslog_socket: Annotated[
        str,
        typer.Option("--syslog-socket", envvar="WARDWATCH_SYSLOG_SOCKET", help="The local syslog socket (--syslog)."),
    ] = "/dev/log",
    catalog: Annotated[
        list[Path] | None, typer.Option("--catalog", help="A directory of your own fingerprint rules; repeatable.")
    ] = None,
    write_pcapng: Annotated[
        Path | None,
        typer.Option(
            "--write-pcapng",
            envvar="WARDWATCH_WRITE_PCAPNG",
            help="Also keep the raw frames in rotating pcapng files in this directory (forensics).",
        ),
    ] = None,
    rotate_mb: Annotated[
        int, typer.Option("--rotate-mb", envvar="WARDWATCH_ROTATE_MB", min=0, help="Largest pcapng file (0: no bound).")
    ] = 100,
    rotate_seconds: Annotated[
        float,
        typer.Option(
            "--rotate-seconds", envvar="WARDWATCH_ROTATE_SECONDS", min=0, help="Oldest pcapng file age (0: none)."
        ),
    ] = 3600.0,
    keep_files: Annotated[
        int, typer.Option("--keep-files", envvar="WARDWATCH_KEEP_FILES", min=0, help="pcapng files kept (0: all).")
    ] = 24,
) -> None:
    """Monitor live interfaces passively: the inventory, flows and map kept current in the store, events logged.

    Receive-only: the capture socket never sends, and the interfaces are checked (or, with --harden, made) so that
    the host cannot transmit on them either. SIGINT or SIGTERM stops it after a last write; nothing is lost.
    Exit code 3 when no interface can be opened or one could transmit.
    """
    from wardwatch.capture.live import LiveCapture, silence_problems
    from wardwatch.capture.live import harden as harden_interface
    from wardwatch.dissect import default_registry
    from wardwatch.engine import Engine
    from wardwatch.engine.live import Monitor, MonitorOptions
    from wardwatch.inventory.catalog import load as load_catalog

    names = list(dict.fromkeys(n for item in interface for n in item.split(",") if n))
    warnings: dict[str, str] = {}
    for name in names:
        try:
            if harden:
                for step in harden_interface(name):
                    err.print(f"{name}: {step}", soft_wrap=True)
        except InterfaceError as exc:
            raise fail(str(exc)) from None
        problems = silence_problems(name)
        if problems and not allow_transmitting:
            raise fail(
                f"interface {name} could make this host transmit: {'; '.join(problems)}. "
                "Use --harden to fix it, or --allow-unhardened to monitor anyway."
            )
        if problems:
            warnings[name] = "not receive-only: " + "; ".join(problems)
            err.print(f"[yellow]warning:[/] {name}: {warnings[name]}", soft_wrap=True)
    try:
        rules = load_catalog(catalog or [])
    except CatalogError as exc:
        raise fail(f"fingerprint catalog: {exc}", Exit.USAGE) from None
    captures = [LiveCapture(name, index=i, bpf=bpf, ring_mb=ring_mb) for i, name in enumerate(names)]
    opened = 0
    for cap in captures:  # fail fast when nothing can be captured at all (a typo, no root)
        try:
            cap.open()
            opened += 1
        except InterfaceError as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            if "CAP_NET_RAW" in exc.message:
                raise fail(str(exc)) from None
    if not opened:
        raise fail("no interface could be opened")
    sinks = [_printer(sys.stdout)] if print_events else []
    if syslog:
        sinks.append(_syslog_sink(syslog_socket))
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if duration:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    options = MonitorOptions(
        flush_s=flush, segment_s=segment, silent_after_s=silent_after, learn_s=learn, backlog_mb=backlog_mb
    )
    rotator = None
    if write_pcapng is not None:
        from wardwatch.capture.rotate import PcapngRotator, RotationError

        try:
            rotator = PcapngRotator(
                write_pcapng, [(c.interface, c.linktype) for c in captures], prefix=f"wardwatch-{socket.gethostname()}",
                max_bytes=rotate_mb * 1024 * 1024, max_seconds=rotate_seconds, keep=keep_files,
            )  # fmt: skip
        except RotationError as exc:
            raise fail(str(exc)) from None
    engine = Engine(default_registry(streams=deep), catalog=rules, deep_process=False)
    with open_store(db, create=True) as store:
        mon = Monitor(
            engine,
            store,
            captures,
            __version__,
            options,
            on_event=lambda e: _each(sinks, e),
            warnings=warnings,
            rotator=rotator,
        )
        err.print(f"monitoring {', '.join(names)} into {db} (receive-only; Ctrl-C stops)", soft_wrap=True)
        mon.run(stop)
    err.print(f"stopped: {mon.segments} segments written, {mon.events_logged} events", soft_wrap=True)


def _each(sinks: list[Callable[[Event], None]], event: Event) -> None:
    for sink in sinks:
        sink(event)


def _printer(fh: TextIO) -> Callable[[Event], None]:
    def sink(event: Event) -> None:
        fh.write(event_json(event) + "\n")
        fh.flush()

    return sink


def _syslog_sink(address: str) -> Callable[[Event], None]:
    """Events as CEF lines to the local syslog daemon over its Unix socket (facility auth; it forwards them)."""
    if not os.path.exists(address):
        raise fail(f"--syslog: there is no local syslog socket {address}")
    handler = logging.handlers.SysLogHandler(address=address, facility=logging.handlers.SysLogHandler.LOG_AUTH)
    log = logging.getLogger("wardwatch.events")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    def sink(event: Event) -> None:
        log.log(logging.WARNING if SEVERITY[event.kind] >= 6 else logging.INFO, event_cef(event))

    return sink


def event_json(event: Event) -> str:
    """One JSON line for ``event`` (keys sorted; times as integer nanoseconds and ISO 8601 UTC)."""
    doc = {
        "id": event.id, "kind": event.kind.value, "ts_ns": event.ts_ns, "time": _iso(event.ts_ns),
        "summary": event.summary, "device": event.device, "peer": event.peer, "service": event.service,
        "detail": dict(event.detail), "sensor": event.sensor, "severity": SEVERITY[event.kind],
    }  # fmt: skip
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)


def _iso(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ns // 1_000_000_000)) + f".{ts_ns % 10**9 // 10**6:03d}Z"


def _cef_header(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


def event_cef(event: Event) -> str:
    """``event`` in ArcSight Common Event Format (CEF:0), as SIEMs ingest from syslog."""
    ext = [("rt", str(event.ts_ns // 1_000_000)), ("externalId", str(event.id)), ("dvchost", event.sensor)]
    if event.device:
        ext += [("cs1Label", "device"), ("cs1", event.device)]
    if event.peer:
        ext += [("cs2Label", "peer"), ("cs2", event.peer)]
    if event.service:
        ext.append(("app", event.service))
    if event.detail:
        ext += [("cs3Label", "detail"), ("cs3", json.dumps(dict(event.detail), sort_keys=True))]
    ext.append(("msg", event.summary))
    head = "|".join(
        _cef_header(x)
        for x in (
            "CEF:0",
            "wardwatch",
            "wardwatch",
            __version__,
            event.kind.value,
            event.summary,
            str(SEVERITY[event.kind]),
        )
    )
    return head + "|" + " ".join(f"{k}={_cef_value(v)}" for k, v in ext)


def events(
    db: DbOption = DEFAULT_DB,
    after: Annotated[
        int, typer.Option("--after", envvar="WARDWATCH_AFTER", min=0, help="Only events after this id.")
    ] = 0,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only events of this kind (new-device, new-path …); repeatable.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", envvar="WARDWATCH_FOLLOW", help="Keep printing new events as they are logged."),
    ] = False,
    fmt: Annotated[
        EventFormat, typer.Option("--format", envvar="WARDWATCH_FORMAT", help="Output format.")
    ] = EventFormat.json,
    poll: Annotated[
        float,
        typer.Option("--poll-seconds", envvar="WARDWATCH_POLL_SECONDS", min=0.05, help="How often --follow looks."),
    ] = 0.5,
) -> None:
    """Print the event log (JSON lines by default, CEF for a SIEM); --follow keeps printing as events arrive."""
    stop = threading.Event()
    if follow:
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open_store(db) as store:
        last = after
        while True:
            batch = store.events(after=last, kinds=kind)
            for event in batch:
                if fmt is EventFormat.json:
                    line = event_json(event)
                elif fmt is EventFormat.cef:
                    line = event_cef(event)
                else:
                    line = f"{event.id:>6}  {_iso(event.ts_ns)}  {event.kind.value:<17} {event.summary}"
                sys.stdout.write(line + "\n")
                last = event.id
            sys.stdout.flush()
            if not follow or stop.wait(poll):
                break


def status(
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[
        StatusFormat, typer.Option("--format", envvar="WARDWATCH_FORMAT", help="Output format.")
    ] = StatusFormat.table,
) -> None:
    """The monitored interfaces' figures: frames analysed and dropped, rates, ring queue, state."""
    with open_store(db) as store:
        rows = store.status()
    if fmt is StatusFormat.json:
        sys.stdout.write(json.dumps([_status_doc(s) for s in rows], indent=2, sort_keys=True) + "\n")
        return
    if fmt is StatusFormat.prometheus:
        sys.stdout.write(prometheus(rows))
        return
    from rich.table import Table

    from wardwatch.cli.common import console_for

    table = Table(title="Monitored interfaces")
    for col in (
        "sensor",
        "interface",
        "state",
        "updated",
        "packets",
        "dropped",
        "sent",
        "pkt/s",
        "ring",
        "backlog",
        "message",
    ):
        table.add_column(col, justify="right" if col in ("packets", "dropped", "sent", "pkt/s") else "left")
    for s in rows:
        table.add_row(
            s.sensor, s.interface, s.state, _iso(s.updated_ns), f"{s.packets:,}", f"{s.drops:,}", f"{s.outgoing:,}",
            f"{s.packets_per_s:,.0f}", f"{s.queue_blocks}/{s.ring_blocks}", str(s.backlog), s.message,
        )  # fmt: skip
    console_for(sys.stdout).print(table)
    if not rows:
        err.print("no interface has been monitored into this database yet")


def _status_doc(s: InterfaceStatus) -> dict[str, object]:
    return dataclasses.asdict(s)


def prometheus(rows: list[InterfaceStatus]) -> str:
    """The status rows in the Prometheus text exposition format (for node_exporter's textfile collector)."""
    metrics = (
        ("packets", "counter", "Frames analysed."),
        ("bytes", "counter", "Bytes analysed."),
        ("kernel_packets", "counter", "Frames the kernel passed to the capture ring."),
        ("drops", "counter", "Frames the kernel dropped (capture ring full)."),
        ("outgoing", "counter", "Frames this host sent on the interface (0 on a silent sensor)."),
        ("queue_blocks", "gauge", "Capture ring blocks waiting at the last read."),
        ("backlog", "gauge", "Batches copied out of the ring and waiting to be analysed."),
        ("packets_per_s", "gauge", "Frames analysed per second."),
        ("updated_ns", "gauge", "When the status was written (ns since the epoch)."),
    )
    out = []
    for name, kind, text in metrics:
        metric = f"wardwatch_{name}" + ("_total" if kind == "counter" else "")
        out += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        for s in rows:
            labels = f'sensor="{_label(s.sensor)}",interface="{_label(s.interface)}",state="{_label(s.state)}"'
            out.append(f"{metric}{{{labels}}} {getattr(s, name)}")
    return "\n".join(out) + "\n"


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
