#!/usr/bin/env python3
"""Generate ``samples/ward.pcapng``: ten minutes of a small hospital ward seen from a SPAN port on a trunk.

Synthetic but built to real wire formats (checksums included), so every tool reads it the same way:

* VLAN 10 ICU: Philips IntelliVue monitors and a central station sending HL7 v2 ORU^R01 over MLLP to the
  interface engine; BD Alaris and Baxter infusion pumps (DHCP, syslog, HTTPS to the pump server; one pump
  also calls its vendor's cloud); Draeger ventilators; a Welch Allyn vital-signs monitor.
* VLAN 20 imaging: a GE CT and an ultrasound doing DICOM C-STORE to the PACS and worklist C-FIND (PS3.8
  A-ASSOCIATE / P-DATA / A-RELEASE PDUs); a reading workstation.
* VLAN 30 clinical IT: HL7 engine, pump server, syslog, DNS/DHCP server, file server, Windows nurse
  workstations (NBNS, DHCP FQDN, SMB, HTTPS to the internet, IPv6 router solicitations), a Zebra label printer
  announcing itself with mDNS, a visitor phone with a randomised MAC.
* VLAN 40 lab: Sysmex and Roche analyzers sending HL7 to the engine.
* A Cisco router on a stick routes between the VLANs (so routed frames appear twice, the second with the TTL
  decremented) and to the internet; the access switch sends LLDP.

Deterministic: the same script always writes the same bytes (``python samples/generate_ward.py OUT``).
Patient data in it is fictitious.
"""

from __future__ import annotations

import random
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

START_NS = 1_764_316_800 * 1_000_000_000  # 2025-11-28T08:00:00Z
DURATION_S = 600
GW_MAC = bytes.fromhex("e80ab9100001")  # Cisco router-on-a-stick
SWITCH_MAC = bytes.fromhex("481ba4200001")
BROADCAST = b"\xff" * 6


# --- wire formats -----------------------------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, ttl: int, ident: int) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, ttl, proto, 0, src, dst)
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    csum = checksum(pseudo + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(header) + len(payload))
    csum = checksum(pseudo + header + payload)
    return header[:16] + struct.pack("!H", csum) + header[18:] + payload


def icmp_echo(ident: int, seq: int, reply: bool) -> bytes:
    body = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + bytes(range(32))
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


def ethernet(src: bytes, dst: bytes, vlan: int | None, ethertype: int, payload: bytes) -> bytes:
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    frame = dst + src + tag + struct.pack("!H", ethertype) + payload
    return frame + b"\x00" * max(0, 60 - len(frame))  # minimum frame size (padding, as NICs send it)


# --- the ward ------------------------------------------------------------------------------------------------------


@dataclass
class Host:
    name: str
    mac: bytes
    ip: bytes
    vlan: int
    ttl: int = 64
    dhcp: bool = False
    fqdn: str | None = None

    @property
    def gateway(self) -> bytes:
        return self.ip[:3] + b"\x01"


def mac(prefix: str, n: int) -> bytes:
    return bytes.fromhex(prefix) + n.to_bytes(3, "big")


