"""``wardwatch findings``: the risks the base rules find in the stored inventory and map."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from wardwatch.cli.common import DEFAULT_DB, DbOption, Exit, ListFormat, OutputOption, console_for, open_store, output
from wardwatch.model.finding import Severity


class FailOn(StrEnum):
    """Severities ``--fail-on`` accepts."""

    none = "none"
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


def findings(
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[
        ListFormat, typer.Option("--format", envvar="WARDWATCH_FORMAT", help="Output format.")
    ] = ListFormat.table,
    out: OutputOption = "-",
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            envvar="WARDWATCH_FAIL_ON",
            help="Exit 1 when a finding is at least this severe (for CI and scheduled checks).",
        ),
    ] = FailOn.none,
) -> None:
    """Risks in the stored inventory: patient data and credentials in clear, legacy protocols and operating
    systems, management in clear, medical devices and the internet, devices bridging VLANs."""
    from wardwatch.engine import assess
    from wardwatch.errors import StoreError

    with open_store(db) as store:
        try:
            analysis = assess(store.analysis())
        except StoreError as exc:
            raise typer.Exit(int(Exit.INPUT)) from exc
    items = analysis.findings
    with output(out) as fh:
        if fmt is ListFormat.json:
            from wardwatch.report.json_doc import finding_doc

            json.dump([finding_doc(f) for f in items], fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        elif fmt is ListFormat.csv:
            from wardwatch.report.csv_out import write_findings_csv

            write_findings_csv(items, fh)
        else:
            from rich.table import Table

            table = Table(title=f"Findings ({len(items)})")
            for col in ("severity", "rule", "finding", "devices"):
                table.add_column(col)
            for f in items:
                table.add_row(f.severity.name.lower(), f.rule, f.title, "\n".join(f.devices))
            console_for(fh).print(table)
    if fail_on is not FailOn.none and any(f.severity >= Severity[fail_on.name.upper()] for f in items):
        raise typer.Exit(int(Exit.FINDINGS))
