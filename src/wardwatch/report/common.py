"""Helpers shared by the renderers: time formatting and device labels."""

from __future__ import annotations

from datetime import UTC, datetime

from wardwatch.model.inventory import Device


def iso(ns: int | None) -> str | None:
    """Nanoseconds since the epoch -> RFC 3339 UTC with microseconds (``2024-05-01T10:00:00.123456Z``)."""
    if ns is None:
        return None
    seconds, rest = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"


def device_label(d: Device) -> str:
    """Short human label: first host name, else first IP, else MAC, else the id."""
    if d.hostnames:
        return d.hostnames[0]
    if d.addresses:
        return d.addresses[0].ip
    if d.macs:
        return d.macs[0]
    return d.id