def build_hosts() -> dict[str, Host]:
    hosts: dict[str, Host] = {}

    def add(h: Host) -> None:
        hosts[h.name] = h

    for i in range(1, 7):
        add(Host(f"ICU-MON-{i:02d}", mac("0009fb", 0x4A0000 + i), ip4(f"10.10.10.{20 + i}"), 10, dhcp=True))
    add(Host("ICU-CENTRAL", mac("00095c", 0x110001), ip4("10.10.10.5"), 10))
    for i in range(1, 4):
        add(Host(f"PUMP-00{40 + i}", mac("9cc8ae", 0x300000 + i), ip4(f"10.10.10.{40 + i}"), 10, dhcp=True))
        add(Host(f"PUMP-01{10 + i}", mac("5846e1", 0x700000 + i), ip4(f"10.10.10.{50 + i}"), 10, dhcp=True))
    add(Host("VENT-01", mac("0030e6", 0x0A0001), ip4("10.10.10.61"), 10))
    add(Host("VENT-02", mac("0030e6", 0x0A0002), ip4("10.10.10.62"), 10))
    add(Host("VITALS-01", mac("001afa", 0x020001), ip4("10.10.10.70"), 10, dhcp=True))
    add(Host("CT-01", mac("444b5d", 0x0C0001), ip4("10.20.0.10"), 20))
    add(Host("US-01", mac("001d4a", 0x0D0001), ip4("10.20.0.12"), 20))
    add(Host("RAD-WS-01", mac("d0431e", 0x0E0001), ip4("10.20.0.30"), 20, ttl=128))
    add(Host("PACS", mac("0cc47a", 0x0F0001), ip4("10.20.0.50"), 20))
    add(Host("MWL", mac("005056", 0x100051), ip4("10.20.0.51"), 20))
    add(Host("HL7-ENGINE", mac("005056", 0x100020), ip4("10.30.0.20"), 30))
    add(Host("PUMP-SERVER", mac("005056", 0x100025), ip4("10.30.0.25"), 30, ttl=128))
    add(Host("SYSLOG", mac("005056", 0x100030), ip4("10.30.0.30"), 30))
    add(Host("DNS-DHCP", mac("005056", 0x100010), ip4("10.30.0.10"), 30, ttl=128))
    add(Host("FILESERVER", mac("847beb", 0x110040), ip4("10.30.0.40"), 30, ttl=128))
    for i in range(1, 4):
        add(
            Host(
                f"NURSE-WS-0{i}",
                mac("d0431e", 0x200000 + i),
                ip4(f"10.30.0.{100 + i}"),
                30,
                ttl=128,
                dhcp=True,
                fqdn=f"NURSE-WS-0{i}.ward.example",
            )
        )
    add(Host("ZD621-WARD", mac("9075de", 0x300060), ip4("10.30.0.60"), 30, dhcp=True))
    add(Host("Galaxy-S23", bytes.fromhex("a6c3f0123456"), ip4("10.30.0.150"), 30, dhcp=True))
    add(Host("SYSMEX-XN", mac("00066b", 0x400010), ip4("10.40.0.10"), 40))
    add(Host("COBAS-PRO", mac("000e2f", 0x400011), ip4("10.40.0.11"), 40))
    return hosts


INTERNET = {
    "windowsupdate": ip4("13.107.4.50"),
    "pumpcloud": ip4("34.120.15.80"),
    "dns": ip4("8.8.8.8"),
}


