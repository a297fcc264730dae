"""Vendor lookup: wardwatch's reading of netaddr's registry files answers exactly as netaddr's own API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wardwatch.inventory import oui


def test_the_index_is_netaddrs_index() -> None:
    """Every registered prefix, with the offset and size of its first record, as netaddr's own index holds them."""
    from netaddr.eui import ieee

    registries = oui._registries()
    assert registries is not None, "netaddr's registry files were not found: the fast index is not in use"
    for registry, index in zip(registries, (ieee.OUI_INDEX, ieee.IAB_INDEX), strict=True):
        assert len(registry.keys) == len(index) > 4_000
        spans = zip(registry.offsets.tolist(), registry.sizes.tolist(), strict=True)
        ours = dict(zip(registry.keys.tolist(), spans, strict=True))
        assert ours == {key: records[0] for key, records in index.items()}


def test_registered_prefixes_name_the_organisation_netaddr_names() -> None:
    """A spread of prefixes (netaddr's API reads its file anew per lookup: all of them would take minutes)."""
    registries = oui._registries()
    assert registries is not None
    ouis, iabs = registries
    for key in ouis.keys[::499].tolist() + ouis.keys[-3:].tolist():
        prefix = key.to_bytes(3, "big")
        assert ouis.org(key) == oui._netaddr_org(prefix), prefix.hex()
    for key in iabs.keys[::211].tolist() + iabs.keys[-3:].tolist():
        prefix = (key << 4).to_bytes(5, "big")
        assert iabs.org(key) == oui._netaddr_org(prefix), prefix.hex()


def test_unregistered_and_edge_keys() -> None:
    registries = oui._registries()
    assert registries is not None
    ouis, _ = registries
    registered = set(ouis.keys.tolist())
    missing = next(k for k in range(1 << 24) if k not in registered)
    assert ouis.org(missing) is None and oui._netaddr_org(missing.to_bytes(3, "big")) is None
    assert ouis.org(int(ouis.keys[-1]) + 1) is None  # past the last key


def test_vendor_of_without_the_fast_index_uses_netaddr(monkeypatch: pytest.MonkeyPatch) -> None:
    macs = [bytes.fromhex(m) for m in ("0050C2001FFF", "00090FAABBCC", "001AFA240A01", "FCFFFF000001")]
    fast = [oui.vendor_of(m) for m in macs]
    oui._registered.cache_clear()
    monkeypatch.setattr(oui, "_registries", lambda: None)
    try:
        assert [oui.vendor_of(m) for m in macs] == fast
        assert fast[1] is not None and fast[0] != oui.vendor_of(bytes.fromhex("0050C2002FFF"))
    finally:
        oui._registered.cache_clear()


def test_an_unreadable_index_is_refused(tmp_path: Path) -> None:
    (tmp_path / "oui.idx").write_text("1108370,323,147\n7926390,470,239\n")
    (tmp_path / "oui.txt").write_text("x")
    loaded = oui._Registry.load(str(tmp_path), "oui")
    assert loaded is not None and loaded.keys.tolist() == [1108370, 7926390]
    assert np.array_equal(loaded.offsets, [323, 470])
    for broken in ("1108370,323,147\nnot,a,number\n", "1108370,323\n", ""):
        (tmp_path / "oui.idx").write_text(broken)
        assert oui._Registry.load(str(tmp_path), "oui") is None, broken
    assert oui._Registry.load(str(tmp_path / "missing"), "oui") is None
