"""Observations: single facts learned from traffic, with the evidence that supports them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

CaptureId = NewType("CaptureId", str)
"""Stable id of a capture file: the first 16 hex digits of its SHA-256."""


class SubjectKind(StrEnum):
    """What an observation is about: a link-layer or a network-layer address."""

    MAC = "mac"
    IP = "ip"


class Attribute(StrEnum):
    """Device attributes an observation can establish."""

    IP = "ip"
    """The subject (a MAC) used this IP address."""
    MAC = "mac"
    VENDOR = "vendor"
    MODEL = "model"
    DEVICE_TYPE = "device_type"
    FIRMWARE = "firmware"
    OS = "os"
    HOSTNAME = "hostname"
    VLAN = "vlan"
    ROLE = "role"


@dataclass(frozen=True, slots=True)
class Subject:
    """The address an observation is about, in canonical text form."""

    kind: SubjectKind
    value: str


@dataclass(frozen=True, slots=True)
class PacketRef:
    """Where a fact was seen: capture id and 1-based frame number."""

    capture: CaptureId
    number: int


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact learned from traffic, e.g. (mac 00:09:fb:…, hostname, "icu-mon-03", 0.9, "dhcp-option-12")."""

    subject: Subject
    attribute: Attribute
    value: str
    confidence: float
    """0..1: how sure the source is (self-assigned names > names others give; strong bindings > guesses)."""
    source: str
    """What said so: ``arp``, ``dhcp-option-12``, ``mdns``, ``nbns``, ``dns`` …"""
    packet: PacketRef
    ts_ns: int
    vlan: int | None = None