class Capture:
    """Collects timestamped frames and writes them as pcapng."""

    def __init__(self, hosts: dict[str, Host], rng: random.Random) -> None:
        self.hosts = hosts
        self.rng = rng
        self.frames: list[tuple[int, int, bytes]] = []
        self.ident = 1000
        self.seq = 0

    def emit(self, ts_ns: int, frame: bytes) -> None:
        self.seq += 1
        self.frames.append((ts_ns, self.seq, frame))

    def next_ident(self) -> int:
        self.ident += 1
        return self.ident

    # L3 delivery: same VLAN direct; other VLAN via the router (seen twice); internet via the router (once)
    def send_ip(self, ts: int, src: Host | bytes, dst: Host | bytes, proto: int, l4: bytes) -> None:
        ident = self.next_ident()
        if isinstance(src, Host) and isinstance(dst, Host):
            if src.vlan == dst.vlan:
                self.emit(
                    ts, ethernet(src.mac, dst.mac, src.vlan, 0x0800, ipv4(src.ip, dst.ip, proto, l4, src.ttl, ident))
                )
            else:
                self.emit(
                    ts, ethernet(src.mac, GW_MAC, src.vlan, 0x0800, ipv4(src.ip, dst.ip, proto, l4, src.ttl, ident))
                )
                self.emit(
                    ts + 180_000,
                    ethernet(GW_MAC, dst.mac, dst.vlan, 0x0800, ipv4(src.ip, dst.ip, proto, l4, src.ttl - 1, ident)),
                )
        elif isinstance(src, Host):
            assert isinstance(dst, bytes)
            self.emit(ts, ethernet(src.mac, GW_MAC, src.vlan, 0x0800, ipv4(src.ip, dst, proto, l4, src.ttl, ident)))
        else:
            assert isinstance(dst, Host)
            self.emit(ts, ethernet(GW_MAC, dst.mac, dst.vlan, 0x0800, ipv4(src, dst.ip, proto, l4, 52, ident)))

    def udp(self, ts: int, src: Host | bytes, dst: Host | bytes, sport: int, dport: int, payload: bytes) -> None:
        sip = src.ip if isinstance(src, Host) else src
        dip = dst.ip if isinstance(dst, Host) else dst
        self.send_ip(ts, src, dst, 17, udp(sip, dip, sport, dport, payload))

    def tcp_session(
        self,
        ts: int,
        client: Host,
        server: Host | bytes,
        dport: int,
        exchanges: list[tuple[bool, bytes]],
        sport: int | None = None,
    ) -> int:
        """A whole TCP connection: handshake, (from_client, data) exchanges with ACKs, FIN/ACK teardown."""
        sport = sport or self.rng.randint(49152, 65000)
        cip = client.ip
        sip = server.ip if isinstance(server, Host) else server
        cseq, sseq = self.rng.getrandbits(32), self.rng.getrandbits(32)
        rtt = 400_000 if isinstance(server, Host) else 18_000_000

        def c2s(t: int, flags: int, data: bytes = b"") -> None:
            self.send_ip(t, client, server, 6, tcp(cip, sip, sport, dport, cseq, sseq, flags, data))

        def s2c(t: int, flags: int, data: bytes = b"") -> None:
            self.send_ip(t, server, client, 6, tcp(sip, cip, dport, sport, sseq, cseq, flags, data))

        c2s(ts, 0x02)
        cseq += 1
        ts += rtt // 2
        s2c(ts, 0x12)
        sseq += 1
        ts += rtt // 2
        c2s(ts, 0x10)
        for from_client, data in exchanges:
            for i in range(0, len(data), 1400):
                chunk = data[i : i + 1400]
                ts += 50_000
                if from_client:
                    c2s(ts, 0x18, chunk)
                    cseq += len(chunk)
                else:
                    s2c(ts, 0x18, chunk)
                    sseq += len(chunk)
            ts += rtt // 2
            if from_client:
                s2c(ts, 0x10)
            else:
                c2s(ts, 0x10)
        ts += 2_000_000
        c2s(ts, 0x11)
        cseq += 1
        ts += rtt // 2
        s2c(ts, 0x11)
        sseq += 1
        ts += rtt // 2
        c2s(ts, 0x10)
        return ts

    def write_pcapng(self, path: Path) -> None:
        self.frames.sort()
        shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        out = [block(0x0A0D0D0A, shb_body)]
        idb_body = struct.pack("<HHI", 1, 0, 262144) + option(2, b"span0") + option(9, b"\x06") + option(0, b"")
        out.append(block(1, idb_body))
        for ts, _seq, frame in self.frames:
            ticks = ts // 1000
            body = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
            body += frame + b"\x00" * (-len(frame) % 4)
            out.append(block(6, body))
        path.write_bytes(b"".join(out))


def option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def block(btype: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


# --- application payloads -----------------------------------------------------------------------------------------


def dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\x00"


def dns_query(ident: int, name: str) -> bytes:
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack("!HH", 1, 1)


def dns_answer(ident: int, name: str, addr: bytes) -> bytes:
    head = struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0) + dns_name(name) + struct.pack("!HH", 1, 1)
    return head + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + addr


def mdns_announce(hostname: str, addr: bytes, service: str) -> bytes:
    host = f"{hostname}.local"
    inst = f"{hostname}._pdl-datastream._tcp.local"
    records = [
        dns_name(host) + struct.pack("!HHIH", 1, 0x8001, 120, 4) + addr,
        dns_name(service) + struct.pack("!HHIH", 12, 1, 4500, len(dns_name(inst))) + dns_name(inst),
    ]
    return struct.pack("!HHHHHH", 0, 0x8400, 0, len(records), 0, 0) + b"".join(records)


def nbns_registration(ident: int, name: str, addr: bytes) -> bytes:
    raw = name.upper().ljust(15).encode()[:15] + b"\x00"
    encoded = b"".join(bytes([0x41 + (b >> 4), 0x41 + (b & 0x0F)]) for b in raw)
    qname = bytes([32]) + encoded + b"\x00"
    head = struct.pack("!HHHHHH", ident, 0x2910, 1, 0, 0, 1)
    return (
        head
        + qname
        + struct.pack("!HH", 0x20, 1)
        + b"\xc0\x0c"
        + struct.pack("!HHIH", 0x20, 1, 300000, 6)
        + struct.pack("!H", 0x6000)
        + addr
    )


