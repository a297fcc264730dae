"""DICOM upper layer (PS3.8) on any port: application entities, implementations, roles and image sources.

A connection is claimed when the first payload of either direction starts like an association PDU
(PS3.8 section 9.3.1: PDU type 0x01-0x03, a reserved 0x00 byte). PDUs are decoded here from the tables of
PS3.8 section 9.3 (the field tables below cite them); datasets carried in P-DATA are read with pydicom.

======================  ========================================================  ============================
PDU / item              fields (PS3.8)                                             observations
======================  ========================================================  ============================
A-ASSOCIATE-RQ 0x01     called AE title (bytes 11-26), calling AE (27-42),        ae_title of each side; role
                        9.3.2; presentation contexts 0x20 with abstract syntax      from the abstract syntaxes
                        0x30 and transfer syntaxes 0x40 (9.3.2.2)
A-ASSOCIATE-AC 0x02     presentation context results 0x21 (9.3.3.2)               (transfer syntax per context)
user information 0x50   implementation class UID 0x52, implementation version     implementation (each side)
                        name 0x55 (PS3.7 annex D.3.3.2)
P-DATA-TF 0x04          PDVs: length, context id, control header (bit 0 command,  message ``dicom:C-STORE`` …;
                        bit 1 last fragment) (9.3.5, annex E.2)                    dataset facts below
======================  ========================================================  ============================

Dataset of a C-STORE (PS3.3 general equipment module C.7.5.1, general series C.7.3.1): (0008,0070)
manufacturer -> vendor, (0008,1090) manufacturer's model name -> model, (0018,1020) software versions ->
firmware, (0018,1000) device serial number -> serial, (0008,1010) station name -> station, (0008,0060)
modality -> modality. A dataset describes the device that *made* the image; a PACS forwarding images sends
other devices' datasets, so these facts carry a lower confidence than what the device says of itself in
its association. Elements of the patient group (0010,xxxx) sent without TLS give ``phi_cleartext
dicom-patient`` (once per dataset); their values are never kept.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wardwatch.dissect.interface import MalformedPacket, PayloadTest, StreamSelector, observe_stream
from wardwatch.dissect.reassembly import HalfStream, TcpStream
from wardwatch.dissect.wire import clean_text, value_text
from wardwatch.model.observation import Attribute, Observation

if TYPE_CHECKING:
    from pydicom.tag import BaseTag

SOURCE = "dicom"
SOURCE_DATASET = "dicom-dataset"

# PDU types (PS3.8 table 9-1 .. 9-7)
A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 0x04, 0x05, 0x06, 0x07
PDU_NAMES = {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 4: "P-DATA-TF",
             5: "A-RELEASE-RQ", 6: "A-RELEASE-RP", 7: "A-ABORT"}  # fmt: skip
# item types (PS3.8 9.3.2.1-9.3.3.3, PS3.7 D.3.3)
ITEM_APP_CONTEXT, ITEM_PC_RQ, ITEM_PC_AC, ITEM_ABSTRACT, ITEM_TRANSFER, ITEM_USER = 0x10, 0x20, 0x21, 0x30, 0x40, 0x50
ITEM_IMPL_UID, ITEM_IMPL_VERSION = 0x52, 0x55
#: The largest PDU length accepted (PS3.8 allows 2^32-1; a P-DATA PDU of a real peer is at most a few MB).
MAX_PDU = 16 * 1024 * 1024
#: PDUs read per direction at most.
MAX_PDUS = 256

IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"
DEFLATED = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"})

#: DIMSE command field values (PS3.7 section 9.3 and 10.3, table E.1-1).
COMMANDS = {
    0x0001: "C-STORE", 0x0010: "C-GET", 0x0020: "C-FIND", 0x0021: "C-MOVE", 0x0030: "C-ECHO",
    0x0100: "N-EVENT-REPORT", 0x0110: "N-GET", 0x0120: "N-SET", 0x0130: "N-ACTION", 0x0140: "N-CREATE",
    0x0150: "N-DELETE", 0x0FFF: "C-CANCEL",
}  # fmt: skip

#: Dataset elements read from a C-STORE (tag -> attribute, confidence).
DATASET_FACTS: dict[int, tuple[Attribute, float]] = {
    0x00080070: (Attribute.VENDOR, 0.5),
    0x00081090: (Attribute.MODEL, 0.5),
    0x00181020: (Attribute.FIRMWARE, 0.5),
    0x00181000: (Attribute.SERIAL, 0.5),
    0x00081010: (Attribute.STATION, 0.6),
    0x00080060: (Attribute.MODALITY, 0.6),
}
LAST_TAG = max(DATASET_FACTS)


#: An A-ASSOCIATE-RQ or -AC: PDU type, reserved 0x00, (length), protocol version 0x0001 (PS3.8 9.3.2, 9.3.3).
CLAIM = tuple(
    PayloadTest(0, b"\xff\xff\x00\x00\x00\x00\xff\xff", bytes([pdu]) + b"\x00\x00\x00\x00\x00\x00\x01")
    for pdu in (A_ASSOCIATE_RQ, A_ASSOCIATE_AC)
)


def roles(abstract_syntaxes: list[str]) -> tuple[str | None, str | None]:
    """(role of the calling AE, role of the called AE) from the abstract syntaxes it proposed (PS3.4 service
    classes: storage B.5, query/retrieve C.4, modality worklist K.6, print H, MPPS F.7, verification A)."""
    kinds = set()
    for uid in abstract_syntaxes:
        if uid.startswith("1.2.840.10008.5.1.4.1.1."):
            kinds.add("storage")
        elif uid.startswith("1.2.840.10008.5.1.4.1.2."):
            kinds.add("query")
        elif uid == "1.2.840.10008.5.1.4.31":
            kinds.add("worklist")
        elif uid.startswith("1.2.840.10008.5.1.1."):
            kinds.add("print")
        elif uid == "1.2.840.10008.3.1.2.3.3":
            kinds.add("mpps")
        elif uid == "1.2.840.10008.1.1":
            kinds.add("verification")
    if "storage" in kinds:
        return "dicom-storage-scu", "dicom-storage-scp"
    if "worklist" in kinds or "mpps" in kinds:
        return "dicom-worklist-scu", "dicom-worklist-scp"
    if "query" in kinds:
        return "dicom-query-scu", "dicom-query-scp"
    if "print" in kinds:
        return "dicom-print-scu", "dicom-print-scp"
    if "verification" in kinds:
        return "dicom-scu", "dicom-scp"
    return None, None


def _ae(raw: bytes) -> str:
    return clean_text(raw.strip(b" \x00"))


def _uid(raw: bytes) -> str:
    return clean_text(raw.rstrip(b"\x00 "))


@dataclass(slots=True)
class Association:
    """What one association PDU said (RQ or AC)."""

    pdu: int
    called: str
    calling: str
    contexts: dict[int, tuple[str | None, list[str], int]] = field(default_factory=dict)
    """Presentation context id -> (abstract syntax (RQ only), transfer syntaxes, result (AC only, 0 accepted))."""
    impl_uid: str | None = None
    impl_version: str | None = None


def parse_items(body: bytes, start: int, problems: list[str]) -> Iterator[tuple[int, bytes]]:
    """``(type, value)`` of the items of a variable field (PS3.8 9.3.2: type, reserved, 2-byte length)."""
    pos = start
    while pos + 4 <= len(body):
        kind, length = body[pos], struct.unpack_from(">H", body, pos + 2)[0]
        if pos + 4 + length > len(body):
            problems.append(f"DICOM item 0x{kind:02x} longer than its PDU")
            return
        yield kind, body[pos + 4 : pos + 4 + length]
        pos += 4 + length
    if pos != len(body):
        problems.append("DICOM item header cut by the end of its PDU")


def parse_association(pdu: int, body: bytes, problems: list[str]) -> Association | None:
    """An A-ASSOCIATE-RQ or -AC body (after the 6-byte PDU header; PS3.8 tables 9-11 and 9-17)."""
    if len(body) < 68:
        problems.append(f"{PDU_NAMES[pdu]} shorter than its fixed fields")
        return None
    assoc = Association(pdu=pdu, called=_ae(body[4:20]), calling=_ae(body[20:36]))
    for kind, value in parse_items(body, 68, problems):
        if kind in (ITEM_PC_RQ, ITEM_PC_AC) and len(value) >= 4:
            ctx_id, result = value[0], value[2]
            abstract: str | None = None
            transfers: list[str] = []
            for sub, sval in parse_items(value, 4, problems):
                if sub == ITEM_ABSTRACT:
                    abstract = _uid(sval)
                elif sub == ITEM_TRANSFER:
                    transfers.append(_uid(sval))
            assoc.contexts[ctx_id] = (abstract, transfers, result if kind == ITEM_PC_AC else 0)
        elif kind == ITEM_USER:
            for sub, sval in parse_items(value, 0, problems):
                if sub == ITEM_IMPL_UID:
                    assoc.impl_uid = _uid(sval)
                elif sub == ITEM_IMPL_VERSION:
                    assoc.impl_version = _uid(sval)
    return assoc


def pdus(data: bytes, problems: list[str], cut_ok: bool) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, type, body)`` of the PDUs of one direction (PS3.8 9.3.1: type, reserved, 4-byte length)."""
    pos, count = 0, 0
    while pos + 6 <= len(data):
        kind, length = data[pos], struct.unpack_from(">I", data, pos + 2)[0]
        if kind not in PDU_NAMES:
            problems.append(f"unknown DICOM PDU type 0x{kind:02x}: the rest of the stream not read")
            return
        if length > MAX_PDU:
            problems.append(f"{PDU_NAMES[kind]} of an absurd length ({length} bytes): the rest not read")
            return
        count += 1
        if count > MAX_PDUS:
            return
        end = pos + 6 + length
        if end > len(data):
            if kind == P_DATA_TF:  # the beginning of a long P-DATA (an image) is still worth reading
                yield pos, kind, data[pos + 6 :]
            elif not cut_ok:
                problems.append(f"{PDU_NAMES[kind]} cut by the end of the reassembled data")
            return
        yield pos, kind, data[pos + 6 : end]
        pos = end


