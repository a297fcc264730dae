"""Firmware and software versions as medical device vendors write them, and the version constraints of
advisories (``<=1.52``, ``>= v20D29``, ``v8.x``, ``vers:all/*``, ``prior to 2.3``).

A version is split into segments: runs of digits and runs of letters (``22d19`` → 22, d, 19; ``C.00.04`` → C,
0, 4; ``U61`` → U, 61); separators (``.``, ``-``, ``_``, spaces) only divide. Two versions compare segment by
segment: digits as numbers, letters case-insensitively; when one has run out, the shorter is the smaller
(``1.2`` < ``1.2.1``). Where a digit segment meets a letter segment the versions are *incomparable*: ``compare``
returns None, and ``satisfies`` then says None — "possibly affected", never "not affected".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEGMENT = re.compile(r"\d+|[A-Za-z]+")
_PREFIX = re.compile(r"^(?:v(?:er(?:sion)?)?\.?\s*)(?=\d)", re.IGNORECASE)
_OPERATOR = re.compile(r"^\s*(<=|>=|<|>|=|==|!=)\s*(.+?)\s*$")
_WILDCARD = re.compile(r"^(?P<stem>.*?)[.\-_]?[xX*]$")
_ALL = re.compile(r"^\s*(vers:all/\*|all(\s+versions?)?|\*|any)\s*$", re.IGNORECASE)
_PRIOR = re.compile(
    r"^\s*(?:prior\s+to|before|earlier\s+than|older\s+than|up\s+to\s+but\s+not\s+including)\s+(.+?)\s*$", re.I
)
_UP_TO = re.compile(r"^\s*(?:up\s+to(?:\s+and\s+including)?|through)\s+(.+?)\s*$", re.IGNORECASE)
_AND_LATER = re.compile(r"^\s*(.+?)\s+(?:and|or)\s+(?:later|newer|above|higher)\s*$", re.IGNORECASE)

Segment = int | str


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version: its segments, and the text it came from."""

    segments: tuple[Segment, ...]
    text: str


def _version_like(text: str) -> bool:
    """One token with a digit in it (``v20D29``, ``C.00.04``): not free text such as ``august 28``."""
    return bool(re.fullmatch(r"[vV]?[\w.\-]+", text.strip())) and any(ch.isdigit() for ch in text)


def parse_version(text: str) -> Version | None:
    """``text`` as a version (None: no digit or letter in it). A leading ``v``/``ver``/``version`` before a digit
    is not part of the version (``v8.2`` = ``8.2``)."""
    raw = text.strip()
    body = _PREFIX.sub("", raw)
    parts = _SEGMENT.findall(body)
    if not parts:
        return None
    return Version(tuple(int(p) if p.isdigit() else p.lower() for p in parts), raw)


def compare(a: Version, b: Version) -> int | None:
    """-1, 0 or 1; None when a digit segment meets a letter segment (the versions cannot be ordered)."""
    for x, y in zip(a.segments, b.segments, strict=False):
        if isinstance(x, int) != isinstance(y, int):
            return None
        if x != y:
            return -1 if x < y else 1  # type: ignore[operator]
    return (len(a.segments) > len(b.segments)) - (len(a.segments) < len(b.segments))


@dataclass(frozen=True, slots=True)
class Constraint:
    """One version condition of an advisory: ``op`` one of ``<``, ``<=``, ``>``, ``>=``, ``=``, ``!=``,
    ``prefix`` (a wildcard such as ``8.x``: every version starting with those segments) or ``all``."""

    op: str
    version: Version | None
    text: str


def parse_constraint(text: str) -> Constraint | None:
    """An advisory's version condition (None: not one this understands — the caller then treats the product as
    possibly affected)."""
    raw = text.strip()
    if _ALL.match(raw):
        return Constraint("all", None, raw)
    for pattern, op in ((_PRIOR, "<"), (_UP_TO, "<="), (_AND_LATER, ">=")):
        if (m := pattern.match(raw)) is not None:
            v = parse_version(m.group(1)) if _version_like(m.group(1)) else None
            return Constraint(op, v, raw) if v is not None else None
    m = _OPERATOR.match(raw)
    if m is not None:
        op = "=" if m.group(1) == "==" else m.group(1)
        if not _version_like(m.group(2)) or _WILDCARD.match(m.group(2)):
            return None
        v = parse_version(m.group(2))
        return Constraint(op, v, raw) if v is not None else None
    w = _WILDCARD.match(raw)
    if w is not None and w.group("stem"):
        v = parse_version(w.group("stem"))
        return Constraint("prefix", v, raw) if v is not None else None
    if not _version_like(raw):
        return None  # free text with spaces ("9.x model 35700BAX3", "< august 28") is not a version
    v = parse_version(raw)
    return Constraint("=", v, raw) if v is not None else None


def satisfies(version: Version, constraint: Constraint) -> bool | None:
    """Whether ``version`` meets ``constraint``; None when that cannot be told (incomparable segments)."""
    if constraint.op == "all":
        return True
    assert constraint.version is not None
    if constraint.op == "prefix":
        stem = constraint.version.segments
        head = version.segments[: len(stem)]
        if len(head) < len(stem):
            return False
        if any(isinstance(x, int) != isinstance(y, int) for x, y in zip(head, stem, strict=True)):
            return None
        return head == stem
    c = compare(version, constraint.version)
    if c is None:
        return None
    return {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0, "=": c == 0, "!=": c != 0}[constraint.op]


def in_range(version: Version, constraints: list[Constraint]) -> bool | None:
    """All of ``constraints`` at once (``>= 2.0`` and ``< 3.1``): False as soon as one is False, else None when one
    cannot be told, else True."""
    unknown = False
    for c in constraints:
        result = satisfies(version, c)
        if result is False:
            return False
        unknown |= result is None
    return None if unknown else True
