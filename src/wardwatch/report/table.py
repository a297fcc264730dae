"""Rich tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table

from wardwatch.model.capture import CaptureInfo
from wardwatch.model.flow import Edge, Flow, proto_name
from wardwatch.model.inventory import Device
from wardwatch.report.common import iso, notes, roles, type_label


def _t(ns: int | None) -> str:
    text = iso(ns)
    return "" if text is None else text[:19].replace("T", " ")


def devices_table(devices: Sequence[Device]) -> Table:
    """One row per device: id, addresses, VLANs, vendor, model, type, firmware/OS, host names, roles, notes
    (PHI and secrets in clear, legacy protocols), last seen."""
    table = Table(title=f"Devices ({len(devices)})", show_lines=False)
    for col in ("device", "IP addresses", "VLAN", "vendor", "model", "type", "firmware / OS", "host names", "role",
                "notes", "last seen"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for d in devices:
        vendor = d.vendor or ("(randomised MAC)" if d.mac_randomized else "")
        role = roles(d) + ([f"via {d.via}"] if d.via else [])
        system = " / ".join(v for v in (d.firmware, d.os) if v)
        table.add_row(
            d.id, " ".join(d.ips), " ".join(map(str, d.vlans)), vendor, d.model or "", type_label(d), system,
            " ".join(d.hostnames), ", ".join(role), "; ".join(notes(d)), _t(d.last_ns),
        )  # fmt: skip
    return table


def device_detail(d: Device) -> Group:
    """One device: its chosen attributes, then every piece of evidence (most confident first within each
    attribute) with source, confidence, how often it was seen and the first packet that showed it."""
    summary = Table(title=f"Device {d.id}", show_header=False, box=None)
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    for key, value in (
        ("MAC", " ".join(d.macs)),
        ("IP addresses", " ".join(d.ips)),
        ("VLAN", " ".join(map(str, d.vlans))),
        ("vendor", d.vendor or ""),
        ("model", d.model or ""),
        ("type", type_label(d)),
        ("firmware / OS", " / ".join(v for v in (d.firmware, d.os) if v)),
        ("host names", " ".join(d.hostnames)),
        ("roles", ", ".join(roles(d))),
        ("notes", "; ".join(notes(d))),
        ("seen", f"{_t(d.first_ns)} - {_t(d.last_ns)}"),
    ):
        if value:
            summary.add_row(key, value)
    table = Table(title="Evidence")
    for col in ("attribute", "value", "source", "confidence", "seen", "first packet"):
        table.add_column(col, justify="right" if col in ("confidence", "seen") else "left", overflow="fold")
    for e in sorted(d.evidence, key=lambda e: (e.attribute, -e.confidence, e.value, e.source)):
        packet = f"{e.packet.capture} #{e.packet.number}" if e.packet is not None else ""
        table.add_row(e.attribute, e.value, e.source, f"{e.confidence:.2f}", str(e.count), packet)
    return Group(summary, table)


def flows_table(flows: Sequence[Flow]) -> Table:
    """One row per flow."""
    table = Table(title=f"Flows ({len(flows)})")
    for col in ("proto", "initiator", "responder", "packets", "bytes", "first seen", "last seen", "how"):
        table.add_column(col, justify="right" if col in ("packets", "bytes") else "left", overflow="fold")
    for f in flows:
        src = f.src_ip if f.src_port is None else f"{f.src_ip}:{f.src_port}"
        dst = f.dst_ip if f.dst_port is None else f"{f.dst_ip}:{f.dst_port}"
        table.add_row(
            proto_name(f.proto),
            src,
            dst,
            str(f.packets),
            str(f.bytes),
            _t(f.first_ns),
            _t(f.last_ns),
            f.initiator,
        )
    return table


def edges_table(edges: Sequence[Edge], labels: dict[str, str]) -> Table:
    """One row per communication-map edge."""
    table = Table(title=f"Communication map ({len(edges)} edges)")
    for col in ("from", "to", "service", "flows", "packets", "bytes", "last seen"):
        table.add_column(col, justify="right" if col in ("flows", "packets", "bytes") else "left", overflow="fold")
    for e in edges:
        table.add_row(
            labels.get(e.src_device, e.src_device),
            labels.get(e.dst_device, e.dst_device),
            e.service,
            str(e.flows),
            str(e.packets),
            str(e.bytes),
            _t(e.last_ns),
        )
    return table


def captures_table(captures: Sequence[CaptureInfo]) -> Table:
    """One row per capture file."""
    table = Table(title=f"Captures ({len(captures)})")
    for col in ("capture", "file", "format", "packets", "bytes", "first packet", "last packet", "status"):
        table.add_column(col, justify="right" if col in ("packets", "bytes") else "left", overflow="fold")
    for c in captures:
        status = "complete" if c.complete else f"partial: {c.error} (offset {c.error_offset})"
        table.add_row(c.id, c.path, c.format, str(c.packets), str(c.bytes), _t(c.first_ns), _t(c.last_ns), status)
    return table
