"""Helpers shared by the renderers: time formatting and device labels."""

from __future__ import annotations

from datetime import UTC, datetime

from wardwatch.inventory.catalog import builtin
from wardwatch.model.inventory import Device
from wardwatch.risk.base import LEGACY_PROTOCOLS


def iso(ns: int | None) -> str | None:
    """Nanoseconds since the epoch -> RFC 3339 UTC with microseconds (``2024-05-01T10:00:00.123456Z``)."""
    if ns is None:
        return None
    seconds, rest = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"


def values(d: Device, attribute: str) -> list[str]:
    """Distinct values of ``attribute`` in a device's evidence, most confident first."""
    best: dict[str, float] = {}
    for e in d.evidence:
        if e.attribute == attribute and e.confidence > best.get(e.value, -1.0):
            best[e.value] = e.confidence
    return [v for v, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))]


def type_label(d: Device) -> str:
    """The device type as the taxonomy names it (free text from the wire as it came)."""
    return builtin().label(d.device_type) or ""


def roles(d: Device) -> list[str]:
    """What the device does: router, and the ``role`` evidence (DICOM, HL7, LLDP capabilities …)."""
    out = ["router"] if d.router else []
    return out + [r for r in values(d, "role") if r not in out]


def notes(d: Device) -> list[str]:
    """What a security engineer should look at: patient data and secrets in clear (with counts), legacy
    protocol versions, a medical device class."""
    out: list[str] = []
    counts: dict[tuple[str, str], int] = {}
    for e in d.evidence:
        if e.attribute in ("phi_cleartext", "cleartext_secret"):
            counts[(e.attribute, e.value)] = counts.get((e.attribute, e.value), 0) + e.count
    for (attribute, value), n in sorted(counts.items()):
        kind = "PHI in clear" if attribute == "phi_cleartext" else "secret in clear"
        out.append(f"{kind}: {value} ×{n}")
    out += [f"legacy: {p}" for p in values(d, "protocol") if p in LEGACY_PROTOCOLS]
    if builtin().is_medical(d.device_type):
        out.append("medical device")
    return out


def device_label(d: Device) -> str:
    """Short human label: first host name, else first IP, else MAC, else the id."""
    if d.hostnames:
        return d.hostnames[0]
    if d.addresses:
        return d.addresses[0].ip
    if d.macs:
        return d.macs[0]
    return d.id
