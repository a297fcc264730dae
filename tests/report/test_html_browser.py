"""The single-file HTML report in a real headless Chromium: the map renders, filters and details work,
values from the wire stay inert, and the page fetches nothing from the network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, dhcp_request_frame, write_pcap
from wardwatch.engine import analyze, assess
from wardwatch.report.html import render_html

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EVIL = '<img src=x onerror="window.pwned=1">'

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it with apt when run as root)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    frame = dhcp_request_frame(bytes.fromhex("0009fb0000aa"), EVIL)
    evil = write_pcap(tmp / "evil.pcap", [(1_764_316_900_000_000_000, frame)])
    result = analyze([SAMPLE, evil])
    path = tmp / "report.html"
    path.write_text(render_html(assess(result.analysis), "test", generated_ns=0), encoding="utf-8")
    return path


def test_map_renders_and_filters(browser: object, report: Path) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))
    page.goto(report.as_uri())
    page.wait_for_function("window.wardwatchMap !== undefined")
    nodes = page.evaluate("window.wardwatchMap.nodes().length")
    edges = page.evaluate("window.wardwatchMap.edges().length")
    assert (nodes, edges) == (38, 45)  # every device on an edge; the evil DHCP client has no edge
    assert page.locator("#map canvas").count() > 0

    # filter the map to one monitor's neighbourhood: its details and evidence appear
    page.fill("#map-filter", "ICU-MON-01")
    page.press("#map-filter", "Enter")
    details = page.locator("#details")
    details.get_by_text("ICU-MON-01").first.wait_for()
    assert "Philips Patient Monitoring" in details.inner_text()
    assert "hostname = ICU-MON-01 (dhcp-option-12, 0.9" in details.inner_text()  # then how often it was seen
    assert "Patient monitor" in details.inner_text()  # the device type, from the catalog
    faded = page.evaluate("window.wardwatchMap.elements('.faded').length")
    assert 0 < faded < nodes + edges
    page.click("#map-reset")
    assert page.evaluate("window.wardwatchMap.elements('.faded').length") == 0

    # inventory filter and sort
    page.fill("#inv-filter", "Baxter")
    assert page.locator("#devices tbody tr:not([hidden])").count() == 3
    page.fill("#inv-filter", "")
    assert page.locator("#devices tbody tr:not([hidden])").count() == 40
    page.click("#devices th:nth-child(1)")
    first = page.locator("#devices tbody tr").first.inner_text()
    page.click("#devices th:nth-child(1)")
    assert page.locator("#devices tbody tr").first.inner_text() != first

    assert errors == []
    assert all(u.startswith("file://") for u in requests), requests
    page.close()


def test_values_from_the_wire_stay_text(browser: object, report: Path) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(report.as_uri())
    page.wait_for_function("window.wardwatchMap !== undefined")
    assert page.evaluate("window.pwned") is None
    row = page.locator("#devices tbody tr[data-id='mac:00:09:fb:00:00:aa']")
    assert EVIL in row.inner_text()  # shown as text
    row.click()  # details panel renders it with textContent, still inert
    assert EVIL in page.locator("#details").inner_text()
    assert page.evaluate("window.pwned") is None
    page.close()


def test_findings_are_listed_with_their_evidence_and_remediation(browser: object, report: Path) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.as_uri())
    rows = page.locator("#findings-table tbody tr")
    assert rows.count() == int(page.inner_text("#stat-findings")) == 11
    text = page.inner_text("#findings")
    assert "patient data in clear: ICU-MON-01 (hl7-pid)" in text and "medical device talking to the internet" in text
    assert "Carry HL7 over TLS" in text and "phi_cleartext=hl7-pid" in text
    assert page.locator("#findings-table tr.sev-high").count() == 11
    assert not errors and not page.evaluate("window.pwned === 1")
