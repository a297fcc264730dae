"""``wardwatch devices | flows | map | captures``: read the inventory back from the store."""

from __future__ import annotations

from typing import Annotated

import typer

from wardwatch.cli.common import (
    DEFAULT_DB,
    DbOption,
    Exit,
    ListFormat,
    MapFormat,
    OutputOption,
    console_for,
    fail,
    open_store,
    output,
)
from wardwatch.report.common import device_label
from wardwatch.report.csv_out import write_captures_csv, write_devices_csv, write_edges_csv, write_flows_csv
from wardwatch.report.graphml import write_graphml
from wardwatch.report.json_doc import capture_doc, device_doc, edge_doc, flow_doc, write_json
from wardwatch.report.table import captures_table, device_detail, devices_table, edges_table, flows_table

FormatOption = Annotated[ListFormat, typer.Option("--format", "-f", envvar="WARDWATCH_FORMAT", help="Output format.")]


def devices(
    db: DbOption = DEFAULT_DB,
    fmt: FormatOption = ListFormat.table,
    out: OutputOption = "-",
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="One device (its id, a MAC, an IP address or a host name): its attributes and every piece "
            "of evidence, with source, confidence, how often seen and the first packet.",
        ),
    ] = None,
) -> None:
    """List the device inventory (or show one device in detail)."""
    with open_store(db) as store:
        items = store.devices()
    if device is not None:
        wanted = device.lower()
        items = [
            d for d in items
            if wanted == d.id or wanted in d.macs or wanted in d.ips or wanted in (h.lower() for h in d.hostnames)
        ]  # fmt: skip
        if not items:
            raise fail(f"no device {device!r} in {db}", Exit.INPUT)
    with output(out) as fh:
        if fmt is ListFormat.json:
            write_json([device_doc(d) for d in items], fh)
        elif fmt is ListFormat.csv:
            write_devices_csv(items, fh)
        elif device is not None:
            console = console_for(fh)
            for d in items:
                console.print(device_detail(d))
        else:
            console_for(fh).print(devices_table(items))


def flows(
    db: DbOption = DEFAULT_DB,
    fmt: FormatOption = ListFormat.table,
    out: OutputOption = "-",
    device: Annotated[
        str | None, typer.Option("--device", envvar="WARDWATCH_DEVICE", help="Only flows of this device id.")
    ] = None,
) -> None:
    """List flows (the initiator is the source)."""
    with open_store(db) as store:
        items = store.flows(device)
    with output(out) as fh:
        if fmt is ListFormat.json:
            write_json([flow_doc(f) for f in items], fh)
        elif fmt is ListFormat.csv:
            write_flows_csv(items, fh)
        else:
            console_for(fh).print(flows_table(items))


def comm_map(
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[
        MapFormat, typer.Option("--format", "-f", envvar="WARDWATCH_FORMAT", help="Output format.")
    ] = MapFormat.table,
    out: OutputOption = "-",
) -> None:
    """Show the communication map: who talks to whom, per service."""
    with open_store(db) as store:
        edges = store.edges()
        devs = store.devices()
    with output(out) as fh:
        if fmt is MapFormat.json:
            write_json([edge_doc(e) for e in edges], fh)
        elif fmt is MapFormat.csv:
            write_edges_csv(edges, fh)
        elif fmt is MapFormat.graphml:
            write_graphml(devs, edges, fh)
        else:
            labels: dict[str, str] = {
                d.id: f"{device_label(d)} ({d.id})" if device_label(d) != d.id else d.id for d in devs
            }
            console_for(fh).print(edges_table(edges, labels))


def captures(db: DbOption = DEFAULT_DB, fmt: FormatOption = ListFormat.table, out: OutputOption = "-") -> None:
    """List the capture files analysed into the store."""
    with open_store(db) as store:
        items = store.captures()
    with output(out) as fh:
        if fmt is ListFormat.json:
            write_json([capture_doc(c) for c in items], fh)
        elif fmt is ListFormat.csv:
            write_captures_csv(items, fh)
        else:
            console_for(fh).print(captures_table(items))
