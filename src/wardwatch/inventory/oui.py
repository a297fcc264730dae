"""MAC address vendor lookup from the IEEE registries shipped with ``netaddr`` (offline, no download)."""

from __future__ import annotations

from functools import lru_cache

from netaddr import EUI, NotRegisteredError

#: Registry placeholders that name no manufacturer (MA-M/MA-S blocks netaddr does not break down).
NOT_A_VENDOR = frozenset({"IEEE Registration Authority", "Private"})


#: Locally administered prefixes that software assigns by convention (not registered, but well known).
LOCAL_CONVENTIONS: dict[bytes, str] = {
    bytes.fromhex("525400"): "QEMU/KVM virtual NIC",
    bytes.fromhex("0242"): "Docker container bridge",
}


def local_convention(mac: bytes) -> str | None:
    """What software conventionally uses this locally administered prefix, if anything."""
    for prefix, name in LOCAL_CONVENTIONS.items():
        if mac.startswith(prefix):
            return name
    return None


#: OUIs whose blocks are split into 4,096 IABs (36-bit prefixes), as netaddr's ``EUI.is_iab`` knows them.
IAB_OUIS = frozenset({bytes.fromhex("0050C2"), bytes.fromhex("40D855")})


def vendor_of(mac: bytes) -> str | None:
    """The organisation the MAC's OUI (or IAB) is registered to, or None.

    Locally administered and group addresses have no registered vendor. Lookups are cached per registered
    prefix, not per address: a ward of one vendor's monitors costs one registry read.
    """
    if len(mac) != 6 or mac[0] & 0x03:
        return None
    prefix = mac[:3]
    return _registered(mac[:4] + bytes([mac[4] & 0xF0]) if prefix in IAB_OUIS else prefix)


@lru_cache(maxsize=65536)
def _registered(prefix: bytes) -> str | None:
    """The organisation a 24-bit OUI (3 bytes) or a 36-bit IAB (5 bytes, the last one's low nibble 0) names."""
    eui = EUI(int.from_bytes(prefix.ljust(6, b"\0"), "big"))
    try:
        org = str(eui.iab.registration().org) if len(prefix) == 5 else str(eui.oui.registration().org)
    except (NotRegisteredError, IndexError):
        return None
    org = " ".join(org.split())
    return None if not org or org in NOT_A_VENDOR else org


def preload_registry() -> None:
    """Load netaddr's registry indexes now (0.1-0.2 s of CSV parsing that the first lookup would pay):
    the parallel engine calls it while its workers read the captures, off the serial path."""
    import netaddr.eui.ieee  # noqa: F401 - imported for its side effect (netaddr loads the indexes on import)
