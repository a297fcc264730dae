"""Flow table: bidirectional aggregation, initiator choice, connection reuse, timeouts, fragments."""

from __future__ import annotations

from wardwatch.inventory.flows import FlowTable, Timeouts
from wardwatch.model import Fragment, LinkType, Packet
from wardwatch.model.observation import CaptureId

C, S = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
SYN, SYNACK, ACK, FIN, RST = 0x02, 0x12, 0x10, 0x11, 0x04


def pkt(
    ts: int,
    src: bytes,
    dst: bytes,
    sport: int | None,
    dport: int | None,
    flags: int = 0,
    size: int = 60,
    proto: int = 6,
    seq: int = 0,
    fragment: Fragment = Fragment.NONE,
) -> Packet:
    return Packet(
        number=ts,
        ts_ns=ts,
        wirelen=size,
        caplen=size,
        linktype=LinkType.ETHERNET,
        ip_version=4,
        src_ip=src,
        dst_ip=dst,
        proto=proto,
        src_port=sport,
        dst_port=dport,
        tcp_flags=flags,
        tcp_seq=seq,
        fragment=fragment,
    )


def device(ip: bytes, _ts: int) -> None:
    return None


def table(*packets: Packet, timeouts: Timeouts | None = None) -> FlowTable:
    t = FlowTable(CaptureId("c"), timeouts)
    for p in packets:
        t.add(p)
    return t


def test_handshake_decides_initiator_and_counts_directions() -> None:
    t = table(
        pkt(1, C, S, 50000, 2575, SYN, 74, seq=100),
        pkt(2, S, C, 2575, 50000, SYNACK, 74),
        pkt(3, C, S, 50000, 2575, ACK, 66),
        pkt(4, C, S, 50000, 2575, 0x18, 400),
        pkt(5, S, C, 2575, 50000, 0x18, 120),
    )
    (f,) = t.flows(device)
    assert (f.src_ip, f.src_port, f.dst_ip, f.dst_port, f.initiator) == ("10.0.0.1", 50000, "10.0.0.2", 2575, "syn")
    assert (f.packets_src, f.packets_dst, f.bytes_src, f.bytes_dst) == (3, 2, 540, 194)
    assert (f.first_ns, f.last_ns) == (1, 5)
    assert f.tcp_flags_src == SYN | ACK | 0x08 and f.tcp_flags_dst == SYNACK | 0x08
    assert f.service == "tcp/2575"


def test_capture_starting_at_syn_ack_and_mid_stream() -> None:
    (f,) = table(pkt(1, S, C, 104, 40000, SYNACK), pkt(2, C, S, 40000, 104, ACK)).flows(device)
    assert (f.src_ip, f.dst_port, f.initiator) == ("10.0.0.1", 104, "syn-ack")
    (g,) = table(pkt(1, S, C, 104, 40000, 0x18), pkt(2, C, S, 40000, 104, ACK)).flows(device)
    assert (g.src_ip, g.initiator) == ("10.0.0.2", "first-packet")


def test_port_reuse_after_close_is_a_new_flow() -> None:
    t = table(
        pkt(1, C, S, 50000, 104, SYN, seq=1),
        pkt(2, S, C, 104, 50000, SYNACK),
        pkt(3, C, S, 50000, 104, FIN),
        pkt(4, S, C, 104, 50000, FIN),
        pkt(10, C, S, 50000, 104, SYN, seq=999),
        pkt(11, S, C, 104, 50000, RST),
    )
    flows = t.flows(device)
    assert [(f.first_ns, f.packets) for f in flows] == [(1, 4), (10, 2)]
    # a retransmitted SYN (same sequence number) stays in its flow
    assert len(table(pkt(1, C, S, 1, 2, SYN, seq=5), pkt(2, C, S, 1, 2, SYN, seq=5)).flows(device)) == 1


def test_udp_idle_timeout_and_icmp_and_fragments() -> None:
    t = table(
        pkt(0, C, S, 123, 123, proto=17),
        pkt(5_000_000_000, S, C, 123, 123, proto=17),
        pkt(700_000_000_000, S, C, 123, 123, proto=17),  # idle > 600 s: a new flow, initiated by S
        pkt(1, C, S, None, None, proto=1),
        pkt(2, C, S, None, None, proto=17, fragment=Fragment.LATER),
    )
    flows = t.flows(device)
    udp = [f for f in flows if f.proto == 17]
    assert [(f.src_ip, f.packets) for f in udp] == [("10.0.0.1", 2), ("10.0.0.2", 1)]
    (icmp,) = [f for f in flows if f.proto == 1]
    assert icmp.src_port is None and icmp.service == "icmp"
    assert len(flows) == 3  # the non-first fragment belongs to no transport flow


def test_devices_resolved_at_flow_start() -> None:
    seen = []

    def resolve(ip: bytes, ts: int) -> str:
        seen.append(ts)
        return "dev"

    (f,) = table(pkt(7, C, S, 1, 2, proto=17)).flows(resolve)  # type: ignore[arg-type]
    assert f.src_device == "dev" and seen == [7, 7]
