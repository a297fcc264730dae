"""HL7 v2 over MLLP and DICOM upper-layer stream dissectors: annotated byte fixtures, hostile input, corpus."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from tests.conftest import need_corpus_file
from tests.dissect.helpers import evidence_by_address
from wardwatch.dissect import MalformedPacket, StreamDissector
from wardwatch.dissect.dicom import DicomDissector, roles
from wardwatch.dissect.hl7 import Hl7Dissector, mllp_frames
from wardwatch.dissect.reassembly import HalfStream, TcpStream
from wardwatch.engine import Engine
from wardwatch.inventory.devices import InventoryBuilder
from wardwatch.model.observation import CaptureId, Observation

CLIENT, SERVER = b"\x0a\x00\x00\x05", b"\x0a\x00\x00\x09"


def half(ip: bytes, data: bytes, port: int = 40000) -> HalfStream:
    return HalfStream(mac=None, ip=ip, port=port, data=data, starts=((0, 7, 1_000),), vlan=None, packets=1)


def stream(orig: bytes, resp: bytes | None = None) -> TcpStream:
    return TcpStream(
        capture=CaptureId("t"),
        orig=half(CLIENT, orig),
        resp=half(SERVER, resp, 2575) if resp is not None else None,
        claimed_by=("x",),
        peer=(SERVER, 2575),
    )


def run(d: StreamDissector, s: TcpStream) -> tuple[set[tuple[str, str, str]], str | None]:
    """(subject, attribute, value) observed, and the recorded problem (if the dissector reported one)."""
    out: list[Observation] = []
    problem = None
    try:
        for o in d.dissect_stream(s):
            out.append(o)
    except MalformedPacket as exc:
        problem = str(exc)
    return {(o.subject.value, o.attribute.value, o.value) for o in out}, problem


# an ORU^R01 from an infusion pump gateway, HL7 v2.9-style PRT and OBX-18 (values invented, fields per chapter 7)
ORU = (
    b"\x0b"  # MLLP start block
    b"MSH|^~\\&|PUMPGW^1.2.3^ISO|ICU_WEST|EMR|GENERAL_HOSP|20251128080000||ORU^R01^ORU_R01|MSG1|P|2.9\r"
    b"SFT|Baxter Healthcare^L|4.1.2|Pump Gateway|B1234\r"
    b"PID|1||MRN0000042^^^HOSP^MR||DOE^JANE||19580214|F\r"  # patient data: counted, never kept
    b"PRT|1|UC||||||||(01)00812345678901(21)SN998||||||DEV-7||||SN998||Infusion pump^^L\r"
    b"OBX|1|NM|8867-4^Heart rate^LN||72|/min|||||F|||||||PUMP-0042^GW^1.2.3^ISO\r"
    b"\x1c\x0d"  # MLLP end block
)
ACK = b"\x0bMSH|^~\\&|EMR|GENERAL_HOSP|PUMPGW|ICU_WEST|20251128080001||ACK^R01|A1|P|2.9\rMSA|AA|MSG1\r\x1c\r"


def test_hl7_fields_of_sender_and_receiver_and_phi_counted_not_kept() -> None:
    seen, problem = run(Hl7Dissector(), stream(ORU, ACK))
    c, s = "10.0.0.5", "10.0.0.9"
    assert problem is None
    assert {
        (c, "application", "PUMPGW"), (c, "facility", "ICU_WEST"), (c, "message", "hl7:ORU^R01"),
        (c, "role", "hl7-sender"), (c, "software", "HL7 v2.9"), (c, "vendor", "Baxter Healthcare"),
        (c, "software", "Baxter Healthcare Pump Gateway 4.1.2"), (c, "udi", "(01)00812345678901(21)SN998"),
        (c, "udi", "DEV-7"), (c, "serial", "SN998"), (c, "device_type", "Infusion pump"),
        (c, "udi", "PUMP-0042^GW^1.2.3^ISO"), (c, "phi_cleartext", "hl7-pid"),
        (s, "application", "EMR"), (s, "facility", "GENERAL_HOSP"), (s, "message", "hl7:ACK^R01"),
        (s, "role", "hl7-ack-sender"),
    } <= seen  # fmt: skip
    assert not any("DOE" in v or "MRN" in v or "1958" in v for _, _, v in seen)


def test_hl7_repeats_are_parsed_once_and_still_counted() -> None:
    d = Hl7Dissector()
    msgs = ORU + ORU.replace(b"MSG1", b"MSG2").replace(b"20251128080000", b"20251128080500")
    obs = list(d.dissect_stream(stream(msgs)))
    assert sum(o.count for o in obs if o.value == "hl7-pid") == 2 and len(d._memo) == 1


def test_a_link_repeating_one_message_says_each_fact_at_its_first_and_last_occurrence() -> None:
    """Ten results on one link: every fact twice (first and last message, the second with the other nine), so the
    evidence has the right count and both ends of its time span without ten observations a fact."""
    ten = b"".join(ORU.replace(b"MSG1", b"MSG%d" % n) for n in range(10))
    s = stream(ten)
    starts = tuple((k * len(ORU), 100 + k, 1_000 + k) for k in range(10))
    s = TcpStream(capture=s.capture, orig=HalfStream(mac=None, ip=CLIENT, port=40000, data=ten, starts=starts,
                  vlan=None, packets=10), resp=None, claimed_by=("hl7",), peer=s.peer)  # fmt: skip
    obs = [o for o in Hl7Dissector().dissect_stream(s) if o.attribute == "message"]
    assert [(o.packet.number, o.ts_ns, o.count) for o in obs] == [(100, 1_000, 1), (109, 1_009, 9)]
    builder = InventoryBuilder()
    builder.add_observations(Hl7Dissector().dissect_stream(s))
    (fact,) = [f for k, f in builder._facts.items() if k[2] == "phi_cleartext"]
    assert (fact.span.count, fact.span.first_ns, fact.span.last_ns) == (10, 1_000, 1_009)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (ORU[:60], None),  # cut by the end of the capture: nothing wrong, nothing read
        (b"junk" + ORU, "bytes outside an MLLP frame"),
        (b"\x0bPID|1\r\x1c\r", "not an HL7 v2 message"),
        (b"\x0bMSH\r\x1c\r", "HL7 message not parsable"),
    ],
)
def test_hl7_broken_input_gives_a_reason(data: bytes, reason: str | None) -> None:
    s = stream(data)
    if reason is None:
        s = TcpStream(s.capture, HalfStream(**{**_fields(s.orig), "truncated": True}), None, ("x",), s.peer)
    seen, problem = run(Hl7Dissector(), s)
    if reason is None:
        assert problem is None and seen == set()
    else:
        assert problem is not None and reason in problem
    if data.startswith(b"junk"):
        assert ("10.0.0.5", "application", "PUMPGW") in seen  # what follows the junk is still read


def _fields(h: HalfStream) -> dict[str, object]:
    return {k: getattr(h, k) for k in HalfStream.__slots__}


def test_mllp_frames() -> None:
    assert [(o, m is not None, p) for o, m, p in mllp_frames(ACK + ACK[:10])] == [
        (0, True, None),
        (len(ACK), False, "MLLP frame without its end (FS CR) in the reassembled data"),
    ]


# --- DICOM -------------------------------------------------------------------------------------------------


def item(kind: int, value: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(value)) + value


def associate(pdu: int, called: bytes, calling: bytes, contexts: bytes, impl: bytes, version: bytes) -> bytes:
    """A-ASSOCIATE-RQ/AC (PS3.8 table 9-11): protocol version 1, reserved, called AE, calling AE, 32 reserved
    bytes, application context item 0x10, presentation contexts, user information 0x50 (0x51, 0x52, 0x55)."""
    user = item(0x51, struct.pack(">I", 16384)) + item(0x52, impl) + item(0x55, version)
    body = (
        struct.pack(">HH", 1, 0) + called.ljust(16) + calling.ljust(16) + bytes(32)
        + item(0x10, b"1.2.840.10008.3.1.1.1") + contexts + item(0x50, user)
    )  # fmt: skip
    return struct.pack(">BBI", pdu, 0, len(body)) + body


CT = b"1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = b"1.2.840.10008.1.2"
RQ = associate(1, b"PACS", b"CT01", item(0x20, b"\x01\x00\x00\x00" + item(0x30, CT) + item(0x40, IMPLICIT)),
               b"1.2.840.113619.6.374", b"GE_REV_CT_22")  # fmt: skip
AC = associate(2, b"PACS", b"CT01", item(0x21, b"\x01\x00\x00\x00" + item(0x40, IMPLICIT)),
               b"1.2.276.0.7230010.3.0.3.6.7", b"OFFIS_DCMTK_367")  # fmt: skip


def implicit(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)
    return fp.getvalue()


def pdata(ctx: int, header: int, fragment: bytes) -> bytes:
    """P-DATA-TF with one PDV (PS3.8 9.3.5, annex E.2: header bit 0 command, bit 1 last fragment)."""
    pdv = struct.pack(">IBB", len(fragment) + 2, ctx, header) + fragment
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def c_store() -> bytes:
    cmd = Dataset()
    cmd.AffectedSOPClassUID = CT.decode()
    cmd.CommandField = 0x0001  # C-STORE-RQ
    cmd.CommandDataSetType = 0
    data = Dataset()
    data.Modality = "CT"
    data.Manufacturer = "GE MEDICAL SYSTEMS"
    data.StationName = "CT01_OC0"
    data.ManufacturerModelName = "RHAPSODE"
    data.PatientName = "DOE^JOHN"  # (0010,0010): flagged, never kept
    data.DeviceSerialNumber = "SN-77"
    data.SoftwareVersions = "05"
    return pdata(1, 0x03, implicit(cmd)) + pdata(1, 0x02, implicit(data)[:400] + bytes(4000))


def test_dicom_association_implementation_roles_and_dataset() -> None:
    seen, problem = run(DicomDissector(), stream(RQ + c_store(), AC))
    c, s = "10.0.0.5", "10.0.0.9"
    assert problem is None
    assert {
        (c, "ae_title", "CT01"), (s, "ae_title", "PACS"),
        (c, "implementation", "GE_REV_CT_22 (1.2.840.113619.6.374)"),
        (s, "implementation", "OFFIS_DCMTK_367 (1.2.276.0.7230010.3.0.3.6.7)"),
        (c, "role", "dicom-storage-scu"), (s, "role", "dicom-storage-scp"), (c, "message", "dicom:C-STORE"),
        (c, "vendor", "GE MEDICAL SYSTEMS"), (c, "model", "RHAPSODE"), (c, "modality", "CT"),
        (c, "station", "CT01_OC0"), (c, "serial", "SN-77"), (c, "firmware", "05"),
        (c, "phi_cleartext", "dicom-patient"),
    } <= seen  # fmt: skip
    assert not any("DOE" in v for _, _, v in seen)


def test_dicom_roles_from_abstract_syntaxes() -> None:
    assert roles(["1.2.840.10008.5.1.4.31"]) == ("dicom-worklist-scu", "dicom-worklist-scp")
    assert roles(["1.2.840.10008.1.1"]) == ("dicom-scu", "dicom-scp")
    assert roles(["1.2.840.10008.5.1.1.9"]) == ("dicom-print-scu", "dicom-print-scp")
    assert roles(["1.2.3"]) == (None, None)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01\x00\xff\xff\xff\xff" + RQ[6:], "absurd length"),
        (RQ + b"\x09\x00\x00\x00\x00\x00", "unknown DICOM PDU type 0x09"),
        (RQ[:6] + RQ[6:60], "shorter than its fixed fields"),
        (b"\x42\x00\x00\x00\x00\x04\x00\x00\x00\x00", "does not start with an association PDU"),
    ],
)
def test_dicom_broken_input_gives_a_reason(data: bytes, reason: str) -> None:
    if reason == "shorter than its fixed fields":
        data = data[:2] + struct.pack(">I", 54) + data[6:]
    _, problem = run(DicomDissector(), stream(data))
    assert problem is not None and reason in problem


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzzed_streams_never_raise_anything_else(data: st.DataObject) -> None:
    """Random mutations of real-looking streams: observations and at most a MalformedPacket, nothing else."""
    for dissector, orig, resp in ((Hl7Dissector(), ORU + ORU, ACK), (DicomDissector(), RQ + c_store(), AC)):
        raw = bytearray(orig)
        for _ in range(data.draw(st.integers(0, 12))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(raw)))
        run(dissector, stream(bytes(raw[:cut]), resp))


def test_corpus_medical_traffic_matches_its_ground_truth() -> None:
    """Every association of the real dcmtk/pynetdicom/python-hl7 exchange: AE titles, implementations,
    datasets; every HL7 sender with its application, facility and message type; PHI in clear flagged."""
    pcap = need_corpus_file("gmt--medical_traffic.pcap")
    truth = json.loads(pcap.with_name("gmt--medical_traffic.ground_truth.json").read_text())
    seen = evidence_by_address([str(pcap)])["127.0.0.1"]
    for a in truth["dicom_associations"]:
        assert ("ae_title", a["calling_ae"]) in seen and ("ae_title", a["called_ae"]) in seen, a
        for side in ("rq", "ac"):
            label = f"{a[side + '_implementation_version_name']} ({a[side + '_implementation_class_uid']})"
            assert ("implementation", label) in seen
        for dimse in a["dimse"]:
            assert ("message", f"dicom:{dimse}") in seen
        if "dataset" in a:
            ds = a["dataset"]
            assert {("vendor", ds["manufacturer"]), ("model", ds["manufacturer_model_name"]),
                    ("modality", ds["modality"]), ("firmware", ds["software_versions"])} <= seen  # fmt: skip
    for m in truth["hl7_messages"]:
        for msg in (m, m["ack"]):
            assert ("application", msg["msh3"].split("^")[0]) in seen, msg
            assert ("facility", msg["msh4"].split("^")[0]) in seen, msg
            assert ("message", "hl7:" + "^".join(msg["msh9"].split("^")[:2])) in seen, msg
        assert ("software", f"HL7 v{m['msh12']}") in seen
    assert {("phi_cleartext", "hl7-pid"), ("phi_cleartext", "dicom-patient")} <= seen


def test_corpus_ndpi_hl7_on_a_non_default_port() -> None:
    pcap = need_corpus_file("ndpi--hl7.pcap")
    seen = evidence_by_address([str(pcap)])
    assert {("application", "SENDING_APPLICATION"), ("facility", "SENDING_FACILITY"),
            ("message", "hl7:ADT^A01"), ("phi_cleartext", "hl7-pid")} <= seen["10.0.0.155"]  # fmt: skip
    assert {("application", "RECEIVING_APPLICATION"), ("role", "hl7-ack-sender")} <= seen["10.0.0.126"]


def test_a_long_hl7_link_counts_every_pid_past_its_reassembled_part(tmp_path: Path) -> None:
    """An interface link that stays open: its first 32 packets are read, every later PID segment still counted —
    a retransmission once, a PID split across two segments once, on the fast and the reference path alike."""
    from generate_ward import ethernet, ip4, ipv4, tcp
    from tests.conftest import write_pcap

    mon, eng = ip4("10.10.10.21"), ip4("10.10.10.5")
    mmac, emac = bytes.fromhex("0009fb4a0001"), bytes.fromhex("00095c110001")
    frames: list[tuple[int, bytes]] = []
    t = 1_000_000_000

    def send(src: bytes, dst: bytes, smac: bytes, dmac: bytes, sp: int, dp: int, seq: int, flags: int,
             payload: bytes = b"") -> None:  # fmt: skip
        nonlocal t
        t += 1_000_000
        segment = tcp(src, dst, sp, dp, seq, 1, flags, payload)
        frames.append((t, ethernet(smac, dmac, None, 0x0800, ipv4(src, dst, 6, segment, 64, 1))))

    msg = (b"\x0bMSH|^~\\&|MX450|ICU_WEST|HL7ENGINE|HOSP|20261201||ORU^R01|M1|P|2.6\r"
           b"PID|1||MRN42^^^HOSP^MR||DOE^JANE\rOBX|1|NM|8867-4^HR^LN||72\r\x1c\r")  # fmt: skip
    seq = 1000
    send(mon, eng, mmac, emac, 40000, 2575, seq - 1, 0x02)
    send(eng, mon, emac, mmac, 2575, 40000, 5000, 0x12)
    for n in range(50):
        send(mon, eng, mmac, emac, 40000, 2575, seq, 0x18, msg)
        if n == 40:
            send(mon, eng, mmac, emac, 40000, 2575, seq, 0x18, msg)  # a retransmission past the head
        seq += len(msg)
    cut = msg.index(b"PID|") + 2  # "\rPI" | "D|...": the pattern split across two segments
    send(mon, eng, mmac, emac, 40000, 2575, seq, 0x10, msg[:cut])
    send(mon, eng, mmac, emac, 40000, 2575, seq + cut, 0x18, msg[cut:])
    seq += len(msg)
    send(mon, eng, mmac, emac, 40000, 2575, seq, 0x11)
    path = write_pcap(tmp_path / "link.pcap", frames)
    for fast in (True, False):
        devices = Engine(fast=fast).analyze([str(path)]).analysis.devices
        (monitor,) = [d for d in devices if d.macs == ("00:09:fb:4a:00:01",)]
        phi = [e for e in monitor.evidence if e.attribute == "phi_cleartext"]
        assert [(e.value, e.count) for e in phi] == [("hl7-pid", 51)], fast  # 32 read + 18 + the split one