def pdvs(body: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(context id, control header, fragment)`` of the PDV items of a P-DATA-TF body (PS3.8 9.3.5.1); a PDV
    cut by the end of ``body`` gives what there is."""
    pos = 0
    while pos + 6 <= len(body):
        length = struct.unpack_from(">I", body, pos)[0]
        if length < 2:
            return
        yield body[pos + 4], body[pos + 5], body[pos + 6 : pos + 4 + length]
        pos += 4 + length


def command_field(command: bytes) -> tuple[int | None, str | None]:
    """(command field (0000,0100), affected SOP class (0000,0002)) of a command set (implicit VR little endian,
    PS3.7 section 6.3.1)."""
    pos, cmd, sop = 0, None, None
    while pos + 8 <= len(command):
        group, elem, length = struct.unpack_from("<HHI", command, pos)
        value = command[pos + 8 : pos + 8 + length]
        if group != 0x0000:
            break
        if elem == 0x0100 and len(value) >= 2:
            cmd = struct.unpack_from("<H", value)[0]
        elif elem == 0x0002:
            sop = _uid(value)
        pos += 8 + length
    return cmd, sop


class DicomDissector:
    """AE titles, implementations, roles, DIMSE services and image-source equipment from DICOM associations."""

    name = "dicom"
    stream = StreamSelector(claim=CLAIM, packets=24, byte_limit=64 * 1024)

    def dissect_stream(self, stream: TcpStream) -> Iterator[Observation]:
        problems: list[str] = []
        orig, resp = stream.orig, stream.resp
        if not orig.data or orig.data[0] not in PDU_NAMES:
            if resp is not None and resp.data[:1] == bytes([A_ASSOCIATE_RQ]):
                orig, resp = resp, orig  # the requestor's first packet was not captured
            elif orig.data[:1] != bytes([A_ASSOCIATE_RQ]):
                raise MalformedPacket("connection claimed as DICOM does not start with an association PDU")
        assert orig is not None
        sides = [(orig, resp)] + ([(resp, orig)] if resp is not None else [])
        rq: Association | None = None
        ac: Association | None = None
        parsed: dict[int, list[tuple[int, int, bytes]]] = {}
        for half, _ in sides:
            parsed[id(half)] = list(pdus(half.data, problems, half.truncated or half.gap))
            for offset, kind, body in parsed[id(half)]:
                if kind in (A_ASSOCIATE_RQ, A_ASSOCIATE_AC):
                    assoc = parse_association(kind, body, problems)
                    if assoc is None:
                        continue
                    if kind == A_ASSOCIATE_RQ and rq is None:
                        rq = assoc
                        yield from self._association(stream, half, offset, assoc, caller=True)
                    elif kind == A_ASSOCIATE_AC and ac is None:
                        ac = assoc
                        yield from self._association(stream, half, offset, assoc, caller=False)
        if rq is not None:
            calling_role, called_role = roles([a for a, _, _ in rq.contexts.values() if a])
            if calling_role:
                yield observe_stream(stream, orig, 0, Attribute.ROLE, calling_role, 0.7, SOURCE)
            if called_role and resp is not None:
                yield observe_stream(stream, resp, 0, Attribute.ROLE, called_role, 0.7, SOURCE)
            elif called_role:
                yield observe_stream(stream, orig, 0, Attribute.ROLE, called_role, 0.6, SOURCE, subject=stream.peer_ip)
        for half, other in sides:
            yield from self._data(stream, half, other, parsed[id(half)], rq, ac, problems)
        if problems:
            raise MalformedPacket("; ".join(sorted(set(problems))))

    def _association(
        self, stream: TcpStream, half: HalfStream, offset: int, assoc: Association, caller: bool
    ) -> Iterator[Observation]:
        def obs(attribute: Attribute, value: str, conf: float, subject: bytes | None = None) -> Observation:
            return observe_stream(stream, half, offset, attribute, value, conf, SOURCE, subject=subject)

        own, peer = (assoc.calling, assoc.called) if caller else (assoc.called, assoc.calling)
        if own:
            yield obs(Attribute.AE_TITLE, own, 0.9)
        if peer and caller:  # the AE title a requestor calls is the acceptor's (when it accepts)
            yield obs(Attribute.AE_TITLE, peer, 0.6, subject=_other_ip(stream, half))
        if assoc.impl_uid or assoc.impl_version:
            label = assoc.impl_version or assoc.impl_uid or ""
            if assoc.impl_version and assoc.impl_uid:
                label = f"{assoc.impl_version} ({assoc.impl_uid})"
            yield obs(Attribute.IMPLEMENTATION, label, 0.9)

    def _data(
        self,
        stream: TcpStream,
        half: HalfStream,
        other: HalfStream | None,
        parsed: list[tuple[int, int, bytes]],
        rq: Association | None,
        ac: Association | None,
        problems: list[str],
    ) -> Iterator[Observation]:
        command = bytearray()
        datasets: dict[int, bytearray] = {}
        current: tuple[int, int] | None = None  # (context id, command field) of the last complete command
        done: list[tuple[int, bytes, int, bool]] = []  # (context, dataset bytes, offset, of a C-STORE)
        store: dict[int, bool] = {}
        for offset, kind, body in parsed:
            if kind != P_DATA_TF:
                continue
            for ctx, header, fragment in pdvs(body):
                if header & 0x01:  # command
                    command += fragment
                    if header & 0x02:
                        cmd, _sop = command_field(bytes(command))
                        command.clear()
                        if cmd is not None and cmd in COMMANDS and not cmd & 0x8000:
                            yield observe_stream(stream, half, offset, Attribute.MESSAGE,
                                                 f"dicom:{COMMANDS[cmd]}", 0.9, SOURCE)  # fmt: skip
                        current = (ctx, cmd or 0)
                elif current is not None:  # a dataset: of a C-STORE, or an identifier (C-FIND …), an N- body
                    buf = datasets.setdefault(ctx, bytearray())
                    store.setdefault(ctx, current[1] == 0x0001)
                    if len(buf) < 64 * 1024:
                        buf += fragment
                    if header & 0x02:
                        done.append((ctx, bytes(datasets.pop(ctx)), offset, store.pop(ctx)))
        for ctx, partial in datasets.items():  # the beginning of a dataset cut by the caps
            done.append((ctx, bytes(partial), parsed[-1][0] if parsed else 0, store.pop(ctx, False)))
        for ctx, data, offset, of_store in done[:8]:
            syntax = _transfer_syntax(ctx, rq, ac, data)
            yield from self._dataset(stream, half, offset, data, syntax, problems, of_store)

    def _dataset(
        self,
        stream: TcpStream,
        half: HalfStream,
        offset: int,
        buf: bytes,
        syntax: str | None,
        problems: list[str],
        of_store: bool,
    ) -> Iterator[Observation]:
        """Device facts of a C-STORE dataset (``of_store``: it describes the image's creator); of any dataset,
        whether it carries patient-group elements."""
        if syntax in DEFLATED:
            problems.append("deflated DICOM dataset not read")
            return
        implicit = syntax == IMPLICIT_LE
        little = syntax != EXPLICIT_BE
        patient = False

        def stop(tag: BaseTag, vr: str | None, length: int) -> bool:
            nonlocal patient
            if tag.group == 0x0010 and length:  # an empty element (a query key) carries no patient data
                patient = True
            return int(tag) > LAST_TAG

        from pydicom.filereader import read_dataset  # loaded by the first dataset seen (54 ms at start-up)

        try:
            with warnings.catch_warnings():  # pydicom warns about odd elements: hostile input is expected here
                warnings.simplefilter("ignore")
                ds = read_dataset(io.BytesIO(buf), implicit, little, stop_when=stop, defer_size=None)
                found = {int(e.tag): e.value for e in ds if int(e.tag) in DATASET_FACTS} if of_store else {}
        except Exception as exc:  # pydicom raises several kinds on truncated or broken datasets
            problems.append(f"DICOM dataset not readable: {type(exc).__name__}")
            found = {}
        for tag, value in sorted(found.items()):
            attribute, conf = DATASET_FACTS[tag]
            text = value_text(value)
            if text:
                yield observe_stream(stream, half, offset, attribute, text, conf, SOURCE_DATASET)
        if patient:
            yield observe_stream(stream, half, offset, Attribute.PHI_CLEARTEXT, "dicom-patient", 1.0, SOURCE)


def _transfer_syntax(ctx: int, rq: Association | None, ac: Association | None, buf: bytes) -> str | None:
    """The transfer syntax of presentation context ``ctx``: the one the acceptor chose, else the only one
    proposed, else guessed from the first element (explicit VR when bytes 4-5 are a VR)."""
    if ac is not None and ctx in ac.contexts and ac.contexts[ctx][1]:
        return ac.contexts[ctx][1][0]
    if rq is not None and ctx in rq.contexts and len(rq.contexts[ctx][1]) == 1:
        return rq.contexts[ctx][1][0]
    if len(buf) >= 6 and buf[4:6].isalpha() and buf[4:6].isupper():
        return EXPLICIT_LE
    return IMPLICIT_LE


def _other_ip(stream: TcpStream, half: HalfStream) -> bytes:
    other = stream.resp if half is stream.orig else stream.orig
    return other.ip if other is not None else stream.peer_ip
