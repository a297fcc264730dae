"""``wardwatch analyze``: capture files -> inventory, flows and map, stored and optionally as JSON."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wardwatch import __version__
from wardwatch.cli.common import DEFAULT_DB, DbOption, Exit, err, fail, open_store, output
from wardwatch.dissect import default_registry
from wardwatch.engine import Engine, ProgressCallback
from wardwatch.errors import CatalogError, StoreError
from wardwatch.inventory.catalog import load as load_catalog

if TYPE_CHECKING:  # Rich's progress bar and tables are loaded only when shown (`-q` starts faster)
    from rich.progress import Progress, TaskID


def analyze(
    captures: Annotated[list[Path], typer.Argument(help="pcap / pcapng files (optionally gzip-compressed).")],
    db: DbOption = DEFAULT_DB,
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json", envvar="WARDWATCH_JSON", help="Also write the analysis document to FILE ('-' = stdout)."
        ),
    ] = None,
    store: Annotated[
        bool,
        typer.Option("--store/--no-store", envvar="WARDWATCH_STORE", help="Write results to the database."),
    ] = True,
    sha256: Annotated[
        bool,
        typer.Option(
            "--sha256/--no-sha256",
            envvar="WARDWATCH_SHA256",
            help="Also record each file's SHA-256 (chain of custody; doubles the CPU time).",
        ),
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            envvar="WARDWATCH_JOBS",
            min=0,
            help="Processes for several files, this one included (0 = one per CPU core, up to the number of files).",
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", envvar="WARDWATCH_QUIET", help="No progress bar or summary.")
    ] = False,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep/--no-deep",
            envvar="WARDWATCH_DEEP",
            help="Reassemble TCP connections for the content dissectors (HL7, DICOM, TLS, HTTP, SMB); "
            "--no-deep keeps the per-packet ones (DHCP, DNS, LLDP, CDP, SNMP, SSDP …) and is several times faster.",
        ),
    ] = True,
    catalog: Annotated[
        list[Path] | None,
        typer.Option(
            "--catalog",
            help="A directory of your own fingerprint rules (*.yaml, and taxonomy.yaml) to add to the built-in "
            "catalog; repeatable. $WARDWATCH_CATALOG names more (separated by ':').",
        ),
    ] = None,
) -> None:
    """Analyse capture files passively: devices, flows and the communication map.

    Exit code 3 when a file could not be read completely; everything read before the damage is kept.
    """
    started = time.monotonic()
    workers = jobs or min(len(captures), os.cpu_count() or 1)
    try:
        rules = load_catalog(catalog or [])
    except CatalogError as exc:
        raise fail(f"fingerprint catalog: {exc}", Exit.USAGE) from None
    engine = Engine(default_registry(streams=deep), sha256=sha256, catalog=rules)
    if quiet:
        result = engine.analyze(captures, None, jobs=workers)
    else:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[packets]:>10,} packets"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        sizes = {str(p): p.stat().st_size if p.is_file() else 0 for p in captures}
        tracker = _ProgressTracker(progress, sizes)
        with progress:
            tracker.task = progress.add_task("reading", total=sum(sizes.values()) or None, packets=0)
            update: ProgressCallback = tracker.update
            result = engine.analyze(captures, update, jobs=workers)
    analysis = result.analysis
    for error in result.errors:
        err.print(f"[bold red]error:[/] {error}", soft_wrap=True)
    if store:
        with open_store(db, create=True) as st:
            try:
                st.ingest(analysis, __version__, time.time_ns())
            except StoreError as exc:
                raise fail(str(exc)) from exc
    if json_out is not None:
        from wardwatch.engine import assess
        from wardwatch.report.json_doc import analysis_document, write_json

        with output(json_out) as fh:  # the document carries the base risk rules' findings
            write_json(analysis_document(assess(analysis, rules)), fh)
    if not quiet:
        from rich.table import Table

        elapsed = time.monotonic() - started
        packets = sum(c.packets for c in analysis.captures)
        summary = Table(title="Analysis summary", show_header=False)
        summary.add_column("what")
        summary.add_column("value", justify="right")
        summary.add_row("capture files", f"{len(analysis.captures)} read, {len(result.errors)} with errors")
        summary.add_row("packets", f"{packets:,}")
        summary.add_row("devices", f"{len(analysis.devices):,}")
        summary.add_row("flows", f"{len(analysis.flows):,}")
        summary.add_row("map edges", f"{len(analysis.edges):,}")
        summary.add_row("packets not fully analysed", f"{sum(s.count for s in analysis.skipped):,}")
        summary.add_row("elapsed", f"{elapsed:.2f} s ({packets / elapsed if elapsed else 0:,.0f} packets/s)")
        if store:
            summary.add_row("database", db)
        err.print(summary)
    if result.errors:
        raise typer.Exit(int(Exit.INPUT))


class _ProgressTracker:
    """Turns per-file progress callbacks into one bar over all files."""

    def __init__(self, progress: Progress, sizes: dict[str, int]) -> None:
        self.progress = progress
        self.sizes = sizes
        self.task: TaskID | None = None
        self.path: str | None = None
        self.bytes_base = 0
        self.packets_base = 0
        self.last_bytes = 0
        self.last_packets = 0

    def update(self, path: str, done: int, _total: int, packets: int) -> None:
        """Engine progress callback."""
        if path != self.path:
            if self.path is not None:
                self.bytes_base += self.sizes.get(self.path, self.last_bytes)
                self.packets_base += self.last_packets
            self.path = path
        self.last_bytes, self.last_packets = done, packets
        if self.task is not None:
            self.progress.update(
                self.task,
                description=Path(path).name,
                completed=self.bytes_base + done,
                packets=self.packets_base + packets,
            )
