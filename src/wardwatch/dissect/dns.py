"""DNS (RFC 1035 §4) and multicast DNS (RFC 6762) answers: which name belongs to which address.

Only responses are read. A/AAAA records map a name to an address; PTR records under in-addr.arpa /
ip6.arpa map an address to a name. mDNS answers are the responder speaking for itself (high confidence);
unicast DNS answers are what a resolver says about some host (lower confidence; CDN names are common).
The cache-flush bit of mDNS (top bit of the class) is masked.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from wardwatch.dissect import native
from wardwatch.dissect.interface import MalformedPacket, PayloadTest, Selector, observe
from wardwatch.dissect.wire import NameCache, clean_text, read_name, read_name_py
from wardwatch.model.addr import ip_str
from wardwatch.model.observation import Attribute, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet

TYPE_A = 1
TYPE_CNAME = 5
TYPE_PTR = 12
TYPE_AAAA = 28
TYPE_TXT = 16
TYPE_SRV = 33
#: DNS-SD TXT keys (RFC 6763 §6; Bonjour printing (``ty``, ``usb_MFG``, ``usb_MDL``, ``product``), AirPlay and
#: device-info (``model``, ``md``, ``am``, ``rpMd``), ``mfg``/``manufacturer``, ``fv`` firmware) -> attribute.
TXT_KEYS: dict[str, tuple[Attribute, float]] = {
    "ty": (Attribute.MODEL, 0.7),
    "usb_mdl": (Attribute.MODEL, 0.7),
    "product": (Attribute.MODEL, 0.6),
    "model": (Attribute.MODEL, 0.7),
    "md": (Attribute.MODEL, 0.7),
    "am": (Attribute.MODEL, 0.7),
    "rpmd": (Attribute.MODEL, 0.7),
    "usb_mfg": (Attribute.VENDOR, 0.7),
    "mfg": (Attribute.VENDOR, 0.7),
    "manufacturer": (Attribute.VENDOR, 0.7),
    "fv": (Attribute.FIRMWARE, 0.6),
}
DNSSD_META = "_services._dns-sd._udp.local"
MDNS_PORT = 5353
LLMNR_PORT = 5355
#: Responses only (the QR bit): a query names what somebody looks for, not who anybody is.
RESPONSE = PayloadTest(2, 0x80, 0x80, min_length=12)
#: More records than this in one message is not a real answer (cap on work per packet).
MAX_RECORDS = 512
#: Distinct messages remembered by a dissector (the memo starts again when full), and the largest remembered:
#: at most ~6 MB whatever the traffic.
ANSWER_CACHE = 4096
ANSWER_CACHE_BYTES = 1500


class Record(NamedTuple):
    """One resource record: owner name, type, class (cache-flush bit masked) and raw rdata position."""

    name: str
    rtype: int
    rclass: int
    rdata_pos: int
    rdata_len: int


RecordFields = tuple[str, int, int, int, int]
"""A record as (name, rtype, rclass, rdata_pos, rdata_len): a ``Record``, or the plain tuple the C parser gives."""


class Message(NamedTuple):
    """A parsed DNS message: header fields, question names and all resource records."""

    ident: int
    flags: int
    questions: tuple[str, ...]
    records: tuple[Record, ...]
    """Answer, authority and additional records, in order."""

    @property
    def is_response(self) -> bool:
        """QR bit."""
        return bool(self.flags & 0x8000)

    @property
    def rcode(self) -> int:
        """Response code (0 = no error)."""
        return self.flags & 0x000F


def parse_message(data: bytes) -> Message:
    """Parse a DNS message (header, questions, records) without interpreting rdata.

    The C parser does it when it is built (the same answers and errors: ``parse_message_py`` is its reference).
    """
    parsed = _parse_c(data)
    if parsed is None:
        return parse_message_py(data)
    ident, flags, questions, records = parsed
    return Message(ident, flags, questions, tuple(map(Record._make, records)))


def _parse_c(data: bytes) -> tuple[int, int, tuple[str, ...], list[RecordFields]] | None:
    """The C parser's plain header, questions and record tuples (None when it is not built)."""
    c = native.c_dnswire
    if c is None:
        return None
    try:
        return c.parse_message(data)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise MalformedPacket(str(exc)) from None


