"""GraphML (http://graphml.graphdrawing.org/) of the communication map, for Gephi, yEd or networkx."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TextIO

from wardwatch.model.flow import Edge, proto_name
from wardwatch.model.inventory import Device
from wardwatch.report.common import device_label

NS = "http://graphml.graphdrawing.org/xmlns"
NODE_KEYS = [
    ("label", "string"),
    ("kind", "string"),
    ("vendor", "string"),
    ("ips", "string"),
    ("macs", "string"),
    ("hostnames", "string"),
    ("vlans", "string"),
]
EDGE_KEYS = [
    ("service", "string"),
    ("proto", "string"),
    ("port", "int"),
    ("flows", "long"),
    ("packets", "long"),
    ("bytes", "long"),
]


def write_graphml(devices: Sequence[Device], edges: Sequence[Edge], out: TextIO) -> None:
    """Write a directed graph: a node per device that appears in an edge, an edge per (pair, service)."""
    root = ET.Element("graphml", xmlns=NS)
    for name, kind in NODE_KEYS:
        ET.SubElement(root, "key", {"id": f"n_{name}", "for": "node", "attr.name": name, "attr.type": kind})
    for name, kind in EDGE_KEYS:
        ET.SubElement(root, "key", {"id": f"e_{name}", "for": "edge", "attr.name": name, "attr.type": kind})
    graph = ET.SubElement(root, "graph", id="wardwatch", edgedefault="directed")
    used = {e.src_device for e in edges} | {e.dst_device for e in edges}
    for d in devices:
        if d.id not in used:
            continue
        node = ET.SubElement(graph, "node", id=d.id)
        values = {
            "label": device_label(d),
            "kind": d.kind.value,
            "vendor": d.vendor or "",
            "ips": " ".join(d.ips),
            "macs": " ".join(d.macs),
            "hostnames": " ".join(d.hostnames),
            "vlans": " ".join(map(str, d.vlans)),
        }
        for name, _ in NODE_KEYS:
            ET.SubElement(node, "data", key=f"n_{name}").text = values[name]
    for i, e in enumerate(edges):
        el = ET.SubElement(graph, "edge", id=f"e{i}", source=e.src_device, target=e.dst_device)
        evalues = {
            "service": e.service,
            "proto": proto_name(e.proto),
            "port": "" if e.port is None else str(e.port),
            "flows": str(e.flows),
            "packets": str(e.packets),
            "bytes": str(e.bytes),
        }
        for name, _ in EDGE_KEYS:
            if evalues[name] != "":
                ET.SubElement(el, "data", key=f"e_{name}").text = evalues[name]
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")
