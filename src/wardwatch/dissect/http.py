"""HTTP/1.x message heads (RFC 9112 §2-3, §5) over reassembled TCP, and SSDP (UPnP Device Architecture 2.0
§1), which uses the same head syntax over UDP 1900.

HTTP, per connection, whatever the port: the client's ``User-Agent`` and credentials sent in clear (Basic
auth: the kind is recorded, never the value), the server's ``Server``. A request or response is read across
TCP segment boundaries (the reassembled stream); heads after the first are found by ``Content-Length``.

SSDP: ``SERVER`` (the device's OS/UPnP stack/product), ``USER-AGENT`` (M-SEARCH), ``NT`` / ``ST`` (the device
or service type), ``USN`` (the device's UUID).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from wardwatch.dissect.interface import (
    Facts,
    MalformedPacket,
    PayloadTest,
    Selector,
    StreamSelector,
    observe_stream,
)
from wardwatch.dissect.reassembly import HalfStream, TcpStream
from wardwatch.dissect.wire import clean_text
from wardwatch.model.addr import ip_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet

#: The longest head read (the rest of a longer one is not HTTP a device sends about itself).
MAX_HEAD = 16 * 1024
#: Heads read per direction of one connection.
MAX_MESSAGES = 16
METHODS = (b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"HTTP")
CLAIM = tuple(PayloadTest(0, b"\xff" * 4, m) for m in METHODS)
SSDP_PORT = 1900


def parse_head(data: bytes, pos: int = 0) -> tuple[str, dict[str, str], int] | None:
    """(start line, headers by lower-case name, offset just past the head) of the message head at ``pos``;
    None when no complete head is there. A repeated header keeps its first value."""
    end = data.find(b"\r\n\r\n", pos, pos + MAX_HEAD)
    if end < 0:
        return None
    lines = data[pos:end].split(b"\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep and name and not name[-1:].isspace():
            headers.setdefault(name.strip().lower().decode("latin-1"), clean_text(value.strip()))
    return clean_text(lines[0]), headers, end + 4


def heads(data: bytes) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(offset, start line, headers) of the successive message heads of one direction of a connection."""
    pos = 0
    for _ in range(MAX_MESSAGES):
        head = parse_head(data, pos)
        if head is None:
            return
        start, headers, body = head
        yield pos, start, headers
        length = headers.get("content-length", "0")
        if not length.isdigit() or "chunked" in headers.get("transfer-encoding", "").lower():
            return  # the next head cannot be found without reading the body
        pos = body + int(length)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HttpDissector:
    """User-Agent, Server and cleartext credentials of HTTP/1.x connections on any port."""

    name = "http"
    stream = StreamSelector(claim=CLAIM, packets=4, byte_limit=16 * 1024)

    def dissect_stream(self, stream: TcpStream) -> Iterator[Observation]:
        found = False
        for half, other in ((stream.orig, stream.resp), (stream.resp, stream.orig)):
            if half is not None:
                for obs in self._half(stream, half, other):
                    found = True
                    yield obs
        if not found and not any(h is not None and parse_head(h.data) for h in (stream.orig, stream.resp)):
            raise MalformedPacket("HTTP-like stream without a complete message head")

    @staticmethod
    def _half(stream: TcpStream, half: HalfStream, other: HalfStream | None) -> Iterator[Observation]:
        seen: set[tuple[Attribute, str]] = set()
        for offset, start, headers in heads(half.data):
            facts: list[tuple[Attribute, str, float, str]] = []
            if start.startswith("HTTP/"):
                if headers.get("server"):
                    facts.append((Attribute.SOFTWARE, headers["server"], 0.7, "http-server"))
            else:
                if headers.get("user-agent"):
                    facts.append((Attribute.USER_AGENT, headers["user-agent"], 0.8, "http-user-agent"))
                host = headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower().rstrip(".")
                if host and not _is_address(host):  # the name the client used for the server
                    server = other.ip if other is not None else stream.peer_ip
                    yield observe_stream(stream, half, offset, Attribute.HOSTNAME, host, 0.4, "http-host", server)
                if headers.get("authorization", "").lower().startswith("basic "):
                    facts.append((Attribute.CLEARTEXT_SECRET, "http-basic", 1.0, "http-authorization"))
            for attribute, value, conf, source in facts:
                if (attribute, value) not in seen:
                    seen.add((attribute, value))
                    yield observe_stream(stream, half, offset, attribute, value, conf, source)


class SsdpDissector:
    """Server string, device/service types, UUID and User-Agent from SSDP announcements, searches, answers."""

    name = "ssdp"
    selector = Selector(udp_ports=frozenset({SSDP_PORT}))

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Observations about the sender of one SSDP message."""
        if packet.src_ip is None:
            return []
        head = parse_head(packet.payload)
        if head is None:
            raise MalformedPacket("SSDP message without a complete head")
        start, headers, _ = head
        ip = ip_str(packet.src_ip)
        out = Facts(packet, ref, SubjectKind.IP, ip)
        add = out.add

        searching = start.startswith("M-SEARCH")
        if searching:
            add(Attribute.USER_AGENT, headers.get("user-agent", ""), 0.8, "ssdp-user-agent")
            return out  # ST of a search names what the sender looks for, not what it is
        add(Attribute.SOFTWARE, headers.get("server", ""), 0.7, "ssdp-server")
        kind = headers.get("nt") or headers.get("st") or ""
        if kind.startswith("urn:") or kind == "upnp:rootdevice":
            add(Attribute.SERVICE, kind, 0.8, "ssdp-nt")
        usn = headers.get("usn", "")
        if usn.startswith("uuid:"):
            add(Attribute.CLIENT_ID, usn.split("::", 1)[0], 0.8, "ssdp-usn")
        return out
