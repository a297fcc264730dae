"""Ward-lab acceptance: real DICOM and HL7 peers in their own network namespaces, captured on the bridge,
analysed by wardwatch. Every AE, implementation, role and stored-image fact must land on the device (MAC and
IP) that really sent it; every HL7 sender and receiver with its application, facility and message types; PHI
that crossed in clear is counted.

dcmtk (storescp, storescu, echoscu, findscu, wlmscpfs) and pynetdicom talk DICOM; python-hl7's ``mllp_send``
and asyncio client/server and hl7apy's MLLP server talk HL7 v2. The images are the ones pydicom ships.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from tests.wardlab import Device, missing, open_lab
from wardwatch.engine import Engine
from wardwatch.model.inventory import Device as InventoryDevice

PEERS = str(Path(__file__).with_name("peers.py"))
ROOT = Path(__file__).resolve().parents[2]
DCMTK = ("storescp", "storescu", "echoscu", "findscu", "wlmscpfs", "dump2dcm")
# a worklist entry and a query in dcmtk's dump format (after its examples; dump2dcm makes the files)
WORKLIST_ITEM = """
(0008,0050) SH  A0001
(0008,0005) CS  [ISO_IR 100]
(0010,0010) PN  WORKLIST^PATIENT
(0010,0020) LO  WL0000077
(0010,0030) DA  19700101
(0010,0040) CS  F
(0010,2000) LO  NONE
(0010,2110) LO  NONE
(0020,000d) UI  1.2.826.0.1.3680043.8.498.1
(0032,1032) PN  REFERRER^A
(0032,1060) LO  CT HEAD
(0040,0100) SQ
(fffe,e000) -
(0008,0060) CS  CT
(0032,1070) LO  NONE
(0040,0001) AE  CT_WEST1
(0040,0002) DA  20261201
(0040,0003) TM  080000
(0040,0006) PN  RADIOGRAPHER^B
(0040,0007) LO  CT HEAD
(0040,0009) SH  SPS0001
(0040,0010) SH  CTWEST
(0040,0011) SH  WEST
(0040,0012) LO
(0040,0400) LT
(fffe,e00d) -
(fffe,e0dd) -
(0040,1001) SH  RP0001
(0040,1003) SH  LOW
"""
WORKLIST_QUERY = """
(0010,0010) PN  []
(0040,0100) SQ
(fffe,e000) -
(0008,0060) CS  []
(0040,0001) AE  []
(fffe,e00d) -
(fffe,e0dd) -
"""

MONITOR_ORU = (
    "MSH|^~\\&|MX450^00095CFFFE0A0B0C^EUI-64|ICU_WEST|HL7ENGINE|GENERAL_HOSP|20261201080000||ORU^R01^ORU_R01"
    "|MON0001|P|2.6\r"
    "SFT|Philips Medical Systems|M.00.03|IntelliVue MX450|B42\r"
    "PID|1||MRN0000042^^^HOSP^MR||DOE^JANE||19580214|F\r"
    "OBR|1|||69837-5^Vital signs^LN\r"
    "OBX|1|NM|8867-4^Heart rate^LN||72|/min|||||F|||||||MX450-0042^MON^1.2.3^ISO\r"
)
ANALYZER = (
    "MSH|^~\\&|COBAS^LAB1|CORE_LAB|LIS|GENERAL_HOSP|20261201081500||OUL^R22^OUL_R22|LAB0001|P|2.8\n"
    "SFT|Roche Diagnostics|3.1.4|cobas pro|R77\n"
    "PRT|1|UC||||||||(01)04015630000000(21)AN4711||||||COBAS-PRO-1||||AN4711||Lab analyzer^^L\n"
    "PID|1||MRN0000043^^^HOSP^MR||ROE^RICHARD||19600101|M\n"
    "\n"
    "MSH|^~\\&|COBAS^LAB1|CORE_LAB|LIS|GENERAL_HOSP|20261201081600||ORM^O01^ORM_O01|LAB0002|P|2.8\n"
    "SFT|Roche Diagnostics|3.1.4|cobas pro|R77\n"
)


PUMP_RESULTS = 40
PUMP_RESULT = (
    "MSH|^~\\&|ALARIS_SM|ICU_WEST|LIS|GENERAL_HOSP|20261201090000||ORU^R01^ORU_R01|PUMP{n}|P|2.6\n"
    "PID|1||MRN{n:07d}^^^HOSP^MR||PATIENT^P{n}\n"
    "OBX|1|NM|69947-0^Rate^LN||12.5|mL/h|||||F\n"
)


@dataclass
class Lab:
    """What the lab ran, and wardwatch's analysis of what it captured."""

    devices: dict[str, Device]
    inventory: dict[str, InventoryDevice]
    """Lab device name -> the inventory device wardwatch found at its MAC."""
    skipped: dict[str, int]
    pcap: Path

    def seen(self, name: str) -> set[tuple[str, str]]:
        return {(e.attribute, e.value) for e in self.inventory[name].evidence}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = missing(*DCMTK)
    if why is None and shutil.which("mllp_send", path=str(Path(sys.executable).parent)) is None:
        why = "mllp_send (python-hl7) is not installed"
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("wardlab")
    ct_image = get_testdata_file("CT_small.dcm")
    mr_image = get_testdata_file("MR_small.dcm")
    assert ct_image and mr_image
    # the worklist database of dcmtk's examples, converted to the files wlmscpfs serves
    wl = work / "wlistdb" / "WORKLIST"
    wl.mkdir(parents=True)
    (wl / "lockfile").write_text("")
    (work / "item.dump").write_text(WORKLIST_ITEM)
    (work / "query.dump").write_text(WORKLIST_QUERY)
    subprocess.run(["dump2dcm", str(work / "item.dump"), str(wl / "item1.wl")], check=True, capture_output=True)
    query = work / "query.dcm"
    subprocess.run(["dump2dcm", str(work / "query.dump"), str(query)], check=True, capture_output=True)
    (work / "store").mkdir()
    (work / "oru.hl7").write_bytes(b"\x0b" + MONITOR_ORU.encode() + b"\x1c\r")  # one MLLP frame
    (work / "lab.hl7").write_text(ANALYZER)
    (work / "pumps.hl7").write_text("\n".join(PUMP_RESULT.format(n=n) for n in range(PUMP_RESULTS)))
    mllp_send = str(Path(sys.executable).parent / "mllp_send")
    py = [sys.executable, PEERS]
    pcap = work / "ward.pcap"
    with open_lab(work / "logs") as ward:
        pacs, ris, vna = ward.add("pacs", 10), ward.add("ris", 11), ward.add("vna", 12)
        ct, mr = ward.add("ct", 21), ward.add("mr", 22)
        engine = ward.add("hl7eng", 30)
        monitor, analyzer = ward.add("monitor", 41), ward.add("analyzer", 42)
        pumpgw = ward.add("pumpgw", 43)
        with ward.capture(pcap):
            pacs.popen(["storescp", "-aet", "PACS_MAIN", "-od", str(work / "store"), "11112"])
            ris.popen(["wlmscpfs", "-dfp", str(work / "wlistdb"), "11113"])
            vna.popen([*py, "dicom-scp", "11112", "VNA_ARCHIVE"], cwd=str(ROOT))
            engine.popen([*py, "hl7apy-server", "2575", "HL7ENGINE", "GENERAL_HOSP"], cwd=str(ROOT))
            engine.popen([*py, "hl7-server", "6661", "LIS", "GENERAL_HOSP"], cwd=str(ROOT))
            for device, port in ((pacs, 11112), (ris, 11113), (vna, 11112), (engine, 2575), (engine, 6661)):
                device.wait_listening(port)
            ct.run(["echoscu", "-aet", "CT_WEST1", "-aec", "PACS_MAIN", pacs.ip, "11112"])
            ct.run(["storescu", "-aet", "CT_WEST1", "-aec", "PACS_MAIN", pacs.ip, "11112", ct_image])
            ct.run(["storescu", "-aet", "CT_WEST1", "-aec", "VNA_ARCHIVE", vna.ip, "11112", ct_image])
            out = ct.run(["findscu", "-v", "-W", "-aet", "CT_WEST1", "-aec", "WORKLIST", ris.ip, "11113", str(query)])
            assert "WORKLIST^PATIENT" in out, out
            out = mr.run([*py, "dicom-store", pacs.ip, "11112", "MR_EAST", "PACS_MAIN", mr_image])
            assert "c-store 0x0" in out, out
            out = monitor.run([mllp_send, "-p", "2575", "-f", str(work / "oru.hl7"), engine.ip])
            assert "MSA|AA" in out, out
            out = analyzer.run([*py, "hl7-send", engine.ip, "6661", str(work / "lab.hl7")])
            assert out.count("ack AA") == 2, out
            # a pump gateway's long-lived link: 40 results over one connection, more than is reassembled
            out = pumpgw.run([*py, "hl7-send", engine.ip, "6661", str(work / "pumps.hl7")])
            assert out.count("ack AA") == PUMP_RESULTS, out
        devices = dict(ward.devices)
    assert list((work / "store").iterdir()), "storescp stored nothing"
    result = Engine().analyze([str(pcap)])
    by_mac = {mac: d for d in result.analysis.devices for mac in d.macs}
    found = {name: by_mac[dev.mac] for name, dev in devices.items() if dev.mac in by_mac}
    skipped = {s.reason: s.count for s in result.analysis.skipped}
    yield Lab(devices, found, skipped, pcap)


