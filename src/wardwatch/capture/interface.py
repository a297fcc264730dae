"""The capture layer's contract: packet sources yield ``Record`` values; ``decode`` turns them into Packets.

A reader streams its file: memory does not grow with the file size. When the file is damaged the reader
yields every record before the damage and then raises ``CaptureFormatError`` naming the file and offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

#: Timestamp of a record whose stored time cannot be a time (beyond the int64 nanosecond range, year 2262).
TS_INVALID = -(2**63)
TS_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Record:
    """One packet record as stored in a capture file, before any header is decoded."""

    number: int
    """1-based packet number within the file (non-packet blocks are not counted)."""
    ts_ns: int
    """Nanoseconds since the epoch, or ``TS_INVALID`` when the stored time is out of range (corrupt)."""
    interface: int
    linktype: int
    caplen: int
    wirelen: int
    data: bytes
    offset: int
    """Byte offset of the record (its header or block) in the decompressed file."""


class CaptureReader(Protocol):
    """A streaming reader of one capture file."""

    path: str

    @property
    def format(self) -> str:
        """``pcap``, ``pcap-nsec``, ``pcapng``, prefixed ``gzip+`` when compressed."""
        ...

    @property
    def linktypes(self) -> tuple[int, ...]:
        """Link types seen so far (one per pcap file; one per interface in pcapng)."""
        ...

    @property
    def bytes_read(self) -> int:
        """Bytes of the underlying file consumed so far (for progress reporting)."""
        ...

    @property
    def size(self) -> int:
        """Size of the file on disk."""
        ...

    def digest(self) -> str:
        """``xxh3-128:<hex>`` of the file as stored; complete once iteration has ended (normally or by error)."""
        ...

    def sha256(self) -> str | None:
        """SHA-256 of the file as stored when requested at open time, else None."""
        ...

    def __iter__(self) -> Iterator[Record]:
        """Records in file order; raises ``CaptureFormatError`` after the last good record of a damaged file."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...
