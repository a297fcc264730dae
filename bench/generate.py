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
        ("frag", "u1"),  # 0 none, 1 first fragment, 2 later fragment
    ]
)
P_ZERO, P_HL7, P_ACK7, P_DICOM, P_DNSQ, P_DNSA, P_DHCP, P_SYSLOG, P_NTP, P_ICMP = range(10)
P_DICOM_AC, P_PDATA, P_TLS_HELLO, P_SMB_NEG, P_SMB_NEG_RSP, P_HTTP_REQ, P_HTTP_RSP = range(10, 17)
#: Kinds whose every segment is one PDU of its own (the others: the first segment carries the message head)
PER_SEGMENT = frozenset({P_PDATA})


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
            arr[j] = (start + off, idx, d, fl, size, kind, 0)
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
                seg_kind = kind if seg == 0 or kind in PER_SEGMENT else P_ZERO
                pk.append((t, d, 0x18 if size <= 1448 else 0x10, n, seg_kind))
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
            [(0, len(DICOM_RQ), P_DICOM), (1, len(DICOM_AC), P_DICOM_AC), (0, size, P_PDATA), (1, 200, P_PDATA)],
            300_000,
        )
    for _ in range(n(10000)):  # HTTPS to the internet
        c = pick(clients)
        b.tcp_session(
            FlowSpec(c, pick(internet), 6, b.next_port(), 443, 0),
            when(),
            [(0, 517, P_TLS_HELLO), (1, int(rng.integers(3000, 40000)), P_ZERO), (0, 800, P_ZERO)],
            20_000_000,
        )
    for _ in range(n(1500)):  # SMB2 to file servers
        c = pick(clients)
        b.tcp_session(
            FlowSpec(c, pick(files), 6, b.next_port(), 445, side()),
            when(),
            [(0, 200, P_SMB_NEG), (1, 300, P_SMB_NEG_RSP), (1, int(rng.integers(20000, 250000)), P_ZERO)],
            500_000,
        )
    for _ in range(n(3000)):  # HTTP to internal web apps
        c = pick(clients)
        b.tcp_session(
            FlowSpec(c, pick(web), 6, b.next_port(), 80, side()),
            when(),
            [(0, 400, P_HTTP_REQ), (1, int(rng.integers(2000, 30000)), P_HTTP_RSP)],
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
    order = np.argsort(rows["ts"], kind="stable")
    return b, rows[order]


def padded(head: bytes, size: int, filler: bytes = b"x") -> bytes:
    """``head`` filled up to exactly ``size`` bytes (cut when longer)."""
    return head[:size] if len(head) >= size else head + filler * (size - len(head))


def mllp(message: str, size: int) -> bytes:
    """One MLLP frame of exactly ``size`` bytes: the message, then an NTE segment filling the rest."""
    body = message.encode()
    room = size - len(body) - 3
    if room >= 8:
        body += b"NTE|1||" + b"x" * (room - 8) + b"\r"
    return (b"\x0b" + body + b"\x1c\r")[:size]


def hl7_payload(size: int, n: int) -> bytes:
    return mllp(
        f"MSH|^~\\&|MON{n % 997:03d}|ICU|HL7ENGINE|HOSP|20251128080000||ORU^R01^ORU_R01|M{n}|P|2.6\r"
        f"PID|1||MRN{n:07d}^^^HOSP^MR||DOE^JANE||19580214|F\rOBX|1|NM|8867-4^Heart rate^LN||72|/min|||||F\r",
        size,
    )


def ack_payload(size: int, n: int) -> bytes:
    msh = f"MSH|^~\\&|HL7ENGINE|HOSP|MON{n % 997:03d}|ICU|20251128080001||ACK^R01|A{n}|P|2.6\r"
    return mllp(msh + f"MSA|AA|M{n}\r", size)


def pdu(kind: int, body: bytes, size: int) -> bytes:
    """A DICOM PDU of exactly ``size`` bytes (the body zero-filled or cut)."""
    return struct.pack("!BBI", kind, 0, size - 6) + padded(body, size - 6, b"\x00")


def dicom_ac() -> bytes:
    def item(t: int, v: bytes) -> bytes:
        return struct.pack("!BBH", t, 0, len(v)) + v

    ctx = b"\x01\x00\x00\x00" + item(0x40, b"1.2.840.10008.1.2")
    user = item(0x51, struct.pack("!I", 16384)) + item(0x52, b"1.2.840.113619.6.94") + item(0x55, b"GE_PACS_7")
    body = struct.pack("!HH", 1, 0) + b"PACS".ljust(16) + b"CT01".ljust(16) + bytes(32)
    body += item(0x10, b"1.2.840.10008.3.1.1.1") + item(0x21, ctx) + item(0x50, user)
    return struct.pack("!BBI", 2, 0, len(body)) + body


DICOM_AC = dicom_ac()


def pdata(size: int) -> bytes:
    """A P-DATA-TF PDU with one dataset fragment filling ``size`` bytes (a tail too short for one: zeros, past
    what the reassembly keeps of a study transfer)."""
    if size < 12:
        return ZEROS[:size]
    return pdu(4, struct.pack("!IBB", size - 10, 1, 0x00), size)


def tls_client_hello(size: int, n: int) -> bytes:
    """A TLS 1.2/1.3 ClientHello record of exactly ``size`` bytes (RFC 7685 padding extension fills it)."""
    name = f"api{n % 40}.cloud.example".encode()
    ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    ext += struct.pack("!HHH", 10, 6, 4) + struct.pack("!HH", 29, 23)
    ext += struct.pack("!HHB", 11, 2, 1) + b"\x00"
    ext += struct.pack("!HHH", 13, 8, 6) + struct.pack("!HHH", 0x0403, 0x0804, 0x0401)
    ext += struct.pack("!HHH", 16, 5, 3) + b"\x02h2"
    ext += struct.pack("!HHB", 43, 5, 4) + struct.pack("!HH", 0x0304, 0x0303)
    ciphers = struct.pack("!HHHHH", 8, 0x1301, 0x1302, 0xC02B, 0xC02F)
    body_len = 2 + 32 + 1 + len(ciphers) + 2 + 2 + len(ext)
    pad = size - 5 - 4 - body_len - 4
    ext += struct.pack("!HH", 21, max(pad, 0)) + bytes(max(pad, 0))
    body = b"\x03\x03" + bytes(32) + b"\x00" + ciphers + b"\x01\x00" + struct.pack("!H", len(ext)) + ext
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return (b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs)[:size]


def smb2(command: int, response: bool, body: bytes, size: int) -> bytes:
    head = b"\xfeSMB" + struct.pack("<HHIHHI", 64, 0, 0, command, 1, 1 if response else 0) + bytes(44)
    msg = padded(head + body, size - 4, b"\x00")
    return b"\x00" + len(msg).to_bytes(3, "big") + msg


def smb_negotiate(size: int) -> bytes:
    dialects = struct.pack("<HHHHH", 0x0202, 0x0210, 0x0300, 0x0302, 0x0311)
    return smb2(0, False, struct.pack("<HH", 36, 5) + bytes(32) + dialects, size)


def smb_negotiate_rsp(size: int) -> bytes:
    return smb2(0, True, struct.pack("<HHH", 65, 1, 0x0311) + bytes(58), size)


def http_request(size: int, n: int) -> bytes:
    head = (
        f"GET /app/{n % 300}/status HTTP/1.1\r\nHost: intranet.hosp.example\r\n"
        f"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0\r\nX-Pad: "
    ).encode()
    return padded(head, size - 4) + b"\r\n\r\n"


def http_response(size: int) -> bytes:
    return padded(b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\n\r\n", size, b" ")


def dicom_rq() -> bytes:
    """An A-ASSOCIATE-RQ of a CT (GE implementation class UID) to the PACS: CT image storage."""

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
    return struct.pack("!BBI", 1, 0, len(body)) + body


DICOM_RQ = dicom_rq()


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
    next_seq: dict[tuple[int, int], int] = {}
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
            ts, fi, d, flags, size, kind, frag = r
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
                payload = ack_payload(size, fi)
            elif kind == P_DICOM:
                payload = DICOM_RQ
            elif kind == P_DICOM_AC:
                payload = DICOM_AC
            elif kind == P_PDATA:
                payload = pdata(size)
            elif kind == P_TLS_HELLO:
                payload = tls_client_hello(size, fi)
            elif kind == P_SMB_NEG:
                payload = smb_negotiate(size)
            elif kind == P_SMB_NEG_RSP:
                payload = smb_negotiate_rsp(size)
            elif kind == P_HTTP_REQ:
                payload = http_request(size, fi)
            elif kind == P_HTTP_RSP:
                payload = http_response(size)
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
                # each direction's sequence numbers run on from a per-direction initial one, as on the wire
                seq = next_seq.get(key)
                if seq is None or flags == 0x02:  # a (retransmitted) SYN carries the initial number again
                    seq = (fi * 2654435761 + d * 40503 + 12345) & 0xFFFFFFFF
                next_seq[key] = (seq + len(payload) + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
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
