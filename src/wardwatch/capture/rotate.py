"""Raw capture to disk for forensics: pcapng files rotated by size and age, the oldest removed beyond a count.

Each file is a complete pcapng section (draft-ietf-opsawg-pcapng §4.1 SHB; §4.2 one IDB per monitored
interface, with ``if_name`` (2) and ``if_tsresol`` (9) = 9, nanoseconds; §4.3 one EPB per frame), readable by
wardwatch, Wireshark and tcpdump while it grows: blocks are only ever appended, and a file that reaches its
size or age is closed and the next one opened. Names are ``<prefix>-<UTC start>-<n>.pcapng``.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Sequence
from pathlib import Path

from wardwatch.capture.batch import RecordBatch
from wardwatch.capture.pcapng import BYTE_ORDER_MAGIC, EPB, IDB, OPT_IF_TSRESOL, SHB
from wardwatch.errors import InputError

OPT_IF_NAME = 2
SNAPLEN = 262_144


class RotationError(InputError):
    """The capture directory cannot be written."""


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


class PcapngRotator:
    """Writes every batch it is given (``write``) to ``directory``; see the module docstring.

    ``interfaces``: (name, link type) in the order of the batches' ``iface`` numbers. ``max_bytes`` and
    ``max_seconds`` bound one file (0: no bound); at most ``keep`` files are kept (0: all).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        interfaces: Sequence[tuple[str, int]],
        prefix: str = "wardwatch",
        max_bytes: int = 100 * 1024 * 1024,
        max_seconds: float = 3600.0,
        keep: int = 24,
    ) -> None:
        self.directory = Path(directory)
        self.interfaces = list(interfaces)
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.keep = keep
        self.files: list[Path] = []
        """Files written by this rotator, oldest first (those removed beyond ``keep`` are dropped)."""
        self._handle: int | None = None
        self._size = 0
        self._opened = 0.0
        self._count = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RotationError(f"cannot create the capture directory {self.directory}: {exc.strerror}") from exc

    def _open(self) -> None:
        self._count += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{self.prefix}-{stamp}-{self._count:04d}.pcapng"
        try:
            self._handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except OSError as exc:
            raise RotationError(f"cannot write {path}: {exc.strerror}") from exc
        self.files.append(path)
        head = _block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _option(0, b""))
        for name, linktype in self.interfaces:
            options = _option(OPT_IF_NAME, name.encode()) + _option(OPT_IF_TSRESOL, b"\x09") + _option(0, b"")
            head += _block(IDB, struct.pack("<HHI", linktype, 0, SNAPLEN) + options)
        self._size = 0
        self._opened = time.monotonic()
        self._emit(head)
        self._prune()

    def _emit(self, data: bytes | bytearray) -> None:
        assert self._handle is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._handle, view) :]
        except OSError as exc:
            raise RotationError(f"cannot write {self.files[-1]}: {exc.strerror}") from exc
        self._size += len(data)

    def _prune(self) -> None:
        while self.keep and len(self.files) > self.keep:
            old = self.files.pop(0)
            try:
                old.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise RotationError(f"cannot remove {old}: {exc.strerror}") from exc

    def write(self, batch: RecordBatch) -> None:
        """Append the frames of ``batch`` (opening and rotating files as needed)."""
        if not len(batch):
            return
        if self._handle is None:
            self._open()
        out = bytearray()
        buf = batch.buf
        epb = struct.Struct("<IIIIIII").pack
        for start, caplen, wirelen, ts, iface in zip(
            batch.start.tolist(), batch.caplen.tolist(), batch.wirelen.tolist(), batch.ts.tolist(),
            batch.iface.tolist(), strict=True,
        ):  # fmt: skip
            pad = -caplen % 4
            total = 32 + caplen + pad
            out += epb(EPB, total, iface, (ts >> 32) & 0xFFFFFFFF, ts & 0xFFFFFFFF, caplen, wirelen)
            out += buf[start : start + caplen]
            out += b"\x00" * pad + struct.pack("<I", total)
        self._emit(out)
        if (self.max_bytes and self._size >= self.max_bytes) or (
            self.max_seconds and time.monotonic() - self._opened >= self.max_seconds
        ):
            self.close()

    def close(self) -> None:
        """Close the current file (the next ``write`` opens a new one)."""
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None
