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
    FINGERPRINT = "fingerprint"
    """A behavioural fingerprint, prefixed by its kind: ``dhcp:1,3,6,15`` (option 55 order), ``dhcpv6:23,24``,
    ``ja3:<md5>``, ``ja4:t13d1516h2_…``, ``ja3s:<md5>``."""
    VENDOR_CLASS = "vendor_class"
    """A class the client declares: DHCP vendor class (60), user class (77), DHCPv6 vendor class (16)."""
    VENDOR_INFO = "vendor_info"
    """Vendor-specific information (DHCP option 43), as text when printable, else hex."""
    CLIENT_ID = "client_id"
    """A DHCP client identifier (option 61) or DHCPv6 DUID, in hex with its kind (``duid-llt:…``)."""
    SERVICE = "service"
    """A service the device offers or looks for (DNS-SD ``_ipp._tcp``, UPnP ``urn:…:device:MediaServer:1``)."""
    USER_AGENT = "user_agent"
    """An HTTP/SSDP User-Agent the device sent."""
    CERTIFICATE = "certificate"
    """The TLS certificate the device presented: ``subject … / issuer …``."""
    DESCRIPTION = "description"
    """A self-description: LLDP system description, SNMP sysDescr."""
    HARDWARE = "hardware"
    """A hardware revision (LLDP-MED)."""
    ASSET_ID = "asset_id"
    """An asset identifier the device reports (LLDP-MED)."""
    SWITCH_PORT = "switch_port"
    """Where the device is attached: the port (and chassis) it names in LLDP/CDP."""
    PROTOCOL = "protocol"
    """A protocol version the device speaks (``smb:NT LM 0.12``, ``snmp:v1``, ``tls:1.0``): legacy signals."""
    CLEARTEXT_SECRET = "cleartext_secret"
    """A secret crossed the wire in clear (``snmp-community``, ``http-basic``): the kind, never the value."""


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
    count: int = 1
    """How many times the fact was seen (a dissector that counted repeats itself, e.g. the PID segments of a long
    HL7 link past its reassembled part, says so once with the count)."""