def test_every_device_is_found_at_its_mac_and_ip(lab: Lab) -> None:
    assert set(lab.inventory) == set(lab.devices)
    for name, device in lab.devices.items():
        assert device.ip in lab.inventory[name].ips, name


def test_dicom_aes_implementations_and_roles_land_on_the_right_devices(lab: Lab) -> None:
    ct, mr, pacs, ris, vna = (lab.seen(n) for n in ("ct", "mr", "pacs", "ris", "vna"))
    assert ("ae_title", "CT_WEST1") in ct and ("ae_title", "MR_EAST") in mr
    assert ("ae_title", "PACS_MAIN") in pacs and ("ae_title", "WORKLIST") in ris
    assert ("ae_title", "VNA_ARCHIVE") in vna
    dcmtk = {v for a, v in ct | pacs | ris if a == "implementation"}
    assert all(v.startswith("OFFIS_DCMTK_") for v in dcmtk) and len(dcmtk) == 1, dcmtk
    for name in ("ct", "pacs", "ris"):
        assert any(a == "implementation" and v.startswith("OFFIS_DCMTK_") for a, v in lab.seen(name)), name
    for name in ("mr", "vna"):
        assert any(a == "implementation" and v.startswith("PYNETDICOM_") for a, v in lab.seen(name)), name
    # roles from what each side proposed and accepted
    assert {("role", "dicom-storage-scu"), ("role", "dicom-worklist-scu")} <= ct, ct
    assert ("role", "dicom-storage-scu") in mr
    assert ("role", "dicom-storage-scp") in pacs and ("role", "dicom-storage-scp") in vna
    assert ("role", "dicom-worklist-scp") in ris
    assert {("message", "dicom:C-ECHO"), ("message", "dicom:C-STORE"), ("message", "dicom:C-FIND")} <= ct
    assert ("message", "dicom:C-STORE") in mr
    assert not any(a == "message" for a, _ in pacs | ris | vna)  # answers are not requests


