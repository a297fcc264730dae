"""The ``wardwatch`` command line.

Exit codes: 0 clean, 1 findings above the threshold, 2 usage error, 3 input error (unreadable capture,
database that cannot be opened). Every option has a ``WARDWATCH_*`` environment default.
"""

from __future__ import annotations

import atexit
import gc
import sys

import typer

from wardwatch import __version__
from wardwatch.cli.analyze import analyze
from wardwatch.cli.assets import app as assets_app
from wardwatch.cli.common import Exit, fail
from wardwatch.cli.findings import findings, suppress
from wardwatch.cli.inventory import captures, comm_map, devices, flows
from wardwatch.cli.monitor import events, monitor, status
from wardwatch.cli.report import report
from wardwatch.errors import WardwatchError

app = typer.Typer(
    name="wardwatch",
    help="Passive security monitoring for connected medical devices. wardwatch never transmits on a monitored network.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wardwatch {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """wardwatch command line."""


app.command("analyze")(analyze)
app.command("devices")(devices)
app.command("flows")(flows)
app.command("map")(comm_map)
app.command("captures")(captures)
app.command("report")(report)
app.command("monitor")(monitor)
app.command("events")(events)
app.command("status")(status)
app.command("findings")(findings)
app.command("suppress")(suppress)
app.add_typer(assets_app, name="assets")


def main() -> None:
    """Console-script entry point: run the app, turning wardwatch errors into one line and exit code 3."""
    # at exit, the interpreter then skips a last full collection over everything the command built and loaded
    # (60-140 ms after an analysis; files and the database are closed by then)
    atexit.register(gc.freeze)
    try:
        app()
    except WardwatchError as exc:
        raise SystemExit(int(fail(str(exc), Exit.INPUT).exit_code)) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
