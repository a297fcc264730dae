"""The risk layer's contract: a rule reads the resolved devices and map edges and yields Findings.

Rules are opinion over facts (DESIGN.md §5.5: parsing stays apart from opinion): dissectors record what was on
the wire (``phi_cleartext``, ``protocol smb:smb1-only``, …); rules decide what is a risk, how severe, and what
to do about it. ``evaluate`` runs rules and never lets one rule's bug lose the others' findings.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from wardwatch.inventory.catalog import Catalog
from wardwatch.model.event import Event
from wardwatch.model.finding import Finding, Severity
from wardwatch.model.flow import Edge
from wardwatch.model.inventory import Device


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What rules read: the devices and communication-map edges of an analysis (or of the whole store)."""

    devices: Sequence[Device]
    edges: Sequence[Edge]
    catalog: Catalog
    """The taxonomy (which device classes are medical) and fingerprint rules."""
    events: Sequence[Event] = ()
    """Live monitoring's events (new devices and paths against its baseline), when the store has them."""


class Rule(Protocol):
    """One risk rule (``name`` is the finding's ``rule``; ``severity`` its default)."""

    @property
    def name(self) -> str: ...

    @property
    def severity(self) -> Severity: ...

    def evaluate(self, ctx: RiskContext) -> Iterable[Finding]:
        """The findings of this rule."""
        ...


def finding_id(rule: str, *about: str) -> str:
    """A stable finding id: the rule and a digest of what it is about (the same facts give the same id)."""
    return f"{rule}:{hashlib.sha256(chr(0).join(about).encode()).hexdigest()[:16]}"


def evaluate(
    rules: Sequence[Rule], ctx: RiskContext, severities: Mapping[str, Severity] | None = None
) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """Every rule's findings, most severe first (then by rule and id), and what could not be evaluated: a rule
    that fails is reported by name and reason, the others still run. ``severities`` sets a rule's severity
    (the hospital's policy) in place of the rule's own judgement; naming a rule that does not exist is an
    error (``ValueError``), not a silent no-op."""
    unknown = sorted(set(severities or {}) - {r.name for r in rules})
    if unknown:
        known = ", ".join(sorted(r.name for r in rules))
        raise ValueError(f"no risk rule named {', '.join(unknown)} (rules: {known})")
    findings: list[Finding] = []
    problems: list[str] = []
    for rule in rules:
        try:
            found = list(rule.evaluate(ctx))
        except Exception as exc:  # a rule bug must not lose the other rules' findings
            problems.append(f"risk rule {rule.name} failed: {type(exc).__name__}: {exc}")
            continue
        level = (severities or {}).get(rule.name)
        findings += found if level is None else [dataclasses.replace(f, severity=level) for f in found]
    findings.sort(key=lambda f: (-int(f.severity), f.rule, f.id))
    return tuple(findings), tuple(problems)
