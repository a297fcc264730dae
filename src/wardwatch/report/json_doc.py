"""The analysis document (``wardwatch analyze --json``), schema ``wardwatch.analysis/1``.

Stable: fields are added, never renamed or removed. Keys are sorted and lists ordered deterministically so
the same input gives byte-identical output.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from wardwatch.model.analysis import SCHEMA, Analysis
from wardwatch.model.capture import CaptureInfo, Skipped
from wardwatch.model.finding import Finding
from wardwatch.model.flow import Edge, Flow, proto_name
from wardwatch.model.inventory import Device
from wardwatch.model.packet import tcp_flag_names
from wardwatch.report.common import iso, notes, roles, type_label


def capture_doc(c: CaptureInfo) -> dict[str, Any]:
    """JSON form of a capture."""
    return {
        "id": c.id,
        "digest": c.digest,
        "sha256": c.sha256,
        "path": c.path,
        "size": c.size,
        "format": c.format,
        "linktypes": list(c.linktypes),
        "packets": c.packets,
        "bytes": c.bytes,
        "first_seen": iso(c.first_ns),
        "last_seen": iso(c.last_ns),
        "complete": c.complete,
        "error": c.error,
        "error_offset": c.error_offset,
    }


def device_doc(d: Device) -> dict[str, Any]:
    """JSON form of a device."""
    return {
        "id": d.id,
        "kind": d.kind.value,
        "macs": list(d.macs),
        "ips": list(d.ips),
        "addresses": [
            {
                "ip": a.ip,
                "vlan": a.vlan,
                "first_seen": iso(a.first_ns),
                "last_seen": iso(a.last_ns),
                "source": a.source,
                "confidence": a.confidence,
            }
            for a in d.addresses
        ],
        "vlans": list(d.vlans),
        "vendor": d.vendor,
        "model": d.model,
        "device_type": d.device_type,
        "device_type_label": type_label(d) or None,
        "firmware": d.firmware,
        "os": d.os,
        "hostnames": list(d.hostnames),
        "first_seen": iso(d.first_ns),
        "last_seen": iso(d.last_ns),
        "mac_randomized": d.mac_randomized,
        "router": d.router,
        "via": d.via,
        "roles": roles(d),
        "notes": notes(d),
        "evidence": [
            {
                "attribute": e.attribute,
                "value": e.value,
                "source": e.source,
                "confidence": e.confidence,
                "packet": None if e.packet is None else {"capture": e.packet.capture, "number": e.packet.number},
                "first_seen": iso(e.first_ns),
                "last_seen": iso(e.last_ns),
                "count": e.count,
            }
            for e in d.evidence
        ],
    }


def flow_doc(f: Flow) -> dict[str, Any]:
    """JSON form of a flow (``src`` is the initiator)."""
    return {
        "capture": f.capture,
        "proto": proto_name(f.proto),
        "src_ip": f.src_ip,
        "src_port": f.src_port,
        "dst_ip": f.dst_ip,
        "dst_port": f.dst_port,
        "service": f.service,
        "packets": f.packets,
        "bytes": f.bytes,
        "packets_src": f.packets_src,
        "packets_dst": f.packets_dst,
        "bytes_src": f.bytes_src,
        "bytes_dst": f.bytes_dst,
        "first_seen": iso(f.first_ns),
        "last_seen": iso(f.last_ns),
        "tcp_flags_src": tcp_flag_names(f.tcp_flags_src),
        "tcp_flags_dst": tcp_flag_names(f.tcp_flags_dst),
        "initiator": f.initiator,
        "vlans": list(f.vlans),
        "src_device": f.src_device,
        "dst_device": f.dst_device,
    }


def edge_doc(e: Edge) -> dict[str, Any]:
    """JSON form of a communication-map edge."""
    return {
        "src_device": e.src_device,
        "dst_device": e.dst_device,
        "proto": proto_name(e.proto),
        "port": e.port,
        "service": e.service,
        "flows": e.flows,
        "packets": e.packets,
        "bytes": e.bytes,
        "first_seen": iso(e.first_ns),
        "last_seen": iso(e.last_ns),
    }


def finding_doc(f: Finding) -> dict[str, Any]:
    """JSON form of a finding."""
    return {
        "id": f.id,
        "rule": f.rule,
        "severity": f.severity.name.lower(),
        "title": f.title,
        "description": f.description,
        "devices": list(f.devices),
        "evidence": list(f.evidence),
        "remediation": f.remediation,
        "first_seen": iso(f.first_ns),
        "last_seen": iso(f.last_ns),
    }


def skipped_doc(s: Skipped) -> dict[str, Any]:
    """JSON form of a skip reason."""
    return {"capture": s.capture, "reason": s.reason, "count": s.count, "examples": list(s.examples)}


def analysis_document(a: Analysis) -> dict[str, Any]:
    """The whole analysis document."""
    return {
        "schema": SCHEMA,
        "captures": [capture_doc(c) for c in a.captures],
        "devices": [device_doc(d) for d in a.devices],
        "flows": [flow_doc(f) for f in a.flows],
        "edges": [edge_doc(e) for e in a.edges],
        "findings": [finding_doc(f) for f in a.findings],
        "skipped": [skipped_doc(s) for s in a.skipped],
        "errors": list(a.errors),
    }


def write_json(doc: Any, out: TextIO) -> None:
    """Write ``doc`` as indented JSON with sorted keys and a final newline."""
    json.dump(doc, out, indent=2, sort_keys=True, ensure_ascii=False)
    out.write("\n")
