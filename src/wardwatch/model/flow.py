"""Flows (bidirectional 5-tuple conversations) and communication-map edges."""

from __future__ import annotations

from dataclasses import dataclass

from wardwatch.model.addr import ip_sort_key
from wardwatch.model.inventory import DeviceId
from wardwatch.model.observation import CaptureId

PROTO_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp"}
PROTO_NUMBERS = {name: number for number, name in PROTO_NAMES.items()}


def proto_name(proto: int) -> str:
    """``6`` -> ``"tcp"``; unnamed protocols keep their number (``"103"``)."""
    return PROTO_NAMES.get(proto, str(proto))


def proto_number(name: str) -> int:
    """``"tcp"`` -> 6; a decimal string is accepted for unnamed protocols."""
    if name in PROTO_NUMBERS:
        return PROTO_NUMBERS[name]
    return int(name)


def flow_sort_key(f: Flow) -> tuple[int, int, tuple[int, int], int, tuple[int, int], int, str]:
    """Canonical flow order: first packet time, protocol, endpoints (numerically), capture."""
    return (
        f.first_ns,
        f.proto,
        ip_sort_key(f.src_ip),
        -1 if f.src_port is None else f.src_port,
        ip_sort_key(f.dst_ip),
        -1 if f.dst_port is None else f.dst_port,
        f.capture,
    )


@dataclass(frozen=True, slots=True)
class Flow:
    """A bidirectional conversation; ``src`` is the initiator (first SYN, else SYN-ACK receiver, else first sender)."""

    capture: CaptureId
    proto: int
    src_ip: str
    src_port: int | None
    dst_ip: str
    dst_port: int | None
    first_ns: int
    last_ns: int
    packets_src: int
    """Packets sent by the initiator."""
    packets_dst: int
    bytes_src: int
    """Original frame bytes sent by the initiator."""
    bytes_dst: int
    tcp_flags_src: int = 0
    tcp_flags_dst: int = 0
    initiator: str = "first-packet"
    """How the initiator was decided: ``syn``, ``syn-ack`` or ``first-packet``."""
    vlans: tuple[int, ...] = ()
    src_device: DeviceId | None = None
    dst_device: DeviceId | None = None

    @property
    def packets(self) -> int:
        """Packets in both directions."""
        return self.packets_src + self.packets_dst

    @property
    def bytes(self) -> int:
        """Frame bytes in both directions."""
        return self.bytes_src + self.bytes_dst

    @property
    def service(self) -> str:
        """``tcp/2575``; protocols without ports are just their name."""
        name = proto_name(self.proto)
        return name if self.dst_port is None else f"{name}/{self.dst_port}"


@dataclass(frozen=True, slots=True)
class Edge:
    """Aggregate of the flows from one device to another for one service (protocol + responder port)."""

    src_device: DeviceId
    dst_device: DeviceId
    proto: int
    port: int | None
    flows: int
    packets: int
    bytes: int
    first_ns: int
    last_ns: int

    @property
    def service(self) -> str:
        """``tcp/104``; protocols without ports are just their name."""
        name = proto_name(self.proto)
        return name if self.port is None else f"{name}/{self.port}"
