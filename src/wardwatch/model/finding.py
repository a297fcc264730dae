"""Findings: risks with severity, evidence, affected devices and remediation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from wardwatch.model.inventory import DeviceId


class Severity(IntEnum):
    """Finding severity, ordered so that comparisons work (``Severity.HIGH > Severity.LOW``)."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


@dataclass(frozen=True, slots=True)
class Finding:
    """A risk found by a rule."""

    id: str
    """Stable id: rule name plus a digest of what it is about."""
    rule: str
    severity: Severity
    title: str
    description: str
    devices: tuple[DeviceId, ...]
    evidence: tuple[str, ...]
    remediation: str
    first_ns: int
    last_ns: int
