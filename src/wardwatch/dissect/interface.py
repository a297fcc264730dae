"""The dissector contract: pure functions from a decoded Packet to Observations.

A dissector declares *which* packets it wants with a ``Selector`` (ports, ethertypes, IP protocols), so the
engine can dispatch with a table lookup instead of asking every dissector about every packet, and a faster
path can preselect packets in bulk. ``dissect`` never does I/O; on malformed input it raises
``MalformedPacket`` with a short reason, which the engine records as skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from wardwatch.errors import WardwatchError
from wardwatch.model.addr import ip_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, Subject, SubjectKind
from wardwatch.model.packet import Packet

if TYPE_CHECKING:
    from wardwatch.dissect.reassembly import HalfStream, TcpStream


class MalformedPacket(WardwatchError):  # noqa: N818 - reads as what the packet is
    """The bytes a dissector was given do not follow its protocol (the reason is recorded as skipped).

    ``partial``: what the dissector could decode before the broken part (the engine keeps it)."""

    def __init__(self, reason: str, partial: Iterable[Observation] = ()) -> None:
        super().__init__(reason)
        self.partial = tuple(partial)


#: Bytes a multi-byte payload test may compare at most.
MAX_TEST_BYTES = 16


@dataclass(frozen=True, slots=True)
class PayloadTest:
    """A test of the payload bytes at ``offset`` that every packet a dissector can learn from passes; packets
    that fail it are not offered, which the fast path decides for whole batches at once. One byte
    (``payload[offset] & mask == value``) or, with ``bytes`` of equal length for both, several: a protocol's
    signature (``PayloadTest(4, b"\\x00\\xff\\xff\\xff", b"\\x00SMB")`` for SMB1 and SMB2 after the NetBIOS
    header). Payloads shorter than ``min_length`` (or too short to hold the tested bytes) are offered whatever:
    the dissector reports them."""

    offset: int
    mask: int | bytes
    value: int | bytes
    min_length: int = 0

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ValueError("a payload test starts at a non-negative offset")
        if isinstance(self.mask, int) and isinstance(self.value, int):
            if not (0 <= self.mask <= 255 and 0 <= self.value <= 255):
                raise ValueError("a one-byte payload test compares values 0-255")
        elif not (
            isinstance(self.mask, bytes)
            and isinstance(self.value, bytes)
            and 0 < len(self.mask) == len(self.value) <= MAX_TEST_BYTES
        ):
            raise ValueError(
                f"a payload test compares one byte, or 1-{MAX_TEST_BYTES} bytes given as bytes of one length"
            )
        masks = bytes([self.mask]) if isinstance(self.mask, int) else self.mask
        values = bytes([self.value]) if isinstance(self.value, int) else self.value
        if any(v & ~m & 0xFF for m, v in zip(masks, values, strict=True)):
            raise ValueError("a payload test whose value has bits outside its mask never passes")

    @property
    def width(self) -> int:
        """Bytes compared."""
        return 1 if isinstance(self.mask, int) else len(self.mask)

    def passes(self, payload: bytes) -> bool:
        """Whether a packet with this payload is offered."""
        mask, value, at = self.mask, self.value, self.offset
        if isinstance(mask, int):
            if len(payload) < max(self.min_length, at + 1):
                return True
            return payload[at] & mask == value
        assert isinstance(value, bytes)
        if len(payload) < max(self.min_length, at + len(mask)):
            return True
        return all(payload[at + i] & m == v for i, (m, v) in enumerate(zip(mask, value, strict=True)))


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
    llc_snap: frozenset[tuple[int, int]] = frozenset()
    """(OUI, protocol id) of 802.2 SNAP frames (CDP: ``(0x00000C, 0x2000)``)."""
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


@dataclass(frozen=True, slots=True)
class StreamSelector:
    """Which TCP connections a stream dissector wants reassembled: those whose first payload packet in either
    direction passes one of the ``claim`` tests (on any port: HL7 over MLLP, DICOM, HTTP and TLS are recognised
    by what they carry), or that use one of ``tcp_ports``. Of a claimed connection, the first ``packets``
    payload packets of each direction are reassembled, at most ``byte_limit`` of each (``dissect.reassembly``)."""

    claim: tuple[PayloadTest, ...] = ()
    tcp_ports: frozenset[int] = frozenset()
    packets: int = 32
    byte_limit: int = 64 * 1024
    count_after: bytes = b""
    """Past the packets it reassembles, the occurrences of these bytes in each direction are still counted until
    the connection ends (``HalfStream.counted``): HL7 counts the PID segments of a long-lived link."""

    def __post_init__(self) -> None:
        if not (self.claim or self.tcp_ports):
            raise ValueError("a stream selector claims connections by a payload test or a port")
        if self.packets < 1 or self.byte_limit < 1:
            raise ValueError("a stream selector reassembles at least one packet and one byte")
        for test in self.claim:
            if test.min_length:
                raise ValueError("a claim test decides on the bytes it compares: no min_length")

    def claims(self, payload: bytes, src_port: int, dst_port: int) -> bool:
        """Whether a connection whose first payload packet (either direction) is ``payload`` is claimed."""
        if src_port in self.tcp_ports or dst_port in self.tcp_ports:
            return True
        return any(len(payload) >= t.offset + t.width and t.passes(payload) for t in self.claim)


class StreamDissector(Protocol):
    """A dissector of reassembled TCP streams (``dissect.reassembly.TcpStream``): both directions of a
    connection, from their first bytes. Like ``Dissector``, pure: no I/O; what it cannot read it reports by
    raising ``MalformedPacket`` after yielding what it could (the engine records the reason as skipped)."""

    name: str
    stream: StreamSelector

    def dissect_stream(self, stream: TcpStream) -> Iterable[Observation]:
        """Observations learned from ``stream``."""
        ...


@lru_cache(maxsize=65536)
def _ip_subject(ip: bytes) -> Subject:
    """The Subject of an IP address (immutable: one per address serves every observation about it)."""
    return Subject(SubjectKind.IP, ip_str(ip))


def observe_stream(
    stream: TcpStream,
    half: HalfStream,
    offset: int,
    attribute: Attribute,
    value: str,
    confidence: float,
    source: str,
    subject: bytes | None = None,
    count: int = 1,
) -> Observation:
    """An observation about the sender of ``half`` (or the IP ``subject``), stamped with the frame that carried
    byte ``offset`` of it; ``count``: how many times it was seen (``HalfObserver`` makes many of them)."""
    return HalfObserver(stream, half)(offset, attribute, value, confidence, source, subject, count)


class HalfObserver:
    """``observe_stream`` for the many observations of one direction: the reference of each frame and the
    subject of each address are made once."""

    __slots__ = ("_refs", "half", "stream")

    def __init__(self, stream: TcpStream, half: HalfStream) -> None:
        self.stream, self.half = stream, half
        self._refs: dict[int, tuple[PacketRef, int]] = {}

    def __call__(
        self,
        offset: int,
        attribute: Attribute,
        value: str,
        confidence: float,
        source: str,
        subject: bytes | None = None,
        count: int = 1,
    ) -> Observation:
        """As ``observe_stream(stream, half, offset, ...)``."""
        ref = self._refs.get(offset)
        if ref is None:
            number, ts = self.half.frame_at(offset)
            ref = self._refs[offset] = (PacketRef(self.stream.capture, number), ts)
        who = _ip_subject(subject if subject is not None else self.half.ip)
        return Observation(who, attribute, value, confidence, source, ref[0], ref[1], self.half.vlan, count)


class Facts(list[Observation]):
    """The observations a dissector makes about one subject of one packet, collected as it finds them:
    ``add(attribute, value, confidence, source)``; an empty value says nothing and is left out."""

    def __init__(self, packet: Packet, ref: PacketRef, kind: SubjectKind, subject: str) -> None:
        super().__init__()
        self._about = (packet, ref, kind, subject)

    def add(self, attribute: Attribute, value: str, confidence: float, source: str) -> None:
        if value:
            packet, ref, kind, subject = self._about
            self.append(observe(packet, ref, kind, subject, attribute, value, confidence, source))


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
