"""``wardwatch findings`` and ``suppress``: the risks the base rules find in the stored inventory and map, and
the decisions to hide one for a while (always with a reason and an expiry)."""

from __future__ import annotations

import getpass
import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from wardwatch.cli.common import (
    DEFAULT_DB,
    DbOption,
    Exit,
    OutputOption,
    console_for,
    err,
    fail,
    open_store,
    output,
)
from wardwatch.model.finding import Finding, Severity, Suppression


class FindingFormat(StrEnum):
    """Output formats of ``wardwatch findings``."""

    table = "table"
    json = "json"
    csv = "csv"
    sarif = "sarif"


class FailOn(StrEnum):
    """Severities ``--fail-on`` accepts."""

    none = "none"
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


def _severities(items: list[str]) -> dict[str, Severity]:
    """``RULE=LEVEL`` settings (``cleartext-phi=critical``); a bad one is a usage error."""
    out: dict[str, Severity] = {}
    for item in (part for text in items for part in text.split()):
        rule, sep, level = item.partition("=")
        if not sep or level.upper() not in Severity.__members__:
            raise fail(f"--severity {item!r}: expected RULE=LEVEL, LEVEL one of {', '.join(FailOn)}", Exit.USAGE)
        out[rule] = Severity[level.upper()]
    return out


def findings(
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[
        FindingFormat, typer.Option("--format", envvar="WARDWATCH_FORMAT", help="Output format.")
    ] = FindingFormat.table,
    out: OutputOption = "-",
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            envvar="WARDWATCH_FAIL_ON",
            help="Exit 1 when a finding (not suppressed) is at least this severe (for CI and scheduled checks).",
        ),
    ] = FailOn.none,
    severity: Annotated[
        list[str] | None,
        typer.Option(
            "--severity",
            envvar="WARDWATCH_SEVERITY",
            help="RULE=LEVEL: the hospital's severity for a rule (e.g. legacy-protocol=high); repeatable.",
        ),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", envvar="WARDWATCH_ALL", help="Also list suppressed findings (marked).")
    ] = False,
) -> None:
    """Risks in the stored inventory: patient data and credentials in clear, legacy protocols and operating
    systems, management in clear, medical devices and the internet, devices bridging VLANs."""
    from wardwatch.engine import assess_store

    levels = _severities(severity or [])
    with open_store(db) as store:
        try:
            analysis = assess_store(store, levels)
        except ValueError as exc:  # a --severity naming no rule
            raise fail(f"--severity: {exc}", Exit.USAGE) from None
        active = store.active_suppressions(time.time_ns())
    items = [f for f in analysis.findings if show_all or f.id not in active]
    hidden = len(analysis.findings) - len(items)
    with output(out) as fh:
        if fmt is FindingFormat.sarif:
            from wardwatch import __version__
            from wardwatch.report.sarif import write_sarif

            write_sarif(items, __version__, fh)
        elif fmt is FindingFormat.json:
            from wardwatch.report.json_doc import finding_doc

            docs = [{**finding_doc(f), "suppressed": _suppression_doc(active.get(f.id))} for f in items]
            json.dump(docs, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        elif fmt is FindingFormat.csv:
            from wardwatch.report.csv_out import write_findings_csv

            write_findings_csv(items, fh)
        else:
            from rich.table import Table

            table = Table(title=f"Findings ({len(items)})")
            for col in ("severity", "rule", "finding", "devices", "id"):
                table.add_column(col)
            for f in items:
                mark = f" (suppressed until {_day(active[f.id].until_ns)})" if f.id in active else ""
                table.add_row(f.severity.name.lower(), f.rule, f.title + mark, "\n".join(f.devices), f.id)
            console_for(fh).print(table)
    if hidden:
        err.print(f"{hidden} suppressed finding(s) not shown (--all shows them)")
    for problem in analysis.errors:
        err.print(f"[bold red]error:[/] {problem}", soft_wrap=True)
    counted = [f for f in analysis.findings if f.id not in active]
    if fail_on is not FailOn.none and any(f.severity >= Severity[fail_on.name.upper()] for f in counted):
        raise typer.Exit(int(Exit.FINDINGS))


def suppress(
    finding_id: Annotated[str, typer.Argument(help="The finding's id (wardwatch findings shows it).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is acceptable for now (required).")],
    until: Annotated[str, typer.Option("--until", help="Expiry date, YYYY-MM-DD (UTC), at most a year away.")],
    db: DbOption = DEFAULT_DB,
    by: Annotated[str | None, typer.Option("--by", envvar="WARDWATCH_USER", help="Who decides (default: you).")] = None,
) -> None:
    """Suppress a finding until a date, with a reason: it stays out of `findings` and `--fail-on` until then."""
    if not reason.strip():
        raise fail("--reason must say why the finding is acceptable", Exit.USAGE)
    try:
        day = datetime.strptime(until, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise fail(f"--until {until!r}: expected YYYY-MM-DD", Exit.USAGE) from None
    now = time.time_ns()
    until_ns = int(day.timestamp()) * 1_000_000_000
    if until_ns <= now:
        raise fail(f"--until {until}: the date has passed", Exit.USAGE)
    if until_ns - now > 366 * 86400 * 1_000_000_000:
        raise fail(f"--until {until}: more than a year away; suppressions must be reviewed", Exit.USAGE)
    with open_store(db) as store:
        from wardwatch.engine import assess_store

        known = {f.id: f for f in assess_store(store).findings}
        if finding_id not in known:
            raise fail(f"no finding {finding_id} in {db} (wardwatch findings --all lists them)")
        store.suppress(Suppression(finding_id, reason.strip(), until_ns, now, by or getpass.getuser()))
    f: Finding = known[finding_id]
    err.print(f"suppressed until {until}: {f.title}", soft_wrap=True)


def _suppression_doc(s: Suppression | None) -> dict[str, str] | None:
    if s is None:
        return None
    return {"reason": s.reason, "until": _day(s.until_ns), "by": s.created_by}


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d")
