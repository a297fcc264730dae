"""Identity dissectors (LLDP/LLDP-MED, CDP, SNMP, SSDP, mDNS DNS-SD, HTTP, TLS, SMB/NTLMSSP): annotated byte
fixtures, the public captures (JA3 compared with tshark's), and fuzzing of every dissector."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import need_corpus_file
from tests.dissect.helpers import MAC_A, REF, evidence_by_address, udp_packet
from wardwatch.dissect import MalformedPacket, Registry
from wardwatch.dissect.cdp import CdpDissector, software_version
from wardwatch.dissect.http import HttpDissector, SsdpDissector
from wardwatch.dissect.lldp import LldpDissector
from wardwatch.dissect.reassembly import HalfStream, TcpStream
from wardwatch.dissect.registry import BUILTIN
from wardwatch.dissect.smb import SmbDissector, windows_name
from wardwatch.dissect.snmp import SnmpDissector
from wardwatch.dissect.tls import ClientHello, TlsDissector, parse_client_hello
from wardwatch.engine import Engine
from wardwatch.model import LinkType, Packet
from wardwatch.model.observation import CaptureId, Observation

CLIENT, SERVER = b"\x0a\x00\x00\x05", b"\x0a\x00\x00\x09"


def facts(out: Iterable[Observation]) -> set[tuple[str, str, str]]:
    return {(o.subject.value, o.attribute.value, o.value) for o in out}


def l2_packet(payload: bytes, ethertype: int | None = None, snap: tuple[int, int] | None = None) -> Packet:
    return Packet(1, 5_000_000_000, 100, 100, LinkType.ETHERNET, src_mac=MAC_A, dst_mac=bytes.fromhex("0180c200000e"),
                  ethertype=ethertype, llc_snap=snap, payload=payload)  # fmt: skip


def half(ip: bytes, data: bytes, port: int) -> HalfStream:
    return HalfStream(mac=None, ip=ip, port=port, data=data, starts=((0, 7, 1_000),), vlan=None, packets=1)


def stream(orig: bytes, resp: bytes | None = None, port: int = 443) -> TcpStream:
    return TcpStream(
        capture=CaptureId("t"),
        orig=half(CLIENT, orig, 40000),
        resp=half(SERVER, resp, port) if resp is not None else None,
        claimed_by=("x",),
        peer=(SERVER, port),
    )


# --- LLDP / LLDP-MED ---------------------------------------------------------------------------------------------


def lldp_tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", kind << 9 | len(value)) + value


def med(subtype: int, value: bytes) -> bytes:
    return lldp_tlv(127, b"\x00\x12\xbb" + bytes([subtype]) + value)


# an infusion pump dock announcing itself with LLDP-MED inventory (values invented; layout per TIA-1057 §10.2.6)
PUMP_LLDP = (
    lldp_tlv(1, b"\x04" + MAC_A)  # chassis id, subtype 4: MAC address
    + lldp_tlv(2, b"\x05eth0")  # port id, subtype 5: interface name
    + lldp_tlv(3, b"\x00\x78")  # TTL 120 s
    + lldp_tlv(5, b"icu-w-pump-07")  # system name
    + lldp_tlv(6, b"SpaceStation dock, Linux 4.19")  # system description
    + lldp_tlv(7, b"\x00\x80\x00\x80")  # capabilities: station only
    + lldp_tlv(8, b"\x05\x01\x0a\x14\x00\x07\x02\x00\x00\x00\x01\x00")  # management address 10.20.0.7 (IPv4)
    + med(1, b"\x00\x33\x03")  # LLDP-MED capabilities, device class III endpoint
    + med(5, b"HW 2.1")
    + med(6, b"L8.01.02")
    + med(7, b"SW 3.4.0")
    + med(8, b"SN-0042-77")
    + med(9, b"B. Braun")
    + med(10, b"SpaceStation")
    + med(11, b"ICU-W-0042")
    + lldp_tlv(127, b"\x00\x80\xc2\x01\x00\x1e")  # 802.1 port VLAN id 30
    + lldp_tlv(0, b"")
)


def test_lldp_med_inventory_and_attachment() -> None:
    mac = "00:09:fb:00:00:01"
    got = facts(LldpDissector().dissect(l2_packet(PUMP_LLDP, 0x88CC), REF))
    assert got == {
        (mac, "hostname", "icu-w-pump-07"), (mac, "description", "SpaceStation dock, Linux 4.19"),
        (mac, "ip", "10.20.0.7"), (mac, "role", "lldp-med-endpoint-class-3"), (mac, "hardware", "HW 2.1"),
        (mac, "firmware", "L8.01.02"), (mac, "software", "SW 3.4.0"), (mac, "serial", "SN-0042-77"),
        (mac, "vendor", "B. Braun"), (mac, "model", "SpaceStation"), (mac, "asset_id", "ICU-W-0042"),
        (mac, "vlan", "30"), (mac, "switch_port", f"eth0 on {mac}"),
    }  # fmt: skip


def test_lldp_broken_tlv_keeps_what_came_before() -> None:
    cut = PUMP_LLDP[: PUMP_LLDP.index(b"SpaceStation dock") + 4]  # the system description TLV runs past the end
    with pytest.raises(MalformedPacket, match="runs past the end") as caught:
        LldpDissector().dissect(l2_packet(cut, 0x88CC), REF)
    assert ("00:09:fb:00:00:01", "hostname", "icu-w-pump-07") in facts(caught.value.partial)


# --- CDP ---------------------------------------------------------------------------------------------------------


def cdp_tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value) + 4) + value


CDP = (
    b"\x02\xb4\x00\x00"  # version 2, TTL 180, checksum (not checked)
    + cdp_tlv(1, b"ward3-sw1.example")  # device id
    + cdp_tlv(2, b"\x00\x00\x00\x01" + b"\x01\x01\xcc\x00\x04\x0a\x00\x03\x01")  # 1 address: NLPID IP 10.0.3.1
    + cdp_tlv(3, b"GigabitEthernet1/0/12")  # port id
    + cdp_tlv(4, b"\x00\x00\x00\x28")  # capabilities: switch + IGMP
    + cdp_tlv(5, b"Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E8, RELEASE\n(fc3)")
    + cdp_tlv(6, b"cisco WS-C2960X-48FPD-L")  # platform
    + cdp_tlv(0x0A, b"\x00\x1e")  # native VLAN 30
)


def test_cdp_identity() -> None:
    mac = "00:09:fb:00:00:01"
    got = facts(CdpDissector().dissect(l2_packet(CDP, snap=(0x00000C, 0x2000)), REF))
    assert {(mac, "hostname", "ward3-sw1.example"), (mac, "ip", "10.0.3.1"), (mac, "role", "switch"),
            (mac, "switch_port", "GigabitEthernet1/0/12"), (mac, "model", "cisco WS-C2960X-48FPD-L"),
            (mac, "firmware", "IOS 15.2(7)E8"), (mac, "vlan", "30")} <= got  # fmt: skip
    assert software_version("no version here") == ""


def test_cdp_is_selected_by_its_snap_header_on_both_paths(tmp_path: Path) -> None:
    from tests.conftest import write_pcap

    frame = (
        bytes.fromhex("01000ccccccc") + MAC_A + struct.pack("!H", 8 + len(CDP)) + b"\xaa\xaa\x03\x00\x00\x0c\x20\x00"
    )
    path = write_pcap(tmp_path / "cdp.pcap", [(1_000_000_000, frame + CDP)])
    for fast in (True, False):
        devices = Engine(fast=fast).analyze([str(path)]).analysis.devices
        (dev,) = [d for d in devices if d.macs == ("00:09:fb:00:00:01",)]
        assert dev.model == "cisco WS-C2960X-48FPD-L" and "ward3-sw1.example" in dev.hostnames, fast


# --- SNMP --------------------------------------------------------------------------------------------------------


def ber(tag: int, value: bytes) -> bytes:
    n = len(value)
    return bytes([tag]) + (bytes([n]) if n < 128 else b"\x82" + struct.pack("!H", n)) + value


def oid(text: str) -> bytes:
    parts = [int(p) for p in text.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        while p > 0x7F:
            p >>= 7
            chunk.insert(0, 0x80 | p & 0x7F)
        out += bytes(chunk)
    return ber(0x06, bytes(out))


def varbind(name: str, value: bytes) -> bytes:
    return ber(0x30, oid(name) + value)


SYSTEM = (
    varbind("1.3.6.1.2.1.1.1.0", ber(0x04, b"Alaris Gateway Workstation"))  # sysDescr
    + varbind("1.3.6.1.2.1.1.2.0", oid("1.3.6.1.4.1.2021.250.10"))  # sysObjectID
    + varbind("1.3.6.1.2.1.1.5.0", ber(0x04, b"agw-icu"))  # sysName
)
# v2c GetResponse: version 1, community "public", request id 42, no error, the three varbinds
PDU = ber(0xA2, ber(0x02, b"\x2a") + ber(0x02, b"\x00") + ber(0x02, b"\x00") + ber(0x30, SYSTEM))
SNMP_RESPONSE = ber(0x30, ber(0x02, b"\x01") + ber(0x04, b"public") + PDU)


def test_snmp_agent_identity_and_community_in_clear() -> None:
    out = SnmpDissector().dissect(udp_packet(SNMP_RESPONSE, 161, 40000, src_ip=SERVER, dst_ip=CLIENT), REF)
    got = facts(out)
    assert {("10.0.0.9", "description", "Alaris Gateway Workstation"), ("10.0.0.9", "hostname", "agw-icu"),
            ("10.0.0.9", "fingerprint", "sysobjectid:1.3.6.1.4.1.2021.250.10"), ("10.0.0.9", "protocol", "snmp:v2c"),
            ("10.0.0.9", "cleartext_secret", "snmp-community"),
            ("10.0.0.5", "cleartext_secret", "snmp-community")} == got  # fmt: skip
    assert "public" not in repr(out)
    with pytest.raises(MalformedPacket):
        SnmpDissector().dissect(udp_packet(SNMP_RESPONSE[:-5], 161, 40000), REF)


# --- SSDP and HTTP -----------------------------------------------------------------------------------------------

NOTIFY = (
    b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: urn:schemas-upnp-org:device:MediaServer:1\r\n"
    b"NTS: ssdp:alive\r\nSERVER: Linux/3.10 UPnP/1.0 IntelliVue-Gateway/2.1\r\n"
    b"USN: uuid:2fac1234-31f8-11b4-a222-08002b34c003::urn:schemas-upnp-org:device:MediaServer:1\r\n\r\n"
)


def test_ssdp_announcement() -> None:
    got = facts(SsdpDissector().dissect(udp_packet(NOTIFY, 1900, 1900, dst_ip=bytes([239, 255, 255, 250])), REF))
    assert got == {
        ("10.0.0.1", "software", "Linux/3.10 UPnP/1.0 IntelliVue-Gateway/2.1"),
        ("10.0.0.1", "service", "urn:schemas-upnp-org:device:MediaServer:1"),
        ("10.0.0.1", "client_id", "uuid:2fac1234-31f8-11b4-a222-08002b34c003"),
    }
    search = b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\nUSER-AGENT: Android/9 UPnP/1.1 App/1\r\n\r\n"
    assert facts(SsdpDissector().dissect(udp_packet(search, 50000, 1900), REF)) == {
        ("10.0.0.1", "user_agent", "Android/9 UPnP/1.1 App/1")
    }


def test_http_heads_of_a_keep_alive_connection() -> None:
    req = b"GET /a HTTP/1.1\r\nHost: pump\r\nUser-Agent: PumpAgent/2.0\r\nAuthorization: Basic YTpi\r\n\r\n"
    post = b"POST /b HTTP/1.1\r\nUser-Agent: PumpAgent/2.0\r\nContent-Length: 5\r\n\r\nhello"
    resp = b"HTTP/1.1 200 OK\r\nServer: GoAhead-Webs\r\nContent-Length: 2\r\n\r\nok" * 2
    got = facts(HttpDissector().dissect_stream(stream(req + post, resp, 80)))
    assert got == {("10.0.0.5", "user_agent", "PumpAgent/2.0"), ("10.0.0.5", "cleartext_secret", "http-basic"),
                   ("10.0.0.9", "software", "GoAhead-Webs"), ("10.0.0.9", "hostname", "pump")}  # fmt: skip
    assert "YTpi" not in repr(got)
    with pytest.raises(MalformedPacket):
        list(HttpDissector().dissect_stream(stream(b"GET / HTTP/1.1\r\nHost: x")))


def recorded(path: Path, dissector: object) -> list[Observation]:
    """Every observation ``dissector`` makes when it is the only one analysing ``path``."""
    seen: list[Observation] = []
    inner = dissector.dissect_stream  # type: ignore[attr-defined]

    class Recording:
        name = dissector.name  # type: ignore[attr-defined]
        stream = dissector.stream  # type: ignore[attr-defined]

        def dissect_stream(self, s: TcpStream) -> Iterable[Observation]:
            out = list(inner(s))
            seen.extend(out)
            return out

    registry = Registry()
    registry.register(Recording())
    Engine(registry).analyze([str(path)])
    return seen


def test_corpus_http_user_agent_split_across_two_segments() -> None:
    path = need_corpus_file("ndpi--http_ua_splitted_in_two_pkts.pcapng")
    ua = "Mozilla/5.0 (Linux; Android 6.0.1; SM-T805 Build/MMB29K; wv) AppleWebKit/537.36 (KHTML, like Gecko)"
    assert {o.value for o in recorded(path, HttpDissector()) if o.attribute == "user_agent"} == {
        ua + " Version/4.0 Chrome/61.0.3163.98 Safari/537.36"
    }


def test_corpus_http_and_ssdp_identities() -> None:
    seen = by_ip(
        [
            "zeek--http_get.pcap",
            "ndpi--ipp.pcap",
            "ndpi--ssdp-m-search-ua.pcap",
            "suricata-verify--sip-ssdp-pm_ssdp.pcap",
        ]
    )
    assert ("user_agent", "Wget/1.14 (darwin12.2.0)") in seen["141.142.228.5"]
    assert ("software", "Apache/2.4.3 (Fedora)") in seen["192.150.187.43"]
    assert ("software", "Virata-EmWeb/R6_2_1") in seen["10.10.10.251"]
    assert ("user_agent", "CUPS/1.3.4") in seen["10.10.10.49"]
    assert any(a == "user_agent" and v.startswith("Google Chrome/99") for s in seen.values() for a, v in s)
    assert any(a == "software" and "MiniUPnPd/1.6" in v for s in seen.values() for a, v in s)


# --- TLS ---------------------------------------------------------------------------------------------------------


def u16s(values: Iterable[int]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


# The ClientHello of Chrome 143 as browserleaks.com decoded it (its ja4_ro / ja3_text), plus a GREASE cipher and
# extension in front as Chrome sends them; the expected JA3 and JA4 are the ones published with it.
CIPHERS = [0x0A0A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C,
           0x009D, 0x002F, 0x0035]  # fmt: skip
SIGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
EXTENSIONS = [
    ext(0x1A1A, b""),
    ext(0x002D, b"\x01\x01"),
    ext(0x0033, b"\x00\x00"),
    ext(0x0010, struct.pack("!H", 12) + b"\x02h2\x08http/1.1"),
    ext(0xFE0D, b""),
    ext(0x0017, b""),
    ext(0x44CD, b""),
    ext(0x0000, struct.pack("!HBH", 17, 0, 14) + b"tls.example.org"[:14]),
    ext(0x000B, b"\x01\x00"),
    ext(0x000A, struct.pack("!H", 8) + u16s([0x11EC, 29, 23, 24])),
    ext(0x002B, b"\x06" + u16s([0x2A2A, 0x0304, 0x0303])),
    ext(0xFF01, b"\x00"),
    ext(0x0023, b""),
    ext(0x0012, b""),
    ext(0x0005, b"\x01\x00\x00\x00\x00"),
    ext(0x000D, struct.pack("!H", 16) + u16s(SIGS)),
    ext(0x001B, b"\x02\x00\x02"),
]


def client_hello() -> bytes:
    body = b"\x03\x03" + bytes(32) + b"\x00" + struct.pack("!H", 2 * len(CIPHERS)) + u16s(CIPHERS) + b"\x01\x00"
    exts = b"".join(EXTENSIONS)
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def test_ja3_and_ja4_match_the_published_values() -> None:
    hello = parse_client_hello(client_hello()[9:])
    assert hello.sni == "tls.example.or" and hello.alpn[0] == b"h2"
    assert hello.ja3() == "98487aa16281980e7d1120d399efb6a4"
    assert hello.ja4() == "t13d1516h2_8daaf6152771_d8a2da3f94cd"
    got = facts(TlsDissector().dissect_stream(stream(client_hello())))
    assert {("10.0.0.5", "fingerprint", "ja3:98487aa16281980e7d1120d399efb6a4"),
            ("10.0.0.5", "fingerprint", "ja4:t13d1516h2_8daaf6152771_d8a2da3f94cd"),
            ("10.0.0.9", "hostname", "tls.example.or")} == got  # fmt: skip


def test_ja4_edge_cases() -> None:
    bare = ClientHello(0x0301, [0x002F])  # TLS 1.0, no extensions, no SNI, no ALPN
    assert bare.ja4() == f"t10i010000_{hashlib.sha256(b'002f').hexdigest()[:12]}_000000000000"
    odd = ClientHello(0x0303, [], alpn=[b"\xff\x01"])  # non-alphanumeric ALPN: hex first and last digits
    assert odd.ja4().startswith("t12i0000f1_000000000000")


def tshark_ja3(path: Path) -> set[str]:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    out = subprocess.run([tshark, "-r", str(path), "-Y", "tls.handshake.type == 1", "-T", "fields", "-e",
                          "tls.handshake.ja3"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    return {line for line in out.split() if line}


@pytest.mark.parametrize("name", ["ndpi--443-curl.pcap", "ndpi--443-firefox.pcap", "ndpi--443-safari.pcap",
                                  "arkime--tls13.pcap", "zeek--tls_chrome-34-google.pcap",
                                  "zeek--tls_openjdk-25.0.2-zeek.org.pcap"])  # fmt: skip
def test_corpus_ja3_equals_tshark_and_server_certificate(name: str) -> None:
    path = need_corpus_file(name)
    seen = recorded(path, TlsDissector())
    ja3 = {o.value.removeprefix("ja3:") for o in seen if o.value.startswith("ja3:")}
    assert ja3 == tshark_ja3(path)
    # JA4 names only final versions: the TLS 1.3 draft 18 (0x7f12) of arkime--tls13 gives "00"
    assert any(o.value.startswith("ja4:t00d" if "tls13" in name else "ja4:t1") for o in seen)
    if "chrome-34" in name:
        assert any(o.attribute == "hostname" and o.value == "google.de" and o.source == "tls-sni" for o in seen)
    if name.startswith("ndpi--443"):  # TLS 1.2: the certificate crosses in clear
        assert (
            "178.62.197.130",
            "certificate",
            "subject CN=www.ntop.org / issuer CN=Let's Encrypt Authority X3,O=Let's Encrypt,C=US",
        ) in facts(seen)
        assert ("178.62.197.130", "hostname", "www.ntop.org") in facts(seen)  # fmt: skip
        names = {(o.value, o.source) for o in seen if o.attribute == "hostname"}
        assert {("www.ntop.org", "tls-sni"), ("www.ntop.org", "tls-certificate")} <= names  # SNI and the cert's SAN


# --- SMB / NTLMSSP -----------------------------------------------------------------------------------------------


def nbss(msg: bytes) -> bytes:
    return b"\x00" + len(msg).to_bytes(3, "big") + msg


def smb2(command: int, response: bool, body: bytes) -> bytes:
    head = b"\xfeSMB" + struct.pack("<HHIHHI", 64, 0, 0, command, 1, 1 if response else 0) + bytes(44)
    return head + body


def challenge(computer: str, major: int, minor: int, build: int) -> bytes:
    name = computer.encode("utf-16-le")
    info = struct.pack("<HH", 1, len(name)) + name + b"\x00\x00\x00\x00"
    head = b"NTLMSSP\x00" + struct.pack("<I", 2) + struct.pack("<HHI", 0, 0, 56) + struct.pack("<I", 0x02000000)
    head += bytes(16) + struct.pack("<HHI", len(info), len(info), 56) + struct.pack("<BBH", major, minor, build)
    return head + bytes(3) + b"\x0f" + info


def test_smb2_dialect_and_ntlmssp_version_and_name() -> None:
    negotiate = smb2(0, False, struct.pack("<HH", 36, 2) + bytes(32) + struct.pack("<HH", 0x0202, 0x0311) + bytes(8))
    negotiate_rsp = smb2(0, True, struct.pack("<HHH", 65, 1, 0x0311) + bytes(58))
    setup_rsp = smb2(1, True, bytes(8) + challenge("PACS-SRV01", 6, 1, 7601))
    got = facts(SmbDissector().dissect_stream(stream(nbss(negotiate), nbss(negotiate_rsp) + nbss(setup_rsp), 445)))
    assert got == {("10.0.0.9", "protocol", "smb:3.1.1"), ("10.0.0.9", "hostname", "pacs-srv01"),
                   ("10.0.0.9", "os", "Windows 7 / Server 2008 R2 (6.1 build 7601)")}  # fmt: skip
    assert windows_name(10, 0, 22621).startswith("Windows 11")


def test_smb1_only_client_is_flagged() -> None:
    dialects = b"\x02PC NETWORK PROGRAM 1.0\x00\x02LANMAN1.0\x00\x02NT LM 0.12\x00"
    req = b"\xffSMB\x72" + bytes(27) + b"\x00" + struct.pack("<H", len(dialects)) + dialects
    rsp = b"\xffSMB\x72" + bytes(4) + b"\x80" + bytes(22) + b"\x01" + struct.pack("<H", 2) + b"\x00\x00"
    got = facts(SmbDissector().dissect_stream(stream(nbss(req), nbss(rsp), 445)))
    assert got == {("10.0.0.5", "protocol", "smb:smb1-only"), ("10.0.0.9", "protocol", "smb:NT LM 0.12")}


# --- the identities of the public captures -----------------------------------------------------------------------


def by_ip(names: list[str]) -> dict[str, set[tuple[str, str]]]:
    return evidence_by_address(str(need_corpus_file(n)) for n in names)


def test_corpus_link_layer_identities() -> None:
    seen = by_ip(["arkime--wireshark-lldp.pcap", "zeek--lldp.pcap", "zeek--cdp-v1.pcap"])
    hp = seen["00:13:21:57:ca:7f"]
    assert {("hostname", "ProCurve Switch 2600-8-PWR"), ("role", "switch"), ("ip", "15.255.122.148"),
            ("role", "lldp-med-network-connectivity"),
            ("description", "ProCurve J8762A Switch 2600-8-PWR, revision H.08.89, ROM H.08.5X "
                            "(/sw/code/build/fish(ts_08_5))")} <= hp  # fmt: skip
    assert {("hostname", "Summit300-48"), ("vlan", "488")} <= seen["00:01:30:f9:ad:a0"]
    assert ("description", "SMCGS8P-Smart - SMCGS8P-Smart v3.20") in seen["00:22:2d:81:db:10"]
    assert {("hostname", "R1"), ("model", "cisco 1601"), ("firmware", "IOS 11.2(12)P"),
            ("switch_port", "Ethernet0"), ("role", "router")} <= seen["00:e0:1e:d5:d5:15"]  # fmt: skip


def test_corpus_dhcp_fingerprints() -> None:
    seen = by_ip(["suricata-verify--dhcp-eve-extended-option-60.pcap", "arkime--wireshark-dhcpv6.pcap"])
    mac = seen["28:cf:da:dc:8d:76"]
    assert {("vendor_class", "MSFT 5.0"), ("fingerprint", "dhcp:1,15,3,6,44,46,47,31,33,121,249,43"),
            ("client_id", "01:28:cf:da:dc:8d:76")} <= mac  # fmt: skip
    assert {("fingerprint", "dhcpv6:23,24"), ("client_id", "duid-llt:00:01:1c:39:cf:88:08:00:27:fe:8f:95")} <= seen[
        "08:00:27:fe:8f:95"
    ]


def test_corpus_smb_snmp_mdns_identities() -> None:
    seen = by_ip(["arkime--wireshark-smb-on-windows10.pcap", "zeek--smb_smb311.pcap", "arkime--smb-smbclient.pcap",
                  "zeek--snmp_snmpwalk-short.pcap", "zeek--snmp_snmpv1_get.pcap", "ndpi--iphone.pcap"])  # fmt: skip
    assert ("os", "Windows 10 / Server 2016-2019 (10.0 build 10586)") in seen["192.168.199.132"]
    assert {("hostname", "scv"), ("os", "Windows 8.1 9600"), ("protocol", "smb:NT LM 0.12")} <= seen["192.168.199.1"]
    assert {("hostname", "ad.foo.test"), ("protocol", "smb:3.1.1")} <= seen["10.160.67.244"]
    assert ("protocol", "smb:smb1-only") in seen["127.0.0.1"]  # smbclient offering only SMB1 dialects
    snmp_agent = next(s for s in seen.values() if ("hostname", "ubuntu-512mb-sfo2-01") in s)
    assert {("fingerprint", "sysobjectid:1.3.6.1.4.1.8072.3.2.10"), ("cleartext_secret", "snmp-community"),
            ("protocol", "snmp:v2c")} <= snmp_agent  # fmt: skip
    assert any(("hostname", "B6300") in s for s in seen.values())
    assert {("model", "iMac11,3"), ("service", "_smb._tcp")} <= seen["c6:2c:03:60:6a:64"]


# --- hostile input: every dissector ------------------------------------------------------------------------------

PACKET_DISSECTORS = [cls() for cls in BUILTIN if not hasattr(cls, "stream")]
STREAM_DISSECTORS = [cls() for cls in BUILTIN if hasattr(cls, "stream")]
SEEDS = {"lldp": PUMP_LLDP, "cdp": CDP, "snmp": SNMP_RESPONSE, "ssdp": NOTIFY}


def offered(dissector: object, payload: bytes, pick: int = 0) -> Packet:
    """A packet the dissector selects, carrying ``payload`` (``pick`` chooses among its ports)."""
    sel = dissector.selector  # type: ignore[attr-defined]
    if sel.ethertypes:
        return l2_packet(payload, min(sel.ethertypes))
    if sel.llc_snap:
        return l2_packet(payload, snap=min(sel.llc_snap))
    if sel.arp:
        return l2_packet(payload, 0x0806)
    ports = sorted(sel.udp_ports or sel.tcp_ports or {1})
    port = ports[pick % len(ports)]
    return udp_packet(payload, port, port)


def mutate(data: st.DataObject, seed: bytes) -> bytes:
    raw = bytearray(seed or b"\x00")
    for _ in range(data.draw(st.integers(0, 10))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    return bytes(raw[: data.draw(st.integers(0, len(raw)))])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_fuzzed_packets_never_raise_anything_but_malformed(data: st.DataObject) -> None:
    """Every packet dissector, random or mutated payloads: observations, or a MalformedPacket with a reason."""
    for dissector in PACKET_DISSECTORS:
        seed = SEEDS.get(dissector.name, b"")
        payload = mutate(data, seed) if seed and data.draw(st.booleans()) else data.draw(st.binary(max_size=300))
        try:
            list(dissector.dissect(offered(dissector, payload, data.draw(st.integers(0, 3))), REF))
        except MalformedPacket as exc:
            assert str(exc)


STREAM_SEEDS = {
    "tls": (client_hello(), None),
    "http": (
        b"GET / HTTP/1.1\r\nUser-Agent: x\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nServer: y\r\n\r\n",
    ),
    "smb": (nbss(smb2(0, False, bytes(40))), nbss(smb2(1, True, bytes(8) + challenge("A", 10, 0, 1)))),
}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzzed_streams_never_raise_anything_but_malformed(data: st.DataObject) -> None:
    for dissector in STREAM_DISSECTORS:
        orig, resp = STREAM_SEEDS.get(dissector.name, (b"", None))
        a = mutate(data, orig) if orig else data.draw(st.binary(max_size=400))
        b = mutate(data, resp) if resp else None
        try:
            list(dissector.dissect_stream(stream(a, b)))
        except MalformedPacket as exc:
            assert str(exc)


def test_corpus_android_phone_identity() -> None:
    """A real phone: DHCP vendor class android-dhcp-9 names its OS through the catalog, mDNS its services,
    HTTP its browser; TLS SNIs name the servers it contacts, not the phone."""
    seen = by_ip(["ndpi--android.pcap"])
    phone = next(s for s in seen.values() if ("vendor_class", "android-dhcp-9") in s)
    assert {("os", "Android 9"), ("device_type", "mobile-device")} <= phone
    assert any(a == "fingerprint" and v.startswith("dhcp:") for a, v in phone)
    assert any(a == "user_agent" and "Android 9" in v for a, v in phone)
    assert any(a == "fingerprint" and v.startswith("ja4:") for a, v in phone)
    assert not any(a == "hostname" and "google" in v for a, v in phone)