def parse_message_py(data: bytes) -> Message:
    """``parse_message`` in Python."""
    if len(data) < 12:
        raise MalformedPacket("DNS message shorter than its header")
    ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data, 0)
    if qd + an + ns + ar > MAX_RECORDS:
        raise MalformedPacket(f"DNS message claims {qd + an + ns + ar} entries")
    pos = 12
    questions = []
    names: NameCache = {}
    for _ in range(qd):
        name, pos = read_name_py(data, pos, names)
        if pos + 4 > len(data):
            raise MalformedPacket("DNS question cut short")
        pos += 4
        questions.append(name)
    records = []
    for _ in range(an + ns + ar):
        name, pos = read_name_py(data, pos, names)
        if pos + 10 > len(data):
            raise MalformedPacket("DNS record header cut short")
        rtype, rclass, _ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
        pos += 10
        if pos + rdlen > len(data):
            raise MalformedPacket("DNS record data cut short")
        records.append(Record(name, rtype, rclass & 0x7FFF, pos, rdlen))
        pos += rdlen
    return Message(ident, flags, tuple(questions), tuple(records))


def reverse_name_ip(name: str) -> str | None:
    """``4.3.2.1.in-addr.arpa`` -> ``1.2.3.4``; nibble-format ip6.arpa names likewise; else None."""
    lower = name.lower()
    try:
        if lower.endswith(".in-addr.arpa"):
            parts = lower[: -len(".in-addr.arpa")].split(".")
            if len(parts) == 4:
                return str(ipaddress.IPv4Address(".".join(reversed(parts))))
        elif lower.endswith(".ip6.arpa"):
            nibbles = lower[: -len(".ip6.arpa")].split(".")
            if len(nibbles) == 32 and all(len(n) == 1 for n in nibbles):
                return str(ipaddress.IPv6Address(bytes.fromhex("".join(reversed(nibbles)))))
    except ValueError:
        return None
    return None


def address_names(data: bytes, records: Sequence[RecordFields]) -> Iterator[tuple[str, str, bool]]:
    """Yield (address, name, via_ptr) pairs stated by ``records`` (those of a message parsed from ``data``).

    For A/AAAA reached through a CNAME chain from a question, the question's name is used: it is the name
    the client asked for (the chain's end is usually a CDN label).
    """
    alias_of: dict[str, str] = {}
    for name, rtype, _rclass, pos, _length in records:
        if rtype == TYPE_CNAME:
            target, _ = read_name(data, pos)
            alias_of[target.lower()] = name
    for name, rtype, _rclass, pos, length in records:
        if rtype == TYPE_A and length == 4 or rtype == TYPE_AAAA and length == 16:
            asked = name
            hops = 0
            while alias_of and asked.lower() in alias_of and hops < 16:
                asked = alias_of[asked.lower()]
                hops += 1
            yield ip_str(data[pos : pos + length]), asked, False
        elif rtype == TYPE_PTR:
            ip = reverse_name_ip(name)
            if ip is not None:
                target, _ = read_name(data, pos)
                yield ip, target, True


