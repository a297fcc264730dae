"""``wardwatch report``: the single-file HTML report."""

from __future__ import annotations

from typing import Annotated

import typer

from wardwatch import __version__
from wardwatch.cli.common import DEFAULT_DB, DbOption, err, open_store, output


def report(
    html: Annotated[
        str,
        typer.Option("--html", envvar="WARDWATCH_HTML", help="Write the self-contained HTML report to FILE."),
    ],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Write one self-contained HTML page: findings, inventory table and interactive communication map."""
    import dataclasses
    import time

    from wardwatch.engine import assess_store
    from wardwatch.report.html import render_html  # Jinja2 is loaded by the command that needs it

    with open_store(db) as store:
        analysis = assess_store(store)
        hidden = store.active_suppressions(time.time_ns())
    analysis = dataclasses.replace(analysis, findings=tuple(f for f in analysis.findings if f.id not in hidden))
    page = render_html(analysis, __version__)
    with output(html) as fh:
        fh.write(page)
    if html != "-":
        err.print(f"report written to {html} ({len(analysis.devices)} devices, {len(analysis.edges)} map edges)")
