"""The command line, run as a user runs it: the installed console script in a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, dhcp_request_frame, write_pcap

EXE = shutil.which("wardwatch", path=str(Path(sys.executable).parent)) or "wardwatch"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    if env is None or "WARDWATCH_DB" not in env:
        full_env.pop("WARDWATCH_DB", None)
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("db") / "ward.db"
    proc = run("analyze", str(SAMPLE), "--db", str(db), "--quiet")
    assert proc.returncode == 0, proc.stderr
    return db


def test_analyze_writes_the_analysis_document(tmp_path: Path) -> None:
    proc = run("analyze", str(SAMPLE), "--db", str(tmp_path / "w.db"), "--json", "-", "--quiet")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "wardwatch.analysis/1"
    assert set(doc) >= {"captures", "devices", "flows", "edges", "findings", "skipped"}
    (cap,) = doc["captures"]
    assert cap["packets"] == 3117 and cap["complete"] and cap["format"] == "pcapng"
    device_keys = {
        "id",
        "macs",
        "ips",
        "vlans",
        "vendor",
        "model",
        "device_type",
        "firmware",
        "os",
        "hostnames",
        "first_seen",
        "last_seen",
        "evidence",
    }
    for d in doc["devices"]:
        assert device_keys <= set(d)
        for e in d["evidence"]:
            assert {"attribute", "value", "source", "confidence", "packet"} <= set(e)
    flow_keys = {"proto", "src_ip", "src_port", "dst_ip", "dst_port", "packets", "bytes", "first_seen", "last_seen"}
    assert all(flow_keys <= set(f) for f in doc["flows"])
    mon = next(d for d in doc["devices"] if "ICU-MON-01" in d["hostnames"])
    assert mon["vendor"] == "Philips Patient Monitoring" and mon["vlans"] == [10] and mon["ips"] == ["10.10.10.21"]
    assert mon["first_seen"].endswith("Z")
    hl7 = [e for e in doc["edges"] if e["src_device"] == mon["id"] and e["service"] == "tcp/2575"]
    assert hl7 and hl7[0]["flows"] == 8


def test_summary_and_progress_go_to_stderr(tmp_path: Path) -> None:
    proc = run("analyze", str(SAMPLE), "--db", str(tmp_path / "w.db"))
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert "Analysis summary" in proc.stderr and "3,117" in proc.stderr


def test_truncated_capture_exits_3_and_keeps_partial_results(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcapng"
    data = SAMPLE.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    db = tmp_path / "w.db"
    proc = run("analyze", str(cut), "--db", str(db), "--quiet")
    assert proc.returncode == 3
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and str(cut) in error_lines[0] and "offset" in error_lines[0]
    listed = run("captures", "--db", str(db), "--format", "json")
    (cap,) = json.loads(listed.stdout)
    assert not cap["complete"] and 0 < cap["packets"] < 3117
    assert json.loads(run("devices", "--db", str(db), "--format", "json").stdout)


def test_missing_file_and_usage_errors(tmp_path: Path) -> None:
    proc = run("analyze", str(tmp_path / "nope.pcap"), "--db", str(tmp_path / "w.db"), "--quiet")
    assert proc.returncode == 3 and "nope.pcap" in proc.stderr
    assert run("analyze").returncode == 2
    assert run("devices", "--format", "xml", "--db", str(tmp_path / "w.db")).returncode == 2
    assert run("frobnicate").returncode == 2
    proc = run("devices", "--db", str(tmp_path / "typo.db"))
    assert proc.returncode == 3 and "no database at" in proc.stderr and not (tmp_path / "typo.db").exists()
    bad_db = tmp_path / "bad.db"
    bad_db.write_text("not sqlite" * 100)
    proc = run("devices", "--db", str(bad_db))
    assert proc.returncode == 3 and "cannot open database" in proc.stderr


def test_list_formats(sample_db: Path, tmp_path: Path) -> None:
    devices = json.loads(run("devices", "--db", str(sample_db), "--format", "json").stdout)
    assert len(devices) == 39
    rows = list(csv.DictReader(io.StringIO(run("devices", "--db", str(sample_db), "-f", "csv").stdout)))
    assert {r["id"] for r in rows} == {d["id"] for d in devices}
    mon_row = next(r for r in rows if "ICU-MON-01" in r["hostnames"])
    assert mon_row["device_type"] == "patient-monitor" and "hl7-sender" in mon_row["roles"].split(";")
    assert "PHI in clear: hl7-pid ×8" in mon_row["notes"] and "medical device" in mon_row["notes"]
    mon_doc = next(d for d in devices if "ICU-MON-01" in d["hostnames"])
    assert mon_doc["device_type_label"] == "Patient monitor" and mon_doc["notes"] == mon_row["notes"].split(";")
    (phi,) = [e for e in mon_doc["evidence"] if e["attribute"] == "phi_cleartext"]
    assert phi["count"] == 8  # the eight ORU^R01 of the sample, each with a PID segment
    table = run("devices", "--db", str(sample_db)).stdout
    assert "Philips Patient Monitoring" in table and "ICU-MON-01" in table
    flows = list(csv.DictReader(io.StringIO(run("flows", "--db", str(sample_db), "-f", "csv").stdout)))
    assert len(flows) == len(json.loads(run("flows", "--db", str(sample_db), "-f", "json").stdout)) > 150
    assert {"src_ip", "dst_port", "packets", "bytes"} <= set(flows[0])
    pacs = next(d for d in devices if "pacs.ward.example" in d["hostnames"])
    only = json.loads(run("flows", "--db", str(sample_db), "-f", "json", "--device", pacs["id"]).stdout)
    assert only and all(pacs["id"] in (f["src_device"], f["dst_device"]) for f in only)
    out = tmp_path / "map.graphml"
    assert run("map", "--db", str(sample_db), "--format", "graphml", "-o", str(out)).returncode == 0
    graph = ET.parse(out).getroot()
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    edges = json.loads(run("map", "--db", str(sample_db), "-f", "json").stdout)
    assert len(graph.findall(".//g:edge", ns)) == len(edges) > 30
    assert "tcp/2575" in run("map", "--db", str(sample_db)).stdout


def test_captures_listing(sample_db: Path) -> None:
    (row,) = list(csv.DictReader(io.StringIO(run("captures", "--db", str(sample_db), "-f", "csv").stdout)))
    assert row["packets"] == "3117" and row["format"] == "pcapng" and row["error"] == ""
    assert row["digest"] == "xxh3-128:" + row["digest"][9:] and row["digest"][9:].startswith(row["id"])
    assert row["sha256"] == ""  # not requested
    assert "complete" in run("captures", "--db", str(sample_db)).stdout


def test_sha256_on_request(tmp_path: Path) -> None:
    import hashlib

    db = tmp_path / "w.db"
    assert run("analyze", str(SAMPLE), "--db", str(db), "-q", "--sha256").returncode == 0
    (cap,) = json.loads(run("captures", "--db", str(db), "-f", "json").stdout)
    assert cap["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    # a later run without --sha256 keeps it
    assert run("analyze", str(SAMPLE), "--db", str(db), "-q").returncode == 0
    (again,) = json.loads(run("captures", "--db", str(db), "-f", "json").stdout)
    assert again["sha256"] == cap["sha256"]


def test_postgresql_backend(postgres_db: str) -> None:
    """The same commands against a real PostgreSQL server (the database URL from the environment)."""
    env = {"WARDWATCH_DB": postgres_db}
    assert run("analyze", str(SAMPLE), "-q", env=env).returncode == 0
    assert run("analyze", str(SAMPLE), "-q", env=env).returncode == 0  # idempotent there too
    devices = json.loads(run("devices", "-f", "json", env=env).stdout)
    assert len(devices) == 39 and any("ICU-MON-01" in d["hostnames"] for d in devices)
    edges = json.loads(run("map", "-f", "json", env=env).stdout)
    assert any(e["service"] == "tcp/2575" for e in edges)


def test_environment_defaults(sample_db: Path) -> None:
    proc = run("devices", env={"WARDWATCH_DB": str(sample_db), "WARDWATCH_FORMAT": "json"})
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 39


def test_report_escapes_values_from_the_wire(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    frame = dhcp_request_frame(bytes.fromhex("0009fb0000aa"), evil)
    cap = write_pcap(tmp_path / "evil.pcap", [(1_000_000_000, frame)])
    db = tmp_path / "w.db"
    assert run("analyze", str(cap), str(SAMPLE), "--db", str(db), "-q").returncode == 0
    html_path = tmp_path / "r.html"
    proc = run("report", "--db", str(db), "--html", str(html_path))
    assert proc.returncode == 0, proc.stderr
    page = html_path.read_text()
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "cytoscape" in page and "ICU-MON-01" in page
    assert "<script src=" not in page and "http://" not in page.split("<script>", 1)[0]  # nothing fetched


def test_own_catalog_directory_and_a_broken_one(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "icu.yaml").write_text(
        "rules:\n"
        "  - id: icu-monitor-names\n"
        "    when: {attribute: hostname, regex: '^ICU-MON-(?P<n>\\d+)$'}\n"
        "    then: {asset_id: 'ICU-W-{n}'}\n"
        "    confidence: 0.9\n"
        "    source: ICU West asset register (biomedical engineering)\n"
    )
    proc = run("analyze", str(SAMPLE), "--no-store", "--json", "-", "--quiet", "--catalog", str(rules))
    assert proc.returncode == 0, proc.stderr
    mon = next(d for d in json.loads(proc.stdout)["devices"] if "ICU-MON-01" in d["hostnames"])
    assert {"attribute": "asset_id", "value": "ICU-W-01", "source": "catalog:icu-monitor-names"}.items() <= next(
        e for e in mon["evidence"] if e["attribute"] == "asset_id"
    ).items()
    assert mon["device_type"] == "patient-monitor" and mon["device_type_label"] == "Patient monitor"
    (rules / "broken.yaml").write_text("rules:\n  - {id: x, when: {attribute: model, equals: a}, then: {model: b}}\n")
    proc = run("analyze", str(SAMPLE), "--no-store", "--quiet", "--catalog", str(rules))
    assert proc.returncode == 2 and "broken.yaml" in proc.stderr and "'x'" in proc.stderr


def test_one_device_in_detail(sample_db: Path) -> None:
    proc = run("devices", "--db", str(sample_db), "--device", "icu-mon-01")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Device mac:00:09:fb:4a:00:01" in text and "Patient monitor" in text
    for row in ("dhcp-option-12", "catalog:oui-philips-patient-monitoring", "phi_cleartext"):
        assert row in text, row
    same = json.loads(run("devices", "--db", str(sample_db), "--device", "10.10.10.21", "-f", "json").stdout)
    assert [d["id"] for d in same] == ["mac:00:09:fb:4a:00:01"]
    missing = run("devices", "--db", str(sample_db), "--device", "no-such-device")
    assert missing.returncode == 3 and "no device 'no-such-device'" in missing.stderr