class DnsDissector:
    """Address-to-name facts from DNS, mDNS and LLMNR responses."""

    name = "dns"
    selector = Selector(udp_ports=frozenset({53, MDNS_PORT, LLMNR_PORT}), payload=RESPONSE)

    def __init__(self) -> None:
        self._answers: dict[bytes, tuple[tuple[str, str, bool], ...] | MalformedPacket] = {}
        """What a message says, by its bytes after the transaction id: the same answers repeat all day on a
        network (mDNS announcements, names every client resolves), and are read once."""
        self._dnssd: dict[bytes, tuple[tuple[Attribute, str, float, str], ...]] = {}

    def _services(self, key: bytes, data: bytes) -> tuple[tuple[Attribute, str, float, str], ...]:
        """What an mDNS response says of the responder's services (memoised like the answers)."""
        found = self._dnssd.get(key)
        if found is None:
            try:
                found = dnssd_facts(data)
            except MalformedPacket:
                found = ()  # the same message's answers already reported the reason
            if len(data) <= ANSWER_CACHE_BYTES:
                if len(self._dnssd) >= ANSWER_CACHE:
                    self._dnssd.clear()
                self._dnssd[key] = found
        return found

    def dissect(self, packet: Packet, ref: PacketRef) -> list[Observation]:
        """Hostname observations about the addresses named in a response; DNS-SD services and TXT facts of an
        mDNS responder."""
        data = packet.payload
        if not RESPONSE.passes(data):
            return []  # a query (when offered anyway): checked before parsing
        key = data[2:]
        said = self._answers.get(key)
        if said is None:
            try:
                said = answers(data)
            except MalformedPacket as exc:
                said = exc
            if len(data) <= ANSWER_CACHE_BYTES:  # bounded: at most ANSWER_CACHE messages of this size
                if len(self._answers) >= ANSWER_CACHE:
                    self._answers.clear()
                self._answers[key] = said
        if isinstance(said, MalformedPacket):
            raise MalformedPacket(str(said))
        multicast = MDNS_PORT in (packet.src_port, packet.dst_port) or packet.src_port == LLMNR_PORT
        source = "mdns" if multicast else "dns"
        sender = ip_str(packet.src_ip) if multicast and packet.src_ip is not None else None
        out = []
        if sender is not None and MDNS_PORT in (packet.src_port, packet.dst_port):
            for attribute, value, conf, src in self._services(key, data):
                out.append(observe(packet, ref, SubjectKind.IP, sender, attribute, value, conf, src))
        for ip, name, via_ptr in said:
            # mDNS/LLMNR: a host naming itself is surer than one naming others; DNS: a PTR answer is surer
            confidence = (0.9 if sender == ip else 0.8) if multicast else (0.6 if via_ptr else 0.5)
            out.append(observe(packet, ref, SubjectKind.IP, ip, Attribute.HOSTNAME, name, confidence, source))
        return out


def answers(data: bytes) -> tuple[tuple[str, str, bool], ...]:
    """The distinct (address, name, via_ptr) facts a successful response states (none for a query or an error
    response); raises ``MalformedPacket`` for what cannot be parsed."""
    records: Sequence[RecordFields]
    parsed = _parse_c(data)  # the C parser's plain tuples: no Message or Record objects to build
    if parsed is not None:
        _ident, flags, _questions, records = parsed
    else:
        msg = parse_message_py(data)
        flags, records = msg.flags, msg.records
    if not flags & 0x8000 or flags & 0x000F:  # a query, or an error response
        return ()
    seen: dict[tuple[str, str], bool] = {}
    for ip, name, via_ptr in address_names(data, records):
        if name and (ip, name) not in seen:
            seen[(ip, name)] = via_ptr
    return tuple((ip, name, via_ptr) for (ip, name), via_ptr in seen.items())


def txt_strings(rdata: bytes) -> list[bytes]:
    """The character-strings of a TXT record (RFC 1035 §3.3.14)."""
    out, pos = [], 0
    while pos < len(rdata):
        n = rdata[pos]
        out.append(rdata[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return out


def dnssd_facts(data: bytes) -> tuple[tuple[Attribute, str, float, str], ...]:
    """(attribute, value, confidence, source) an mDNS response states about its responder: the service types it
    announces (PTR owners ``_svc._tcp.local``, or the targets of ``_services._dns-sd._udp.local``) and model /
    manufacturer / firmware keys of its TXT records."""
    msg = parse_message_py(data)
    if not msg.is_response or msg.rcode:
        return ()
    found: dict[tuple[Attribute, str], tuple[float, str]] = {}
    for rec in msg.records:
        if rec.rtype == TYPE_PTR:
            owner = rec.name.lower()
            if owner == DNSSD_META:
                target, _ = read_name(data, rec.rdata_pos)
                owner = target.lower()
            if owner.endswith(("._tcp.local", "._udp.local")) and owner.startswith("_"):
                labels = owner.split(".")
                service = ".".join(labels[-3:-1])  # the application and transport labels, without subtypes
                found.setdefault((Attribute.SERVICE, service), (0.8, "mdns-service"))
        elif rec.rtype == TYPE_TXT:
            for item in txt_strings(data[rec.rdata_pos : rec.rdata_pos + rec.rdata_len]):
                k, sep, v = item.partition(b"=")
                spec = TXT_KEYS.get(k.decode("latin-1").lower()) if sep else None
                text = clean_text(v).strip("() ")
                if spec is not None and text:
                    found.setdefault((spec[0], text), (spec[1], "mdns-txt"))
    return tuple((a, v, c, src) for (a, v), (c, src) in found.items())
