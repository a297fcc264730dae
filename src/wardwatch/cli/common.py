"""Shared CLI plumbing: exit codes, output files, the database option, error reporting."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console

from wardwatch.errors import StoreError

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported by the commands that use it: `analyze --no-store` starts faster
    from wardwatch.store import Store


class Exit(IntEnum):
    """Documented exit codes."""

    OK = 0
    FINDINGS = 1
    USAGE = 2
    INPUT = 3


class ListFormat(StrEnum):
    """Output formats of list commands."""

    table = "table"
    json = "json"
    csv = "csv"


class MapFormat(StrEnum):
    """Output formats of ``wardwatch map``."""

    table = "table"
    json = "json"
    csv = "csv"
    graphml = "graphml"


DEFAULT_DB = "wardwatch.db"
DbOption = Annotated[
    str, typer.Option("--db", envvar="WARDWATCH_DB", help="SQLite file or SQLAlchemy URL of the store.")
]
OutputOption = Annotated[
    str, typer.Option("--output", "-o", envvar="WARDWATCH_OUTPUT", help="Write to this file ('-' = stdout).")
]

err = Console(stderr=True, highlight=False)


def fail(message: str, code: Exit = Exit.INPUT) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise."""
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(int(code))


@contextlib.contextmanager
def output(path: str) -> Iterator[TextIO]:
    """Open ``path`` for writing text ('-' is stdout); errors become exit code 3."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from exc
    with fh:
        yield fh


def console_for(fh: TextIO) -> Console:
    """A Rich console writing to ``fh`` (wide and plain when not a terminal)."""
    if fh is sys.stdout:
        # a pipe or CI log is not a terminal: do not squeeze tables into 80 columns
        return Console(highlight=False, width=None if sys.stdout.isatty() else 260)
    return Console(file=fh, width=260, highlight=False, color_system=None)


@contextlib.contextmanager
def open_store(db: str, create: bool = False) -> Iterator[Store]:
    """Open the store (readers never create one) or exit with code 3 and a one-line reason."""
    from wardwatch.store import Store

    try:
        store = Store.open(db, create=create)
    except StoreError as exc:
        raise fail(str(exc)) from exc
    try:
        yield store
    finally:
        store.close()
