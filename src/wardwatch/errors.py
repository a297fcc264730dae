"""The wardwatch error family: one root, a small family per layer.

Third-party errors are translated into these at the edge of the layer that calls the library, so callers
(the CLI, the web app) can map them to exit codes and messages without knowing which library failed.
"""

from __future__ import annotations


class WardwatchError(Exception):
    """Root of every error wardwatch raises on purpose."""


class InputError(WardwatchError):
    """Input that cannot be read or understood (exit code 3 in the CLI)."""


class CaptureError(InputError):
    """A capture file could not be read (completely).

    ``path`` and ``offset`` say where: the offset is the byte position in the (decompressed) file where the
    problem starts; everything before it was read and is kept.
    """

    def __init__(self, path: str, offset: int | None, message: str) -> None:
        self.path = path
        self.offset = offset
        self.message = message
        where = f"{path}" if offset is None else f"{path} at offset {offset}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[CaptureError], tuple[str, int | None, str]]:
        """Pickle with the constructor's arguments (errors travel back from worker processes)."""
        return (type(self), (self.path, self.offset, self.message))


class CaptureFormatError(CaptureError):
    """The file is not a capture, or its structure is broken (bad magic, bad block length, truncation)."""


class UnsupportedLinkTypeError(CaptureError):
    """The capture's link-layer type is not one wardwatch decodes."""


class InterfaceError(InputError):
    """A live interface cannot be opened, or cannot be monitored without the sensor transmitting on it."""

    def __init__(self, interface: str, message: str) -> None:
        self.interface = interface
        self.message = message
        super().__init__(f"interface {interface}: {message}")

    def __reduce__(self) -> tuple[type[InterfaceError], tuple[str, str]]:
        return (type(self), (self.interface, self.message))


class DissectorRegistrationError(WardwatchError):
    """A dissector was registered twice under one name, or is malformed."""


class CatalogError(InputError):
    """A fingerprint catalog or taxonomy file is not valid (the message names the file and the rule)."""


class StoreError(WardwatchError):
    """The database could not be opened, migrated or written."""


class ReportError(WardwatchError):
    """A report could not be rendered or written."""