def dhcp(
    op: int,
    msg_type: int,
    xid: int,
    chaddr: bytes,
    yiaddr: bytes,
    giaddr: bytes,
    hostname: str | None,
    fqdn: str | None,
    server: bytes | None,
) -> bytes:
    fixed = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        op,
        1,
        6,
        1 if giaddr != b"\x00" * 4 else 0,
        xid,
        0,
        0x8000,
        b"\x00" * 4,
        yiaddr,
        b"\x00" * 4,
        giaddr,
        chaddr,
        b"",
        b"",
    )
    opts = bytes([53, 1, msg_type])
    if op == 1:
        opts += bytes([55, 7, 1, 3, 6, 15, 31, 33, 43]) + bytes([61, 7, 1]) + chaddr
        if msg_type == 3 and yiaddr == b"\x00" * 4:
            pass
    if hostname:
        opts += bytes([12, len(hostname)]) + hostname.encode()
    if fqdn:
        opts += bytes([81, 3 + len(fqdn), 0x01, 0, 0]) + fqdn.encode()
    if server:
        opts += bytes([54, 4]) + server + bytes([51, 4]) + struct.pack("!I", 86400) + bytes([1, 4, 255, 255, 255, 0])
    return fixed + b"\x63\x82\x53\x63" + opts + b"\xff"


def hl7_mllp(sender: str, facility: str, control: int, when: str, with_patient: bool) -> bytes:
    segs = [
        f"MSH|^~\\&|{sender}|{facility}|HL7ENGINE|WARD3|{when}||ORU^R01^ORU_R01|MSG{control:06d}|P|2.6",
    ]
    if with_patient:
        segs.append(f"PID|1||MRN00{control % 97}^^^WARD3^MR||DOE^JANE^Q||19580214|F")
    segs += [
        f"OBR|1|||69837-1^Vital signs^LN|||{when}",
        f"OBX|1|NM|8867-4^Heart rate^LN||{60 + control % 40}|/min|||||F|||{when}||{sender}",
        f"OBX|2|NM|59408-5^SpO2^LN||{94 + control % 5}|%|||||F|||{when}||{sender}",
    ]
    return b"\x0b" + "\r".join(segs).encode() + b"\r\x1c\r"


def hl7_ack(control: int, when: str) -> bytes:
    msg = f"MSH|^~\\&|HL7ENGINE|WARD3|||{when}||ACK^R01^ACK|ACK{control:06d}|P|2.6\rMSA|AA|MSG{control:06d}\r"
    return b"\x0b" + msg.encode() + b"\x1c\r"


def dicom_item(itype: int, value: bytes) -> bytes:
    return struct.pack("!BBH", itype, 0, len(value)) + value


def a_associate(pdu_type: int, called: str, calling: str, abstract: str) -> bytes:
    ctx = b"\x01\x00\xff\x00" if pdu_type == 1 else b"\x01\x00\x00\x00"
    if pdu_type == 1:
        ctx += dicom_item(0x30, abstract.encode()) + dicom_item(0x40, b"1.2.840.10008.1.2")
    else:
        ctx += dicom_item(0x40, b"1.2.840.10008.1.2")
    user = (
        dicom_item(0x51, struct.pack("!I", 16384))
        + dicom_item(0x52, b"1.2.840.113619.6.374")
        + dicom_item(0x55, b"GE_REV_CT_22")
    )
    body = (
        struct.pack("!HH", 1, 0)
        + called.ljust(16).encode()
        + calling.ljust(16).encode()
        + b"\x00" * 32
        + dicom_item(0x10, b"1.2.840.10008.3.1.1.1")
        + dicom_item(0x20 if pdu_type == 1 else 0x21, ctx)
        + dicom_item(0x50, user)
    )
    return struct.pack("!BBI", pdu_type, 0, len(body)) + body


