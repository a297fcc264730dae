#!/usr/bin/env python3
"""Deterministic generator of a realistic hospital capture for the benchmark.

About 1.96 M packets and 1.4 GB over one hour, ~2,000 hosts, ~50,000 flows, written as pcap and pcapng in one
pass. What is in it, as a SPAN of the core switch trunk sees it (802.1Q tags on most frames):

* 1,600 clinical clients in 40 VLANs (monitors, pumps, workstations, modalities) and 60 servers in VLAN 100;
  340 internet hosts behind a Cisco router; half of the flows are seen on the client side of the router, half
  on the server side, so both ends show up with their own MACs.
* HL7 over MLLP (real MSH/PID/OBX messages), DICOM associations with multi-megabyte C-STOREs (real
  A-ASSOCIATE-RQ PDU first), DNS queries and answers, DHCP DORA, syslog, NTP, SMB2 and HTTPS bulk transfers,
  HTTP, ICMP echo, ARP, some IPv6 (TCP and UDP over global and link-local addresses), a few IPv4 fragments,
  IPv4 options, SYN retransmissions and TCP port reuse after FIN.

Usage: ``python bench/generate.py OUTDIR [--scale 1.0] [--seed 7]`` writes ``hospital.pcap`` and
``hospital.pcapng``; the same arguments always give the same bytes. Checksums are left zero (no tool in the
benchmark validates them), payloads are real where a dissector reads them and zero-filled elsewhere.
"""

from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

START_NS = 1_764_316_800 * 1_000_000_000  # 2025-11-28T08:00:00Z
HOUR_NS = 3600 * 1_000_000_000
ROUTER_MAC = bytes.fromhex("e80ab9000001")
ZEROS = bytes(65536)

# packet rows: one per packet before sorting by time
DTYPE = np.dtype(
    [
        ("ts", "<i8"),  # capture time (ns)
        ("flow", "<i4"),  # index into the flow list
        ("dir", "u1"),  # 0 client -> server, 1 server -> client
        ("flags", "u1"),  # TCP flags (0 for UDP/ICMP)
        ("size", "<u4"),  # payload bytes
        ("kind", "u1"),  # payload kind (see PAYLOADS)
        ("seq", "<u4"),  # TCP sequence number of the sender
        ("frag", "u1"),  # 0 none, 1 first fragment, 2 later fragment
    ]
)
P_ZERO, P_HL7, P_ACK7, P_DICOM, P_DNSQ, P_DNSA, P_DHCP, P_SYSLOG, P_NTP, P_ICMP = range(10)


@dataclass(frozen=True)
class Host:
    mac: bytes
    ip: bytes  # 4 or 16 bytes
    vlan: int | None
    ttl: int


@dataclass(frozen=True)
class FlowSpec:
    client: Host
    server: Host
    proto: int
    cport: int
    sport: int
    side: int  # 0: seen on the client's VLAN (client MAC <-> router), 1: on the server's, 2: same VLAN


def build_hosts(rng: np.random.Generator) -> tuple[list[Host], list[Host], list[Host], list[Host]]:
    clients, internet, v6 = [], [], []
    ouis = ["0009fb", "9cc8ae", "5846e1", "0030e6", "444b5d", "d0431e", "001afa", "00066b", "9075de", "847beb"]
    for vlan in range(10, 50):
        for i in range(40):
            oui = ouis[(vlan + i) % len(ouis)]
            mac = bytes.fromhex(oui) + bytes([vlan, i, 1])
            ttl = 128 if oui in ("d0431e", "847beb") else 64
            clients.append(Host(mac, bytes([10, vlan, 0, 20 + i]), vlan, ttl))
    servers = [
        Host(bytes.fromhex("005056") + bytes([0, 100, i]), bytes([10, 100, 0, 10 + i]), 100, 64) for i in range(60)
    ]
    for i in range(340):
        a, b = divmod(int(rng.integers(0, 1 << 16)), 256)
        internet.append(Host(ROUTER_MAC, bytes([52 + i % 40, a, b, 1 + i % 250]), None, 50))
    for i in range(40):
        c = clients[i * 37]
        v6.append(
            Host(c.mac, bytes.fromhex("20010db8000a") + bytes([0, c.vlan or 0]) + bytes(6) + bytes([1, i]), c.vlan, 64)
        )
    return clients, servers, internet, v6


