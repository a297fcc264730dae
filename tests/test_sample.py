"""The bundled ward sample: reproducible from its generator, and its analysis matches the reviewed golden file.

Regenerate the golden file (after reviewing the change) with ``WARDWATCH_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from generate_ward import generate
from tests.conftest import GOLDEN, ROOT, SAMPLE
from wardwatch.engine import analyze
from wardwatch.report.json_doc import analysis_document, write_json

GOLDEN_FILE = GOLDEN / "ward.analysis.json"


def test_sample_is_reproducible(tmp_path: Path) -> None:
    out = tmp_path / "ward.pcapng"
    generate(out)
    assert out.read_bytes() == SAMPLE.read_bytes(), "samples/ward.pcapng is stale: run make sample"


def test_sample_analysis_matches_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = analyze([Path("samples/ward.pcapng")])
    assert result.errors == ()
    buf = io.StringIO()
    write_json(analysis_document(result.analysis), buf)
    if os.environ.get("WARDWATCH_UPDATE_GOLDEN") == "1":
        GOLDEN_FILE.write_text(buf.getvalue(), encoding="utf-8")
    expected = GOLDEN_FILE.read_text(encoding="utf-8")
    assert json.loads(buf.getvalue()) == json.loads(expected)
    assert buf.getvalue() == expected  # byte-identical: output is deterministic


def test_sample_ward_contents() -> None:
    """What a biomedical engineer should see in the sample, stated independently of the golden file."""
    a = analyze([SAMPLE]).analysis
    by_name = {name: d for d in a.devices for name in d.hostnames}
    assert {f"ICU-MON-0{i}" for i in range(1, 7)} <= set(by_name)
    assert by_name["PUMP-0111"].vendor == "Baxter International Inc"
    assert by_name["PUMP-0041"].vendor == "Becton, Dickinson and Company"
    assert by_name["Galaxy-S23"].mac_randomized
    routers = [d for d in a.devices if d.router]
    assert [r.vendor for r in routers] == ["Cisco Systems, Inc"]
    assert set(routers[0].ips) == {"10.10.10.1", "10.20.0.1", "10.30.0.1", "10.40.0.1"}
    internet = {d.id for d in a.devices if d.via == routers[0].id}
    assert internet == {"ip:13.107.4.50", "ip:34.120.15.80", "ip:8.8.8.8", "ip:142.250.74.110"}
    pump_cloud = [e for e in a.edges if e.src_device == by_name["PUMP-0111"].id and e.dst_device == "ip:34.120.15.80"]
    assert pump_cloud and pump_cloud[0].service == "tcp/443"
    assert len(a.devices) == 39 and a.skipped == ()