def dicom_element(group: int, elem: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b" "
    return struct.pack("<HHI", group, elem, len(value)) + value


def p_data(dataset: bytes) -> bytes:
    pdv = struct.pack("!IBB", len(dataset) + 2, 1, 0x02) + dataset
    return struct.pack("!BBI", 4, 0, len(pdv)) + pdv


def ct_dataset(n: int) -> bytes:
    elements = [
        (0x0008, 0x0060, b"CT"),
        (0x0008, 0x0070, b"GE MEDICAL SYSTEMS"),
        (0x0008, 0x1010, b"CT01WARD3"),
        (0x0008, 0x1090, b"Revolution EVO"),
        (0x0010, 0x0010, b"DOE^JOHN"),
        (0x0010, 0x0020, f"MRN{n:05d}".encode()),
        (0x0018, 0x1000, b"RCT21A0457"),
        (0x0018, 0x1020, b"gemss.Revolution_EVO.22"),
    ]
    data = b"".join(dicom_element(g, e, v) for g, e, v in elements)
    return data + dicom_element(0x7FE0, 0x0010, bytes((n * 7 + i) % 251 for i in range(6000)))


def tls_client_hello(sni: str, rng: random.Random) -> bytes:
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    exts = (
        sni_ext
        + struct.pack("!HH", 0x000A, 4)
        + struct.pack("!HH", 2, 0x001D)
        + struct.pack("!HHB", 0x002B, 3, 2)
        + struct.pack("!H", 0x0304)
    )
    ciphers = struct.pack("!H", 6) + struct.pack("!HHH", 0x1301, 0x1302, 0xC02F)
    body = (
        struct.pack("!H", 0x0303)
        + bytes(rng.getrandbits(8) for _ in range(32))
        + b"\x00"
        + ciphers
        + b"\x01\x00"
        + struct.pack("!H", len(exts))
        + exts
    )
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def tls_opaque(size: int, rng: random.Random) -> bytes:
    data = bytes(rng.getrandbits(8) for _ in range(size))
    return b"\x17\x03\x03" + struct.pack("!H", len(data)) + data


def smb2_header(command: int, message_id: int, response: bool) -> bytes:
    """SMB2 sync header ([MS-SMB2] 2.2.1.2)."""
    flags = 0x00000001 if response else 0
    return b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 0, 0, command, 1, flags, 0, message_id, 0, 0, 0, b"")


def netbios_session(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


def smb2_negotiate_request(client: int, rng: random.Random) -> bytes:
    """NEGOTIATE request offering SMB 2.0.2, 2.1 and 3.0 ([MS-SMB2] 2.2.3)."""
    dialects = (0x0202, 0x0210, 0x0300)
    body = struct.pack("<HHHHI16sQ", 36, len(dialects), 1, 0, 0x7F, bytes(rng.getrandbits(8) for _ in range(16)), 0)
    body += struct.pack(f"<{len(dialects)}H", *dialects)
    return netbios_session(smb2_header(0, 0, response=False) + body)


def smb2_negotiate_response(rng: random.Random) -> bytes:
    """NEGOTIATE response choosing SMB 2.1, no security blob ([MS-SMB2] 2.2.4)."""
    guid = bytes(rng.getrandbits(8) for _ in range(16))
    body = struct.pack(
        "<HHHH16sIIIIQQHHI",
        65,
        1,
        0x0210,
        0,
        guid,
        0x7,
        8388608,
        8388608,
        8388608,
        133_000_000_000_000_000,
        0,
        128,
        0,
        0,
    )
    return netbios_session(smb2_header(0, 0, response=True) + body)


def smb2_echo(message_id: int, response: bool) -> bytes:
    """ECHO request/response ([MS-SMB2] 2.2.28/2.2.29)."""
    return netbios_session(smb2_header(0x0D, message_id, response) + struct.pack("<HH", 4, 0))


def lldp_frame() -> bytes:
    def tlv(t: int, value: bytes) -> bytes:
        return struct.pack("!H", (t << 9) | len(value)) + value

    body = (
        tlv(1, b"\x04" + SWITCH_MAC)
        + tlv(2, b"\x05Gi1/0/48")
        + tlv(3, struct.pack("!H", 120))
        + tlv(5, b"ward3-access-sw1")
        + tlv(6, b"Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E8")
        + tlv(0, b"")
    )
    return ethernet(SWITCH_MAC[:5] + b"\x30", bytes.fromhex("0180c200000e"), None, 0x88CC, body)


def arp(op: int, smac: bytes, sip: bytes, tmac: bytes, tip: bytes, vlan: int, dst: bytes) -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, smac, sip, tmac, tip)
    return ethernet(smac, dst, vlan, 0x0806, body)


def router_solicitation(m: bytes, vlan: int) -> bytes:
    eui = bytearray(m[:3] + b"\xff\xfe" + m[3:])
    eui[0] ^= 0x02
    src = b"\xfe\x80" + b"\x00" * 6 + bytes(eui)
    dst = bytes.fromhex("ff020000000000000000000000000002")
    icmp = bytearray(struct.pack("!BBHI", 133, 0, 0, 0) + struct.pack("!BB6s", 1, 1, m))
    pseudo = src + dst + struct.pack("!IxxxB", len(icmp), 58)
    struct.pack_into("!H", icmp, 2, checksum(pseudo + bytes(icmp)))
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(icmp), 58, 255, src, dst) + bytes(icmp)
    return ethernet(m, bytes.fromhex("333300000002"), vlan, 0x86DD, ip6)


