"""HL7 version 2 over MLLP, on any port: who sends which clinical messages, and with which software.

MLLP (HL7 v2.5.1 Implementation Guide: Transport Specification, MLLP release 2, section 1.4) frames each
message as ``<VT 0x0B> message <FS 0x1C><CR 0x0D>``. A connection is claimed when the first payload of either
direction starts with VT; a frame counts as HL7 when its message starts with ``MSH``. Segments are parsed
with python-hl7 (``hl7.parse``); the fields read are (HL7 v2.5/v2.9 chapter 2 and 7):

===========  ==========================================================  ==========================
field        meaning                                                     observation (of the sender)
===========  ==========================================================  ==========================
MSH-3/4      sending application / facility                              application / facility
MSH-5/6      receiving application / facility                            same, of the receiver
MSH-9        message type (``ADT^A01``)                                  message ``hl7:ADT^A01``
MSH-12       version id                                                  software ``HL7 v2.5``
SFT-1..4     software vendor organisation, certified version, product    software
             name, binary id (v2.5+)
PRT-10       device UDI (v2.7+ participation)                            udi
PRT-16       device identifier                                           udi
PRT-20       device serial number (v2.9)                                 serial
PRT-22       device type (v2.9)                                          device_type
OBX-18       equipment instance identifier                               udi
PID          patient identification segment                              phi_cleartext ``hl7-pid``
===========  ==========================================================  ==========================

Patient data is never kept: a PID segment only counts (one ``phi_cleartext`` observation per message, so
the evidence's repeat count is the number of messages). ACKs (``MSA``) are messages like the others.
"""

from __future__ import annotations

from collections.abc import Iterator

import hl7

from wardwatch.dissect.interface import HalfObserver, MalformedPacket, PayloadTest, StreamSelector
from wardwatch.dissect.reassembly import HalfStream, TcpStream
from wardwatch.dissect.wire import value_text
from wardwatch.model.observation import Attribute, Observation

VT, FS, CR = 0x0B, 0x1C, 0x0D
SOURCE = "hl7"
#: Longest HL7 field value kept (longer ones are cut: a value from the wire, not a document).
MAX_VALUE = 200
#: Frames read per direction at most.
MAX_FRAMES = 64


def mllp_frames(data: bytes) -> Iterator[tuple[int, bytes | None, str | None]]:
    """``(offset, message, problem)`` for each MLLP frame in ``data``: the message between VT and FS CR, or
    None with the reason it could not be read (bytes between frames, a frame cut by the end of the data)."""
    pos, n, count = 0, len(data), 0
    while pos < n and count < MAX_FRAMES:
        count += 1
        if data[pos] != VT:
            nxt = data.find(bytes([VT]), pos)
            yield pos, None, "bytes outside an MLLP frame"
            if nxt < 0:
                return
            pos = nxt
        end = data.find(bytes([FS, CR]), pos + 1)
        if end < 0:
            yield pos, None, "MLLP frame without its end (FS CR) in the reassembled data"
            return
        yield pos, data[pos + 1 : end], None
        pos = end + 2
    if pos < n:
        yield pos, None, f"more than {MAX_FRAMES} MLLP frames: the rest not read"


def _text(value: object) -> str:
    return value_text(value, MAX_VALUE)


def _field(segment: hl7.Segment, index: int) -> str:
    """Field ``index`` of ``segment`` as text ('' when absent)."""
    try:
        return _text(segment[index]) if len(segment) > index else ""
    except (IndexError, KeyError, TypeError):
        return ""


def _components(value: str, count: int, sep: str = "^") -> str:
    """The first ``count`` components of a field, joined again (``ADT^A01^ADT_A01`` -> ``ADT^A01``)."""
    return sep.join(value.split(sep)[:count]).strip(sep)


Fact = tuple[Attribute, str, float, bool]
"""(attribute, value, confidence, about the receiver) learned from one message."""

#: Segments whose fields are read (the others are not parsed at all: an ORU^R01 is mostly OBX results).
READ_SEGMENTS = (b"MSH", b"SFT", b"PRT", b"OBX")
#: Distinct messages (without their time and control id) whose facts are remembered, per dissector.
MEMO_SIZE = 4096


def reduced(message: bytes) -> tuple[bytes, bool]:
    """The segments of ``message`` that are read (an OBX only when it has an OBX-18), and whether it carries
    a PID segment; MSH-7 (time) and MSH-10 (control id) blanked, so that repeats of one kind of message from
    one application are parsed once."""
    segments = message.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    phi = False
    keep: list[bytes] = []
    for seg in segments:
        head = seg[:3]
        if head == b"PID":
            phi = True
        elif head in READ_SEGMENTS and (head != b"OBX" or seg.count(seg[3:4] or b"|") >= 18):
            keep.append(seg)
    if keep and keep[0].startswith(b"MSH") and len(keep[0]) > 3:
        fields = keep[0].split(keep[0][3:4])
        for i in (6, 9):  # MSH-7 and MSH-10 (MSH-1 is the separator itself)
            if len(fields) > i:
                fields[i] = b""
        keep[0] = keep[0][3:4].join(fields)
    return b"\r".join(keep), phi


