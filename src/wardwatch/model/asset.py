"""Assets from the hospital's CMMS / asset list, and how they meet the passively discovered devices."""

from __future__ import annotations

from dataclasses import dataclass

from wardwatch.model.inventory import DeviceId


@dataclass(frozen=True, slots=True)
class Asset:
    """One row of an asset list (biomed's CMMS export): what the hospital believes it owns."""

    asset_id: str
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    mac: str | None = None
    """Normalised ``00:09:fb:4a:00:01``."""
    ip: str | None = None
    location: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    """The list's other columns, as they were (header, value)."""
    source: str = ""
    """File and line it came from (``assets.csv:12``)."""


@dataclass(frozen=True, slots=True)
class AssetMatch:
    """An asset and the device it is on the wire, with how that was decided (``mac``, ``ip`` or ``serial``)."""

    asset: Asset
    device: DeviceId
    how: str


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The asset list against the inventory: matched, only in the list (not seen), only on the network."""

    matched: tuple[AssetMatch, ...]
    only_listed: tuple[Asset, ...]
    """Assets the network never showed: switched off, elsewhere, or the list is wrong."""
    only_seen: tuple[DeviceId, ...]
    """Devices with a MAC of their own that no asset names: unknown to biomed."""
