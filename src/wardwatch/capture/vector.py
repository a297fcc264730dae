"""The batch header decoder: a whole ``RecordBatch`` at once into column arrays.

The common frames — Ethernet II with up to two VLAN tags carrying IPv4 (any options) or IPv6 without
extension headers, with a complete TCP, UDP or ICMP header or another non-tunnel protocol — are decoded by the
C helper (``_walk.decode_fast``) when it is built, else with numpy over the batch (one row gather of the link
header through a 1-byte-stride view, a second one from the network header, structured field views). Every
other frame (other link types, ARP, LLC, tunnels, extension headers, cut or malformed headers) goes through
the reference decoder (``decode``) and its fields are written into the same columns, so the columns always hold
exactly what the reference decoder says (the tests check both decoders against it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from wardwatch.capture.batch import RecordBatch, c_walk, rows
from wardwatch.capture.decode import decode
from wardwatch.model.packet import Fragment, LinkType, Packet

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
BOOL = npt.NDArray[np.bool_]

W_LINK = 24
W_NET = 64
TPIDS = (0x8100, 0x88A8, 0x9100)
IPV6_EXTENSIONS = (0, 43, 44, 51, 60, 135, 139, 140)
TUNNEL_PROTOS = (4, 41, 47)
IP_TUNNELS = frozenset({"ipv4", "ipv6", "gre"})
FRAGMENT_CODE = {Fragment.NONE: 0, Fragment.FIRST: 1, Fragment.LATER: 2}
FRAGMENTS = (Fragment.NONE, Fragment.FIRST, Fragment.LATER)


@dataclass(slots=True)
class Columns:
    """Decoded header fields of a batch, one array element per record (``-1`` / ``False`` = absent)."""

    batch: RecordBatch
    has_smac: BOOL
    smac: U64
    has_dmac: BOOL
    dmac: U64
    vlan: I32
    """Innermost VLAN id, -1 when untagged."""
    ethertype: I32
    ipver: npt.NDArray[np.uint8]
    src_hi: U64
    src_lo: U64
    """IPv4 addresses are in ``*_lo`` (high word 0); IPv6 addresses use both words, big-endian."""
    dst_hi: U64
    dst_lo: U64
    ttl: I32
    proto: I32
    frag: npt.NDArray[np.uint8]
    """0 not a fragment, 1 first fragment, 2 later fragment."""
    sport: I32
    dport: I32
    tflags: npt.NDArray[np.uint8]
    tseq: I64
    ip_tunnel: BOOL
    """Crossed an IP-in-IP / GRE encapsulation (the addresses are not the link-layer sender's own)."""
    arp: BOOL
    slow: BOOL
    """Decoded by the reference decoder (the vectorised path does not handle this frame)."""
    vlan_outer: I32 | None = None
    """First VLAN id when two non-zero ones are stacked (C decoder only)."""
    icmp: I32 | None = None
    """``type << 8 | code`` of ICMP/ICMPv6 rows, -1 otherwise (C decoder only)."""
    pay_start: I32 | None = None
    """Transport payload slice of the record, as the reference decoder cuts it (rows not decoded by the reference
    decoder: the vectorised decoders fill these; None only for a batch never decoded)."""
    pay_end: I32 | None = None
    problems: dict[int, str] = field(default_factory=dict)
    """Row -> why decoding stopped early (as ``Packet.problem``)."""
    packets: dict[int, Packet] = field(default_factory=dict)
    """Rows decoded by the reference decoder, kept for the dissectors."""

    def __len__(self) -> int:
        return len(self.batch)

    def packet(self, i: int) -> Packet:
        """The reference decoder's Packet for row ``i`` (built from the columns when the C decoder handled the
        row — the same Packet — else decoded; cached)."""
        pkt = self.packets.get(i)
        if pkt is None:
            if self.vlan_outer is not None and not self.slow[i]:
                self.prepare(np.array([i], dtype=np.int64))
                return self.packets[i]
            pkt = self.packets[i] = decode(self.batch.record(i))
        return pkt

    def prepare(self, rows: I64) -> None:
        """Build the Packets of ``rows`` at once (cheaper than one by one); ``packet`` then returns them."""
        if self.vlan_outer is None or len(rows) == 0:  # the numpy decoder: its rows are decoded one by one
            return
        fast = rows[~self.slow[rows]]
        if len(fast) == 0:
            return
        assert self.pay_start is not None and self.pay_end is not None and self.icmp is not None
        b = self.batch
        cols: list[npt.NDArray[Any]] = [
            b.number[fast], b.ts[fast], b.wirelen[fast], b.caplen[fast], b.linktype[fast], b.iface[fast],
            self.smac[fast], self.dmac[fast], self.vlan[fast], self.vlan_outer[fast], self.ethertype[fast],
            self.ipver[fast], self.src_hi[fast], self.src_lo[fast], self.dst_hi[fast], self.dst_lo[fast],
            self.ttl[fast], self.proto[fast], self.frag[fast], self.sport[fast], self.dport[fast],
            self.tflags[fast], self.tseq[fast], self.icmp[fast], b.start[fast] + self.pay_start[fast],
            b.start[fast] + self.pay_end[fast],
        ]  # fmt: skip
        buf = b.buf
        for i, row in zip(fast.tolist(), zip(*(c.tolist() for c in cols), strict=True), strict=True):
            (number, ts, wirelen, caplen, linktype, iface, smac, dmac, inner, outer, ethertype, ver, shi, slo, dhi,
             dlo, ttl, proto, frag, sport, dport, flags, seq, icmp, ps, pe) = row  # fmt: skip
            width = 4 if ver == 4 else 16
            self.packets[i] = Packet(
                number=number,
                ts_ns=ts,
                wirelen=wirelen,
                caplen=caplen,
                linktype=linktype,
                interface=iface,
                src_mac=smac.to_bytes(6, "big"),
                dst_mac=dmac.to_bytes(6, "big"),
                vlans=(outer, inner) if outer >= 0 else ((inner,) if inner >= 0 else ()),
                ethertype=ethertype,
                ip_version=ver,
                src_ip=((shi << 64) | slo).to_bytes(width, "big"),
                dst_ip=((dhi << 64) | dlo).to_bytes(width, "big"),
                ttl=ttl,
                proto=proto,
                fragment=FRAGMENTS[frag],
                src_port=None if sport < 0 else sport,
                dst_port=None if dport < 0 else dport,
                tcp_flags=flags,
                tcp_seq=None if seq < 0 else seq,
                icmp_type=None if icmp < 0 else icmp >> 8,
                icmp_code=None if icmp < 0 else icmp & 0xFF,
                payload=bytes(buf[ps:pe]),
            )

    def payload_test(self, rows: I64, offset: int, mask: int | bytes, value: int | bytes, min_length: int = 0) -> BOOL:
        """Whether each of ``rows`` has a transport payload whose bytes at ``offset``, masked, are ``value`` (one
        byte given as an int, or several as bytes of one length); a payload too short to hold them, or shorter
        than ``min_length``, passes (the dissectors' ``PayloadTest`` over a batch).

        Rows the vectorised decoders handled are tested in the buffer; the others on their decoded Packet."""
        out = np.ones(len(rows), dtype=bool)
        if self.pay_start is None or self.pay_end is None or len(rows) == 0:
            return out
        masks = bytes([mask]) if isinstance(mask, int) else mask
        values = bytes([value]) if isinstance(value, int) else value
        width = len(masks)
        need = max(min_length, offset + width)
        fast = ~self.slow[rows]
        fr = rows[fast]
        start, end = self.pay_start[fr], self.pay_end[fr]
        long = (end - start) >= need
        pos = self.batch.start[fr[long]] + start[long] + offset
        got = np.ones(len(fr), dtype=bool)
        buf = np.frombuffer(self.batch.buf, dtype=np.uint8)
        if width == 1:
            got[long] = (buf[pos] & masks[0]) == values[0]
        else:
            mat = buf[pos[:, None] + np.arange(width, dtype=np.int64)]
            m, v = np.frombuffer(masks, dtype=np.uint8), np.frombuffer(values, dtype=np.uint8)
            got[long] = ((mat & m) == v).all(axis=1)
        out[fast] = got
        for k in np.flatnonzero(~fast).tolist():
            payload = self.packet(int(rows[k])).payload
            out[k] = len(payload) < need or all(
                payload[offset + i] & mm == vv for i, (mm, vv) in enumerate(zip(masks, values, strict=True))
            )
        return out


def _field(mat: npt.NDArray[np.uint8], offset: int, fmt: str) -> npt.NDArray[np.generic]:
    """A zero-copy view of the big-endian field at ``offset`` of every row (``fmt``: ``>u2``, ``>u4``, ``>u8``)."""
    dt = np.dtype({"names": ["f"], "formats": [fmt], "offsets": [offset], "itemsize": mat.shape[1]})
    return np.ascontiguousarray(mat).view(dt)["f"].reshape(len(mat))


def _be(mat: npt.NDArray[np.uint8], lo: int, hi: int) -> npt.NDArray[np.uint64]:
    """Big-endian unsigned integer of bytes ``lo:hi`` of each row (2, 4, 6 or 8 bytes)."""
    width = hi - lo
    if width == 6:
        high = _field(mat, lo, ">u4").astype(np.uint64) << np.uint64(16)
        return cast(U64, high | _field(mat, lo + 4, ">u2").astype(np.uint64))
    return _field(mat, lo, {2: ">u2", 4: ">u4", 8: ">u8"}[width]).astype(np.uint64)


def decode_batch(batch: RecordBatch, use_c: bool = True) -> Columns:
    """Decode every record of ``batch`` (see the module docstring).

    With ``use_c`` (and the C helper built) the common frames are decoded by ``_walk.decode_fast`` instead of
    numpy; the rules are the same and the result identical (tests check both).
    """
    n = len(batch)
    cols = Columns(
        batch=batch,
        has_smac=np.zeros(n, dtype=bool),
        smac=np.zeros(n, dtype=np.uint64),
        has_dmac=np.zeros(n, dtype=bool),
        dmac=np.zeros(n, dtype=np.uint64),
        vlan=np.full(n, -1, dtype=np.int32),
        ethertype=np.full(n, -1, dtype=np.int32),
        ipver=np.zeros(n, dtype=np.uint8),
        src_hi=np.zeros(n, dtype=np.uint64),
        src_lo=np.zeros(n, dtype=np.uint64),
        dst_hi=np.zeros(n, dtype=np.uint64),
        dst_lo=np.zeros(n, dtype=np.uint64),
        ttl=np.full(n, -1, dtype=np.int32),
        proto=np.full(n, -1, dtype=np.int32),
        frag=np.zeros(n, dtype=np.uint8),
        sport=np.full(n, -1, dtype=np.int32),
        dport=np.full(n, -1, dtype=np.int32),
        tflags=np.zeros(n, dtype=np.uint8),
        tseq=np.full(n, -1, dtype=np.int64),
        ip_tunnel=np.zeros(n, dtype=bool),
        arp=np.zeros(n, dtype=bool),
        slow=np.ones(n, dtype=bool),
    )
    if n == 0:
        return cols
    if use_c and c_walk is not None:
        slow = np.empty(n, dtype=np.uint8)
        cols.vlan_outer = np.full(n, -1, dtype=np.int32)
        cols.icmp = np.full(n, -1, dtype=np.int32)
        cols.pay_start = np.zeros(n, dtype=np.int32)
        cols.pay_end = np.zeros(n, dtype=np.int32)
        c_walk.decode_fast(
            batch.buf, np.ascontiguousarray(batch.start, dtype=np.int64),
            np.ascontiguousarray(batch.caplen, dtype=np.int64), np.ascontiguousarray(batch.linktype, dtype=np.int32),
            cols.smac, cols.dmac, cols.vlan, cols.ethertype, cols.ipver, cols.src_hi, cols.src_lo, cols.dst_hi,
            cols.dst_lo, cols.ttl, cols.proto, cols.frag, cols.sport, cols.dport, cols.tflags, cols.tseq, slow,
            cols.vlan_outer, cols.icmp, cols.pay_start, cols.pay_end,
        )  # fmt: skip
        cols.slow = slow.view(bool)
        cols.has_smac = ~cols.slow
        cols.has_dmac = cols.has_smac.copy()
    else:
        cols.pay_start = np.zeros(n, dtype=np.int32)
        cols.pay_end = np.zeros(n, dtype=np.int32)
        buf = np.frombuffer(batch.buf, dtype=np.uint8)
        start, caplen = batch.start, batch.caplen
        eth = (batch.linktype == LinkType.ETHERNET) & (caplen >= 14) & (start + W_LINK <= len(buf))
        eth_rows = np.flatnonzero(eth)
        if len(eth_rows):
            _ethernet(cols, buf, eth_rows)
    for i in np.flatnonzero(cols.slow).tolist():
        _fill_from_packet(cols, i, cols.packet(i))
    return cols


def _ethernet(cols: Columns, buf: npt.NDArray[np.uint8], eth_rows: I64) -> None:
    batch = cols.batch
    m = rows(buf, batch.start[eth_rows], W_LINK)
    e0 = _field(m, 12, ">u2").astype(np.int32)
    e1 = _field(m, 16, ">u2").astype(np.int32)
    e2 = _field(m, 20, ">u2").astype(np.int32)
    tag1 = np.isin(e0, TPIDS)
    tag2 = tag1 & np.isin(e1, TPIDS)
    tag3 = tag2 & np.isin(e2, TPIDS)
    etype = np.where(tag2, e2, np.where(tag1, e1, e0))
    l3 = 14 + 4 * tag1.astype(np.int64) + 4 * tag2.astype(np.int64)
    vid1 = _field(m, 14, ">u2").astype(np.int32) & 0x0FFF
    vid2 = _field(m, 18, ">u2").astype(np.int32) & 0x0FFF
    vlan = np.where(tag2 & (vid2 != 0), vid2, np.where(tag1 & (vid1 != 0), vid1, -1))
    caplen = batch.caplen[eth_rows]
    start = batch.start[eth_rows]
    buflen = len(buf)
    ip = (
        ~tag3
        & ((etype == 0x0800) | (etype == 0x86DD))
        & (caplen >= l3 + np.where(etype == 0x0800, 20, 40))
        & (start + l3 + W_NET <= buflen)
    )
    sel = np.flatnonzero(ip)
    if len(sel) == 0:
        return
    r = eth_rows[sel]
    mm = m[sel]
    cols.dmac[r] = _be(mm, 0, 6)
    cols.smac[r] = _be(mm, 6, 12)  # has_smac/has_dmac are set for the rows the IP decoders accept
    cols.vlan[r] = vlan[sel]
    net = rows(buf, start[sel] + l3[sel], W_NET)
    version = net[:, 0] >> 4
    et = etype[sel]
    l3s = l3[sel]
    cap = caplen[sel]
    v4 = (et == 0x0800) & (version == 4)
    v6 = (et == 0x86DD) & (version == 6)
    if v4.any():
        _ipv4(cols, buf, r[v4], net[v4], l3s[v4], cap[v4], start[sel][v4])
    if v6.any():
        _ipv6(cols, r[v6], net[v6], l3s[v6], cap[v6])


def _transport_ok(proto: I32, avail: I64, l4: I64) -> BOOL:
    """The transport header the reference decoder needs is complete within the (trimmed) packet."""
    need = np.select([proto == 6, proto == 17, (proto == 1) | (proto == 58)], [20, 8, 4], 0)
    return cast(BOOL, avail >= l4 + need)


def _ipv4(
    cols: Columns, buf: npt.NDArray[np.uint8], r: I64, net: npt.NDArray[np.uint8], l3: I64, cap: I64, start: I64
) -> None:
    ihl = (net[:, 0] & 0x0F).astype(np.int64) * 4
    total = _field(net, 2, ">u2").astype(np.int64)
    fragw = _field(net, 6, ">u2").astype(np.int64)
    proto = net[:, 9].astype(np.int32)
    later = (fragw & 0x1FFF) != 0
    first = ~later & ((fragw & 0x2000) != 0)
    end = np.where(total >= ihl, l3 + total, cap)
    avail = np.minimum(cap, end)
    l4 = l3 + ihl
    ok = (ihl >= 20) & (cap >= l4) & ~np.isin(proto, TUNNEL_PROTOS)
    ok &= later | _transport_ok(proto, avail, l4)
    ok &= (ihl == 20) | (start + l4 + 14 <= len(buf))  # room for the third gather (options)
    sel = np.flatnonzero(ok)
    if len(sel) == 0:
        return
    rr = r[sel]
    nn = net[sel]
    p = proto[sel]
    cols.has_smac[rr] = True
    cols.has_dmac[rr] = True
    cols.ipver[rr] = 4
    cols.ethertype[rr] = 0x0800
    cols.src_lo[rr] = _be(nn, 12, 16)
    cols.dst_lo[rr] = _be(nn, 16, 20)
    cols.ttl[rr] = nn[:, 8]
    cols.proto[rr] = p
    cols.frag[rr] = np.where(later[sel], 2, np.where(first[sel], 1, 0)).astype(np.uint8)
    cols.slow[rr] = False
    _payload(cols, rr, p, l4[sel], avail[sel], later[sel])
    ports = np.flatnonzero(~later[sel] & ((p == 6) | (p == 17)))
    if len(ports):
        hl = ihl[sel][ports]
        th = np.empty((len(ports), 14), dtype=np.uint8)
        plain = hl == 20
        th[plain] = nn[ports[plain], 20:34]
        if not plain.all():
            q = ports[~plain]
            th[~plain] = rows(buf, start[sel][q] + l4[sel][q], 14)
        _ports(cols, rr[ports], p[ports], th, l4[sel][ports])


def _ipv6(cols: Columns, r: I64, net: npt.NDArray[np.uint8], l3: I64, cap: I64) -> None:
    plen = _field(net, 4, ">u2").astype(np.int64)
    nh = net[:, 6].astype(np.int32)
    end = np.where(plen > 0, l3 + 40 + plen, cap)
    avail = np.minimum(cap, end)
    l4 = l3 + 40
    ok = ~np.isin(nh, IPV6_EXTENSIONS) & ~np.isin(nh, TUNNEL_PROTOS) & _transport_ok(nh, avail, l4)
    sel = np.flatnonzero(ok)
    if len(sel) == 0:
        return
    rr = r[sel]
    nn = net[sel]
    p = nh[sel]
    cols.has_smac[rr] = True
    cols.has_dmac[rr] = True
    cols.ipver[rr] = 6
    cols.ethertype[rr] = 0x86DD
    cols.src_hi[rr] = _be(nn, 8, 16)
    cols.src_lo[rr] = _be(nn, 16, 24)
    cols.dst_hi[rr] = _be(nn, 24, 32)
    cols.dst_lo[rr] = _be(nn, 32, 40)
    cols.ttl[rr] = nn[:, 7]
    cols.proto[rr] = p
    cols.slow[rr] = False
    _payload(cols, rr, p, l4[sel], avail[sel], np.zeros(len(sel), dtype=bool))
    ports = np.flatnonzero((p == 6) | (p == 17))
    if len(ports):
        _ports(cols, rr[ports], p[ports], nn[ports, 40:54], l4[sel][ports])


def _payload(cols: Columns, idx: I64, proto: I32, l4: I64, avail: I64, later: BOOL) -> None:
    """Payload bounds of decoded IP rows as the reference decoder slices them: after the network header up to
    its stated end; ICMP's 4 header bytes skipped here, TCP's and UDP's headers by ``_ports``."""
    assert cols.pay_start is not None and cols.pay_end is not None
    icmp = ~later & ((proto == 1) | (proto == 58))
    start = np.where(icmp, l4 + 4, l4)
    cols.pay_start[idx] = np.minimum(start, avail)
    cols.pay_end[idx] = avail


def _ports(cols: Columns, idx: I64, proto: I32, th: npt.NDArray[np.uint8], l4: I64) -> None:
    """Ports, and for TCP sequence number and flags, from the first 14 bytes of the transport header (which
    starts at ``l4``: the payload starts after it)."""
    assert cols.pay_start is not None and cols.pay_end is not None
    cols.sport[idx] = _field(th, 0, ">u2")
    cols.dport[idx] = _field(th, 2, ">u2")
    tcp = proto == 6
    end = cols.pay_end[idx].astype(np.int64)
    udp_len = _field(th, 4, ">u2").astype(np.int64)
    end = np.where(~tcp & (udp_len >= 8) & (l4 + udp_len < end), l4 + udp_len, end)
    start = np.where(tcp, l4 + (th[:, 12] >> 4).astype(np.int64) * 4, l4 + 8)
    cols.pay_start[idx] = np.minimum(start, end)
    cols.pay_end[idx] = end
    if tcp.any():
        t = idx[tcp]
        tt = th[tcp]
        cols.tseq[t] = _be(tt, 4, 8).astype(np.int64)
        cols.tflags[t] = tt[:, 13]
        # a data offset below 5 words is a problem the reference decoder reports: let it decode those
        bad = (tt[:, 12] >> 4) < 5
        if bad.any():
            cols.slow[t[bad]] = True


def _fill_from_packet(cols: Columns, i: int, pkt: Packet) -> None:
    """Write the reference decoder's fields for row ``i`` into the columns."""
    cols.slow[i] = True
    if pkt.problem is not None:
        cols.problems[i] = pkt.problem
    cols.has_smac[i] = pkt.src_mac is not None
    cols.smac[i] = int.from_bytes(pkt.src_mac, "big") if pkt.src_mac is not None else 0
    cols.has_dmac[i] = pkt.dst_mac is not None
    cols.dmac[i] = int.from_bytes(pkt.dst_mac, "big") if pkt.dst_mac is not None else 0
    cols.vlan[i] = pkt.vlans[-1] if pkt.vlans else -1
    cols.ethertype[i] = -1 if pkt.ethertype is None else pkt.ethertype
    cols.ipver[i] = pkt.ip_version
    for name_hi, name_lo, addr in (("src_hi", "src_lo", pkt.src_ip), ("dst_hi", "dst_lo", pkt.dst_ip)):
        value = int.from_bytes(addr, "big") if addr is not None else 0
        getattr(cols, name_hi)[i] = value >> 64
        getattr(cols, name_lo)[i] = value & 0xFFFFFFFFFFFFFFFF
    if pkt.src_ip is None or pkt.dst_ip is None:
        cols.ipver[i] = 0
    cols.ttl[i] = -1 if pkt.ttl is None else pkt.ttl
    cols.proto[i] = -1 if pkt.proto is None else pkt.proto
    cols.frag[i] = FRAGMENT_CODE[pkt.fragment]
    cols.sport[i] = -1 if pkt.src_port is None else pkt.src_port
    cols.dport[i] = -1 if pkt.dst_port is None else pkt.dst_port
    cols.tflags[i] = pkt.tcp_flags
    cols.tseq[i] = -1 if pkt.tcp_seq is None else pkt.tcp_seq
    cols.ip_tunnel[i] = bool(pkt.tunnels) and not IP_TUNNELS.isdisjoint(pkt.tunnels)
    cols.arp[i] = pkt.arp is not None
