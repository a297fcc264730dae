"""The base risk rules: each has a positive and a negative case on real traffic (public captures, the sample,
the ward lab), plus the rule runner's handling of a failing rule and the ``findings`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, need_corpus_file, write_pcap
from tests.wardlab import missing, open_lab
from wardwatch.engine import Engine, assess
from wardwatch.inventory.catalog import builtin
from wardwatch.model.finding import Finding, Severity
from wardwatch.risk import RiskContext, default_rules, evaluate

WARDWATCH = str(Path(sys.executable).parent / "wardwatch")


def findings_of(*paths: str | Path) -> tuple[Finding, ...]:
    return assess(Engine().analyze([str(p) for p in paths]).analysis).findings


def cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``wardwatch ARGS --db DB`` as a user runs it."""
    return subprocess.run([WARDWATCH, *args, "--db", db], capture_output=True, text=True, timeout=300)


def sample_db(tmp_path: Path) -> str:
    """A database holding the analysed sample ward."""
    db = str(tmp_path / "w.db")
    assert cli(db, "analyze", str(SAMPLE), "-q").returncode == 0
    return db


def rules_of(found: Iterable[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in found:
        out.setdefault(f.rule, []).append(f)
    return out


@pytest.fixture(scope="module")
def sample() -> dict[str, list[Finding]]:
    return rules_of(findings_of(SAMPLE))


def test_cleartext_phi_on_the_hl7_senders_of_the_sample(sample: dict[str, list[Finding]]) -> None:
    phi = sample["cleartext-phi"]
    analysis = Engine().analyze([SAMPLE]).analysis
    senders = {d.id for d in analysis.devices if any(e.attribute == "phi_cleartext" for e in d.evidence)}
    assert {f.devices[0] for f in phi} == senders and len(senders) >= 5
    assert all(f.severity is Severity.HIGH and "hl7-pid" in f.title for f in phi)
    assert all(any("phi_cleartext=hl7-pid" in line for line in f.evidence) for f in phi)


def test_cleartext_phi_positive_on_a_public_hl7_capture_negative_on_plain_http() -> None:
    assert rules_of(findings_of(need_corpus_file("ndpi--hl7.pcap"))).get("cleartext-phi")
    assert not rules_of(findings_of(need_corpus_file("zeek--http_get.pcap"))).get("cleartext-phi")


def test_snmp_community_in_clear_but_not_snmpv3() -> None:
    v1 = rules_of(findings_of(need_corpus_file("zeek--snmp_snmpv1_get.pcap")))
    assert v1["cleartext-credentials"] and "snmp-community" in v1["cleartext-credentials"][0].title
    assert any("snmp:v1" in f.title for f in v1["legacy-protocol"])
    v3 = rules_of(findings_of(need_corpus_file("zeek--snmp_snmpv3_get_next.pcap")))
    assert "cleartext-credentials" not in v3 and "legacy-protocol" not in v3


def test_smb1_is_legacy_smb311_is_not() -> None:
    old = rules_of(findings_of(need_corpus_file("arkime--smb-smbclient.pcap")))
    assert any("smb:" in f.title for f in old["legacy-protocol"])
    new = rules_of(findings_of(need_corpus_file("zeek--smb_smb311.pcap")))
    assert "legacy-protocol" not in new and "legacy-os" not in new


def test_an_unsupported_windows_is_flagged_a_supported_one_is_not() -> None:
    path = need_corpus_file("arkime--wireshark-smb-on-windows10.pcap")
    analysis = Engine().analyze([path]).analysis
    found = rules_of(assess(analysis).findings)
    flagged = {f.devices[0] for f in found["legacy-os"]}
    assert flagged and all("8.1" in f.title or "2012" in f.title for f in found["legacy-os"])
    modern = {
        d.id for d in analysis.devices if any(e.attribute == "os" and "Windows 10" in e.value for e in d.evidence)
    }
    assert not modern & flagged


def test_a_medical_device_talking_to_the_internet(sample: dict[str, list[Finding]]) -> None:
    (exposed,) = sample["internet-exposure"]
    assert "PUMP" in exposed.title and exposed.severity is Severity.HIGH
    assert all(line.startswith("to ") for line in exposed.evidence)  # it called out; nothing reached it


def test_medical_devices_that_talk_only_inside_are_not_exposed(sample: dict[str, list[Finding]]) -> None:
    analysis = Engine().analyze([SAMPLE]).analysis
    medical = {d.id for d in analysis.devices if builtin().is_medical(d.device_type)}
    exposed = {f.devices[0] for f in sample["internet-exposure"]}
    assert len(medical - exposed) >= 5  # monitors, ventilators, modalities: local traffic only


def test_a_host_on_two_vlans_bridges_them_a_router_does_not(tmp_path: Path, sample: dict[str, list[Finding]]) -> None:
    from generate_ward import arp

    host = bytes.fromhex("001122334455")
    frames = [arp(1, host, bytes([10, 0, v, 5]), bytes(6), bytes([10, 0, v, 1]), v, b"\xff" * 6) for v in (10, 20)]
    path = write_pcap(tmp_path / "two-vlans.pcap", [(1_700_000_000_000_000_000 + i, f) for i, f in enumerate(frames)])
    (bridge,) = rules_of(findings_of(path))["vlan-bridging"]
    assert bridge.devices == ("mac:00:11:22:33:44:55",) and "10, 20" in bridge.title
    # the sample's router-on-a-stick carries many VLANs and is a router: no finding
    assert "vlan-bridging" not in sample


def test_management_in_clear_from_real_telnet_and_ftp_servers(tmp_path: Path) -> None:
    """Ward lab: a device answering on 23 and 21 is flagged, one answering HTTP on 8080 is not."""
    why = missing()
    if why:
        pytest.skip(why)
    server = (
        "import socket, sys, threading\n"
        "def serve(port):\n"
        "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "    s.bind(('0.0.0.0', port)); s.listen()\n"
        "    while True:\n"
        "        c, _ = s.accept(); c.sendall(b'220 ready\\r\\n'); c.recv(100); c.close()\n"
        "for p in map(int, sys.argv[1:]):\n"
        "    threading.Thread(target=serve, args=(p,), daemon=True).start()\n"
        "threading.Event().wait()\n"
    )
    client = (
        "import socket, sys\n"
        "for p in map(int, sys.argv[2:]):\n"
        "    c = socket.create_connection((sys.argv[1], p), timeout=5); c.recv(100); c.sendall(b'USER biomed\\r\\n')\n"
        "    c.close()\n"
    )
    pcap = tmp_path / "mgmt.pcap"
    with open_lab(tmp_path / "logs") as ward:
        pump, web, laptop = ward.add("pump", 10), ward.add("web", 11), ward.add("laptop", 20)
        with ward.capture(pcap):
            pump.popen([sys.executable, "-c", server, "23", "21"])
            web.popen([sys.executable, "-c", server, "8080"])
            pump.wait_listening(23)
            pump.wait_listening(21)
            web.wait_listening(8080)
            laptop.run([sys.executable, "-c", client, pump.ip, "23", "21"])
            laptop.run([sys.executable, "-c", client, web.ip, "8080"])
    found = rules_of(findings_of(pcap)).get("cleartext-management", [])
    assert [f.devices[0] for f in found] == [f"mac:{pump.mac}"], found
    assert "FTP, Telnet" in found[0].title and f"mac:{laptop.mac}" in found[0].devices


def test_a_failing_rule_is_reported_and_the_others_still_run() -> None:
    class Broken:
        name = "broken"
        severity = Severity.LOW

        def evaluate(self, ctx: RiskContext) -> list[Finding]:
            raise RuntimeError("boom")

    analysis = Engine().analyze([SAMPLE]).analysis
    found, problems = evaluate([Broken(), *default_rules()], RiskContext(analysis.devices, analysis.edges, builtin()))
    assert problems == ("risk rule broken failed: RuntimeError: boom",)
    assert any(f.rule == "cleartext-phi" for f in found)
    assert [f.severity for f in found] == sorted((f.severity for f in found), reverse=True)


def test_finding_ids_are_stable_across_runs(sample: dict[str, list[Finding]]) -> None:
    again = rules_of(findings_of(SAMPLE))
    assert {f.id for fs in again.values() for f in fs} == {f.id for fs in sample.values() for f in fs}


def test_findings_command_and_its_exit_code(tmp_path: Path) -> None:
    db = sample_db(tmp_path)
    out = cli(db, "findings", "--format", "json")
    assert out.returncode == 0, out.stderr
    docs = json.loads(out.stdout)
    assert {d["rule"] for d in docs} == {"cleartext-phi", "internet-exposure"}
    assert all(
        {"id", "severity", "title", "devices", "evidence", "remediation", "first_seen"} <= d.keys() for d in docs
    )
    high = cli(db, "findings", "--fail-on", "high")
    critical = cli(db, "findings", "--fail-on", "critical")
    assert (high.returncode, critical.returncode) == (1, 0)
    doc = subprocess.run(
        [WARDWATCH, "analyze", str(SAMPLE), "--no-store", "--json", "-", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert {f["rule"] for f in json.loads(doc.stdout)["findings"]} == {"cleartext-phi", "internet-exposure"}


def test_suppressions_need_a_reason_and_an_expiry_and_hide_until_then(tmp_path: Path) -> None:
    db = sample_db(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(db, *args)

    docs = json.loads(run("findings", "--format", "json").stdout)
    (exposed,) = [d["id"] for d in docs if d["rule"] == "internet-exposure"]
    assert run("suppress", exposed, "--reason", " ", "--until", "2099-01-01").returncode == 2  # no reason
    assert run("suppress", exposed, "--reason", "vendor cloud", "--until", "2020-01-01").returncode == 2  # past
    assert run("suppress", exposed, "--reason", "vendor cloud", "--until", "2099-01-01").returncode == 2  # > 1 year
    assert run("suppress", "internet-exposure:0000000000000000", "--reason", "x", "--until", _soon()).returncode == 3
    ok = run("suppress", exposed, "--reason", "vendor cloud, contract 17", "--until", _soon(), "--by", "biomed")
    assert ok.returncode == 0, ok.stderr
    shown = json.loads(run("findings", "--format", "json").stdout)
    assert exposed not in {d["id"] for d in shown} and len(shown) == len(docs) - 1
    everything = {d["id"]: d for d in json.loads(run("findings", "--format", "json", "--all").stdout)}
    assert everything[exposed]["suppressed"] == {
        "reason": "vendor cloud, contract 17",
        "until": _soon(),
        "by": "biomed",
    }
    assert run("findings", "--fail-on", "high").returncode == 1  # the PHI findings are still there
    assert run("findings", "--fail-on", "high", "--severity", "cleartext-phi=low").returncode == 0
    raised = json.loads(run("findings", "--format", "json", "--severity", "cleartext-phi=critical").stdout)
    assert {d["severity"] for d in raised if d["rule"] == "cleartext-phi"} == {"critical"}
    bad = run("findings", "--severity", "no-such-rule=high")
    assert bad.returncode == 2 and "no risk rule named no-such-rule" in bad.stderr


def _soon() -> str:
    import datetime

    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).strftime("%Y-%m-%d")


def test_new_devices_and_paths_since_the_baseline_are_findings(tmp_path: Path) -> None:
    """The live monitor's new-device and new-path events (real monitor logic over the sample replayed) become
    findings; what the baseline already held, or what was learned, does not."""
    from tests.engine.test_live import Clock, Replay, monitor, sample_shift
    from wardwatch.store import Store

    def run_monitor(db: str, learn: float) -> Store:
        store = Store.open(db)
        source, clock = Replay(), Clock()
        mon = monitor(store, source, clock, learn_s=learn)
        mon.start()
        source.feed(SAMPLE, sample_shift())
        mon.settle()
        mon.close()
        return store

    fresh = run_monitor(str(tmp_path / "fresh.db"), 0.0)
    try:
        found = assess(fresh.analysis(), events=fresh.events()).findings
        new = [f for f in found if f.rule == "new-since-baseline"]
        assert {f.devices[0] for f in new if f.title.startswith("new device")} == {d.id for d in fresh.devices()}
        assert any(f.title.startswith("new path") for f in new)
        assert any(f.severity is Severity.MEDIUM for f in new)  # paths of medical devices
    finally:
        fresh.close()
    learned = run_monitor(str(tmp_path / "learned.db"), 3600.0)
    try:
        assert not [
            f for f in assess(learned.analysis(), events=learned.events()).findings if f.rule == "new-since-baseline"
        ]
    finally:
        learned.close()
    assert "new-since-baseline" not in rules_of(findings_of(SAMPLE))  # a file analysis has no baseline


def test_findings_as_sarif_for_result_collectors(tmp_path: Path) -> None:
    db = sample_db(tmp_path)
    out = cli(db, "findings", "--format", "sarif")
    assert out.returncode == 0, out.stderr
    log = json.loads(out.stdout)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert sorted(rules) == ["cleartext-phi", "internet-exposure"] and run["tool"]["driver"]["name"] == "wardwatch"
    docs = json.loads(cli(db, "findings", "--format", "json").stdout)
    assert len(run["results"]) == len(docs)
    for result, doc in zip(run["results"], docs, strict=True):
        assert rules[result["ruleIndex"]] == result["ruleId"] == doc["rule"]
        assert result["level"] == "error" and result["properties"]["security-severity"] == "8.0"  # all high here
        assert result["partialFingerprints"]["wardwatchFindingId"] == doc["id"]
        assert [loc["name"] for loc in result["logicalLocations"]] == doc["devices"]
        assert result["message"]["text"] == doc["title"]
