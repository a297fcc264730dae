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
    """What the device does on the network (``router``, ``dicom-scu``, ``pacs``, ``hl7-sender`` …)."""
    SERIAL = "serial"
    SOFTWARE = "software"
    """Software the device runs that is not its firmware/OS (HL7 SFT: vendor, product, version)."""
    APPLICATION = "application"
    """An application name the device uses (HL7 MSH-3/5 sending/receiving application)."""
    FACILITY = "facility"
    """The facility a device names itself part of (HL7 MSH-4/6)."""
    AE_TITLE = "ae_title"
    """A DICOM application entity title the device answers to or calls as."""
    IMPLEMENTATION = "implementation"
    """The DICOM implementation (toolkit): version name and class UID, ``OFFIS_DCMTK_367 (1.2.276.…)``."""
    STATION = "station"
    """A station name the device gives its data (DICOM (0008,1010))."""
    MODALITY = "modality"
    """A DICOM modality code of the images the device produces (``CT``, ``MR`` …)."""
    MESSAGE = "message"
    """A kind of clinical message the device sends (``hl7:ADT^A01``, ``dicom:C-STORE``)."""
    UDI = "udi"
    """A unique device identifier (HL7 PRT-10) or a device identifier (PRT-16, OBX-18)."""
    PHI_CLEARTEXT = "phi_cleartext"
    """Patient data left the device unencrypted (``hl7-pid``, ``dicom-patient``): the kind, never the values."""


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
