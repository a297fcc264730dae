"""Protocol dissectors: bytes in, Observations out, never I/O."""

from wardwatch.dissect.interface import Dissector, MalformedPacket, PayloadTest, Selector
from wardwatch.dissect.registry import Registry, default_registry

__all__ = ["Dissector", "MalformedPacket", "PayloadTest", "Registry", "Selector", "default_registry"]