def test_stored_images_describe_their_modality_and_creator(lab: Lab) -> None:
    for name, path in (("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")):
        image = dcmread(get_testdata_file(path))
        seen = lab.seen(name)
        assert ("modality", image.Modality) in seen, name
        assert ("vendor", str(image.Manufacturer)) in seen, name
        if "ManufacturerModelName" in image:
            assert ("model", str(image.ManufacturerModelName)) in seen, name
    # the receiving archives are not given the images' creator
    assert not any(a == "modality" for a, _ in lab.seen("pacs") | lab.seen("vna"))


def test_hl7_senders_receivers_applications_facilities_and_types(lab: Lab) -> None:
    monitor, analyzer, engine = lab.seen("monitor"), lab.seen("analyzer"), lab.seen("hl7eng")
    assert {("application", "MX450"), ("facility", "ICU_WEST"), ("message", "hl7:ORU^R01"),
            ("software", "Philips Medical Systems IntelliVue MX450 M.00.03"),
            ("udi", "MX450-0042^MON^1.2.3^ISO"), ("role", "hl7-sender")} <= monitor  # fmt: skip
    assert {("application", "COBAS"), ("facility", "CORE_LAB"), ("message", "hl7:OUL^R22"),
            ("message", "hl7:ORM^O01"), ("serial", "AN4711"), ("device_type", "Lab analyzer"),
            ("vendor", "Roche Diagnostics")} <= analyzer  # fmt: skip
    # the interface engine: named by the senders (MSH-5/6) and by its own ACKs (python-hl7 and hl7apy servers)
    assert {("application", "HL7ENGINE"), ("application", "LIS"), ("facility", "GENERAL_HOSP"),
            ("role", "hl7-ack-sender")} <= engine  # fmt: skip
    assert {v for a, v in engine if a == "message"} == {"hl7:ACK^R01", "hl7:ACK^R22", "hl7:ACK^O01"}
    assert not any(a == "application" and v in ("MX450", "COBAS") for a, v in engine)


