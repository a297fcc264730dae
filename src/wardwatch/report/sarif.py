"""Findings as SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format), for tools that collect results
from many scanners (GitHub code scanning, DefectDojo, SIEM importers).

A finding is a ``result`` of its rule (``tool.driver.rules``, with the rule's description and remediation as
``help``); its devices are ``logicalLocations`` (kind ``device``), its evidence lines are in ``properties``.
Severity maps to SARIF ``level`` (critical/high: error, medium: warning, low/info: note) and to
``properties.security-severity`` (the 0–10 scale code-scanning tools sort by).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from wardwatch.model.finding import Finding, Severity
from wardwatch.report.common import iso

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note",
         Severity.INFO: "note"}  # fmt: skip
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0",
                     Severity.INFO: "0.0"}  # fmt: skip


def sarif_document(findings: Sequence[Finding], version: str) -> dict[str, Any]:
    """The SARIF log of one run of wardwatch's rules."""
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:
        rules.setdefault(
            f.rule,
            {
                "id": f.rule,
                "name": f.rule,
                "shortDescription": {"text": f.description.split(": ")[0].split(". ")[0]},
                "fullDescription": {"text": f.description},
                "help": {"text": f.remediation},
                "properties": {"tags": ["security", "medical-device"]},
            },
        )
    index = {rule: i for i, rule in enumerate(rules)}
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": LEVEL[f.severity],
            "message": {"text": f.title},
            "logicalLocations": [{"name": d, "fullyQualifiedName": d, "kind": "device"} for d in f.devices],
            "partialFingerprints": {"wardwatchFindingId": f.id},
            "properties": {
                "severity": f.severity.name.lower(),
                "security-severity": SECURITY_SEVERITY[f.severity],
                "evidence": list(f.evidence),
                "firstSeen": iso(f.first_ns),
                "lastSeen": iso(f.last_ns),
            },
        }
        for f in findings
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "wardwatch",
                        "version": version,
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }


def write_sarif(findings: Sequence[Finding], version: str, out: TextIO) -> None:
    """Write the SARIF log (sorted keys, UTF-8)."""
    json.dump(sarif_document(findings, version), out, indent=2, sort_keys=True, ensure_ascii=False)
    out.write("\n")
