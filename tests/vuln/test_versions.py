"""Vendor firmware versions and advisory constraints (``vuln.versions``): annotated examples from the ICSMA
advisories in the corpus and vendor formats, plus ordering properties over generated versions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wardwatch.vuln.versions import Version, compare, in_range, parse_constraint, parse_version, satisfies


def v(text: str) -> Version:
    parsed = parse_version(text)
    assert parsed is not None, text
    return parsed


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.52", "1.6", 1),  # numbers, not strings: 52 > 6
        ("1.2", "1.2.1", -1),  # the shorter is the smaller
        ("v8.2", "8.2", 0),  # a leading v is not part of it
        ("22d19", "22d28", -1),  # Baxter Wireless Battery Module builds (v20D29 … v22D28)
        ("v20D29", "v22D24", -1),
        ("C.00.04", "C.00.10", -1),  # Philips IntelliVue firmware letters then numbers
        ("C.00.04", "D.00.01", -1),
        ("U61", "U62", -1),
        ("12.1.2", "12.1.10", -1),
        ("M.00.03", "M.00.03", 0),
    ],
)  # fmt: skip
def test_vendor_version_order(a: str, b: str, order: int) -> None:
    assert compare(v(a), v(b)) == order
    assert compare(v(b), v(a)) == -order


def test_a_digit_meeting_a_letter_cannot_be_ordered() -> None:
    assert compare(v("2.0"), v("C.00.04")) is None
    assert satisfies(v("2.0"), parse_constraint("<= C.00.04")) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("<=1.52", "1.52", True), ("<=1.52", "1.53", False), ("< 3.0", "2.9.9", True), (">= v20D29", "v20D30", True),
        (">= v20D29", "v20D28", False), ("v8.x", "8.4", True), ("v8.x", "9.0", False), ("8.*", "8", True),
        ("vers:all/*", "anything 7", True), ("All versions", "1.0", True), ("prior to 2.3", "2.2", True),
        ("prior to 2.3", "2.3", False), ("up to and including 4.1", "4.1", True), ("5.0 and later", "5.1", True),
        ("5.0 and later", "4.9", False), ("= 1.0", "1.0", True), ("!= 1.0", "1.0", False), ("1.0.3", "1.0.3", True),
    ],
)  # fmt: skip
def test_constraints(text: str, version: str, expected: bool) -> None:
    constraint = parse_constraint(text)
    assert constraint is not None, text
    assert satisfies(v(version), constraint) is expected


@pytest.mark.parametrize("text", ["< august 28", "9.x model 35700BAX3", "see vendor", "", "<= U61 |<= L"])
def test_free_text_is_not_a_constraint(text: str) -> None:
    """The ICSMA corpus's free-text ranges: not understood, so the caller says "possibly affected"."""
    assert parse_constraint(text) is None


def test_ranges_combine_and_unknown_is_never_not_affected() -> None:
    window = [c for c in (parse_constraint(">= v20D29"), parse_constraint("<= v20D32")) if c is not None]
    assert in_range(v("v20D30"), window) is True
    assert in_range(v("v20D33"), window) is False
    assert in_range(v("v21.0"), window) is False  # 21 > 20: past the upper bound, whatever follows
    assert in_range(v("C.01"), window) is None  # a letter where a number stands: cannot tell


versions = st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=5).map(
    lambda parts: v(".".join(map(str, parts)))
)


@given(versions, versions, versions)
def test_numeric_versions_are_totally_ordered(a: Version, b: Version, c: Version) -> None:
    ab, bc, ac = compare(a, b), compare(b, c), compare(a, c)
    assert ab is not None and bc is not None and ac is not None
    assert compare(b, a) == -ab
    if ab <= 0 and bc <= 0:
        assert ac <= 0
    assert (ab == 0) == (a.segments == b.segments)


@given(st.text(max_size=40))
def test_parsers_never_raise(text: str) -> None:
    parse_version(text)
    constraint = parse_constraint(text)
    if constraint is not None and constraint.version is not None:
        satisfies(constraint.version, constraint)
