"""TLS handshakes (RFC 8446 §4, RFC 5246 §7.4) over reassembled TCP, on any port.

From the client's ClientHello: the server name it asked for (SNI, RFC 6066 §3: a name of the *server*), and
the JA3 (Salesforce) and JA4 (FoxIO, JA4.md) fingerprints of the client's TLS stack. From the server: the
version it chose (old versions are a legacy signal), the JA3S fingerprint, and — before TLS 1.3, where the
Certificate message is still in clear — the subject and issuer of the certificate it presented (read with
``cryptography``).

GREASE values (RFC 8701) are left out of every fingerprint, as both specifications say.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from wardwatch.dissect.interface import MalformedPacket, PayloadTest, StreamSelector, observe_stream
from wardwatch.dissect.reassembly import HalfStream, TcpStream
from wardwatch.dissect.wire import clean_text
from wardwatch.model.observation import Attribute, Observation

CONTENT_HANDSHAKE = 22
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_CERTIFICATE = 1, 2, 11
EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIG_ALGS, EXT_ALPN, EXT_VERSIONS = 0, 10, 11, 13, 16, 43
#: Extensions whose contents the fingerprints use.
PARSED_EXTENSIONS = frozenset({EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIG_ALGS, EXT_ALPN, EXT_VERSIONS})
#: A TLS record header: handshake, major version 3 (SSL 3.0 - TLS 1.3 all say 3.x).
CLAIM = (PayloadTest(0, b"\xff\xff", b"\x16\x03"),)
VERSION_NAMES = {0x0300: "ssl:3.0", 0x0301: "tls:1.0", 0x0302: "tls:1.1", 0x0303: "tls:1.2", 0x0304: "tls:1.3"}
JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2"}
#: Handshake bytes read per direction (a certificate chain of a few KB fits).
MAX_HANDSHAKE = 48 * 1024
SOURCE = "tls"


def is_grease(value: int) -> bool:
    """RFC 8701 reserved values: 0x0A0A, 0x1A1A … 0xFAFA."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def handshake_bytes(data: bytes) -> tuple[bytes, str | None]:
    """The handshake-protocol bytes of the leading handshake records of one direction, and why reading stopped
    before the data ended (None: a non-handshake record or the end was reached cleanly)."""
    out = bytearray()
    pos = 0
    while pos + 5 <= len(data) and len(out) < MAX_HANDSHAKE:
        ctype, major = data[pos], data[pos + 1]
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if ctype != CONTENT_HANDSHAKE:
            return bytes(out), None
        if major != 3 or length > 18432:  # RFC 8446 §5.2: at most 2^14 + 2048
            return bytes(out), "TLS record header is not valid"
        out += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    return bytes(out), None


def messages(hs: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, body) of the complete handshake messages in ``hs``."""
    pos = 0
    while pos + 4 <= len(hs):
        kind, length = hs[pos], int.from_bytes(hs[pos + 1 : pos + 4], "big")
        if pos + 4 + length > len(hs):
            return
        yield kind, hs[pos + 4 : pos + 4 + length]
        pos += 4 + length


class _Reader:
    """Bounds-checked reads of a handshake body; ``MalformedPacket`` past the end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedPacket("TLS handshake field runs past the end of its message")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def vec(self, width: int) -> bytes:
        return self.take(int.from_bytes(self.take(width), "big"))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _u16s(raw: bytes) -> list[int]:
    n = len(raw) // 2
    return list(struct.unpack(f">{n}H", raw[: 2 * n]))


