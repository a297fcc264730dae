"""Resolved devices: identity, addresses over time and the evidence behind each attribute."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

from wardwatch.model.observation import PacketRef

DeviceId = NewType("DeviceId", str)
"""Stable device id: ``mac:00:11:22:33:44:55`` for MAC-identified devices, ``ip:203.0.113.5`` for IP-only ones."""


class DeviceKind(StrEnum):
    """How a device is identified."""

    MAC = "mac"
    """Identified by its own MAC address on the monitored segment (or named by DHCP/ARP/NDP)."""
    IP = "ip"
    """Known only by an IP address: behind a router, or captured without a link layer."""


#: Device attributes that take one value: the most confident evidence wins (ties: the alphabetically first
#: value); the other claims stay visible as evidence.
SINGLE_VALUED: tuple[str, ...] = ("vendor", "model", "device_type", "firmware", "os")
#: Where a single-valued attribute has evidence from a source with this prefix, that evidence is chosen from:
#: a device type is a class of the taxonomy (the fingerprint catalog's ``catalog:`` rules) before free text.
PREFERRED_SOURCE: dict[str, str] = {"device_type": "catalog:"}


def choose(candidates: list[tuple[float, str, str]], attribute: str) -> str | None:
    """The value a single-valued ``attribute`` takes among (confidence, value, source) candidates: from the
    preferred source if any, then the most confident, ties to the alphabetically first value."""
    prefix = PREFERRED_SOURCE.get(attribute)
    if prefix is not None:
        candidates = [c for c in candidates if c[2].startswith(prefix)] or candidates
    if not candidates:
        return None
    return min(candidates, key=lambda c: (-c[0], c[1]))[1]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a device has an attribute value: the source, its confidence and the first packet that showed it."""

    attribute: str
    value: str
    source: str
    confidence: float
    packet: PacketRef | None
    first_ns: int
    last_ns: int
    count: int = 1
    """How many times it was seen (packets, messages, connections): e.g. how many HL7 messages carried a PID
    segment in clear. The store sums the counts of captures ingested separately (re-ingesting one replaces its
    count)."""


@dataclass(frozen=True, slots=True)
class AddressUse:
    """An IP address a device used, on which VLAN, from when to when."""

    ip: str
    vlan: int | None
    first_ns: int
    last_ns: int
    source: str
    """Strongest evidence of the binding (``arp``, ``dhcp-ack``, ``ndp``, ``link-local``, ``ip-source`` …)."""
    confidence: float = 1.0
    """Confidence of that evidence."""


@dataclass(frozen=True, slots=True)
class Device:
    """A resolved device. Attributes without evidence are ``None``; ``evidence`` lists what supports the rest."""

    id: DeviceId
    kind: DeviceKind
    macs: tuple[str, ...]
    addresses: tuple[AddressUse, ...]
    vlans: tuple[int, ...]
    vendor: str | None
    model: str | None
    device_type: str | None
    firmware: str | None
    os: str | None
    hostnames: tuple[str, ...]
    first_ns: int
    last_ns: int
    evidence: tuple[Evidence, ...]
    mac_randomized: bool = False
    """The MAC is locally administered (randomised or software-assigned): no OUI vendor can be known."""
    router: bool = False
    """The MAC forwards traffic of other IP hosts (a gateway)."""
    via: str | None = None
    """For IP-only devices: the id of the router device their traffic was seen through."""

    @property
    def ips(self) -> tuple[str, ...]:
        """Distinct IP addresses, in address order."""
        seen: dict[str, None] = {}
        for a in self.addresses:
            seen.setdefault(a.ip, None)
        return tuple(seen)