# --- the ten minutes ------------------------------------------------------------------------------------------------


def generate(out: Path) -> int:
    rng = random.Random(20251128)
    hosts = build_hosts()
    cap = Capture(hosts, rng)
    h = hosts
    s = 1_000_000_000

    def at(seconds: float) -> int:
        return START_NS + int(seconds * s)

    # switch LLDP every 30 s
    for t in range(0, DURATION_S, 30):
        cap.emit(at(t + 0.5), lldp_frame())

    # router ARP for its own interface addresses, hosts ARP for the gateway
    for vlan, gw in ((10, "10.10.10.1"), (20, "10.20.0.1"), (30, "10.30.0.1"), (40, "10.40.0.1")):
        cap.emit(at(1 + vlan / 100), arp(1, GW_MAC, ip4(gw), b"\x00" * 6, ip4(gw), vlan, BROADCAST))
    for i, host in enumerate(sorted(h.values(), key=lambda x: x.name)):
        t = at(2 + i * 0.37)
        gw = host.gateway
        cap.emit(t, arp(1, host.mac, host.ip, b"\x00" * 6, gw, host.vlan, BROADCAST))
        cap.emit(t + 300_000, arp(2, GW_MAC, gw, host.mac, host.ip, host.vlan, host.mac))

    # DHCP (relayed by the router to the DNS-DHCP server) for the DHCP clients
    server = h["DNS-DHCP"]
    for i, host in enumerate(sorted((x for x in h.values() if x.dhcp), key=lambda x: x.name)):
        t = at(20 + i * 3.1)
        xid = rng.getrandbits(32)
        relay_ip = server.ip[:3] + b"\x01"
        client_gw = host.gateway
        zero = b"\x00" * 4
        for step, (mtype, yi) in enumerate(((1, zero), (2, host.ip), (3, zero), (5, host.ip))):
            ts = t + step * 40_000_000
            name = host.name if mtype in (1, 3, 5) else None
            fqdn = host.fqdn if mtype in (1, 3) else None
            if mtype in (1, 3):  # client broadcast, then relay -> server
                msg = dhcp(1, mtype, xid, host.mac, zero, zero, name, fqdn, None)
                cap.emit(
                    ts,
                    ethernet(
                        host.mac,
                        BROADCAST,
                        host.vlan,
                        0x0800,
                        ipv4(zero, b"\xff" * 4, 17, udp(zero, b"\xff" * 4, 68, 67, msg), 64, 0),
                    ),
                )
                relayed = dhcp(1, mtype, xid, host.mac, zero, client_gw, name, fqdn, None)
                cap.emit(
                    ts + 500_000,
                    ethernet(
                        GW_MAC,
                        server.mac,
                        30,
                        0x0800,
                        ipv4(relay_ip, server.ip, 17, udp(relay_ip, server.ip, 67, 67, relayed), 255, cap.next_ident()),
                    ),
                )
            else:  # server -> relay, relay -> client
                reply = dhcp(2, mtype, xid, host.mac, yi, client_gw, name, None, server.ip)
                cap.emit(
                    ts,
                    ethernet(
                        server.mac,
                        GW_MAC,
                        30,
                        0x0800,
                        ipv4(server.ip, relay_ip, 17, udp(server.ip, relay_ip, 67, 67, reply), 128, cap.next_ident()),
                    ),
                )
                cap.emit(
                    ts + 400_000,
                    ethernet(
                        GW_MAC,
                        BROADCAST,
                        host.vlan,
                        0x0800,
                        ipv4(client_gw, b"\xff" * 4, 17, udp(client_gw, b"\xff" * 4, 67, 68, reply), 255, 0),
                    ),
                )

    # NBNS registrations and IPv6 router solicitations from the Windows workstations
    for i in range(1, 4):
        ws = h[f"NURSE-WS-0{i}"]
        bcast = ip4("10.30.0.255")
        cap.emit(
            at(45 + i),
            ethernet(
                ws.mac,
                BROADCAST,
                30,
                0x0800,
                ipv4(
                    ws.ip,
                    bcast,
                    17,
                    udp(ws.ip, bcast, 137, 137, nbns_registration(0x7000 + i, ws.name, ws.ip)),
                    128,
                    cap.next_ident(),
                ),
            ),
        )
        cap.emit(at(46 + i), router_solicitation(ws.mac, 30))

    # printer mDNS announcements
    printer = h["ZD621-WARD"]
    mdns_ip = ip4("224.0.0.251")
    for t in (50, 170, 290, 410, 530):
        payload = mdns_announce(printer.name, printer.ip, "_pdl-datastream._tcp.local")
        cap.emit(
            at(t),
            ethernet(
                printer.mac,
                bytes.fromhex("01005e0000fb"),
                30,
                0x0800,
                ipv4(printer.ip, mdns_ip, 17, udp(printer.ip, mdns_ip, 5353, 5353, payload), 255, cap.next_ident()),
            ),
        )

    # HL7 results: monitors, central station, vital signs, analyzers -> engine (one connection per message)
    engine = h["HL7-ENGINE"]
    control = 1
    senders = [f"ICU-MON-{i:02d}" for i in range(1, 7)] + ["ICU-CENTRAL", "VITALS-01", "SYSMEX-XN", "COBAS-PRO"]
    for rnd in range(8):
        for j, name in enumerate(senders):
            t = 60 + rnd * 65 + j * 4.3 + rng.random()
            when = f"20251128{8 + int(t // 3600):02d}{int(t % 3600 // 60):02d}{int(t % 60):02d}"
            port = 2576 if name in ("SYSMEX-XN", "COBAS-PRO") else 2575
            facility = "LAB" if port == 2576 else "ICU3"
            msg = hl7_mllp(name, facility, control, when, with_patient=True)
            cap.tcp_session(at(t), h[name], engine, port, [(True, msg), (False, hl7_ack(control, when))])
            control += 1

    # DICOM: CT and ultrasound store to PACS, CT queries the worklist
    pacs, mwl = h["PACS"], h["MWL"]
    for k in range(4):
        for mod, ae in (("CT-01", "CT01WARD3"), ("US-01", "US01WARD3")):
            t = 90 + k * 120 + (7 if mod == "US-01" else 0)
            exchanges = [
                (True, a_associate(1, "WARD3PACS", ae, "1.2.840.10008.5.1.4.1.1.2")),
                (False, a_associate(2, "WARD3PACS", ae, "1.2.840.10008.5.1.4.1.1.2")),
                (True, p_data(ct_dataset(k))),
                (False, p_data(dicom_element(0x0000, 0x0900, b"\x00\x00"))),
                (True, bytes.fromhex("050000000004") + b"\x00" * 4),
                (False, bytes.fromhex("060000000004") + b"\x00" * 4),
            ]
            cap.tcp_session(at(t), h[mod], pacs, 104, exchanges)
        cap.tcp_session(
            at(80 + k * 120),
            h["CT-01"],
            mwl,
            104,
            [
                (True, a_associate(1, "WARD3MWL", "CT01WARD3", "1.2.840.10008.5.1.4.31")),
                (False, a_associate(2, "WARD3MWL", "CT01WARD3", "1.2.840.10008.5.1.4.31")),
                (True, bytes.fromhex("050000000004") + b"\x00" * 4),
                (False, bytes.fromhex("060000000004") + b"\x00" * 4),
            ],
        )
    # radiologist workstation pings and queries the PACS
    rad = h["RAD-WS-01"]
    for k in range(5):
        t = at(100 + k * 100)
        cap.send_ip(t, rad, pacs, 1, icmp_echo(0x0100, k, reply=False))
        cap.send_ip(t + 200_000, pacs, rad, 1, icmp_echo(0x0100, k, reply=True))
        cap.tcp_session(
            t + 1_000_000,
            rad,
            pacs,
            104,
            [
                (True, a_associate(1, "WARD3PACS", "RADWS01", "1.2.840.10008.5.1.4.1.2.2.1")),
                (False, a_associate(2, "WARD3PACS", "RADWS01", "1.2.840.10008.5.1.4.1.2.2.1")),
                (True, bytes.fromhex("050000000004") + b"\x00" * 4),
                (False, bytes.fromhex("060000000004") + b"\x00" * 4),
            ],
        )

    # pumps: syslog and HTTPS to the pump server; one Baxter pump also calls its vendor's cloud
    syslog, pump_server = h["SYSLOG"], h["PUMP-SERVER"]
    pumps = [x for x in h.values() if x.name.startswith("PUMP-0")]
    for k in range(10):
        for p in pumps:
            t = at(30 + k * 55 + rng.random() * 20)
            line = f"<134>Nov 28 08:{k * 55 // 60 + 1:02d}:00 {p.name} infusion[42]: rate=12.5 mL/h drug=heparin"
            cap.udp(t, p, syslog, 514, 514, line.encode())
    for k in range(3):
        for p in pumps:
            t = at(120 + k * 170 + rng.random() * 30)
            cap.tcp_session(
                t,
                p,
                pump_server,
                443,
                [
                    (True, tls_client_hello("pumpserver.ward.example", rng)),
                    (False, tls_opaque(1200, rng)),
                    (True, tls_opaque(300, rng)),
                    (False, tls_opaque(80, rng)),
                ],
            )
    cloud_pump = h["PUMP-0111"]
    for k in range(2):
        cap.tcp_session(
            at(200 + k * 240),
            cloud_pump,
            INTERNET["pumpcloud"],
            443,
            [
                (True, tls_client_hello("telemetry.pumpvendor.example", rng)),
                (False, tls_opaque(900, rng)),
                (True, tls_opaque(2500, rng)),
            ],
        )

    # workstations: DNS lookups, SMB to the file server, HTTPS to Windows Update, print jobs
    names = {
        "fileserver.ward.example": h["FILESERVER"].ip,
        "pacs.ward.example": pacs.ip,
        "hl7engine.ward.example": engine.ip,
        "settings-win.data.microsoft.com": INTERNET["windowsupdate"],
    }
    qid = 0x1000
    for i in range(1, 4):
        ws = h[f"NURSE-WS-0{i}"]
        for k, (qname, addr) in enumerate(sorted(names.items())):
            t = at(70 + i * 11 + k * 2)
            qid += 1
            sport = 50000 + qid % 10000
            cap.udp(t, ws, server, sport, 53, dns_query(qid, qname))
            cap.udp(t + 900_000, server, ws, 53, sport, dns_answer(qid, qname, addr))
        for k in range(3):
            cap.tcp_session(
                at(100 + i * 13 + k * 150),
                ws,
                h["FILESERVER"],
                445,
                [
                    (True, smb2_negotiate_request(i, rng)),
                    (False, smb2_negotiate_response(rng)),
                    (True, smb2_echo(1, response=False)),
                    (False, smb2_echo(1, response=True)),
                ],
            )
        cap.tcp_session(
            at(300 + i * 7),
            ws,
            INTERNET["windowsupdate"],
            443,
            [
                (True, tls_client_hello("settings-win.data.microsoft.com", rng)),
                (False, tls_opaque(4000, rng)),
                (True, tls_opaque(600, rng)),
            ],
        )
        cap.tcp_session(at(400 + i * 9), ws, printer, 9100, [(True, b"^XA^FO50,50^ADN,36,20^FDWARD 3 BED 7^FS^XZ")])
    # the DNS server forwards one lookup to the internet
    cap.udp(at(71), server, INTERNET["dns"], 53001, 53, dns_query(0x2001, "settings-win.data.microsoft.com"))
    cap.udp(
        at(71.02),
        INTERNET["dns"],
        server,
        53,
        53001,
        dns_answer(0x2001, "settings-win.data.microsoft.com", INTERNET["windowsupdate"]),
    )
    # NTP from the ventilators to the DNS-DHCP server (also the time server)
    ntp = bytes([0x23]) + bytes(47)
    for k in range(10):
        for v in ("VENT-01", "VENT-02"):
            t = at(10 + k * 60 + (0.5 if v == "VENT-02" else 0))
            sport = 123
            cap.udp(t, h[v], server, sport, 123, ntp)
            cap.udp(t + 1_000_000, server, h[v], 123, sport, bytes([0x24]) + bytes(47))
    # the visitor's phone: HTTPS to the internet
    phone = h["Galaxy-S23"]
    cap.tcp_session(
        at(250),
        phone,
        ip4("142.250.74.110"),
        443,
        [
            (True, tls_client_hello("www.google.com", rng)),
            (False, tls_opaque(3000, rng)),
        ],
    )
    cap.write_pcapng(out)
    return len(cap.frames)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("ward.pcapng")
    count = generate(out)
    print(f"wrote {out} ({count} packets)")


if __name__ == "__main__":
    main()