@dataclass
class ClientHello:
    """The fields of a ClientHello the fingerprints use (GREASE kept here, dropped by the fingerprints)."""

    version: int
    ciphers: list[int]
    extensions: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    point_formats: list[int] = field(default_factory=list)
    sig_algs: list[int] = field(default_factory=list)
    alpn: list[bytes] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    sni: str | None = None

    def ja3_text(self) -> str:
        """The JA3 string: version, ciphers, extensions, groups, point formats (decimal, GREASE removed)."""

        def join(values: list[int]) -> str:
            return "-".join(str(v) for v in values if not is_grease(v))

        return ",".join(
            [str(self.version), join(self.ciphers), join(self.extensions), join(self.groups), join(self.point_formats)]
        )

    def ja3(self) -> str:
        return hashlib.md5(self.ja3_text().encode(), usedforsecurity=False).hexdigest()

    def ja4(self, transport: str = "t") -> str:
        """The JA4 fingerprint (JA4.md: a_b_c)."""
        versions = [v for v in self.versions if not is_grease(v)]
        version = JA4_VERSIONS.get(max(versions) if versions else self.version, "00")
        ciphers = [c for c in self.ciphers if not is_grease(c)]
        exts = [e for e in self.extensions if not is_grease(e)]
        alpn = "00"
        if self.alpn and self.alpn[0]:
            first = self.alpn[0]
            ends = chr(first[0]) + chr(first[-1])
            alpn = ends if ends.isascii() and ends.isalnum() else first.hex()[0] + first.hex()[-1]
        a = f"{transport}{version}{'d' if self.sni is not None else 'i'}{min(len(ciphers), 99):02d}"
        a += f"{min(len(exts), 99):02d}{alpn}"

        def digest(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"

        b = digest(",".join(f"{c:04x}" for c in sorted(ciphers)))
        rest = ",".join(f"{e:04x}" for e in sorted(e for e in exts if e not in (EXT_SNI, EXT_ALPN)))
        sigs = ",".join(f"{s:04x}" for s in self.sig_algs if not is_grease(s))
        c = digest(f"{rest}_{sigs}" if sigs else rest) if rest else "000000000000"
        return f"{a}_{b}_{c}"


def fingerprints(hello: ClientHello) -> tuple[str, str]:
    """(JA3, JA4) of ``hello``; a client repeats its ClientHello on every connection, so they are computed once
    per distinct set of the fields they read."""
    h = hello
    return _fingerprints(h.version, tuple(h.ciphers), tuple(h.extensions), tuple(h.groups), tuple(h.point_formats),
                         tuple(h.sig_algs), tuple(h.alpn), tuple(h.versions), h.sni is not None)  # fmt: skip


@lru_cache(maxsize=4096)
def _fingerprints(
    version: int,
    ciphers: tuple[int, ...],
    extensions: tuple[int, ...],
    groups: tuple[int, ...],
    point_formats: tuple[int, ...],
    sig_algs: tuple[int, ...],
    alpn: tuple[bytes, ...],
    versions: tuple[int, ...],
    sni: bool,
) -> tuple[str, str]:
    hello = ClientHello(version, list(ciphers), list(extensions), list(groups), list(point_formats), list(sig_algs),
                        list(alpn), list(versions), "" if sni else None)  # fmt: skip
    return hello.ja3(), hello.ja4()


def parse_client_hello(body: bytes) -> ClientHello:
    """A ClientHello message body (RFC 8446 §4.1.2)."""
    r = _Reader(body)
    version = r.u16()
    r.take(32)  # random
    r.vec(1)  # legacy session id
    hello = ClientHello(version, _u16s(r.vec(2)))
    r.vec(1)  # compression methods
    if r.left < 2:
        return hello
    ext = r.vec(2)
    pos, end = 0, len(ext)
    while pos + 4 <= end:
        kind, length = (ext[pos] << 8) | ext[pos + 1], (ext[pos + 2] << 8) | ext[pos + 3]
        if pos + 4 + length > end:
            raise MalformedPacket("TLS handshake field runs past the end of its message")
        value = ext[pos + 4 : pos + 4 + length]
        pos += 4 + length
        hello.extensions.append(kind)
        if kind not in PARSED_EXTENSIONS:
            continue
        v = _Reader(value)
        if kind == EXT_SNI and len(value) >= 5:
            v.u16()
            if v.u8() == 0:
                hello.sni = clean_text(v.vec(2)).rstrip(".").lower()
        elif kind == EXT_GROUPS and len(value) >= 2:
            hello.groups = _u16s(v.vec(2))
        elif kind == EXT_POINT_FORMATS and value:
            hello.point_formats = list(v.vec(1))
        elif kind == EXT_SIG_ALGS and len(value) >= 2:
            hello.sig_algs = _u16s(v.vec(2))
        elif kind == EXT_ALPN and len(value) >= 2:
            names = _Reader(v.vec(2))
            while names.left:
                hello.alpn.append(names.vec(1))
        elif kind == EXT_VERSIONS and value:
            hello.versions = _u16s(v.vec(1))
    return hello


def parse_server_hello(body: bytes) -> tuple[int, int, list[int], int | None]:
    """(legacy version, cipher, extension types, selected version from supported_versions) of a ServerHello."""
    r = _Reader(body)
    version = r.u16()
    r.take(32)
    draft = version >> 8 == 0x7F  # TLS 1.3 drafts: no session id, no compression method
    if not draft:
        r.vec(1)
    cipher = r.u16()
    if not draft:
        r.u8()
    exts: list[int] = []
    selected = None
    if r.left >= 2:
        ext = _Reader(r.vec(2))
        while ext.left >= 4:
            kind, value = ext.u16(), ext.vec(2)
            exts.append(kind)
            if kind == EXT_VERSIONS and len(value) == 2:
                selected = int.from_bytes(value, "big")
    return version, cipher, exts, selected


def certificate_text(body: bytes) -> tuple[str, list[str]] | None:
    """(``subject … / issuer …``, the host names it is for: DNS names of the subject alternative name, else the
    subject CN; wildcards left out) of the first certificate of a TLS 1.2 Certificate message."""
    r = _Reader(body)
    chain = _Reader(r.vec(3))
    if chain.left < 3:
        return None
    der = chain.vec(3)
    from cryptography import x509  # loaded by the first certificate seen (not at every start-up)
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_der_x509_certificate(der)
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            hosts = [str(n) for n in names.get_values_for_type(x509.DNSName)]
        except x509.ExtensionNotFound:
            hosts = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    except ValueError as exc:
        raise MalformedPacket(f"TLS certificate not readable: {exc}") from None
    clean = [clean_text(h.encode()).lower().rstrip(".") for h in hosts[:8]]
    return clean_text(f"subject {subject} / issuer {issuer}".encode())[:400], [h for h in clean if h and "*" not in h]


class TlsDissector:
    """SNI, JA3/JA4, the server's chosen version, JA3S and certificate from TLS handshakes on any port."""

    name = "tls"
    stream = StreamSelector(claim=CLAIM, packets=5, byte_limit=24 * 1024)

    def dissect_stream(self, stream: TcpStream) -> Iterator[Observation]:
        problems: list[str] = []
        for half in (stream.orig, stream.resp):
            if half is not None:
                yield from self._half(stream, half, problems)
        if problems:
            raise MalformedPacket("; ".join(problems))

    def _half(self, stream: TcpStream, half: HalfStream, problems: list[str]) -> Iterator[Observation]:
        hs, problem = handshake_bytes(half.data)
        if problem:
            problems.append(problem)
        other = stream.resp if half is stream.orig else stream.orig
        server = other.ip if other is not None else stream.peer_ip
        try:
            for kind, body in messages(hs):
                if kind == HS_CLIENT_HELLO:
                    hello = parse_client_hello(body)
                    ja3, ja4 = fingerprints(hello)
                    yield observe_stream(stream, half, 0, Attribute.FINGERPRINT, f"ja3:{ja3}", 0.9, SOURCE)
                    yield observe_stream(stream, half, 0, Attribute.FINGERPRINT, f"ja4:{ja4}", 0.9, SOURCE)
                    if hello.sni:  # the name the client asked for: the server's, not the client's
                        yield observe_stream(stream, half, 0, Attribute.HOSTNAME, hello.sni, 0.4, "tls-sni", server)
                elif kind == HS_SERVER_HELLO:
                    version, cipher, exts, selected = parse_server_hello(body)
                    chosen = selected or version
                    if chosen in VERSION_NAMES:
                        yield observe_stream(stream, half, 0, Attribute.PROTOCOL, VERSION_NAMES[chosen], 0.9, SOURCE)
                    ja3s = f"{version},{cipher},{'-'.join(str(e) for e in exts if not is_grease(e))}"
                    digest = hashlib.md5(ja3s.encode(), usedforsecurity=False).hexdigest()
                    yield observe_stream(stream, half, 0, Attribute.FINGERPRINT, f"ja3s:{digest}", 0.8, SOURCE)
                elif kind == HS_CERTIFICATE:
                    found = certificate_text(body)
                    if found:
                        text, hosts = found
                        yield observe_stream(stream, half, 0, Attribute.CERTIFICATE, text, 0.9, SOURCE)
                        for host in hosts:  # names the server's certificate is for: its own, at some confidence
                            yield observe_stream(stream, half, 0, Attribute.HOSTNAME, host, 0.5, "tls-certificate")
        except MalformedPacket as exc:
            problems.append(str(exc))