def test_phi_in_clear_is_counted_and_never_stored(lab: Lab) -> None:
    monitor = [e for e in lab.inventory["monitor"].evidence if e.attribute == "phi_cleartext"]
    analyzer = [e for e in lab.inventory["analyzer"].evidence if e.attribute == "phi_cleartext"]
    ris = [e for e in lab.inventory["ris"].evidence if e.attribute == "phi_cleartext"]
    # counted: one ORU with a PID from the monitor; of the analyzer's two messages only the OUL carries one
    assert [(e.value, e.count) for e in monitor] == [("hl7-pid", 1)]
    assert [(e.value, e.count) for e in analyzer] == [("hl7-pid", 1)]
    pumps = [e for e in lab.inventory["pumpgw"].evidence if e.attribute == "phi_cleartext"]
    assert sum(e.count for e in pumps) == PUMP_RESULTS  # every one of the long link's PIDs, read or not
    assert {e.value for e in ris} == {"dicom-patient"}  # worklist answers carry patient names
    assert ("phi_cleartext", "dicom-patient") in lab.seen("ct")  # CT_small carries patient elements
    everything = repr(lab.inventory)
    for name in ("DOE^JANE", "ROE^RICHARD", "MRN0000042", "WORKLIST^PATIENT", "WL0000077", "CompressedSamples"):
        assert name not in everything


def test_catalog_names_the_kind_and_toolkit_of_every_device(lab: Lab) -> None:
    kinds = {name: dev.device_type for name, dev in lab.inventory.items()}
    assert kinds["ct"] == "ct-scanner" and kinds["mr"] == "mri-scanner"  # from the modality of their images
    assert kinds["pacs"] == "pacs" and kinds["vna"] == "pacs" and kinds["ris"] == "worklist-ris"
    assert kinds["analyzer"] == "lab-analyzer"  # OUL^R22 and PRT-22 "Lab analyzer"
    assert kinds["monitor"] == "patient-monitor"  # its SFT names an IntelliVue
    for name in ("ct", "pacs", "ris"):
        assert any(a == "software" and v.startswith("OFFIS DCMTK 3.") for a, v in lab.seen(name)), name
    for name in ("mr", "vna"):
        assert any(a == "software" and v.startswith("pynetdicom 3.") for a, v in lab.seen(name)), name
    assert ("role", "device-observation-reporter") in lab.seen("monitor")  # IHE PCD-01 ORU^R01


def test_the_store_keeps_what_the_lab_showed(lab: Lab, tmp_path: Path) -> None:
    """Through the CLI into SQLite and back: the same identities, PHI counts included."""
    import json

    db = tmp_path / "lab.db"
    cli = str(Path(sys.executable).parent / "wardwatch")
    subprocess.run([cli, "analyze", str(lab.pcap), "--db", str(db), "-q"], check=True, capture_output=True)
    out = subprocess.run([cli, "devices", "--db", str(db), "-f", "json"], check=True, capture_output=True, text=True)
    by_mac = {mac: d for d in json.loads(out.stdout) for mac in d["macs"]}
    for name, dev in lab.devices.items():
        stored = by_mac[dev.mac]
        assert stored["device_type"] == lab.inventory[name].device_type, name
        phi = sorted((e["value"], e["count"]) for e in stored["evidence"] if e["attribute"] == "phi_cleartext")
        assert phi == sorted((e.value, e.count) for e in lab.inventory[name].evidence
                             if e.attribute == "phi_cleartext"), name  # fmt: skip
    assert "PHI in clear: hl7-pid ×1" in by_mac[lab.devices["monitor"].mac]["notes"]
