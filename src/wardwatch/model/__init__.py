"""Frozen data shared by every layer. No I/O, no imports from the rest of wardwatch."""

from wardwatch.model.analysis import SCHEMA, Analysis
from wardwatch.model.capture import CaptureInfo, Skipped
from wardwatch.model.finding import Finding, Severity
from wardwatch.model.flow import Edge, Flow, FlowColumns, flow_sort_key, proto_name, proto_number
from wardwatch.model.inventory import AddressUse, Device, DeviceId, DeviceKind, Evidence
from wardwatch.model.observation import Attribute, CaptureId, Observation, PacketRef, Subject, SubjectKind
from wardwatch.model.packet import Arp, Fragment, IpProto, LinkType, Packet, TcpFlag, tcp_flag_names

__all__ = [
    "SCHEMA",
    "AddressUse",
    "Analysis",
    "Arp",
    "Attribute",
    "CaptureId",
    "CaptureInfo",
    "Device",
    "DeviceId",
    "DeviceKind",
    "Edge",
    "Evidence",
    "Finding",
    "Flow",
    "FlowColumns",
    "Fragment",
    "IpProto",
    "LinkType",
    "Observation",
    "Packet",
    "PacketRef",
    "Severity",
    "Skipped",
    "Subject",
    "SubjectKind",
    "TcpFlag",
    "flow_sort_key",
    "proto_name",
    "proto_number",
    "tcp_flag_names",
]
