"""Store: migrations, idempotent ingest, extension by a second capture, IP-device folding, WAL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from generate_ward import arp, ethernet, ip4, ipv4, udp
from tests.conftest import SAMPLE, write_pcap
from wardwatch.engine import analyze
from wardwatch.errors import StoreError
from wardwatch.model import Skipped
from wardwatch.store import Store
from wardwatch.store.repository import HEAD_REVISION
from wardwatch.store.schema import FLOW_ID_BITS, metadata

HOST = bytes.fromhex("0009fb000001")
ROUTER = bytes.fromhex("e80ab9000001")
PUMP = bytes.fromhex("9cc8ae000002")


def dump(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, sorted: the database's whole visible state."""
    out = {}
    with store.engine.connect() as conn:
        for table in sorted(metadata.tables):
            rows = conn.execute(text(f"SELECT * FROM {table}")).fetchall()
            out[table] = sorted(tuple(r) for r in rows)
    return out


def test_new_database_has_exactly_the_schema(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        _check_schema(store, db_url)
    finally:
        store.close()


def test_migrations_create_exactly_the_schema(db_url: str) -> None:
    """A new database is created from the table definitions; the migrations must build the very same schema."""
    store = Store.open(db_url, migrate=False)
    engine = store.engine
    try:
        store.upgrade("head")
        assert store.schema_revision() == HEAD_REVISION
        _check_schema(store, db_url)
        with engine.connect() as conn:  # also the parts compare_metadata does not look at
            if engine.dialect.name == "sqlite":
                flows_sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'flows'")).scalar()
                assert "id INTEGER NOT NULL" in flows_sql  # the rowid: no index of its own
                indexes = {r[1] for r in conn.execute(text("PRAGMA index_list(flows)"))}
                assert indexes == {"ix_flows_src_device", "ix_flows_dst_device"}
    finally:
        store.close()


def _check_schema(store: Store, db_url: str) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        if store.engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
    assert set(inspect(store.engine).get_table_names()) >= set(metadata.tables)
    Store.open(db_url).close()  # opening again is a no-op migration


def test_head_revision_constant_matches_alembic() -> None:
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("wardwatch.store") / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD_REVISION]


def test_reanalysing_leaves_the_database_unchanged(db_url: str, stores: list[Store]) -> None:
    store = Store.open(db_url)
    stores.append(store)
    result = analyze([SAMPLE])
    store.ingest(result.analysis, "test", 1)
    before = dump(store)
    assert len(before["devices"]) > 30 and len(before["flows"]) > 100
    store.ingest(analyze([SAMPLE]).analysis, "test-2", 2)
    assert dump(store) == before
    # and what we read back is what was analysed
    again = store.analysis()
    assert again.devices == result.analysis.devices
    assert again.flows == result.analysis.flows
    assert again.edges == result.analysis.edges
    assert again.skipped == result.analysis.skipped


def test_flows_as_columns_and_as_objects_store_alike(tmp_path: Path) -> None:
    """The fast path's FlowColumns and the reference path's Flow objects give the same rows."""
    from wardwatch.engine import Engine
    from wardwatch.model import FlowColumns

    fast, ref = Engine().analyze([SAMPLE]).analysis, Engine(fast=False).analyze([SAMPLE]).analysis
    assert isinstance(fast.flows, FlowColumns) and isinstance(ref.flows, tuple)
    dumps = []
    for name, analysis in (("fast", fast), ("ref", ref)):
        store = Store.open(str(tmp_path / f"{name}.db"))
        try:
            store.ingest(analysis, "test", 1)
            dumps.append(dump(store))
        finally:
            store.close()
    assert dumps[0] == dumps[1]
    assert any(row[16] for row in dumps[0]["flows"])  # VLAN lists made it into the rows


def frame(src_mac: bytes, dst_mac: bytes, src: str, dst: str, ttl: int = 64) -> bytes:
    s, d = ip4(src), ip4(dst)
    return ethernet(src_mac, dst_mac, None, 0x0800, ipv4(s, d, 17, udp(s, d, 5000, 514, b"x"), ttl, 1))


