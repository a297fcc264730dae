"""The taxonomy and the fingerprint catalog: the built-in data is valid and cited, rules derive what they say,
user directories add and replace rules, broken files are refused with the file and rule named."""

from __future__ import annotations

from pathlib import Path

import pytest

from wardwatch.errors import CatalogError
from wardwatch.inventory.catalog import ENV, builtin, load
from wardwatch.model.inventory import Evidence
from wardwatch.model.observation import CaptureId, PacketRef

REF = PacketRef(CaptureId("c"), 7)


def ev(attribute: str, value: str, source: str = "x", confidence: float = 0.9) -> Evidence:
    return Evidence(attribute, value, source, confidence, REF, 1, 2)


def derived(evidence: list[Evidence], catalog: object = None) -> set[tuple[str, str, str, float]]:
    cat = catalog or builtin()
    return {(e.attribute, e.value, e.source, e.confidence) for e in cat.derive(evidence)}  # type: ignore[attr-defined]


def test_builtin_catalog_is_valid_and_every_rule_cites_a_source() -> None:
    cat = builtin()
    assert len(cat.rules) > 100 and len(cat.classes) > 40
    assert all(len(r.source) > 10 for r in cat.rules.values())
    for needed in ("infusion-pump", "patient-monitor", "ventilator", "ct-scanner", "pacs", "worklist-ris",
                   "lab-analyzer", "hl7-interface-engine", "emr-ehr", "nurse-call", "medication-cabinet"):  # fmt: skip
        assert needed in cat.classes
    assert cat.is_medical("infusion-pump") and not cat.is_medical("printer")
    assert cat.label("ct-scanner") == "CT scanner" and cat.label("Infusion pump") == "Infusion pump"
    # every class's parent exists, and the imaging classes hang under imaging-modality
    assert cat.classes["mri-scanner"].parent == "imaging-modality"


def test_rules_derive_with_templates_sources_and_capped_confidence() -> None:
    got = derived([ev("implementation", "OFFIS_DCMTK_367 (1.2.276.0.7230010.3.0.3.6.7)", "dicom", 0.9)])
    assert ("software", "OFFIS DCMTK 3.6.7", "catalog:dicom-impl-dcmtk", 0.9) in got
    assert ("software", "OFFIS DCMTK", "catalog:dicom-impl-dcmtk-uid", 0.8) in got
    # derived at most as sure as the evidence it came from
    assert derived([ev("modality", "CT", "dicom-dataset", 0.6)]) == {
        ("device_type", "ct-scanner", "catalog:modality-ct", 0.6)
    }
    # "from" restricts a rule to evidence of one source: an OUI name, not the same text from elsewhere
    assert derived([ev("vendor", "Philips Patient Monitoring", "oui", 0.6)]) == {
        ("device_type", "patient-monitor", "catalog:oui-philips-patient-monitoring", 0.5)
    }
    assert derived([ev("vendor", "Philips Patient Monitoring", "hl7", 0.6)]) == set()
    assert derived([ev("vendor_class", "dhcpcd-6.8.2:Linux-3.18.31:armv7l:Freescale", "dhcp-option-60")]) == {
        ("os", "Linux 3.18.31", "catalog:dhcp-vc-dhcpcd", 0.6)
    }
    assert derived([ev("vendor_class", "android-dhcp-9", "dhcp-option-60")]) == {
        ("os", "Android 9", "catalog:dhcp-vc-android", 0.7),
        ("device_type", "mobile-device", "catalog:dhcp-vc-android", 0.7),
    }


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_user_directory_adds_rules_and_classes_and_replaces_by_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "taxonomy.yaml", "classes:\n  - {id: bed-controller, label: Bed controller, group: medical}\n")
    write(
        tmp_path / "site.yaml",
        """
rules:
  - id: site-pump-names
    when: [{attribute: hostname, regex: '^icu-pump-(?P<n>\\d+)$'}, {attribute: vendor, contains: braun}]
    then: {device_type: infusion-pump, asset_id: 'PUMP-{n}'}
    confidence: 0.7
    source: ICU West naming convention (biomed team, 2026)
  - id: modality-ct
    when: {attribute: modality, equals: CT}
    then: {device_type: bed-controller}
    confidence: 0.3
    source: replaced on purpose by this test
""",
    )
    cat = load([tmp_path])
    assert cat.rules["modality-ct"].origin == str(tmp_path / "site.yaml")
    pump = [ev("hostname", "icu-pump-17", "dhcp-option-12", 0.9), ev("vendor", "B.Braun Melsungen AG", "oui", 0.6)]
    assert {("device_type", "infusion-pump", "catalog:site-pump-names", 0.6),
            ("asset_id", "PUMP-17", "catalog:site-pump-names", 0.6)} <= derived(pump, cat)  # fmt: skip
    assert derived(pump[:1], cat) == set()  # both conditions are needed
    # the environment variable names directories too
    monkeypatch.setenv(ENV, str(tmp_path))
    assert "site-pump-names" in load().rules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [", "not readable as YAML"),
        ("rules: {}", "has a 'rules' list"),
        ("rules:\n  - {id: a, when: {attribute: model, equals: x}, then: {model: y}, confidence: 0.5}", "cites"),
        ("rules:\n  - {id: b, when: {attribute: colour, equals: x}, then: {model: y}, confidence: 0.5, source: s}",
         "unknown attribute 'colour'"),
        ("rules:\n  - {id: c, when: {attribute: model, regex: '('}, then: {model: y}, confidence: 0.5, source: s}",
         "bad regex"),
        ("rules:\n  - {id: d, when: {attribute: model, equals: x}, then: {device_type: toaster}, confidence: 0.5,"
         " source: s}", "not a class of the taxonomy"),
        ("rules:\n  - {id: e, when: {attribute: model, equals: x}, then: {model: y}, confidence: 2, source: s}",
         "confidence"),
        ("rules:\n  - {id: f, when: {attribute: model, equals: x, prefix: y}, then: {model: y}, confidence: 0.5,"
         " source: s}", "exactly one of"),
    ],
)  # fmt: skip
def test_broken_rule_files_are_refused_naming_file_and_rule(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "bad.yaml", text)
    with pytest.raises(CatalogError, match=message) as caught:
        load([tmp_path])
    assert "bad.yaml" in str(caught.value)


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist"):
        load([tmp_path / "nope"])


def test_every_oui_rule_names_a_vendor_the_registry_gives() -> None:
    """Each OUI rule's name is what ``vendor_of`` returns for some block of the IEEE registry netaddr ships
    (a misspelt name would never match)."""
    import os
    import re

    from netaddr.eui import ieee

    from wardwatch.inventory.oui import vendor_of

    blocks: dict[str, bytes] = {}
    with open(os.path.join(os.path.dirname(ieee.__file__), "oui.txt"), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = re.match(r"\s*([0-9A-F]{2})-([0-9A-F]{2})-([0-9A-F]{2})\s+\(hex\)\s+(.*)", line)
            if m:
                blocks.setdefault(" ".join(m.group(4).split()).casefold(), bytes.fromhex("".join(m.groups()[:3])))
    rules = [r for r in builtin().rules.values() if r.id.startswith("oui-")]
    assert len(rules) > 60
    for rule in rules:
        name = rule.when[0].value
        prefix = blocks.get(" ".join(name.split()).casefold())
        assert prefix is not None, rule.id
        found = vendor_of(prefix + b"\x00\x00\x01")
        assert found is not None and " ".join(found.split()).casefold() == " ".join(name.split()).casefold(), rule.id
