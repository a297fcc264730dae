"""Packet sources (capture files; live interfaces later) and the header decoder."""

from wardwatch.capture.decode import decode
from wardwatch.capture.files import open_capture
from wardwatch.capture.interface import CaptureReader, Record

__all__ = ["CaptureReader", "Record", "decode", "open_capture"]
