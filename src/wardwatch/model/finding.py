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


@dataclass(frozen=True, slots=True)
class Suppression:
    """A person's decision to hide a finding for a while: always with a reason and an expiry."""

    finding_id: str
    reason: str
    until_ns: int
    """The suppression ends here (ns since the epoch); the finding shows again after it."""
    created_ns: int
    created_by: str

    def active(self, now_ns: int) -> bool:
        return now_ns < self.until_ns
