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


@lru_cache(maxsize=65536)
def vendor_of(mac: bytes) -> str | None:
    """The organisation the MAC's OUI (or IAB) is registered to, or None.

    Locally administered and group addresses have no registered vendor.
    """
    if len(mac) != 6 or mac[0] & 0x03:
        return None
    eui = EUI(int.from_bytes(mac, "big"))
    try:
        org = str(eui.iab.registration().org) if eui.is_iab() else str(eui.oui.registration().org)
    except (NotRegisteredError, IndexError):
        return None
    org = " ".join(org.split())
    return None if not org or org in NOT_A_VENDOR else org
