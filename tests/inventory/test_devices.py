"""Identity resolution: which MAC owns which IP, routers, IP-only devices, names, randomised MACs."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from generate_ward import ethernet, ip4, ipv4, udp
from wardwatch.capture import Record, decode
from wardwatch.capture.batch import BatchReader
from wardwatch.capture.vector import Columns, decode_batch
from wardwatch.dissect import default_registry
from wardwatch.inventory import InventoryBuilder, native
from wardwatch.model import DeviceKind, PacketRef
from wardwatch.model.observation import CaptureId

CAP = CaptureId("c")
HOST = bytes.fromhex("0009fb000001")
PUMP = bytes.fromhex("9cc8ae000002")
ROUTER = bytes.fromhex("e80ab9000001")
PHONE = bytes.fromhex("a6c3f0123456")  # locally administered
BCAST = b"\xff" * 6


def frame(
    src_mac: bytes,
    dst_mac: bytes,
    src: str,
    dst: str,
    ttl: int = 64,
    payload: bytes = b"x",
    sport: int = 4000,
    dport: int = 5000,
    vlan: int | None = None,
) -> bytes:
    s, d = ip4(src), ip4(dst)
    return ethernet(src_mac, dst_mac, vlan, 0x0800, ipv4(s, d, 17, udp(s, d, sport, dport, payload), ttl, 1))


def build(*frames: bytes) -> InventoryBuilder:
    inv = InventoryBuilder()
    reg = default_registry()
    for n, data in enumerate(frames, start=1):
        p = decode(Record(n, n * 1_000_000_000, 0, 1, len(data), len(data), data, 0))
        inv.add_packet(p, CAP)
        for d in reg.for_packet(p):
            inv.add_observations(d.dissect(p, PacketRef(CAP, n)))
    return inv


def test_local_hosts_routers_and_remote_addresses() -> None:
    inv = build(
        frame(HOST, ROUTER, "10.10.10.21", "10.30.0.20", ttl=64, vlan=10),  # host -> gateway
        frame(ROUTER, PUMP, "10.10.10.21", "10.30.0.22", ttl=63, vlan=30),  # routed copy into VLAN 30
        frame(ROUTER, HOST, "13.107.4.50", "10.10.10.21", ttl=52, vlan=10),  # from the internet
        frame(ROUTER, HOST, "34.120.15.80", "10.10.10.21", ttl=50, vlan=10),
        frame(PUMP, ROUTER, "10.30.0.22", "10.10.10.21", ttl=255, vlan=30),
    )
    res = inv.resolve()
    by_id = {d.id: d for d in res.devices}
    assert set(by_id) == {
        "mac:00:09:fb:00:00:01",
        "mac:9c:c8:ae:00:00:02",
        "mac:e8:0a:b9:00:00:01",
        "ip:13.107.4.50",
        "ip:34.120.15.80",
        "ip:10.30.0.20",
    }
    host = by_id["mac:00:09:fb:00:00:01"]
    assert host.ips == ("10.10.10.21",) and host.vlans == (10,) and host.vendor == "Philips Patient Monitoring"
    assert host.addresses[0].source == "ip-source"
    router = by_id["mac:e8:0a:b9:00:00:01"]
    assert router.router and router.ips == ()  # it forwards others' addresses, owns none of them
    remote = by_id["ip:13.107.4.50"]
    assert remote.kind is DeviceKind.IP and remote.via == "mac:e8:0a:b9:00:00:01" and remote.macs == ()
    assert by_id["ip:10.30.0.20"].via is None  # only ever a destination
    assert res.device_of(ip4("10.10.10.21")) == "mac:00:09:fb:00:00:01"
    assert res.device_of(ip4("10.30.0.22")) == "mac:9c:c8:ae:00:00:02"


def test_broadcast_multicast_and_null_macs_are_not_devices() -> None:
    inv = build(
        frame(HOST, BCAST, "10.0.0.5", "10.0.0.255"),
        frame(HOST, bytes.fromhex("01005e0000fb"), "10.0.0.5", "224.0.0.251", ttl=255),
        frame(b"\x00" * 6, BCAST, "0.0.0.0", "255.255.255.255"),
        frame(BCAST, HOST, "10.0.0.9", "10.0.0.5"),  # a broadcast *source* MAC is invalid: ignored
    )
    ids = {d.id for d in inv.resolve().devices}
    assert ids == {"mac:00:09:fb:00:00:01", "ip:10.0.0.9"}


def test_randomised_mac_and_dhcp_name() -> None:
    from generate_ward import dhcp

    zero = b"\x00" * 4
    msg = dhcp(1, 3, 7, PHONE, zero, zero, "Galaxy-S23", None, None)
    inv = build(frame(PHONE, BCAST, "0.0.0.0", "255.255.255.255", payload=msg, sport=68, dport=67))
    (phone,) = inv.resolve().devices
    assert phone.mac_randomized and phone.vendor is None and phone.hostnames == ("Galaxy-S23",)
    (ev,) = [e for e in phone.evidence if e.attribute == "hostname"]
    assert (ev.source, ev.confidence, ev.packet) == ("dhcp-option-12", 0.9, PacketRef(CAP, 1))


def test_reassigned_address_shows_on_both_devices_with_time_ranges() -> None:
    from generate_ward import arp

    inv = build(
        arp(1, HOST, ip4("10.0.0.7"), b"\x00" * 6, ip4("10.0.0.1"), 0, BCAST),
        arp(1, PUMP, ip4("10.0.0.7"), b"\x00" * 6, ip4("10.0.0.1"), 0, BCAST),
    )
    res = inv.resolve()
    owners = [d.id for d in res.devices if "10.0.0.7" in d.ips]
    assert owners == ["mac:00:09:fb:00:00:01", "mac:9c:c8:ae:00:00:02"]
    assert res.device_of(ip4("10.0.0.7"), 1_000_000_000) == "mac:00:09:fb:00:00:01"
    assert res.device_of(ip4("10.0.0.7"), 2_000_000_000) == "mac:9c:c8:ae:00:00:02"


def test_rename_of_provisional_capture_ids() -> None:
    inv = build(frame(HOST, ROUTER, "10.0.0.5", "10.0.0.1"))
    (dev, *_) = inv.resolve({CAP: CaptureId("0123456789abcdef")}).devices
    assert {e.packet.capture for e in dev.evidence if e.packet} == {"0123456789abcdef"}


def test_resolution_is_deterministic() -> None:
    frames = [frame(HOST, ROUTER, "10.0.0.5", "10.0.0.1"), frame(PUMP, HOST, "10.0.0.6", "10.0.0.5", ttl=128)]
    assert build(*frames).resolve().devices == build(*frames).resolve().devices


def test_vendor_lookup_per_registered_prefix() -> None:
    """OUIs and the 36-bit IABs inside 00:50:C2 resolve like netaddr does per address (the cache is per prefix)."""
    from netaddr import EUI

    from wardwatch.inventory.oui import vendor_of

    for text in ("00-50-C2-00-1F-FF", "00-50-C2-00-2F-01", "00-09-0F-AA-BB-CC", "00-1A-FA-24-0A-01"):
        eui = EUI(text)
        expected = str(eui.iab.registration().org) if eui.is_iab() else str(eui.oui.registration().org)
        assert vendor_of(bytes.fromhex(text.replace("-", ""))) == " ".join(expected.split())
    assert vendor_of(bytes.fromhex("0050C2001FFF")) != vendor_of(bytes.fromhex("0050C2002FFF"))
    assert vendor_of(bytes.fromhex("020000000001")) is None  # locally administered


def _batches(path: Path) -> list[Columns]:
    return [decode_batch(b) for b in BatchReader(path)]


def _fill(inv: InventoryBuilder, batches: list[Columns], capture: CaptureId, flush_after: int | None = None) -> None:
    for i, cols in enumerate(batches):
        inv.add_columns(cols, capture)
        if i == flush_after:
            inv.flush()


@pytest.mark.parametrize("c_in_parent", [True, False], ids=["C", "numpy-parent"])
def test_merged_and_pickled_builders_resolve_like_one(monkeypatch: pytest.MonkeyPatch, c_in_parent: bool) -> None:
    """Builders merged (C tables into C tables, or pickled as bytes and merged) resolve exactly as one builder
    that saw everything in order. The same capture twice: every sighting ties on time, and the first capture
    must keep them."""
    from tests.conftest import SAMPLE  # noqa: PLC0415 - the sample is only needed here

    if native.c_accum is None:
        pytest.skip("the C accumulators are not built (test_c_extensions_are_built fails for that)")
    batches = _batches(SAMPLE)
    first, second = CaptureId("#0"), CaptureId("#1")
    serial = InventoryBuilder()
    _fill(serial, batches, first, flush_after=0)
    _fill(serial, batches, second)
    expected = serial.resolve()
    for flush_after in (None, 0):  # the receiving builder with or without flushed entries before its C tables
        a, b = InventoryBuilder(), InventoryBuilder()
        _fill(a, batches, first, flush_after=flush_after)
        _fill(b, batches, second)
        shipped = pickle.dumps(b)
        assert b"macs" not in shipped  # the C tables went as bytes, not one tuple per key
        if not c_in_parent:
            monkeypatch.setattr(native, "c_accum", None)
        received = pickle.loads(shipped)
        a.merge(received)
        assert a.resolve() == expected, flush_after
        monkeypatch.undo()
        c, d = InventoryBuilder(), InventoryBuilder()  # in one process: C into C, no pickling
        _fill(c, batches, first, flush_after=flush_after)
        _fill(d, batches, second)
        c.merge(d)
        assert c.resolve() == expected, flush_after
    assert len(expected.devices) > 10
