"""Cross-check of the reader and decoder against dpkt (the correctness reference named in DESIGN.md)."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from tests.conftest import corpus_captures
from wardwatch.capture import decode, open_capture
from wardwatch.model import LinkType


def dpkt_layers(linktype: int, data: bytes) -> tuple[bytes, bytes, int | None, int | None] | None:
    """(src ip, dst ip, src port, dst port) as dpkt decodes the outermost IP header, or None."""
    try:
        if linktype == LinkType.ETHERNET:
            l3 = dpkt.ethernet.Ethernet(data).data
        elif linktype == LinkType.LINUX_SLL:
            l3 = dpkt.sll.SLL(data).data
        elif linktype == LinkType.LINUX_SLL2:
            l3 = dpkt.sll2.SLL2(data).data
        elif linktype == LinkType.NULL:
            l3 = dpkt.loopback.Loopback(data).data
        elif linktype == LinkType.RAW:
            l3 = dpkt.ip.IP(data) if data[0] >> 4 == 4 else dpkt.ip6.IP6(data)
        else:
            return None
    except (dpkt.UnpackError, IndexError, struct_error):
        return None
    if isinstance(l3, dpkt.pppoe.PPPoE):
        l3 = l3.data.data if isinstance(l3.data, dpkt.ppp.PPP) else l3.data
    if not isinstance(l3, dpkt.ip.IP | dpkt.ip6.IP6):
        return None
    l4 = l3.data
    if isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP):
        return l3.src, l3.dst, l4.sport, l4.dport
    return l3.src, l3.dst, None, None


struct_error = __import__("struct").error


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_captures(), ids=lambda p: p.name)
def test_reader_and_decoder_agree_with_dpkt(path: Path) -> None:
    reader = open_capture(path)
    with open(path, "rb") as fh:
        theirs = list(dpkt.pcapng.Reader(fh) if path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh))
    ours = list(reader)
    assert len(ours) == len(theirs)
    compared = 0
    # dpkt applies the first interface's timestamp resolution to all (ndpi--knxip.pcapng mixes ns and us);
    # timestamps are compared with tshark in tests/test_corpus_tshark.py instead
    units = {i.units_per_second for i in getattr(reader, "interfaces", [])}
    for record, (ts, buf) in zip(ours, theirs, strict=True):
        assert record.data == bytes(buf)
        if len(units) <= 1:
            assert abs(record.ts_ns / 1e9 - float(ts)) < 1e-5
        ref = dpkt_layers(record.linktype, record.data)
        if ref is None:
            continue
        pkt = decode(record)
        if pkt.tunnels and pkt.tunnels != ("pppoe",):
            # we report the innermost IP header of IP-in-IP/GRE; dpkt stops at the outer one
            continue
        if pkt.fragment.value == 2:
            assert (pkt.src_ip, pkt.dst_ip) == ref[:2]
            continue
        assert (pkt.src_ip, pkt.dst_ip) == ref[:2], f"packet {record.number}"
        if ref[2] is not None and pkt.proto in (6, 17):
            assert (pkt.src_port, pkt.dst_port) == ref[2:], f"packet {record.number}"
        compared += 1
    assert compared > 0 or path.name in {"zeek--cdp-v1.pcap", "zeek--lldp.pcap", "arkime--wireshark-lldp.pcap"}


def test_generated_hard_cases_agree_with_dpkt(tmp_path: Path) -> None:
    """VLAN/QinQ, IPv4 options and fragments, IPv6 extension headers, tunnels, snaplen cuts: reader and decoder
    against dpkt (the fast path is checked against this decoder in test_fastpath.py)."""
    from tests.capture.test_fastpath import hard_frames
    from tests.conftest import write_pcap

    path = write_pcap(tmp_path / "hard.pcap", hard_frames())
    test_reader_and_decoder_agree_with_dpkt(path)
