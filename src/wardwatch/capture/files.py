"""Open a capture file of any supported format: pcap, pcap-nsec, pcapng, each optionally gzip-compressed."""

from __future__ import annotations

import gzip
import os
from typing import BinaryIO, cast

from wardwatch.capture.interface import CaptureReader
from wardwatch.capture.pcap import MAGICS, PcapReader
from wardwatch.capture.pcapng import PcapngReader
from wardwatch.capture.stream import ByteStream, GzipSource, HashingFile, Readable
from wardwatch.errors import CaptureError, CaptureFormatError

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"


def open_capture(path: str | os.PathLike[str], sha256: bool = False) -> CaptureReader:
    """Open ``path`` and return a streaming reader for its format (``sha256``: also compute the file's SHA-256).

    Raises ``CaptureError`` if the file cannot be opened and ``CaptureFormatError`` if it is not a capture.
    """
    name = os.fspath(path)
    try:
        raw = open(name, "rb")  # noqa: SIM115 - closed by the reader's close()
        size = os.fstat(raw.fileno()).st_size
        head = raw.read(2)
        raw.seek(0)
    except OSError as exc:
        raise CaptureError(name, None, exc.strerror or str(exc)) from exc
    hashing = HashingFile(raw, sha256)
    compressed = head == GZIP_MAGIC
    source: Readable = GzipSource(gzip.GzipFile(fileobj=cast(BinaryIO, hashing), mode="rb")) if compressed else hashing
    stream = ByteStream(name, hashing, source)
    try:
        magic = stream.peek(4)
        if magic in MAGICS:
            return PcapReader(stream, size, compressed)
        if magic == PCAPNG_MAGIC:
            return PcapngReader(stream, size, compressed)
        if len(magic) < 4:
            raise stream.fail(0, f"file too short to be a capture ({len(magic)} bytes)")
        raise stream.fail(0, f"not a pcap or pcapng file (starts with {magic.hex()})")
    except CaptureFormatError:
        hashing.close()
        raise
