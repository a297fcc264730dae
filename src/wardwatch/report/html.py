"""The single-file HTML report: inventory table and an interactive communication map.

Everything is inline (Cytoscape.js included), so the file opens offline, from disk or an e-mail attachment.
Values from the wire are escaped by Jinja2's autoescaping in HTML and as ``\\u003c`` inside the embedded
JSON, so a host name like ``<script>`` is shown, never run.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from wardwatch.model.analysis import Analysis
from wardwatch.report.common import device_label, iso
from wardwatch.report.json_doc import capture_doc, device_doc, finding_doc, skipped_doc


def _asset(name: str) -> str:
    return (resources.files("wardwatch.report") / "assets" / name).read_text(encoding="utf-8")


def _script_safe(text: str) -> Markup:
    """Text to place inside a <script> element: no ``</script`` that could close it early."""
    return Markup(re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE))


def _json_for_script(doc: Any) -> Markup:
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return Markup(raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render_html(analysis: Analysis, version: str, generated_ns: int | None = None) -> str:
    """Render the report (``generated_ns`` fixes the "generated" time, for reproducible output)."""
    env = Environment(
        loader=PackageLoader("wardwatch.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("report.html.j2")
    devices = [device_doc(d) for d in analysis.devices]
    used = {e.src_device for e in analysis.edges} | {e.dst_device for e in analysis.edges}
    described = []
    for d, doc in zip(analysis.devices, devices, strict=True):
        node = dict(doc, label=device_label(d))
        node["search"] = " ".join([d.id, *d.macs, *d.ips, *d.hostnames, d.vendor or ""]).lower()
        described.append(node)
    graph = {
        "devices": described,
        "nodes": [d.id for d in analysis.devices if d.id in used],
        "edges": [
            {
                "source": e.src_device,
                "target": e.dst_device,
                "service": e.service,
                "packets": e.packets,
                "bytes": e.bytes,
                "flows": e.flows,
            }
            for e in analysis.edges
        ],
    }
    firsts = [c.first_ns for c in analysis.captures if c.first_ns is not None]
    lasts = [c.last_ns for c in analysis.captures if c.last_ns is not None]
    span = (iso(min(firsts)), iso(max(lasts))) if firsts and lasts else None
    generated = generated_ns if generated_ns is not None else int(datetime.now(tz=UTC).timestamp() * 1e9)
    return template.render(
        version=version,
        generated=iso(generated),
        span=span,
        devices=devices,
        captures=[capture_doc(c) for c in analysis.captures],
        findings=[finding_doc(f) for f in analysis.findings],
        skipped=[skipped_doc(s) for s in analysis.skipped],
        skipped_total=sum(s.count for s in analysis.skipped),
        errors=list(analysis.errors),
        edges=analysis.edges,
        flows_count=len(analysis.flows),
        packets=sum(c.packets for c in analysis.captures),
        graph_json=_json_for_script(graph),
        cytoscape_js=_script_safe(_asset("cytoscape.min.js")),
        app_js=_script_safe(_asset("report.js")),
    )