def test_second_capture_extends_and_folds_ip_devices(tmp_path: Path, db_url: str, stores: list[Store]) -> None:
    # capture 1: the pump only shows up behind the router (its IP is unknown on this segment)
    one = write_pcap(
        tmp_path / "one.pcap",
        [
            (1_000_000_000, frame(HOST, ROUTER, "10.0.0.5", "10.9.0.7")),
            (2_000_000_000, frame(ROUTER, HOST, "10.9.0.7", "10.0.0.5", ttl=63)),
            (2_500_000_000, frame(ROUTER, HOST, "10.9.0.8", "10.0.0.5", ttl=63)),
        ],
    )
    # capture 2, later, on the pump's own segment: ARP binds 10.9.0.7 to the pump's MAC
    two = write_pcap(
        tmp_path / "two.pcap",
        [
            (5_000_000_000, arp(1, PUMP, ip4("10.9.0.7"), b"\x00" * 6, ip4("10.9.0.1"), 0, b"\xff" * 6)),
            (6_000_000_000, frame(PUMP, ROUTER, "10.9.0.7", "10.0.0.5")),
        ],
    )
    store = Store.open(db_url)
    stores.append(store)
    store.ingest(analyze([one]).analysis, "t", 1)
    ids = {d.id for d in store.devices()}
    assert "ip:10.9.0.7" in ids and "mac:9c:c8:ae:00:00:02" not in ids
    store.ingest(analyze([two]).analysis, "t", 2)
    devices = {d.id: d for d in store.devices()}
    assert "ip:10.9.0.7" not in devices  # folded into the MAC device that owns the address
    pump = devices["mac:9c:c8:ae:00:00:02"]
    assert pump.ips == ("10.9.0.7",) and pump.first_ns == 1_000_000_000 and pump.last_ns == 6_000_000_000
    assert "ip:10.9.0.8" in devices  # still only known behind the router
    first_flows = [f for f in store.flows() if f.capture == store.captures()[0].id]
    assert {f.src_device for f in first_flows} | {f.dst_device for f in first_flows} >= {"mac:9c:c8:ae:00:00:02"}
    assert len(store.captures()) == 2
    # order does not matter: the other way round gives the same database
    other = Store.open(str(tmp_path / "other.db"))
    stores.append(other)
    other.ingest(analyze([two]).analysis, "t", 1)
    other.ingest(analyze([one]).analysis, "t", 2)
    a, b = dump(store), dump(other)
    for table in ("captures",):
        a.pop(table), b.pop(table)  # first-analysis times and ordinals differ
    # flow ids number each capture's flows under its ordinal: the rows are the same, numbered otherwise
    assert sorted(r[1:] for r in a.pop("flows")) == sorted(r[1:] for r in b.pop("flows"))
    assert a == b


def test_unopenable_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(str(tmp_path / "no" / "such" / "dir.db"))
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        Store.open(str(garbage))


def test_upgrade_from_0001_keeps_captures(tmp_path: Path) -> None:
    """A database written by the first schema: its captures get ``sha256:<hex>`` as digest and stay unique."""
    from importlib import resources

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("wardwatch.store") / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO captures (id, sha256, path, size, format, linktypes, packets, bytes, analysed_ns,"
                " tool_version) VALUES ('aaaa', :sha, 'old.pcap', 1, 'pcap', '1', 0, 0, 0, '0.1.0')"
            ),
            {"sha": "ab" * 32},
        )
        conn.execute(
            text(
                "INSERT INTO flows VALUES ('f1', 'aaaa', 17, '10.0.0.1', 5000, '10.0.0.2', 514, 10, 10, 1, 0, 60, 0,"
                " 0, 0, 'first-packet', '', NULL, NULL)"
            )
        )
    engine.dispose()
    store = Store.open(str(tmp_path / "old.db"))
    (cap,) = store.captures()
    assert (cap.id, cap.digest, cap.sha256) == ("aaaa", "sha256:" + "ab" * 32, "ab" * 32)
    # rebuilding the captures table must not cascade into the flows that refer to it
    assert [(f.capture, f.src_ip, f.dst_port) for f in store.flows()] == [("aaaa", "10.0.0.1", 514)]
    store.ingest(analyze([SAMPLE]).analysis, "t", 1)
    assert len(store.captures()) == 2
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_flow_ids_number_each_capture_in_canonical_order(tmp_path: Path, db_url: str, stores: list[Store]) -> None:
    """A capture's flows are the id range of its ordinal, in canonical order; re-analysis keeps the ids."""
    store = Store.open(db_url)
    stores.append(store)
    one = write_pcap(tmp_path / "one.pcap", [(1_000_000_000, frame(HOST, ROUTER, "10.0.0.5", "10.9.0.7"))])
    store.ingest(analyze([SAMPLE]).analysis, "t", 1)
    store.ingest(analyze([one]).analysis, "t", 2)
    store.ingest(analyze([SAMPLE]).analysis, "t", 3)  # again: replaced under the same ids
    with store.engine.connect() as conn:
        ordinals = dict(conn.execute(text("SELECT id, ordinal FROM captures")).fetchall())
        rows = conn.execute(text("SELECT id, capture_id, first_ns FROM flows ORDER BY id")).fetchall()
    sample_id = next(c.id for c in store.captures() if c.path == str(SAMPLE))
    assert sorted(ordinals.values()) == [1, 2] and ordinals[sample_id] == 1
    for capture, ordinal in ordinals.items():
        ids = [r[0] for r in rows if r[1] == capture]
        base = ordinal << FLOW_ID_BITS
        assert ids == list(range(base, base + len(ids)))
    sample_flows = list(analyze([SAMPLE]).analysis.flows)
    assert [r[2] for r in rows if r[1] == sample_id] == [f.first_ns for f in sample_flows]


