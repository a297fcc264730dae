"""``wardwatch assets import | list``: the hospital's asset list, and how it meets what the network shows."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from wardwatch.cli.common import (
    DEFAULT_DB,
    DbOption,
    Exit,
    ListFormat,
    OutputOption,
    console_for,
    err,
    fail,
    open_store,
    output,
)

app = typer.Typer(
    help="The hospital's asset list (CMMS export) against the passively discovered devices.", no_args_is_help=True
)


@app.command("import")
def import_assets(
    files: Annotated[list[Path], typer.Argument(help="CSV or XLSX asset lists (asset_id, vendor, model, serial, …).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Import asset lists: bad rows are reported by file and line and skipped (exit 3), the rest imported."""
    from wardwatch.inventory.assets import AssetListError, read_assets

    assets = []
    problems: list[str] = []
    for path in files:
        try:
            rows, skipped = read_assets(path)
        except AssetListError as exc:
            problems.append(str(exc))
            continue
        assets += rows
        problems += skipped
    with open_store(db, create=True) as store:
        store.put_assets(assets, time.time_ns())
    for problem in problems:
        err.print(f"[bold red]error:[/] {problem}", soft_wrap=True)
    err.print(f"{len(assets)} assets imported into {db}" + (f", {len(problems)} problems" if problems else ""))
    if problems:
        raise typer.Exit(int(Exit.INPUT))


@app.command("list")
def list_assets(
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[
        ListFormat, typer.Option("--format", envvar="WARDWATCH_FORMAT", help="Output format.")
    ] = ListFormat.table,
    out: OutputOption = "-",
) -> None:
    """Reconciliation: assets matched to a device (by MAC, IP or serial), assets never seen on the network,
    devices no asset names (unknown to biomed)."""
    from wardwatch.inventory.assets import reconcile

    with open_store(db) as store:
        assets = store.assets()
        if not assets:
            raise fail(f"no assets in {db}: import an asset list first (wardwatch assets import FILE)")
        result = reconcile(assets, store.devices())
    rows = [
        {"status": "matched", "asset_id": m.asset.asset_id, "device": m.device, "how": m.how, "vendor": m.asset.vendor,
         "model": m.asset.model, "serial": m.asset.serial, "location": m.asset.location}
        for m in result.matched
    ] + [
        {"status": "only-listed", "asset_id": a.asset_id, "device": None, "how": None, "vendor": a.vendor,
         "model": a.model, "serial": a.serial, "location": a.location}
        for a in result.only_listed
    ] + [
        {"status": "only-seen", "asset_id": None, "device": d, "how": None, "vendor": None, "model": None,
         "serial": None, "location": None}
        for d in result.only_seen
    ]  # fmt: skip
    with output(out) as fh:
        if fmt is ListFormat.json:
            json.dump(rows, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        elif fmt is ListFormat.csv:
            import csv

            from wardwatch.report.csv_out import safe_cell

            w = csv.writer(fh, lineterminator="\n")
            w.writerow(list(rows[0]) if rows else ["status"])
            for r in rows:
                w.writerow(safe_cell(v) for v in r.values())
        else:
            from rich.table import Table

            table = Table(
                title=f"Assets: {len(result.matched)} matched, {len(result.only_listed)} never seen, "
                f"{len(result.only_seen)} devices unknown to the asset list"
            )
            for col in ("status", "asset", "device", "how", "vendor / model", "location"):
                table.add_column(col)
            for r in rows:
                what = " ".join(v for v in (r["vendor"], r["model"]) if v)
                table.add_row(
                    str(r["status"]), r["asset_id"] or "", r["device"] or "", r["how"] or "", what, r["location"] or ""
                )
            console_for(fh).print(table)
