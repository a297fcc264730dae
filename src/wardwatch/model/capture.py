"""Capture files as analysed, and what could not be analysed in them."""

from __future__ import annotations

from dataclasses import dataclass

from wardwatch.model.observation import CaptureId


@dataclass(frozen=True, slots=True)
class CaptureInfo:
    """A capture file read by wardwatch: identity, format and totals."""

    id: CaptureId
    """First 16 hex digits of ``digest``: stable across databases and runs."""
    digest: str
    """``xxh3-128:<hex>`` of the file as stored: its identity."""
    sha256: str | None
    """SHA-256 of the file when asked for (``analyze --sha256``), for chain of custody; else None."""
    path: str
    size: int
    """File size in bytes (compressed size for gzip files)."""
    format: str
    """``pcap``, ``pcap-nsec``, ``pcapng``; prefixed ``gzip+`` when compressed."""
    linktypes: tuple[int, ...]
    packets: int
    bytes: int
    """Sum of original frame lengths."""
    first_ns: int | None
    last_ns: int | None
    error: str | None = None
    """Why reading stopped before the end of the file (everything before ``error_offset`` was kept)."""
    error_offset: int | None = None

    @property
    def complete(self) -> bool:
        """True when the whole file was read."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class Skipped:
    """Packets (or records) that were not fully analysed, grouped by reason: nothing is dropped silently."""

    capture: CaptureId
    reason: str
    count: int
    examples: tuple[int, ...]
    """Frame numbers of the first few affected packets."""
