"""Protocol dissectors: bytes in, Observations out, never I/O."""

from wardwatch.dissect.interface import (
    Dissector,
    MalformedPacket,
    PayloadTest,
    Selector,
    StreamDissector,
    StreamSelector,
)
from wardwatch.dissect.reassembly import Limits, Reassembler, TcpStream
from wardwatch.dissect.registry import Registry, default_registry

__all__ = [
    "Dissector",
    "Limits",
    "MalformedPacket",
    "PayloadTest",
    "Reassembler",
    "Registry",
    "Selector",
    "StreamDissector",
    "StreamSelector",
    "TcpStream",
    "default_registry",
]