def test_upgrade_from_0002_renumbers_flows(db_url: str) -> None:
    """Flows stored under 0002's text ids survive the upgrade to integer ids, each capture in its own range."""
    url = db_url
    old = Store.open(url, migrate=False)
    old.upgrade("0002")
    engine = old.engine
    cols = (
        "capture_id, proto, src_ip, src_port, dst_ip, dst_port, first_ns, last_ns, packets_src, packets_dst, "
        "bytes_src, bytes_dst, tcp_flags_src, tcp_flags_dst, initiator, vlans, src_device, dst_device"
    )
    with engine.begin() as conn:
        for cap, analysed in (("bbbb", 2), ("aaaa", 1)):
            conn.execute(
                text(
                    "INSERT INTO captures (id, digest, path, size, format, linktypes, packets, bytes, analysed_ns,"
                    " tool_version) VALUES (:id, :digest, 'x.pcap', 1, 'pcap', '1', 0, 0, :at, '0.1.0')"
                ),
                {"id": cap, "digest": "xxh3-128:" + cap, "at": analysed},
            )
        for fid, cap, first in (("f3", "aaaa", 30), ("f1", "aaaa", 10), ("f2", "bbbb", 20)):
            conn.execute(
                text(
                    f"INSERT INTO flows (id, {cols}) VALUES (:id, :cap, 6, '10.0.0.1', 1, '10.0.0.2', 2, :first,"
                    " :first, 1, 1, 60, 60, 2, 18, 'syn', '', NULL, NULL)"
                ),
                {"id": fid, "cap": cap, "first": first},
            )
    engine.dispose()
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            rows = conn.execute(text("SELECT id, capture_id, first_ns FROM flows ORDER BY id")).fetchall()
            ordinals = dict(conn.execute(text("SELECT id, ordinal FROM captures")).fetchall())
        assert ordinals == {"aaaa": 1, "bbbb": 2}  # in the order they were first analysed
        one, two = 1 << FLOW_ID_BITS, 2 << FLOW_ID_BITS
        assert [tuple(r) for r in rows] == [(one, "aaaa", 10), (one + 1, "aaaa", 30), (two, "bbbb", 20)]
        store.ingest(analyze([SAMPLE]).analysis, "t", 3)  # a new capture takes the next ordinal
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT MAX(ordinal) FROM captures")).scalar() == max(ordinals.values()) + 1
    finally:
        store.close()


def test_later_capture_widens_rows_in_place(tmp_path: Path, db_url: str, stores: list[Store]) -> None:
    """Rows of devices already stored are updated (not duplicated): address and evidence spans widen."""
    early = write_pcap(tmp_path / "early.pcap", [(1_000_000_000, frame(HOST, PUMP, "10.0.0.5", "10.0.0.9"))])
    late = write_pcap(tmp_path / "late.pcap", [(9_000_000_000, frame(HOST, PUMP, "10.0.0.5", "10.0.0.9"))])
    store = Store.open(db_url)
    stores.append(store)
    store.ingest(analyze([late]).analysis, "t", 1)
    store.ingest(analyze([early]).analysis, "t", 2)
    host = next(d for d in store.devices() if d.id == "mac:00:09:fb:00:00:01")
    (address,) = host.addresses
    assert (address.ip, address.first_ns, address.last_ns) == ("10.0.0.5", 1_000_000_000, 9_000_000_000)
    (mac_ev,) = [e for e in host.evidence if e.attribute == "mac"]
    assert (mac_ev.first_ns, mac_ev.last_ns) == (1_000_000_000, 9_000_000_000)
    assert mac_ev.packet is not None and mac_ev.packet.capture == analyze([early]).analysis.captures[0].id
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM device_addresses WHERE ip = '10.0.0.5'")).scalar() == 1


