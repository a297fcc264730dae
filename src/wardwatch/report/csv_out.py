"""CSV renderings of devices, flows and edges (one row per item, flat columns)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from wardwatch.model.capture import CaptureInfo
from wardwatch.model.finding import Finding
from wardwatch.model.flow import Edge, Flow, proto_name
from wardwatch.model.inventory import Device
from wardwatch.report.common import iso, notes, roles, values

DEVICE_COLUMNS = [
    "id",
    "kind",
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
    "mac_randomized",
    "router",
    "via",
    "roles",
    "software",
    "ae_titles",
    "applications",
    "serials",
    "notes",
]
#: Multi-valued identity columns of DEVICE_COLUMNS and the evidence attribute each lists.
IDENTITY_COLUMNS = {"software": "software", "ae_titles": "ae_title", "applications": "application", "serials": "serial"}
FLOW_COLUMNS = [
    "capture",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "packets",
    "bytes",
    "packets_src",
    "packets_dst",
    "bytes_src",
    "bytes_dst",
    "first_seen",
    "last_seen",
    "initiator",
    "vlans",
    "src_device",
    "dst_device",
]
EDGE_COLUMNS = [
    "src_device",
    "dst_device",
    "proto",
    "port",
    "flows",
    "packets",
    "bytes",
    "first_seen",
    "last_seen",
]


def safe_cell(value: object) -> str:
    """Text for a CSV cell; cells that a spreadsheet would run as a formula are quoted with a leading '."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_devices_csv(devices: Iterable[Device], out: TextIO) -> None:
    """Devices, multi-valued fields joined with ``;``."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(DEVICE_COLUMNS)
    for d in devices:
        w.writerow(
            [
                safe_cell(v)
                for v in (
                    d.id,
                    d.kind.value,
                    ";".join(d.macs),
                    ";".join(d.ips),
                    ";".join(map(str, d.vlans)),
                    d.vendor,
                    d.model,
                    d.device_type,
                    d.firmware,
                    d.os,
                    ";".join(d.hostnames),
                    iso(d.first_ns),
                    iso(d.last_ns),
                    d.mac_randomized,
                    d.router,
                    d.via,
                    ";".join(roles(d)),
                    *(";".join(values(d, attribute)) for attribute in IDENTITY_COLUMNS.values()),
                    ";".join(notes(d)),
                )
            ]
        )


def write_flows_csv(flows: Iterable[Flow], out: TextIO) -> None:
    """Flows (src = initiator)."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FLOW_COLUMNS)
    for f in flows:
        w.writerow(
            [
                safe_cell(v)
                for v in (
                    f.capture,
                    proto_name(f.proto),
                    f.src_ip,
                    f.src_port,
                    f.dst_ip,
                    f.dst_port,
                    f.packets,
                    f.bytes,
                    f.packets_src,
                    f.packets_dst,
                    f.bytes_src,
                    f.bytes_dst,
                    iso(f.first_ns),
                    iso(f.last_ns),
                    f.initiator,
                    ";".join(map(str, f.vlans)),
                    f.src_device,
                    f.dst_device,
                )
            ]
        )


def write_edges_csv(edges: Iterable[Edge], out: TextIO) -> None:
    """Communication-map edges."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EDGE_COLUMNS)
    for e in edges:
        w.writerow(
            [
                safe_cell(v)
                for v in (
                    e.src_device,
                    e.dst_device,
                    proto_name(e.proto),
                    e.port,
                    e.flows,
                    e.packets,
                    e.bytes,
                    iso(e.first_ns),
                    iso(e.last_ns),
                )
            ]
        )


CAPTURE_COLUMNS = [
    "id",
    "path",
    "format",
    "packets",
    "bytes",
    "first_seen",
    "last_seen",
    "digest",
    "sha256",
    "error",
    "error_offset",
]


def write_captures_csv(captures: Iterable[CaptureInfo], out: TextIO) -> None:
    """Capture files read into the store."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CAPTURE_COLUMNS)
    for c in captures:
        w.writerow(
            [
                safe_cell(v)
                for v in (
                    c.id,
                    c.path,
                    c.format,
                    c.packets,
                    c.bytes,
                    iso(c.first_ns),
                    iso(c.last_ns),
                    c.digest,
                    c.sha256,
                    c.error,
                    c.error_offset,
                )
            ]
        )


FINDING_COLUMNS = ["severity", "rule", "title", "devices", "first_seen", "last_seen", "remediation", "id"]


def write_findings_csv(findings: Iterable[Finding], out: TextIO) -> None:
    """Findings, most severe first as given; devices joined with ``;``."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FINDING_COLUMNS)
    for f in findings:
        w.writerow(
            safe_cell(v)
            for v in (
                f.severity.name.lower(), f.rule, f.title, ";".join(f.devices), iso(f.first_ns), iso(f.last_ns),
                f.remediation, f.id,
            )
        )  # fmt: skip
