"""The dissector contract: pure functions from a decoded Packet to Observations.

A dissector declares *which* packets it wants with a ``Selector`` (ports, ethertypes, IP protocols), so the
engine can dispatch with a table lookup instead of asking every dissector about every packet, and a faster
path can preselect packets in bulk. ``dissect`` never does I/O; on malformed input it raises
``MalformedPacket`` with a short reason, which the engine records as skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from wardwatch.errors import WardwatchError
from wardwatch.model.observation import Attribute, Observation, PacketRef, Subject, SubjectKind
from wardwatch.model.packet import Packet


class MalformedPacket(WardwatchError):  # noqa: N818 - reads as what the packet is
    """The bytes a dissector was given do not follow its protocol (the reason is recorded as skipped)."""


@dataclass(frozen=True, slots=True)
class PayloadTest:
    """A test of one payload byte that every packet a dissector can learn from passes (``payload[offset] & mask
    == value``); packets that fail it are not offered, which the fast path decides for whole batches at once.
    Payloads shorter than ``min_length`` (or too short to have the byte) are offered whatever: the dissector
    reports them."""

    offset: int
    mask: int
    value: int
    min_length: int = 0

    def passes(self, payload: bytes) -> bool:
        """Whether a packet with this payload is offered."""
        if len(payload) < max(self.min_length, self.offset + 1):
            return True
        return payload[self.offset] & self.mask == self.value


@dataclass(frozen=True, slots=True)
class Selector:
    """What a dissector wants to see. A packet matching any of the fields is offered to it (when it passes
    ``payload``, if set)."""

    udp_ports: frozenset[int] = frozenset()
    """Either the source or the destination port."""
    tcp_ports: frozenset[int] = frozenset()
    ethertypes: frozenset[int] = frozenset()
    ip_protos: frozenset[int] = frozenset()
    arp: bool = False
    stream_head: int = 0
    """The first ``stream_head`` packets with a TCP payload in each direction of every TCP connection, on any
    port (a pure SYN starts a connection again): for protocols recognised by what they carry (HL7 over MLLP,
    DICOM, TLS ...). The engine numbers them (``inventory.streams``) and passes the number to ``for_packet``."""
    payload: PayloadTest | None = None


class Dissector(Protocol):
    """A protocol dissector."""

    name: str
    """Unique registry name (``dhcp``, ``dns`` …)."""
    selector: Selector

    def dissect(self, packet: Packet, ref: PacketRef) -> Iterable[Observation]:
        """Observations learned from ``packet`` (``ref`` says where it is, for evidence)."""
        ...


def observe(
    packet: Packet,
    ref: PacketRef,
    kind: SubjectKind,
    subject: str,
    attribute: Attribute,
    value: str,
    confidence: float,
    source: str,
) -> Observation:
    """Build an Observation stamped with the packet's time, VLAN and reference."""
    return Observation(
        subject=Subject(kind, subject),
        attribute=attribute,
        value=value,
        confidence=confidence,
        source=source,
        packet=ref,
        ts_ns=packet.ts_ns,
        vlan=packet.vlans[-1] if packet.vlans else None,
    )
