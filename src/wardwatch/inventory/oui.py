"""MAC address vendor lookup from the IEEE registries shipped with ``netaddr`` (offline, no download).

The registries are netaddr's own files (``netaddr/eui/oui.txt`` and ``iab.txt`` with their ``.idx`` offset
indexes). netaddr loads both indexes into dictionaries when its ``ieee`` module is first imported, which
costs ~90 ms of CSV parsing on every run; here the index is read with numpy in ~3 ms and a record is read
from the registry file only when its prefix is first asked for. Should netaddr's files not be plain files
on disk, lookups go through netaddr's own API (the same answers, a test compares every registered prefix).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

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
    registries = _registries()
    if registries is None:
        org = _netaddr_org(prefix)
    elif len(prefix) == 5:
        org = registries[1].org(int.from_bytes(prefix, "big") >> 4)
    else:
        org = registries[0].org(int.from_bytes(prefix, "big"))
    if org is None:
        return None
    org = " ".join(org.split())
    return None if not org or org in NOT_A_VENDOR else org


def _netaddr_org(prefix: bytes) -> str | None:
    """The registration through netaddr's API (it loads its whole index on first use)."""
    from netaddr import EUI, NotRegisteredError

    eui = EUI(int.from_bytes(prefix.ljust(6, b"\0"), "big"))
    try:
        return str(eui.iab.registration().org) if len(prefix) == 5 else str(eui.oui.registration().org)
    except (NotRegisteredError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class _Registry:
    """One of netaddr's registry files and its index: prefix -> (offset, size) of its first record."""

    path: str
    keys: npt.NDArray[np.int64]
    """Registered prefixes, sorted."""
    offsets: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]

    @classmethod
    def load(cls, directory: str, name: str) -> _Registry | None:
        """The registry ``name`` (``oui`` or ``iab``) in ``directory``; None when its files are unusable."""
        try:
            with open(os.path.join(directory, f"{name}.idx"), "rb") as fh:
                text = fh.read().decode("ascii")
        except (OSError, UnicodeDecodeError):
            return None
        # "prefix,offset,size" per line, in the registry's order (several records may share a prefix)
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy warns (and stops) at text it cannot parse
                values = np.fromstring(text.replace("\n", ","), dtype=np.int64, sep=",")
        except (ValueError, DeprecationWarning):
            return None
        if len(values) == 0 or len(values) != 3 * lines:
            return None
        rows = values.reshape(-1, 3)
        keys, first = np.unique(rows[:, 0], return_index=True)  # the first record of a prefix, as netaddr does
        return cls(os.path.join(directory, f"{name}.txt"), keys, rows[first, 1], rows[first, 2])

    def org(self, key: int) -> str | None:
        """The organisation named by the first record of ``key``, or None when it is not registered."""
        i = int(np.searchsorted(self.keys, key))
        if i >= len(self.keys) or int(self.keys[i]) != key:
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, int(self.sizes[i]), int(self.offsets[i])).decode("utf-8")
        finally:
            os.close(fd)
        for line in data.split("\n"):  # as netaddr reads a record: "XX-XX-XX   (hex)\t\tOrganisation"
            line = line.strip()
            if "(hex)" in line:
                parts = line.split(None, 2)
                return parts[2] if len(parts) == 3 else ""
        return None


@lru_cache(maxsize=1)
def _registries() -> tuple[_Registry, _Registry] | None:
    """netaddr's OUI and IAB registries, found without importing netaddr (None: use netaddr's API)."""
    spec = importlib.util.find_spec("netaddr")
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = os.path.join(next(iter(spec.submodule_search_locations)), "eui")
    oui, iab = _Registry.load(directory, "oui"), _Registry.load(directory, "iab")
    if oui is None or iab is None or not os.path.isfile(oui.path) or not os.path.isfile(iab.path):
        return None
    return oui, iab


def preload_registry() -> None:
    """Load the registry indexes now (the first lookup would): the parallel engine calls it while its workers
    read the captures, off the serial path."""
    if _registries() is None:
        import netaddr.eui.ieee  # noqa: F401 - imported for its side effect (netaddr loads the indexes on import)