def facts(message: hl7.Message) -> list[Fact]:
    """What a (reduced) message says of its sender and receiver (the table in the module docstring)."""
    msh = message.segment("MSH")
    out: list[Fact] = []
    app, facility = _components(_field(msh, 3), 1), _components(_field(msh, 4), 1)
    if app:
        out.append((Attribute.APPLICATION, app, 0.8, False))
    if facility:
        out.append((Attribute.FACILITY, facility, 0.7, False))
    rapp, rfac = _components(_field(msh, 5), 1), _components(_field(msh, 6), 1)
    if rapp:
        out.append((Attribute.APPLICATION, rapp, 0.6, True))
    if rfac:
        out.append((Attribute.FACILITY, rfac, 0.5, True))
    kind = _components(_field(msh, 9), 2)
    if kind:
        out.append((Attribute.MESSAGE, f"hl7:{kind}", 0.9, False))
        out.append((Attribute.ROLE, "hl7-ack-sender" if kind.startswith("ACK") else "hl7-sender", 0.8, False))
    version = _components(_field(msh, 12), 1)
    if version:
        out.append((Attribute.SOFTWARE, f"HL7 v{version}", 0.5, False))
    for sft in _segments(message, "SFT"):
        vendor = _components(_field(sft, 1), 1)
        parts = [p for p in (vendor, _field(sft, 3), _field(sft, 2)) if p]
        if parts:
            out.append((Attribute.SOFTWARE, " ".join(parts), 0.8, False))
        if vendor:
            out.append((Attribute.VENDOR, vendor, 0.6, False))
    for prt in _segments(message, "PRT"):
        for index in (10, 16):
            ident = _field(prt, index)
            if ident:
                out.append((Attribute.UDI, ident, 0.7, False))
        serial = _components(_field(prt, 20), 1)
        if serial:
            out.append((Attribute.SERIAL, serial, 0.7, False))
        dtype = _components(_field(prt, 22), 2)
        if dtype:
            out.append((Attribute.DEVICE_TYPE, dtype, 0.6, False))
    for obx in _segments(message, "OBX"):
        equipment = _field(obx, 18)
        if equipment:
            out.append((Attribute.UDI, equipment, 0.6, False))
    return out


class Hl7Dissector:
    """Applications, facilities, message types, software and device identifiers from HL7 v2 over MLLP."""

    name = "hl7"
    # a long-lived interface link: its first 32 packets each way are read, its later PID segments still counted
    stream = StreamSelector(claim=(PayloadTest(0, 0xFF, VT),), packets=32, byte_limit=64 * 1024, count_after=b"\rPID|")

    def __init__(self) -> None:
        self._memo: dict[bytes, list[Fact] | str] = {}
        """Reduced message -> its facts, or why it could not be parsed."""

    def dissect_stream(self, stream: TcpStream) -> Iterator[Observation]:
        problems: list[str] = []
        for half, other in ((stream.orig, stream.resp), (stream.resp, stream.orig)):
            if half is None:
                continue
            yield from self._half(stream, half, other, problems)
        if problems:
            raise MalformedPacket("; ".join(sorted(set(problems))))

    def _half(
        self, stream: TcpStream, half: HalfStream, other: HalfStream | None, problems: list[str]
    ) -> Iterator[Observation]:
        receiver = other.ip if other is not None else stream.peer_ip
        # the facts of this direction's messages: a link repeats them message after message, so each fact is said
        # at its first and its last occurrence, with how often it occurred (evidence keeps first, last and count)
        seen: dict[tuple[Attribute, str, float, bytes], list[int]] = {}  # -> [first offset, last offset, count]

        def note(attribute: Attribute, value: str, confidence: float, subject: bytes, offset: int) -> None:
            key = (attribute, value, confidence, subject)
            found = seen.get(key)
            if found is None:
                seen[key] = [offset, offset, 1]
            else:
                found[1], found[2] = offset, found[2] + 1

        for offset, message, problem in mllp_frames(half.data):
            if message is None:
                if not (half.truncated or half.gap) or "without its end" not in (problem or ""):
                    problems.append(problem or "unreadable MLLP frame")
                continue
            if not message.startswith(b"MSH"):
                problems.append("MLLP frame that is not an HL7 v2 message (no MSH)")
                continue
            key, phi = reduced(message)
            found = self._memo.get(key)
            if found is None:
                try:
                    found = facts(hl7.parse(key.decode("latin-1")))
                except Exception as exc:  # python-hl7 raises several kinds on broken delimiters
                    found = f"HL7 message not parsable: {type(exc).__name__}"
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = found
            if isinstance(found, str):
                problems.append(found)
                continue
            for attribute, value, confidence, about_receiver in found:
                note(attribute, value, confidence, receiver if about_receiver else half.ip, offset)
            if phi:
                note(Attribute.PHI_CLEARTEXT, "hl7-pid", 1.0, half.ip, offset)
        say = HalfObserver(stream, half)
        for (attribute, value, confidence, subject), (first, last, count) in seen.items():
            yield say(first, attribute, value, confidence, SOURCE, subject)
            if count > 1:
                yield say(last, attribute, value, confidence, SOURCE, subject, count - 1)
        if half.counted:  # PID segments past the reassembled part (StreamSelector.count_after)
            yield say(len(half.data), Attribute.PHI_CLEARTEXT, "hl7-pid", 1.0, SOURCE, count=half.counted)


def _segments(msg: hl7.Message, name: str) -> list[hl7.Segment]:
    try:
        return list(msg.segments(name))
    except KeyError:
        return []
