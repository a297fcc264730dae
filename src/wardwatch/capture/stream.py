"""Buffered, hashing byte streams under the capture readers.

``ByteStream`` hands out exact-length slices from large chunks so per-record reads cost little, tracks the
offset in the (decompressed) stream and keeps a SHA-256 of the file as stored on disk.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import zlib
from typing import Protocol

import xxhash

from wardwatch.errors import CaptureFormatError

CHUNK = 1 << 20


class Readable(Protocol):
    """Anything with ``read(n) -> bytes`` (a file, a decompressor)."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes; empty at the end."""
        ...


class GzipSource:
    """A gzip stream read with ``read1``: each call decompresses what one read of the file gives, so a
    truncated archive yields everything before the damage instead of losing the last chunk."""

    def __init__(self, gz: gzip.GzipFile) -> None:
        self._gz = gz

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` decompressed bytes."""
        return self._gz.read1(n)


class FileDigest:
    """Digests of a file as read: xxh3-128 always (its identity: ~10 GB/s), SHA-256 when asked for (chain of
    custody: ~1.4 GB/s, as much CPU time as the rest of the analysis)."""

    def __init__(self, sha256: bool = False) -> None:
        self._xxh = xxhash.xxh3_128()
        self._sha = hashlib.sha256() if sha256 else None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes read from the file."""
        self._xxh.update(data)
        if self._sha is not None:
            self._sha.update(data)

    def digest(self) -> str:
        """``xxh3-128:<32 hex digits>``."""
        return "xxh3-128:" + self._xxh.hexdigest()

    def sha256(self) -> str | None:
        """Hex SHA-256, or None when not computed."""
        return None if self._sha is None else self._sha.hexdigest()


class HashingFile:
    """A read-only file wrapper that hashes every byte read from the file on disk."""

    def __init__(self, raw: Readable, sha256: bool = False) -> None:
        self._raw = raw
        self.digests = FileDigest(sha256)
        self.consumed = 0

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes and add them to the hash."""
        data = self._raw.read(n)
        self.digests.update(data)
        self.consumed += len(data)
        return data

    def readable(self) -> bool:
        """Always True (lets ``gzip.GzipFile`` wrap it)."""
        return True

    def drain(self) -> None:
        """Hash the rest of the file without interpreting it."""
        while chunk := self.read(CHUNK):
            del chunk

    def close(self) -> None:
        """Close the file on disk."""
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


class ByteStream:
    """Exact-length reads over a (possibly decompressing) file, with the current offset."""

    def __init__(self, path: str, hashing: HashingFile, source: Readable) -> None:
        self.path = path
        self.hashing = hashing
        self._src = source
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._damage: str | None = None

    @property
    def offset(self) -> int:
        """Offset of the next unread byte in the decompressed stream."""
        return self._base + self._pos

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer only at the end of the stream."""
        pos = self._pos
        end = pos + n
        if end <= len(self._buf):
            self._pos = end
            return self._buf[pos:end]
        return self._read_slow(n)

    def _read_slow(self, n: int) -> bytes:
        rest = self._buf[self._pos :]
        self._base += self._pos  # everything before the position is consumed and dropped
        parts = [rest]
        have = len(rest)
        while have < n and self._damage is None:
            chunk = self._raw_read(max(CHUNK, n - have))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts) if len(parts) > 1 else rest
        self._buf = data
        take = min(n, len(data))
        self._pos = take
        return data[:take]

    def peek(self, n: int) -> bytes:
        """Up to ``n`` bytes without consuming them."""
        start = self.offset
        data = self.read(n)
        # rewind within the buffer: read() always leaves the returned bytes in the buffer
        self._pos -= len(data)
        assert self.offset == start
        return data

    def _raw_read(self, n: int) -> bytes:
        """Read from the source; a damaged compressed stream ends the data (the reason is kept for ``fail``)."""
        try:
            return self._src.read(n)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            self._damage = f"compressed stream is damaged: {exc or type(exc).__name__}"
            return b""

    def fail(self, offset: int, message: str) -> CaptureFormatError:
        """Finish hashing the file and build the error to raise (offset = where the damage starts)."""
        with contextlib.suppress(OSError):
            self.hashing.drain()
        if self._damage is not None:
            message = f"{message}: {self._damage}"
        return CaptureFormatError(self.path, offset, message)


class StreamReader:
    """Shared plumbing of the file readers: the stream, the file size and the link types seen."""

    format_name = "?"

    def __init__(self, stream: ByteStream, size: int, compressed: bool) -> None:
        self.path = stream.path
        self._stream = stream
        self._size = size
        self._compressed = compressed
        self._linktypes: dict[int, None] = {}

    @property
    def format(self) -> str:
        """Format name, prefixed ``gzip+`` when the file is compressed."""
        return ("gzip+" if self._compressed else "") + self.format_name

    @property
    def linktypes(self) -> tuple[int, ...]:
        """Link types seen so far, in order of appearance."""
        return tuple(self._linktypes)

    @property
    def size(self) -> int:
        """Size of the file on disk."""
        return self._size

    @property
    def bytes_read(self) -> int:
        """Bytes of the file on disk consumed so far."""
        return self._stream.hashing.consumed

    def digest(self) -> str:
        """xxh3-128 digest of the file as stored (complete after iteration): its identity."""
        return self._stream.hashing.digests.digest()

    def sha256(self) -> str | None:
        """SHA-256 of the file as stored, when asked for at open time (complete after iteration)."""
        return self._stream.hashing.digests.sha256()

    def close(self) -> None:
        """Close the underlying file."""
        self._stream.hashing.close()