class Builder:
    """Collects flows and their packet rows."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.flows: list[FlowSpec] = []
        self.rows: list[np.ndarray] = []
        self.port = 20000

    def next_port(self) -> int:
        self.port = 20000 + (self.port - 20000 + 7919) % 40000
        return self.port

    def add(self, spec: FlowSpec, start: int, packets: list[tuple[int, int, int, int, int]], frag: int = 0) -> None:
        """packets: (offset_ns, dir, flags, size, kind)."""
        idx = len(self.flows)
        self.flows.append(spec)
        arr = np.zeros(len(packets), dtype=DTYPE)
        for j, (off, d, fl, size, kind) in enumerate(packets):
            arr[j] = (start + off, idx, d, fl, size, kind, 0, 0)
        if frag:
            arr["frag"][0] = frag
        self.rows.append(arr)

    def tcp_session(
        self, spec: FlowSpec, start: int, exchanges: list[tuple[int, int, int]], rtt: int, syn_retries: int = 0
    ) -> None:
        """Handshake, (dir, bytes, kind) exchanges split in 1448-byte segments with ACKs, FIN teardown."""
        pk: list[tuple[int, int, int, int, int]] = []
        t = 0
        for _ in range(syn_retries):
            pk.append((t, 0, 0x02, 0, P_ZERO))
            t += 1_000_000_000
        pk += [(t, 0, 0x02, 0, P_ZERO), (t + rtt // 2, 1, 0x12, 0, P_ZERO), (t + rtt, 0, 0x10, 0, P_ZERO)]
        t += rtt
        for d, size, kind in exchanges:
            seg = 0
            while size > 0:
                n = min(1448, size)
                t += 20_000
                pk.append((t, d, 0x18 if size <= 1448 else 0x10, n, kind if seg == 0 else P_ZERO))
                size -= n
                seg += 1
                if seg % 2 == 0 or size <= 0:
                    pk.append((t + rtt // 2, 1 - d, 0x10, 0, P_ZERO))
        t += rtt
        pk += [(t, 0, 0x11, 0, P_ZERO), (t + rtt // 2, 1, 0x11, 0, P_ZERO), (t + rtt, 0, 0x10, 0, P_ZERO)]
        self.add(spec, start, pk)


def generate_rows(scale: float, seed: int) -> tuple[Builder, np.ndarray]:
    b = Builder(seed)
    rng = b.rng
    clients, servers, internet, v6hosts = build_hosts(rng)
    dns, dhcp_srv, syslog, ntp, hl7, pacs = servers[0], servers[1], servers[2], servers[3], servers[4:8], servers[8:12]
    files, web = servers[12:20], servers[20:60]

    def when() -> int:
        return START_NS + int(rng.integers(0, HOUR_NS - 120_000_000_000))

    def pick(seq: list[Host]) -> Host:
        return seq[int(rng.integers(0, len(seq)))]

    def side() -> int:
        return int(rng.integers(0, 2))

    n = lambda base: max(1, int(base * scale))  # noqa: E731 - local shorthand

    for _ in range(n(15000)):  # DNS
        c = pick(clients)
        b.add(
            FlowSpec(c, dns, 17, b.next_port(), 53, side()), when(), [(0, 0, 0, 0, P_DNSQ), (900_000, 1, 0, 0, P_DNSA)]
        )
    for c in clients[: n(1600)]:  # syslog: one long flow per client
        start = when()
        b.add(
            FlowSpec(c, syslog, 17, 514, 514, side()),
            start,
            [(k * 90_000_000_000 // 20, 0, 0, int(rng.integers(80, 300)), P_SYSLOG) for k in range(20)],
        )
    for c in clients[: n(1600)]:  # NTP
        b.add(
            FlowSpec(c, ntp, 17, 123, 123, side()),
            when(),
            [
                (0, 0, 0, 48, P_NTP),
                (1_000_000, 1, 0, 48, P_NTP),
                (64_000_000_000, 0, 0, 48, P_NTP),
                (64_001_000_000, 1, 0, 48, P_NTP),
            ],
        )
    for c in clients[: n(800)]:  # DHCP (broadcast, client side)
        b.add(
            FlowSpec(c, dhcp_srv, 17, 68, 67, 0),
            when(),
            [
                (0, 0, 0, 300, P_DHCP),
                (40_000_000, 1, 0, 300, P_DHCP),
                (80_000_000, 0, 0, 300, P_DHCP),
                (120_000_000, 1, 0, 300, P_DHCP),
            ],
        )
    reuse: list[FlowSpec] = []
    for i in range(n(15000)):  # HL7 results
        c = pick(clients)
        spec = FlowSpec(c, pick(hl7), 6, b.next_port(), 2575, side())
        if i % 100 == 0:
            reuse.append(spec)
        b.tcp_session(
            spec,
            when(),
            [(0, int(rng.integers(300, 1400)), P_HL7), (1, 120, P_ACK7)],
            400_000,
            syn_retries=1 if i % 250 == 0 else 0,
        )
    for spec in reuse:  # the same 5-tuple again after FIN: a new flow
        b.tcp_session(
            spec,
            START_NS + HOUR_NS - 100_000_000_000 + int(rng.integers(0, 50_000_000_000)),
            [(0, 500, P_HL7), (1, 120, P_ACK7)],
            400_000,
        )
    for _ in range(n(700)):  # DICOM C-STORE of a study
        c = clients[int(rng.integers(0, 200)) * 8]
        size = int(rng.integers(150_000, 1_850_000))
        b.tcp_session(
            FlowSpec(c, pick(pacs), 6, b.next_port(), 104, side()),
            when(),
            [(0, 400, P_DICOM), (1, 300, P_ZERO), (0, size, P_ZERO), (1, 200, P_ZERO)],
            300_000,
        )
    for _ in range(n(10000)):  # HTTPS to the internet
        c = pick(clients)
        b.tcp_session(
            FlowSpec(c, pick(internet), 6, b.next_port(), 443, 0),
            when(),
            [(0, 517, P_ZERO), (1, int(rng.integers(3000, 40000)), P_ZERO), (0, 800, P_ZERO)],
            20_000_000,
        )
    for _ in range(n(1500)):  # SMB2 to file servers
        c = pick(clients)
        b.tcp_session(
            FlowSpec(c, pick(files), 6, b.next_port(), 445, side()),
            when(),
            [(0, 200, P_ZERO), (1, 300, P_ZERO), (1, int(rng.integers(20000, 250000)), P_ZERO)],
            500_000,
        )
    for _ in range(n(3000)):  # HTTP to internal web apps
        c = pick(clients)
        b.tcp_session(
            FlowSpec(c, pick(web), 6, b.next_port(), 80, side()),
            when(),
            [(0, 400, P_ZERO), (1, int(rng.integers(2000, 30000)), P_ZERO)],
            500_000,
        )
    central = servers[20]
    for c in clients[: n(500)]:  # monitor waveform/parameter streams to the central station (UDP 24105)
        start = when()
        b.add(
            FlowSpec(c, central, 17, 24105, 24105, side()),
            start,
            [(k * 400_000_000, 0, 0, 180, P_ZERO) for k in range(700)],
        )
    for _ in range(n(2000)):  # ICMP echo
        c = pick(clients)
        b.add(
            FlowSpec(c, pick(servers), 1, 0, 0, side()),
            when(),
            [(k * 1_000_000_000 + d * 300_000, d, 0, 56, P_ICMP) for k in range(2) for d in (0, 1)],
        )
    for _ in range(n(1500)):  # IPv6: TCP and UDP between v6 clients and a v6 server
        c, s = pick(v6hosts), v6hosts[0]
        if c is s:
            continue
        if rng.integers(0, 2):
            b.tcp_session(
                FlowSpec(c, s, 6, b.next_port(), 8443, 2), when(), [(0, 300, P_ZERO), (1, 900, P_ZERO)], 300_000
            )
        else:
            b.add(
                FlowSpec(c, s, 17, b.next_port(), 5683, 2), when(), [(0, 0, 0, 60, P_ZERO), (500_000, 1, 0, 80, P_ZERO)]
            )
    for _ in range(n(300)):  # fragmented UDP (first and a later fragment)
        c = pick(clients)
        b.add(
            FlowSpec(c, syslog, 17, b.next_port(), 514, side()),
            when(),
            [(0, 0, 0, 1472, P_ZERO), (10_000, 0, 0, 600, P_ZERO)],
            frag=1,
        )
    rows = np.concatenate(b.rows)
    # later fragments: the packet after a first fragment of the same flow
    first = np.flatnonzero(rows["frag"] == 1)
    rows["frag"][first + 1] = 2
    rows["seq"] = rng.integers(0, 1 << 32, size=len(rows), dtype=np.uint64).astype(np.uint32)
    order = np.argsort(rows["ts"], kind="stable")
    return b, rows[order]


def hl7_payload(size: int, n: int) -> bytes:
    msg = (
        f"MSH|^~\\&|MON{n % 997:03d}|ICU|HL7ENGINE|HOSP|20251128080000||ORU^R01^ORU_R01|M{n}|P|2.6\r"
        f"PID|1||MRN{n:07d}^^^HOSP^MR||DOE^JANE||19580214|F\rOBX|1|NM|8867-4^Heart rate^LN||72|/min|||||F\r"
    )
    body = b"\x0b" + msg.encode() + b"\x1c\r"
    return (body + ZEROS)[:size] if size >= len(body) else body[:size]


def dicom_payload(size: int) -> bytes:
    def item(t: int, v: bytes) -> bytes:
        return struct.pack("!BBH", t, 0, len(v)) + v

    ctx = b"\x01\x00\xff\x00" + item(0x30, b"1.2.840.10008.5.1.4.1.1.2") + item(0x40, b"1.2.840.10008.1.2")
    user = item(0x51, struct.pack("!I", 16384)) + item(0x52, b"1.2.840.113619.6.374") + item(0x55, b"GE_REV_CT_22")
    body = (
        struct.pack("!HH", 1, 0)
        + b"PACS".ljust(16)
        + b"CT01".ljust(16)
        + bytes(32)
        + item(0x10, b"1.2.840.10008.3.1.1.1")
        + item(0x20, ctx)
        + item(0x50, user)
    )
    pdu = struct.pack("!BBI", 1, 0, len(body)) + body
    return (pdu + ZEROS)[:size]


def dns_payload(query: bool, n: int) -> bytes:
    name = b"".join(bytes([len(p)]) + p for p in (f"host{n % 5000}".encode(), b"hosp", b"example")) + b"\x00"
    if query:
        return struct.pack("!HHHHHH", n & 0xFFFF, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
    return (
        struct.pack("!HHHHHH", n & 0xFFFF, 0x8180, 1, 1, 0, 0)
        + name
        + b"\x00\x01\x00\x01"
        + b"\xc0\x0c"
        + struct.pack("!HHIH", 1, 1, 300, 4)
        + bytes([10, 100, (n >> 8) & 0xFF, n & 0xFF])
    )


def dhcp_payload(mac: bytes, n: int, reply: bool) -> bytes:
    fixed = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        2 if reply else 1,
        1,
        6,
        0,
        n,
        0,
        0x8000,
        bytes(4),
        bytes([10, 0, 0, 1]) if reply else bytes(4),
        bytes(4),
        bytes(4),
        mac,
        b"",
        b"",
    )
    opts = bytes([53, 1, 5 if reply else 3]) + bytes([12, 8]) + f"dev{n % 10000:05d}".encode()[:8] + b"\xff"
    return (fixed + b"\x63\x82\x53\x63" + opts + ZEROS)[:300]


def write(builder: Builder, rows: np.ndarray, out: Path) -> tuple[Path, Path, int]:
    flows = builder.flows
    pcap_path, ng_path = out / "hospital.pcap", out / "hospital.pcapng"
    hdr_cache: dict[tuple[int, int], tuple[bytes, bytes, bytes, int, int, int, int]] = {}
    idents = [0]
    with open(pcap_path, "wb") as fp, open(ng_path, "wb") as fn:
        fp.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        fn.write(struct.pack("<II", 0x0A0D0D0A, 12 + len(shb)) + shb + struct.pack("<I", 12 + len(shb)))
        idb = struct.pack("<HHI", 1, 0, 262144) + struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
        fn.write(struct.pack("<II", 1, 12 + len(idb)) + idb + struct.pack("<I", 12 + len(idb)))
        wp, wn = fp.write, fn.write
        pack_rec = struct.Struct("<IIII").pack
        pack_epb = struct.Struct("<IIIIIII").pack
        tcp_pack = struct.Struct("!HHIIBBHHH").pack
        udp_pack = struct.Struct("!HHHH").pack
        for r in rows.tolist():
            ts, fi, d, flags, size, kind, seq, frag = r
            spec = flows[fi]
            key = (fi, d)
            cached = hdr_cache.get(key)
            if cached is None:
                cached = headers(spec, d)
                if len(hdr_cache) > 200_000:
                    hdr_cache.clear()
                hdr_cache[key] = cached
            l2, src, dst, sp, dp, ttl, version = cached
            if kind == P_ZERO:
                payload = ZEROS[:size]
            elif kind == P_HL7:
                payload = hl7_payload(size, fi)
            elif kind == P_ACK7:
                payload = b"\x0bMSH|^~\\&|HL7ENGINE|HOSP||||||ACK^R01|A1|P|2.6\rMSA|AA|M1\r\x1c\r"
            elif kind == P_DICOM:
                payload = dicom_payload(size)
            elif kind in (P_DNSQ, P_DNSA):
                payload = dns_payload(kind == P_DNSQ, fi)
            elif kind == P_DHCP:
                payload = dhcp_payload(spec.client.mac, fi, d == 1)
            elif kind == P_SYSLOG:
                payload = (b"<134>Nov 28 08:00:00 dev infusion[42]: rate=12.5 mL/h " + ZEROS)[:size]
            else:
                payload = ZEROS[:size]
            proto = spec.proto
            if proto == 6:
                l4 = tcp_pack(sp, dp, seq, 0, 5 << 4, flags, 64240, 0, 0) + payload
            elif proto == 17:
                l4 = udp_pack(sp, dp, 8 + len(payload), 0) + payload
            else:
                l4 = struct.pack("!BBHHH", 0 if d else 8, 0, 0, fi & 0xFFFF, 1) + payload
            idents[0] = (idents[0] + 1) & 0xFFFF
            if version == 4:
                fragoff = 0x2000 if frag == 1 else (185 if frag == 2 else 0x4000)
                if frag == 2:
                    l4 = payload  # a later fragment carries no transport header
                options = b"\x01\x01\x01\x00" if fi % 97 == 0 else b""
                ihl = 5 + len(options) // 4
                ip = (
                    struct.pack(
                        "!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(l4), idents[0], fragoff, ttl, proto, 0, src, dst
                    )
                    + options
                    + l4
                )
            else:
                ip = struct.pack("!IHBB16s16s", 0x60000000, len(l4), 58 if proto == 1 else proto, ttl, src, dst) + l4
            frame = l2 + ip
            if len(frame) < 60:
                frame += ZEROS[: 60 - len(frame)]
            length = len(frame)
            sec, nsec = divmod(ts, 1_000_000_000)
            wp(pack_rec(sec, nsec, length, length))
            wp(frame)
            pad = -length % 4
            blen = 32 + length + pad
            wn(pack_epb(6, blen, 0, ts >> 32, ts & 0xFFFFFFFF, length, length))
            wn(frame)
            if pad:
                wn(ZEROS[:pad])
            wn(struct.pack("<I", blen))
    return pcap_path, ng_path, len(rows)


def headers(spec: FlowSpec, d: int) -> tuple[bytes, bytes, bytes, int, int, int, int]:
    c, s = spec.client, spec.server
    version = 6 if len(c.ip) == 16 else 4
    if spec.side == 2:  # same VLAN
        smac, dmac, vlan = (c.mac, s.mac, c.vlan) if d == 0 else (s.mac, c.mac, c.vlan)
        ttl = c.ttl if d == 0 else s.ttl
    elif spec.side == 0:  # seen on the client's VLAN: the other end is the router
        smac, dmac, vlan = (c.mac, ROUTER_MAC, c.vlan) if d == 0 else (ROUTER_MAC, c.mac, c.vlan)
        ttl = c.ttl if d == 0 else s.ttl - 1
    else:  # seen on the server's VLAN
        smac, dmac, vlan = (ROUTER_MAC, s.mac, s.vlan) if d == 0 else (s.mac, ROUTER_MAC, s.vlan)
        ttl = c.ttl - 1 if d == 0 else s.ttl
    if spec.proto == 17 and spec.sport == 67 and d == 0:  # DHCP client broadcast
        dmac = b"\xff" * 6
    etype = 0x86DD if version == 6 else 0x0800
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    l2 = dmac + smac + tag + struct.pack("!H", etype)
    src, dst = (c.ip, s.ip) if d == 0 else (s.ip, c.ip)
    if spec.proto == 17 and spec.sport == 67:
        src, dst = (bytes(4), b"\xff" * 4) if d == 0 else (s.ip, b"\xff" * 4)
    sp, dp = (spec.cport, spec.sport) if d == 0 else (spec.sport, spec.cport)
    return l2, src, dst, sp, dp, ttl, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of flows (default 1.0)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    builder, rows = generate_rows(args.scale, args.seed)
    pcap, ng, count = write(builder, rows, args.out)
    print(
        f"{count:,} packets, {len(builder.flows):,} flow specs -> {pcap} ({pcap.stat().st_size / 1e9:.2f} GB), {ng}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
