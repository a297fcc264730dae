"""Asset lists (CSV, XLSX) read with their bad rows reported by line, and reconciled with the sample ward."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLE
from wardwatch.engine import Engine
from wardwatch.inventory.assets import AssetListError, normalise_mac, read_assets, reconcile

WARDWATCH = str(Path(sys.executable).parent / "wardwatch")
CSV = """Asset No;Manufacturer;Model;Serial Number;Firmware;MAC Address;IP Address;Department;Cost Centre
PUMP-0111;BD;Alaris 8015;SN8015-111;12.1.2;58-46-E1-70-00-01;;ICU West;4711
MON-01;Philips;IntelliVue MX450;DE1234;M.00.03;0009.fb4a.0001;;ICU West;4711
CT-01;GE;Revolution;CT-99;;;10.20.0.50;Radiology;4800
GHOST-1;Baxter;Sigma Spectrum;SP-1;8.00;00:11:22:33:44:55;;Store room;4711
;Philips;no id;;;;;;
BAD-MAC;Philips;MX450;;;00:09:fb:zz:00:01;;;
BAD-IP;Philips;MX450;;;;10.0.0.999;;
MON-01;Philips;duplicate;;;;;;
"""


def test_csv_rows_with_their_problems_by_line(tmp_path: Path) -> None:
    path = tmp_path / "cmms.csv"
    path.write_text(CSV)
    assets, problems = read_assets(path)
    assert [a.asset_id for a in assets] == ["PUMP-0111", "MON-01", "CT-01", "GHOST-1"]
    assert problems == [
        "cmms.csv:6: no asset id: row skipped",
        "cmms.csv:7: '00:09:fb:zz:00:01' is not a MAC address: row skipped",
        "cmms.csv:8: '10.0.0.999' is not an IP address: row skipped",
        "cmms.csv:9: asset id 'MON-01' already given above: row skipped",
    ]
    pump = assets[0]
    assert (pump.vendor, pump.model, pump.serial, pump.mac, pump.location) == (
        "BD", "Alaris 8015", "SN8015-111", "58:46:e1:70:00:01", "ICU West",
    )  # fmt: skip
    assert assets[1].mac == "00:09:fb:4a:00:01" and pump.extra == (("cost_centre", "4711"),)
    assert pump.source == "cmms.csv:2"


def test_xlsx_reads_like_csv(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    for line in CSV.splitlines():
        sheet.append(line.split(";"))
    path = tmp_path / "cmms.xlsx"
    book.save(path)
    csv_path = tmp_path / "cmms.csv"
    csv_path.write_text(CSV)
    x_assets, x_problems = read_assets(path)
    c_assets, c_problems = read_assets(csv_path)
    assert [(a.asset_id, a.mac, a.ip, a.extra) for a in x_assets] == [
        (a.asset_id, a.mac, a.ip, a.extra) for a in c_assets
    ]
    assert [p.replace("xlsx", "csv") for p in x_problems] == c_problems


def test_a_list_without_an_asset_id_column_or_broken_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("name,mac\npump,00:11:22:33:44:55\n")
    with pytest.raises(AssetListError, match="no asset id column"):
        read_assets(tmp_path / "a.csv")
    (tmp_path / "b.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(AssetListError, match="not a readable XLSX"):
        read_assets(tmp_path / "b.xlsx")


@pytest.mark.parametrize(
    ("text", "mac"),
    [("00-09-FB-4A-00-01", "00:09:fb:4a:00:01"), ("0009.fb4a.0001", "00:09:fb:4a:00:01"),
     ("0009fb4a0001", "00:09:fb:4a:00:01"), ("00:09:fb:4a:00", None), ("not a mac!!!", None),
     ("00:09:fb:4a:00:01:02", None)],
)  # fmt: skip
def test_mac_spellings(text: str, mac: str | None) -> None:
    assert normalise_mac(text) == mac


def test_reconciliation_against_the_sample_ward(tmp_path: Path) -> None:
    path = tmp_path / "cmms.csv"
    path.write_text(CSV)
    assets, _ = read_assets(path)
    devices = Engine().analyze([SAMPLE]).analysis.devices
    result = reconcile(assets, devices)
    how = {m.asset.asset_id: (m.device, m.how) for m in result.matched}
    assert how["PUMP-0111"] == ("mac:58:46:e1:70:00:01", "mac")
    assert how["MON-01"] == ("mac:00:09:fb:4a:00:01", "mac")
    assert [a.asset_id for a in result.only_listed] == ["GHOST-1"] + (["CT-01"] if "CT-01" not in how else [])
    assert "mac:58:46:e1:70:00:01" not in result.only_seen and len(result.only_seen) > 10
    assert not set(result.only_seen) & {m.device for m in result.matched}


def test_assets_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "w.db")
    subprocess.run([WARDWATCH, "analyze", str(SAMPLE), "--db", db, "-q"], check=True, timeout=300)
    (tmp_path / "cmms.csv").write_text(CSV)
    imported = subprocess.run([WARDWATCH, "assets", "import", str(tmp_path / "cmms.csv"), "--db", db],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    assert imported.returncode == 3 and "cmms.csv:7:" in imported.stderr and "4 assets imported" in imported.stderr
    again = subprocess.run([WARDWATCH, "assets", "import", str(tmp_path / "cmms.csv"), "--db", db],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 3  # idempotent: the same four rows, replaced
    listed = subprocess.run([WARDWATCH, "assets", "list", "--db", db, "--format", "json"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    status = {r["asset_id"]: r["status"] for r in rows if r["asset_id"]}
    assert status["PUMP-0111"] == "matched" and status["GHOST-1"] == "only-listed" and len(status) == 4
    assert any(r["status"] == "only-seen" for r in rows)