def test_flow_indexes_after_a_first_and_a_later_ingest(tmp_path: Path, db_url: str, stores: list[Store]) -> None:
    """The first ingest builds the flow indexes after its rows (into an empty table); they must be there, and
    used, like after any later ingest."""
    store = Store.open(db_url)
    stores.append(store)

    def index_names() -> set[str]:
        return {ix["name"] for ix in inspect(store.engine).get_indexes("flows")}

    store.ingest(analyze([SAMPLE]).analysis, "t", 1)
    assert index_names() == {"ix_flows_src_device", "ix_flows_dst_device"}
    pump = next(d.id for d in store.devices() if d.vendor and "Baxter" in d.vendor)
    assert store.flows(pump) and all(pump in (f.src_device, f.dst_device) for f in store.flows(pump))
    one = write_pcap(tmp_path / "one.pcap", [(1_000_000_000, frame(HOST, ROUTER, "10.0.0.5", "10.9.0.7"))])
    store.ingest(analyze([one]).analysis, "t", 2)
    assert index_names() == {"ix_flows_src_device", "ix_flows_dst_device"}
    with pytest.raises(StoreError):  # a failing ingest into an empty table leaves it as it was, indexes included
        empty = Store.open(str(tmp_path / "empty.db"))
        stores.append(empty)
        broken = analyze([SAMPLE]).analysis
        twice = Skipped(capture=broken.captures[0].id, reason="test", count=1, examples=())
        empty.ingest(replace(broken, skipped=(twice, twice)), "t", 1)  # a duplicate key after the flows
    assert {ix["name"] for ix in inspect(empty.engine).get_indexes("flows")} == {
        "ix_flows_src_device",
        "ix_flows_dst_device",
    }
    with empty.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM flows")).scalar() == 0


def test_evidence_counts_add_across_captures_and_reingest_replaces(
    tmp_path: Path, db_url: str, stores: list[Store]
) -> None:
    announce = arp(1, PUMP, ip4("10.9.0.7"), b"\x00" * 6, ip4("10.9.0.1"), 0, b"\xff" * 6)
    one = write_pcap(tmp_path / "one.pcap", [(i * 1_000_000_000, announce) for i in (1, 2, 3)])
    two = write_pcap(tmp_path / "two.pcap", [(i * 1_000_000_000, announce) for i in (7, 8)])

    def arp_count(devices: list) -> int:  # type: ignore[type-arg]
        (pump,) = [d for d in devices if d.id == "mac:9c:c8:ae:00:00:02"]
        (ev,) = [e for e in pump.evidence if e.attribute == "ip" and e.source == "arp"]
        return int(ev.count)

    assert arp_count(list(analyze([one, two]).analysis.devices)) == 5
    store = Store.open(db_url)
    stores.append(store)
    store.ingest(analyze([one]).analysis, "t", 1)
    assert arp_count(store.devices()) == 3
    store.ingest(analyze([two]).analysis, "t", 2)
    assert arp_count(store.devices()) == 5
    store.ingest(analyze([two]).analysis, "t", 3)  # the same capture again: its count is replaced, not added
    assert arp_count(store.devices()) == 5


def test_upgrade_from_0003_counts_existing_evidence_once(db_url: str) -> None:
    old = Store.open(db_url, migrate=False)
    old.upgrade("0003")
    with old.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO devices (id, kind, mac, first_ns, last_ns, mac_randomized, router)"
                " VALUES ('mac:00:09:fb:00:00:01', 'mac', '00:09:fb:00:00:01', 1, 2, false, false)"
            )
        )
        for source, capture in (("oui", None), ("arp", "aaaa")):
            conn.execute(text("INSERT INTO evidence (device_id, attribute, value, source, confidence, capture_id,"
                              " packet, first_ns, last_ns) VALUES ('mac:00:09:fb:00:00:01', 'vendor', 'x', :s, 0.6,"
                              " :c, 1, 1, 2)"), {"s": source, "c": capture})  # fmt: skip
    old.engine.dispose()
    store = Store.open(db_url)
    try:
        (dev,) = store.devices()
        assert sorted((e.source, e.count) for e in dev.evidence) == [("arp", 1), ("oui", 1)]
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        store.close()


def _open_and_read(url: str) -> str:
    try:
        store = Store.open(url)
        try:
            store.status()
            return store.schema_revision() or "none"
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return f"failed: {exc}"


def test_processes_opening_a_new_database_at_once_all_get_the_schema(db_url: str) -> None:
    """A monitor creating its database while `wardwatch status` opens it: the schema lock serialises them."""
    import multiprocessing

    from wardwatch.store.repository import HEAD_REVISION

    with multiprocessing.get_context("fork").Pool(6) as pool:
        results = pool.map(_open_and_read, [db_url] * 12)
    assert results == [HEAD_REVISION] * 12
