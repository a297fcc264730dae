"""The flow table: bidirectional conversations keyed by (protocol, endpoint A, endpoint B).

The initiator is the side that sent the first SYN (or received the first SYN-ACK); otherwise the side that
sent the first packet seen. A TCP connection that reuses the ports of a closed one (a new SYN after FIN or
RST), or any conversation idle longer than its protocol's timeout, starts a new flow. Non-first IP
fragments carry no ports and are not part of a transport flow (the caller counts them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wardwatch.model.addr import ip_str
from wardwatch.model.flow import Flow
from wardwatch.model.inventory import DeviceId
from wardwatch.model.observation import CaptureId
from wardwatch.model.packet import Fragment, IpProto, Packet, TcpFlag

SYN = int(TcpFlag.SYN)
ACK = int(TcpFlag.ACK)
FIN = int(TcpFlag.FIN)
RST = int(TcpFlag.RST)

#: Protocols whose flows are keyed by ports.
PORT_PROTOS = frozenset({IpProto.TCP, IpProto.UDP, IpProto.SCTP})

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Idle time after which a conversation's next packet starts a new flow (None = never)."""

    tcp_ns: int | None = None
    """TCP flows split on connection boundaries (SYN after FIN/RST) rather than idle time by default."""
    other_ns: int | None = 600 * NS


class FlowState:
    """Counters of one live flow (mutable; turned into a frozen ``Flow`` at the end)."""

    __slots__ = (
        "bytes_fwd",
        "bytes_rev",
        "closed",
        "dst",
        "first_ns",
        "flags_fwd",
        "flags_rev",
        "initiator",
        "last_ns",
        "packets_fwd",
        "packets_rev",
        "proto",
        "src",
        "syn_seq",
        "vlans",
    )

    def __init__(self, proto: int, src: tuple[bytes, int | None], dst: tuple[bytes, int | None], ts: int) -> None:
        self.proto = proto
        self.src = src
        self.dst = dst
        self.first_ns = ts
        self.last_ns = ts
        self.packets_fwd = 0
        self.packets_rev = 0
        self.bytes_fwd = 0
        self.bytes_rev = 0
        self.flags_fwd = 0
        self.flags_rev = 0
        self.initiator = "first-packet"
        self.closed = False
        self.syn_seq: int | None = None
        self.vlans: dict[int, None] = {}


FlowKey = tuple[int, bytes, int, bytes, int]


class FlowTable:
    """Aggregates packets into flows for one capture."""

    def __init__(self, capture: CaptureId, timeouts: Timeouts | None = None) -> None:
        self.capture = capture
        self.timeouts = timeouts or Timeouts()
        self._live: dict[FlowKey, FlowState] = {}
        self._done: list[FlowState] = []

    def add(self, pkt: Packet) -> FlowState | None:
        """Account ``pkt`` to its flow; returns the flow, or None for packets that belong to none."""
        src_ip = pkt.src_ip
        dst_ip = pkt.dst_ip
        proto = pkt.proto
        if src_ip is None or dst_ip is None or proto is None or pkt.fragment is Fragment.LATER:
            return None
        if proto in PORT_PROTOS:
            sport = pkt.src_port
            dport = pkt.dst_port
            if sport is None or dport is None:
                return None  # transport header missing (cut or malformed): recorded by the caller
        else:
            sport = dport = None
        a = (src_ip, -1 if sport is None else sport)
        b = (dst_ip, -1 if dport is None else dport)
        key: FlowKey = (proto, *a, *b) if a <= b else (proto, *b, *a)
        ts = pkt.ts_ns
        flags = pkt.tcp_flags
        flow = self._live.get(key)
        if flow is not None and self._starts_new(flow, pkt, ts):
            self._done.append(flow)
            flow = None
        if flow is None:
            flow = FlowState(proto, (src_ip, sport), (dst_ip, dport), ts)
            if proto == IpProto.TCP and flags & SYN:
                if flags & ACK:
                    flow.src, flow.dst = flow.dst, flow.src
                    flow.initiator = "syn-ack"
                else:
                    flow.initiator = "syn"
                    flow.syn_seq = pkt.tcp_seq
            self._live[key] = flow
        if ts < flow.first_ns:
            flow.first_ns = ts
        if ts > flow.last_ns:
            flow.last_ns = ts
        if flow.src[0] == src_ip and flow.src[1] == sport:
            flow.packets_fwd += 1
            flow.bytes_fwd += pkt.wirelen
            flow.flags_fwd |= flags
        else:
            flow.packets_rev += 1
            flow.bytes_rev += pkt.wirelen
            flow.flags_rev |= flags
        if flags & (FIN | RST):
            flow.closed = True
        if pkt.vlans:
            flow.vlans[pkt.vlans[-1]] = None
        return flow

    def _starts_new(self, flow: FlowState, pkt: Packet, ts: int) -> bool:
        if flow.proto == IpProto.TCP:
            flags = pkt.tcp_flags
            if flags & SYN and not flags & ACK:
                if flow.closed:
                    return True
                # a SYN with a different initial sequence number from the initiator: a new connection
                if flow.syn_seq is not None and pkt.tcp_seq != flow.syn_seq and (flow.flags_rev & ACK):
                    return True
            limit = self.timeouts.tcp_ns
        else:
            limit = self.timeouts.other_ns
        return limit is not None and ts - flow.last_ns > limit

    def states(self) -> Iterator[FlowState]:
        """All flows, finished and live, in order of first packet."""
        everything = [*self._done, *self._live.values()]
        everything.sort(key=lambda f: (f.first_ns, f.proto, f.src, f.dst))
        return iter(everything)

    def __len__(self) -> int:
        return len(self._done) + len(self._live)

    def flows(self, device_of: Callable[[bytes, int], DeviceId | None], capture: CaptureId | None = None) -> list[Flow]:
        """Frozen flows, each endpoint resolved by ``device_of(ip, first_ns)``; ``capture`` overrides the id."""
        capture_id = self.capture if capture is None else capture
        out = [
            Flow(
                capture=capture_id,
                proto=s.proto,
                src_ip=ip_str(s.src[0]),
                src_port=s.src[1],
                dst_ip=ip_str(s.dst[0]),
                dst_port=s.dst[1],
                first_ns=s.first_ns,
                last_ns=s.last_ns,
                packets_src=s.packets_fwd,
                packets_dst=s.packets_rev,
                bytes_src=s.bytes_fwd,
                bytes_dst=s.bytes_rev,
                tcp_flags_src=s.flags_fwd,
                tcp_flags_dst=s.flags_rev,
                initiator=s.initiator,
                vlans=tuple(sorted(s.vlans)),
                src_device=device_of(s.src[0], s.first_ns),
                dst_device=device_of(s.dst[0], s.first_ns),
            )
            for s in self.states()
        ]
        return out
