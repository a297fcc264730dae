"""The result of analysing captures: what ``wardwatch analyze --json`` writes and the store ingests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wardwatch.model.capture import CaptureInfo, Skipped
from wardwatch.model.finding import Finding
from wardwatch.model.flow import Edge, Flow
from wardwatch.model.inventory import Device

SCHEMA = "wardwatch.analysis/1"


@dataclass(frozen=True, slots=True)
class Analysis:
    """Captures, devices, flows, map edges, findings and skipped packets of one analysis run."""

    captures: tuple[CaptureInfo, ...]
    devices: tuple[Device, ...]
    flows: Sequence[Flow]
    """A tuple, or ``FlowColumns`` (the fast path's flows as columns, read as a sequence of ``Flow``)."""
    edges: Sequence[Edge]
    """A tuple, or the engine's ``MapEdges`` (built from the flows when first read)."""
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...]
    errors: tuple[str, ...] = ()
    """Input errors met during the run (file, offset, what went wrong); partial results are kept."""
