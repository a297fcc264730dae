"""The store: ingest analyses idempotently, read devices, flows, edges and captures back.

One writer at a time; SQLite in WAL mode lets readers (CLI, web) work while it writes. An ingest is one
transaction: a capture's flows and skipped counts are replaced; devices are *merged* (earliest first
sighting, latest last sighting, strongest evidence), so analysing the same capture again changes nothing and
analysing another extends the inventory. After every ingest, devices known only by an IP that some MAC
device is now known to own are folded into that device (flows follow).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from importlib import resources
from typing import Any, cast

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from wardwatch.errors import StoreError
from wardwatch.model.analysis import Analysis
from wardwatch.model.asset import Asset
from wardwatch.model.capture import CaptureInfo, Skipped
from wardwatch.model.event import Event, EventKind, InterfaceStatus
from wardwatch.model.finding import Suppression
from wardwatch.model.flow import Edge, Flow, FlowColumns, flow_sort_key
from wardwatch.model.inventory import SINGLE_VALUED, AddressUse, Device, DeviceId, DeviceKind, Evidence, choose
from wardwatch.model.observation import CaptureId, PacketRef
from wardwatch.store import schema as t

#: Newest migration in ``migrations/versions`` (a test checks it against Alembic's own view).
HEAD_REVISION = "0007"
#: Flow rows built and inserted per executemany call.
INSERT_SLICE = 20_000
#: Columns of ``sensor_status``, named as the fields of ``InterfaceStatus``.
STATUS_FIELDS = (
    "interface", "sensor", "state", "started_ns", "updated_ns", "packets", "bytes", "kernel_packets", "drops",
    "outgoing", "queue_blocks", "ring_blocks", "backlog", "packets_per_s", "bytes_per_s", "message",
)  # fmt: skip
#: PostgreSQL advisory lock key held while the schema is created or migrated ("wardwat" in ASCII).
SCHEMA_LOCK_KEY = 0x77617264776174
#: Rows per IN (...) list: stays under SQLite's variable limit.
CHUNK = 500


def database_url(db: str) -> URL:
    """``db`` as given on the command line: an SQLAlchemy URL, or a path to an SQLite file."""
    if "://" in db:
        return make_url(db)
    return URL.create("sqlite", database=os.path.abspath(db))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


FlowColumnLists = list[list[Any]]
"""The ``flows`` table's columns after the id (``FLOW_COLUMNS[1:]``), one list of plain values each."""


def flow_column_lists(flows: Sequence[Flow]) -> FlowColumnLists:
    """The columns of ``flows`` as the ``flows`` table stores them (read straight from ``FlowColumns``)."""
    if not isinstance(flows, FlowColumns):
        rows = [
            (
                f.capture,
                f.proto,
                f.src_ip,
                f.src_port,
                f.dst_ip,
                f.dst_port,
                f.first_ns,
                f.last_ns,
                f.packets_src,
                f.packets_dst,
                f.bytes_src,
                f.bytes_dst,
                f.tcp_flags_src,
                f.tcp_flags_dst,
                f.initiator,
                ",".join(map(str, f.vlans)),
                f.src_device,
                f.dst_device,
            )  # fmt: skip
            for f in flows
        ]
        return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in FLOW_COLUMNS[1:]]
    c = flows.columns
    texts = np.array([*flows.texts, None], dtype=object)  # index -1 -> None

    def text(name: str) -> list[Any]:
        return cast(list[Any], texts[c[name]].tolist())

    def optional(name: str) -> list[int | None]:
        values: list[int] = c[name].tolist()
        if (c[name] < 0).any():
            return [None if v < 0 else v for v in values]
        return cast(list[int | None], values)

    return [
        text("capture"), c["proto"].tolist(), text("src_ip"), optional("src_port"), text("dst_ip"),
        optional("dst_port"), c["first_ns"].tolist(), c["last_ns"].tolist(), c["packets_src"].tolist(),
        c["packets_dst"].tolist(), c["bytes_src"].tolist(), c["bytes_dst"].tolist(), c["tcp_flags_src"].tolist(),
        c["tcp_flags_dst"].tolist(), text("initiator"), _vlan_texts(flows), text("src_device"), text("dst_device"),
    ]  # fmt: skip


def _vlan_texts(flows: FlowColumns) -> list[str]:
    """Each flow's VLAN list as the comma-separated text the ``flows.vlans`` column holds."""
    ptr, values = flows.vlan_ptr, flows.vlan_values
    lengths = np.diff(ptr)
    out = np.full(len(lengths), "", dtype=object)
    one = np.flatnonzero(lengths == 1)
    if len(one):  # the usual case: one VLAN (tagged) or none (untagged)
        distinct, inverse = np.unique(values[ptr[one]], return_inverse=True)
        out[one] = np.array([str(v) for v in distinct.tolist()], dtype=object)[inverse]
    for i in np.flatnonzero(lengths > 1).tolist():
        out[i] = ",".join(map(str, values[ptr[i] : ptr[i + 1]].tolist()))
    return cast(list[str], out.tolist())


DEVICE_COLUMNS = (
    "id", "kind", "mac", "vendor", "model", "device_type", "firmware", "os", "first_ns", "last_ns", "mac_randomized",
    "router", "via",
)  # fmt: skip
FLOW_COLUMNS = (
    "id", "capture_id", "proto", "src_ip", "src_port", "dst_ip", "dst_port", "first_ns", "last_ns", "packets_src",
    "packets_dst", "bytes_src", "bytes_dst", "tcp_flags_src", "tcp_flags_dst", "initiator", "vlans", "src_device",
    "dst_device",
)  # fmt: skip


def _bulk_insert(conn: Connection, table: Any, names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert many rows through the DBAPI's ``executemany`` (SQLAlchemy's per-row parameter processing costs
    more than SQLite's own work for tens of thousands of rows). Values must already be plain Python values."""
    if not rows:
        return
    style = conn.dialect.paramstyle
    if style == "qmark":
        marks = ", ".join("?" for _ in names)
    elif style == "numeric":
        marks = ", ".join(f":{i + 1}" for i in range(len(names)))
    elif style in ("format", "pyformat"):
        marks = ", ".join("%s" for _ in names)
    else:  # named: let SQLAlchemy do it
        conn.execute(insert(table), [dict(zip(names, r, strict=True)) for r in rows])
        return
    quote = conn.dialect.identifier_preparer.quote
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES ({marks})"
    conn.exec_driver_sql(sql, list(rows))


def _bulk_update(
    conn: Connection, table: Any, keys: Sequence[str], names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """``UPDATE table SET names... WHERE keys...`` once per row (values first, then keys), in one executemany."""
    if not rows:
        return
    if conn.dialect.paramstyle not in ("qmark", "format", "pyformat"):  # let SQLAlchemy bind the parameters
        stmt = update(table).where(*(table.c[k] == bindparam(f"k_{k}") for k in keys))
        stmt = stmt.values({n: bindparam(f"v_{n}") for n in names})
        labels = [f"v_{n}" for n in names] + [f"k_{k}" for k in keys]
        params = [dict(zip(labels, r, strict=True)) for r in rows]
        conn.execute(stmt, params)
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(n)} = {mark}' for n in names)} "
        f"WHERE {' AND '.join(f'{quote(k)} = {mark}' for k in keys)}"
    )
    conn.exec_driver_sql(sql, list(rows))


def _positions(captures: list[Any], capture: str) -> list[int] | None:
    """Where ``capture``'s flows are in the ``capture_id`` column (None: all of them, the usual case)."""
    if all(c == capture for c in captures):
        return None
    return [i for i, c in enumerate(captures) if c == capture]


def _vlan_col(vlan: int | None) -> int:
    return 0 if vlan is None else vlan


def _vlan_val(vlan: int) -> int | None:
    return None if vlan == 0 else vlan


class Store:
    """A wardwatch database (SQLite file by default; any SQLAlchemy URL, e.g. PostgreSQL, when configured)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, db: str, create: bool = True, migrate: bool = True) -> Store:
        """Open (migrating as needed) the database ``db``; with ``create=False`` a missing SQLite file is an error.

        ``migrate=False`` leaves the schema as it is (for tests of the migrations themselves).
        """
        url = database_url(db)
        try:
            if url.get_backend_name() == "sqlite" and url.database:
                parent = os.path.dirname(url.database)
                if parent and not os.path.isdir(parent):
                    raise StoreError(f"{url.database}: directory {parent} does not exist")
                if not create and not os.path.exists(url.database):
                    raise StoreError(f"no database at {url.database}: analyse a capture into it first")
            engine = create_engine(url)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            store = cls(engine)
            if migrate:
                store.migrate()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {url.render_as_string(hide_password=True)}: {exc}") from exc
        return store

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None for an empty database)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (Alembic is only loaded when there is work to do).

        An empty database gets the newest schema straight from the table definitions and is stamped with the
        head revision (Alembic's own advice for new databases; a test checks that the migrations build the same
        schema).
        """
        if self.schema_revision() == HEAD_REVISION:
            return
        with self._schema_lock():  # two processes opening a new database at once (a monitor and `status`)
            revision = self.schema_revision()  # again, now that no other process is changing it
            if revision == HEAD_REVISION:
                return
            if revision is None:
                with self.engine.begin() as conn:
                    if not inspect(conn).get_table_names():
                        t.metadata.create_all(conn)
                        t.alembic_version.create(conn)
                        conn.execute(insert(t.alembic_version).values(version_num=HEAD_REVISION))
                        return
            self.upgrade("head")

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Hold the database's schema lock: an exclusive ``flock`` on the SQLite file, a session advisory lock on
        PostgreSQL.

        SQLite's own locks are POSIX record locks, which flock does not touch; but closing *any* descriptor of the
        file drops every POSIX lock this process holds on it, so no connection of this store may be open when
        the lock's descriptor is closed: the pool is emptied before and after."""
        if self.engine.dialect.name == "sqlite":
            path = self.engine.url.database
            if not path or path == ":memory:" or not os.path.exists(path):
                yield
                return
            import fcntl

            self.engine.dispose()
            with open(path, "rb") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    self.engine.dispose()
                    fcntl.flock(fh, fcntl.LOCK_UN)
            return
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                conn.commit()

    def upgrade(self, revision: str) -> None:
        """Run the Alembic migrations up to ``revision``."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("wardwatch.store") / "migrations"))
        sqlite = self.engine.dialect.name == "sqlite"
        with self.engine.connect() as conn:
            if sqlite:
                # SQLite alters a table by copying it and dropping the old one; with foreign keys enforced, that
                # drop would cascade into the rows referring to it (the flows of every capture)
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # (a no-op inside a transaction: none is open yet)
                conn.commit()
            try:
                with conn.begin():
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
                    if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                        raise StoreError(f"migrating to {revision} broke {len(broken)} foreign key references")
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    # --- writing ---------------------------------------------------------------------------------------------

    def ingest(self, analysis: Analysis, tool_version: str, now_ns: int) -> None:
        """Store ``analysis`` in one transaction (idempotent: the same analysis twice leaves the same rows)."""
        try:
            with self.engine.begin() as conn:
                ordinals = {cap.id: self._put_capture(conn, cap, tool_version, now_ns) for cap in analysis.captures}
                self._merge_devices(conn, analysis.devices)
                columns = flow_column_lists(analysis.flows)
                for cap in analysis.captures:
                    self._replace_flows(conn, ordinals[cap.id], columns, _positions(columns[0], cap.id))
                    conn.execute(delete(t.skipped).where(t.skipped.c.capture_id == cap.id))
                del columns
                skips = [
                    {
                        "capture_id": s.capture,
                        "reason": s.reason,
                        "count": s.count,
                        "examples": ",".join(map(str, s.examples)),
                    }
                    for s in analysis.skipped
                ]
                if skips:
                    conn.execute(insert(t.skipped), skips)
                self._fold_ip_devices(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not store the analysis: {exc}") from exc

    def _put_capture(self, conn: Connection, cap: CaptureInfo, tool_version: str, now_ns: int) -> int:
        """Insert or update the row of ``cap``; return its ordinal (new captures get the next one)."""
        values = {
            "digest": cap.digest,
            "size": cap.size,
            "format": cap.format,
            "linktypes": ",".join(map(str, cap.linktypes)),
            "packets": cap.packets,
            "bytes": cap.bytes,
            "first_ns": cap.first_ns,
            "last_ns": cap.last_ns,
            "error": cap.error,
            "error_offset": cap.error_offset,
        }
        ordinal = conn.execute(select(t.captures.c.ordinal).where(t.captures.c.id == cap.id)).scalar()
        if ordinal is None:
            ordinal = (conn.execute(select(func.max(t.captures.c.ordinal))).scalar() or 0) + 1
            conn.execute(
                insert(t.captures).values(
                    id=cap.id, path=cap.path, analysed_ns=now_ns, tool_version=tool_version, sha256=cap.sha256,
                    ordinal=ordinal, **values,
                )
            )  # fmt: skip
        else:  # first path and first analysis time are kept: re-analysis must not change the database
            if cap.sha256 is not None:  # a SHA-256 computed once is kept even when later runs skip it
                values["sha256"] = cap.sha256
            conn.execute(update(t.captures).where(t.captures.c.id == cap.id).values(**values))
        return int(ordinal)

    def _replace_flows(
        self, conn: Connection, ordinal: int, columns: FlowColumnLists, positions: Sequence[int] | None
    ) -> None:
        """Replace the flows of the capture numbered ``ordinal`` by the rows at ``positions`` of ``columns`` (all
        rows when None), numbered in that (canonical) order: the ids grow, so the B-tree grows at its end."""
        base = ordinal << t.FLOW_ID_BITS
        conn.execute(delete(t.flows).where(t.flows.c.id >= base, t.flows.c.id < base + (1 << t.FLOW_ID_BITS)))
        n = len(columns[0]) if positions is None else len(positions)
        if n >= 1 << t.FLOW_ID_BITS:
            raise StoreError(f"a capture with {n:,} flows is more than the store can number")
        # into an empty table, the indexes are built once the rows are in (a sort instead of n random inserts)
        rebuild = n > 0 and conn.execute(select(t.flows.c.id).limit(1)).first() is None
        if rebuild:
            for index in t.flows.indexes:
                index.drop(conn)
        for start in range(0, n, INSERT_SLICE):  # in slices: the rows are never all in memory at once
            stop = min(n, start + INSERT_SLICE)
            if positions is None:
                part = [col[start:stop] for col in columns]
            else:
                take = positions[start:stop]
                part = [[col[i] for i in take] for col in columns]
            _bulk_insert(conn, t.flows, FLOW_COLUMNS, list(zip(range(base + start, base + stop), *part, strict=True)))
        if rebuild:
            for index in t.flows.indexes:
                index.create(conn)

    def _merge_devices(self, conn: Connection, devices: Sequence[Device]) -> None:
        ids = [d.id for d in devices]
        existing: dict[str, Any] = {}
        # a database without devices (the first ingest) has no rows to merge with: no lookups
        known = conn.execute(select(t.devices.c.id).limit(1)).first() is not None
        if known:
            for chunk in _chunks(ids):
                for found in conn.execute(select(t.devices).where(t.devices.c.id.in_(chunk))):
                    existing[found.id] = found
        new_rows = []
        for d in devices:
            row = existing.get(d.id)
            if row is None:
                new_rows.append(
                    (
                        d.id,
                        d.kind.value,
                        d.macs[0] if d.macs else None,
                        d.vendor,
                        d.model,
                        d.device_type,
                        d.firmware,
                        d.os,
                        d.first_ns,
                        d.last_ns,
                        d.mac_randomized,
                        d.router,
                        d.via,
                    )  # fmt: skip
                )
            else:
                self._widen_device(conn, d.id, d.first_ns, d.last_ns, d.router, d.via, row)
        _bulk_insert(conn, t.devices, DEVICE_COLUMNS, new_rows)
        self._merge_children(conn, [(d.id, d) for d in devices], known)
        if known:  # new devices got the vendor of their own evidence: only merged ones can change
            self._refresh_single_valued(conn, [d for d in ids if d in existing])

    @staticmethod
    def _widen_device(
        conn: Connection, dev: str, first_ns: int, last_ns: int, router: bool, via: str | None, row: Any
    ) -> None:
        vias = [v for v in (row.via, via) if v]
        values = {
            "first_ns": min(row.first_ns, first_ns),
            "last_ns": max(row.last_ns, last_ns),
            "router": bool(row.router or router),
            "via": min(vias) if vias else None,
        }
        if any(getattr(row, k) != v for k, v in values.items()):
            conn.execute(update(t.devices).where(t.devices.c.id == dev).values(**values))

    def _merge_children(self, conn: Connection, items: Sequence[tuple[str, Device]], known: bool = True) -> None:
        """Merge addresses, VLANs, host names and evidence of ``items`` into the rows of their device ids
        (``known=False``: the database holds no rows of these devices yet). Rows are tuples in column order."""
        addr_old: dict[tuple[str, str, int], AddrRow] = {}
        vlan_old: set[tuple[str, int]] = set()
        host_old: dict[tuple[str, str], float] = {}
        ev_old: dict[tuple[str, str, str, str], EvidenceRow] = {}
        count_old: dict[tuple[str, str, str, str, str], tuple[Any, ...]] = {}
        for chunk in _chunks(sorted({dev for dev, _ in items}) if known else []):
            for r in conn.execute(select(t.device_addresses).where(t.device_addresses.c.device_id.in_(chunk))):
                addr_old[(r.device_id, r.ip, r.vlan)] = tuple(r)
            for r in conn.execute(select(t.device_vlans).where(t.device_vlans.c.device_id.in_(chunk))):
                vlan_old.add((r.device_id, r.vlan))
            for r in conn.execute(select(t.device_hostnames).where(t.device_hostnames.c.device_id.in_(chunk))):
                host_old[(r.device_id, r.name)] = r.confidence
            for r in conn.execute(select(t.evidence).where(t.evidence.c.device_id.in_(chunk))):
                ev_old[(r.device_id, r.attribute, r.value, r.source)] = tuple(r)
            for r in conn.execute(select(t.evidence_counts).where(t.evidence_counts.c.device_id.in_(chunk))):
                count_old[(r.device_id, r.attribute, r.value, r.source, r.capture_id)] = tuple(r)

        addr_new: dict[tuple[str, str, int], AddrRow] = {}
        vlan_new: set[tuple[str, int]] = set()
        host_new: dict[tuple[str, str], float] = {}
        ev_new: dict[tuple[str, str, str, str], EvidenceRow] = {}
        count_new: dict[tuple[str, str, str, str, str], tuple[Any, ...]] = {}
        for dev, d in items:
            for a in d.addresses:
                key = (dev, a.ip, _vlan_col(a.vlan))
                addr_new[key] = _merge_addr(key, addr_new.get(key) or addr_old.get(key), a)
            for v in d.vlans:
                if (dev, v) not in vlan_old:
                    vlan_new.add((dev, v))
            name_conf: dict[str, float] = {}
            for e in d.evidence:
                if e.attribute == "hostname" and e.confidence > name_conf.get(e.value, 0.0):
                    name_conf[e.value] = e.confidence
            for name in d.hostnames:
                conf = name_conf.get(name, 0.0)
                key2 = (dev, name)
                best = max(host_new.get(key2, -1.0), host_old.get(key2, -1.0))
                if conf > best:
                    host_new[key2] = conf
            for e in d.evidence:
                key3 = (dev, e.attribute, e.value, e.source)
                ev_new[key3] = _merge_ev(key3, ev_new.get(key3) or ev_old.get(key3), e)
                key4 = (*key3, e.packet.capture if e.packet is not None else "")
                count_new[key4] = (*key4, e.count)

        def upsert(table: Any, keys: int, rows: dict[Any, tuple[Any, ...]], old: Mapping[Any, Any]) -> None:
            """Insert the rows whose key (their first ``keys`` values) is new, update those that changed."""
            names = [c.name for c in table.columns]
            _bulk_insert(conn, table, names, [r for k, r in rows.items() if k not in old])
            changed = [r for k, r in rows.items() if k in old and old[k] != r]
            _bulk_update(conn, table, names[:keys], names[keys:], [(*r[keys:], *r[:keys]) for r in changed])

        upsert(t.device_addresses, 3, addr_new, addr_old)
        _bulk_insert(conn, t.device_vlans, ("device_id", "vlan"), sorted(vlan_new))
        upsert(t.device_hostnames, 2, {k: (*k, c) for k, c in host_new.items()}, host_old)
        upsert(t.evidence, 4, ev_new, ev_old)
        upsert(t.evidence_counts, 5, count_new, count_old)

    def _refresh_single_valued(self, conn: Connection, ids: Sequence[str]) -> None:
        """Set each device's single-valued attributes (vendor, model, device type, firmware, OS) to their most
        confident evidence (ties: the alphabetically first value, whatever the order things were stored in)."""
        for chunk in _chunks(list(ids)):
            found: dict[tuple[str, str], list[tuple[float, str, str]]] = {}
            rows = conn.execute(
                select(
                    t.evidence.c.device_id, t.evidence.c.attribute, t.evidence.c.value, t.evidence.c.confidence,
                    t.evidence.c.source,
                ).where(t.evidence.c.device_id.in_(chunk), t.evidence.c.attribute.in_(SINGLE_VALUED))
            )  # fmt: skip
            for r in rows:
                found.setdefault((r.device_id, r.attribute), []).append((r.confidence, r.value, r.source))
            best = {key: value for key, cands in found.items() if (value := choose(cands, key[1])) is not None}
            cols = [t.devices.c[a] for a in SINGLE_VALUED]
            current = {r.id: r for r in conn.execute(select(t.devices.c.id, *cols).where(t.devices.c.id.in_(chunk)))}
            changes: dict[str, dict[str, str]] = {}
            for (dev, attribute), value in best.items():
                row = current.get(dev)
                if row is not None and getattr(row, attribute) != value:
                    changes.setdefault(dev, {})[attribute] = value
            for dev, values in sorted(changes.items()):
                conn.execute(update(t.devices).where(t.devices.c.id == dev).values(**values))

    def _fold_ip_devices(self, conn: Connection) -> None:
        """Merge IP-only devices into the MAC device that owns their address (flows follow)."""
        ip_devs = {r.id: r for r in conn.execute(select(t.devices).where(t.devices.c.kind == DeviceKind.IP.value))}
        if not ip_devs:
            return
        owners: dict[str, tuple[int, str]] = {}
        ips = [dev[3:] for dev in ip_devs]
        for chunk in _chunks(ips):
            q = (
                select(t.device_addresses.c.ip, t.device_addresses.c.device_id, t.device_addresses.c.first_ns)
                .join(t.devices, t.devices.c.id == t.device_addresses.c.device_id)
                .where(t.devices.c.kind == DeviceKind.MAC.value, t.device_addresses.c.ip.in_(chunk))
            )
            for r in conn.execute(q):
                cand = (r.first_ns, r.device_id)
                if r.ip not in owners or cand < owners[r.ip]:
                    owners[r.ip] = cand
        if not owners:
            return
        folding = {f"ip:{ip}": owner for ip, (_, owner) in owners.items()}
        loaded = {d.id: d for d in self._load_devices(conn, sorted(folding))}
        items = []
        for ip_dev, owner in sorted(folding.items()):
            d = loaded[DeviceId(ip_dev)]
            owner_row = conn.execute(select(t.devices).where(t.devices.c.id == owner)).one()
            self._widen_device(conn, owner, d.first_ns, d.last_ns, False, None, owner_row)
            kept = tuple(a for a in d.addresses if a.source != "ip-header")
            ev = tuple(e for e in d.evidence if not (e.attribute == "ip" and e.source == "ip-header"))
            items.append((owner, _with(d, kept, ev)))
            conn.execute(update(t.flows).where(t.flows.c.src_device == ip_dev).values(src_device=owner))
            conn.execute(update(t.flows).where(t.flows.c.dst_device == ip_dev).values(dst_device=owner))
        self._merge_children(conn, items)
        for chunk in _chunks(sorted(folding)):
            for table in (t.device_addresses, t.device_vlans, t.device_hostnames, t.evidence, t.evidence_counts):
                conn.execute(delete(table).where(table.c.device_id.in_(chunk)))
            conn.execute(delete(t.devices).where(t.devices.c.id.in_(chunk)))

    # --- live monitoring ---------------------------------------------------------------------------------------

    def add_events(self, events: Sequence[Event]) -> list[Event]:
        """Append ``events`` to the event log (one transaction); return them with their ids."""
        if not events:
            return []
        rows = [
            {
                "ts_ns": e.ts_ns,
                "kind": e.kind.value,
                "device_id": e.device,
                "peer_id": e.peer,
                "service": e.service,
                "summary": e.summary,
                "detail": json.dumps(dict(e.detail), sort_keys=True),
                "sensor": e.sensor,
            }  # fmt: skip
            for e in events
        ]
        try:
            with self.engine.begin() as conn:  # one statement for all (RETURNING: the ids, in the rows' order)
                query = insert(t.events).returning(t.events.c.id, sort_by_parameter_order=True)
                ids = [int(r[0]) for r in conn.execute(query, rows)]
        except SQLAlchemyError as exc:
            raise StoreError(f"could not store events: {exc}") from exc
        return [replace(e, id=i) for e, i in zip(events, ids, strict=True)]

    def events(self, after: int = 0, limit: int | None = None, kinds: Sequence[str] | None = None) -> list[Event]:
        """Events with an id above ``after``, oldest first (at most ``limit``; only ``kinds`` when given)."""
        e = t.events.c
        q = select(t.events).where(e.id > after).order_by(e.id)
        if kinds:
            q = q.where(e.kind.in_(list(kinds)))
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [
                Event(
                    kind=EventKind(r.kind),
                    ts_ns=r.ts_ns,
                    summary=r.summary,
                    device=DeviceId(r.device_id) if r.device_id else None,
                    peer=DeviceId(r.peer_id) if r.peer_id else None,
                    service=r.service,
                    detail=tuple(sorted((str(k), str(v)) for k, v in json.loads(r.detail).items())),
                    sensor=r.sensor,
                    id=r.id,
                )  # fmt: skip
                for r in conn.execute(q)
            ]

    def put_status(self, statuses: Sequence[InterfaceStatus]) -> None:
        """Replace the status rows of these sensors' interfaces."""
        if not statuses:
            return
        s = t.sensor_status.c
        try:
            with self.engine.begin() as conn:
                for st in statuses:
                    conn.execute(delete(t.sensor_status).where(s.sensor == st.sensor, s.interface == st.interface))
                    conn.execute(insert(t.sensor_status).values(**{f: getattr(st, f) for f in STATUS_FIELDS}))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not store the sensor status: {exc}") from exc

    def status(self) -> list[InterfaceStatus]:
        """The latest status of every monitored interface, by sensor and interface."""
        s = t.sensor_status.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.sensor_status).order_by(s.sensor, s.interface))
            return [InterfaceStatus(**{f: getattr(r, f) for f in STATUS_FIELDS}) for r in rows]

    def suppress(self, suppression: Suppression) -> None:
        """Suppress a finding (replacing an earlier suppression of the same id)."""
        s = t.suppressions.c
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(t.suppressions).where(s.finding_id == suppression.finding_id))
                conn.execute(
                    insert(t.suppressions).values(
                        finding_id=suppression.finding_id, reason=suppression.reason, until_ns=suppression.until_ns,
                        created_ns=suppression.created_ns, created_by=suppression.created_by,
                    )
                )  # fmt: skip
        except SQLAlchemyError as exc:
            raise StoreError(f"could not store the suppression: {exc}") from exc

    def active_suppressions(self, now_ns: int) -> dict[str, Suppression]:
        """The suppressions not yet expired at ``now_ns``, by finding id."""
        return {k: s for k, s in self.suppressions().items() if s.active(now_ns)}

    def suppressions(self) -> dict[str, Suppression]:
        """Every suppression by finding id (expired ones too: they are history)."""
        with self.engine.connect() as conn:
            return {
                r.finding_id: Suppression(r.finding_id, r.reason, r.until_ns, r.created_ns, r.created_by)
                for r in conn.execute(select(t.suppressions))
            }

    def put_assets(self, items: Sequence[Asset], now_ns: int) -> None:
        """Store assets (one transaction): a row per asset id, replacing what an earlier import said of it."""
        rows = [
            {
                "asset_id": a.asset_id,
                "vendor": a.vendor,
                "model": a.model,
                "serial": a.serial,
                "firmware": a.firmware,
                "mac": a.mac,
                "ip": a.ip,
                "location": a.location,
                "extra": json.dumps(dict(a.extra), sort_keys=True),
                "source": a.source,
                "imported_ns": now_ns,
            }  # fmt: skip
            for a in items
        ]
        try:
            with self.engine.begin() as conn:
                for chunk in _chunks([a.asset_id for a in items]):
                    conn.execute(delete(t.assets).where(t.assets.c.asset_id.in_(chunk)))
                if rows:
                    conn.execute(insert(t.assets), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not store the assets: {exc}") from exc

    def assets(self) -> list[Asset]:
        """Every imported asset, by asset id."""
        with self.engine.connect() as conn:
            return [
                Asset(
                    asset_id=r.asset_id,
                    vendor=r.vendor,
                    model=r.model,
                    serial=r.serial,
                    firmware=r.firmware,
                    mac=r.mac,
                    ip=r.ip,
                    location=r.location,
                    extra=tuple(sorted(json.loads(r.extra).items())),
                    source=r.source,
                )  # fmt: skip
                for r in conn.execute(select(t.assets).order_by(t.assets.c.asset_id))
            ]

    def identities(self) -> dict[str, tuple[str | None, ...]]:
        """Every device's (vendor, model, device type, firmware, OS) as stored."""
        d = t.devices.c
        with self.engine.connect() as conn:
            return {
                r.id: (r.vendor, r.model, r.device_type, r.firmware, r.os)
                for r in conn.execute(select(d.id, d.vendor, d.model, d.device_type, d.firmware, d.os))
            }

    # --- reading ---------------------------------------------------------------------------------------------

    def captures(self) -> list[CaptureInfo]:
        """All captures, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.captures).order_by(t.captures.c.first_ns, t.captures.c.id))
            return [
                CaptureInfo(
                    id=CaptureId(r.id),
                    digest=r.digest,
                    sha256=r.sha256,
                    path=r.path,
                    size=r.size,
                    format=r.format,
                    linktypes=tuple(int(x) for x in r.linktypes.split(",") if x),
                    packets=r.packets,
                    bytes=r.bytes,
                    first_ns=r.first_ns,
                    last_ns=r.last_ns,
                    error=r.error,
                    error_offset=r.error_offset,
                )
                for r in rows
            ]

    def devices(self, ids: Sequence[str] | None = None) -> list[Device]:
        """Devices (all, or those with ``ids``), sorted by id."""
        with self.engine.connect() as conn:
            return self._load_devices(conn, ids)

    def _load_devices(self, conn: Connection, ids: Sequence[str] | None) -> list[Device]:
        def rows(table: Any) -> Iterator[Any]:
            if ids is None:
                yield from conn.execute(select(table))
                return
            key = table.c.id if table is t.devices else table.c.device_id
            for chunk in _chunks(list(ids)):
                yield from conn.execute(select(table).where(key.in_(chunk)))

        addresses: dict[str, list[AddressUse]] = defaultdict(list)
        for r in rows(t.device_addresses):
            addresses[r.device_id].append(
                AddressUse(
                    ip=r.ip,
                    vlan=_vlan_val(r.vlan),
                    first_ns=r.first_ns,
                    last_ns=r.last_ns,
                    source=r.source,
                    confidence=r.confidence,
                )
            )
        vlans: dict[str, list[int]] = defaultdict(list)
        for r in rows(t.device_vlans):
            vlans[r.device_id].append(r.vlan)
        hostnames: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for r in rows(t.device_hostnames):
            hostnames[r.device_id].append((r.confidence, r.name))
        counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
        for r in rows(t.evidence_counts):
            counts[(r.device_id, r.attribute, r.value, r.source)] += r.count
        evidence: dict[str, list[Evidence]] = defaultdict(list)
        for r in rows(t.evidence):
            evidence[r.device_id].append(
                Evidence(
                    attribute=r.attribute,
                    value=r.value,
                    source=r.source,
                    confidence=r.confidence,
                    packet=PacketRef(CaptureId(r.capture_id), r.packet) if r.capture_id is not None else None,
                    first_ns=r.first_ns,
                    last_ns=r.last_ns,
                    count=counts.get((r.device_id, r.attribute, r.value, r.source), 1),
                )
            )
        out = [
            Device(
                id=DeviceId(r.id),
                kind=DeviceKind(r.kind),
                macs=(r.mac,) if r.mac else (),
                addresses=tuple(sorted(addresses[r.id], key=_addr_sort)),
                vlans=tuple(sorted(vlans[r.id])),
                vendor=r.vendor,
                model=r.model,
                device_type=r.device_type,
                firmware=r.firmware,
                os=r.os,
                hostnames=tuple(n for _, n in sorted(hostnames[r.id], key=lambda cn: (-cn[0], cn[1]))),
                first_ns=r.first_ns,
                last_ns=r.last_ns,
                evidence=tuple(sorted(evidence[r.id], key=lambda e: (e.attribute, e.value, e.source))),
                mac_randomized=bool(r.mac_randomized),
                router=bool(r.router),
                via=r.via,
            )
            for r in rows(t.devices)
        ]
        out.sort(key=lambda d: d.id)
        return out

    def flows(self, device: str | None = None) -> list[Flow]:
        """Flows (all, or those of one device), ordered by first packet."""
        q = select(t.flows)
        if device is not None:
            q = q.where((t.flows.c.src_device == device) | (t.flows.c.dst_device == device))
        q = q.order_by(
            t.flows.c.first_ns,
            t.flows.c.proto,
            t.flows.c.src_ip,
            t.flows.c.src_port,
            t.flows.c.dst_ip,
            t.flows.c.dst_port,
            t.flows.c.id,
        )
        with self.engine.connect() as conn:
            flows = [
                Flow(
                    capture=CaptureId(r.capture_id),
                    proto=r.proto,
                    src_ip=r.src_ip,
                    src_port=r.src_port,
                    dst_ip=r.dst_ip,
                    dst_port=r.dst_port,
                    first_ns=r.first_ns,
                    last_ns=r.last_ns,
                    packets_src=r.packets_src,
                    packets_dst=r.packets_dst,
                    bytes_src=r.bytes_src,
                    bytes_dst=r.bytes_dst,
                    tcp_flags_src=r.tcp_flags_src,
                    tcp_flags_dst=r.tcp_flags_dst,
                    initiator=r.initiator,
                    vlans=tuple(int(v) for v in r.vlans.split(",") if v),
                    src_device=DeviceId(r.src_device) if r.src_device else None,
                    dst_device=DeviceId(r.dst_device) if r.dst_device else None,
                )
                for r in conn.execute(q)
            ]
        flows.sort(key=flow_sort_key)
        return flows

    def edges(self) -> list[Edge]:
        """The communication map: flows grouped by (initiator device, responder device, protocol, port)."""
        f = t.flows.c
        q = (
            select(
                f.src_device,
                f.dst_device,
                f.proto,
                f.dst_port,
                func.count(),
                func.sum(f.packets_src + f.packets_dst),
                func.sum(f.bytes_src + f.bytes_dst),
                func.min(f.first_ns),
                func.max(f.last_ns),
            )
            .where(f.src_device.is_not(None), f.dst_device.is_not(None))
            .group_by(f.src_device, f.dst_device, f.proto, f.dst_port)
        )
        with self.engine.connect() as conn:
            edges = [
                Edge(
                    src_device=DeviceId(r[0]),
                    dst_device=DeviceId(r[1]),
                    proto=r[2],
                    port=r[3],
                    flows=r[4],
                    packets=int(r[5]),
                    bytes=int(r[6]),
                    first_ns=r[7],
                    last_ns=r[8],
                )
                for r in conn.execute(q)
            ]
        edges.sort(key=lambda e: (e.src_device, e.dst_device, e.proto, -1 if e.port is None else e.port))
        return edges

    def skipped(self) -> list[Skipped]:
        """Skip reasons per capture."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.skipped).order_by(t.skipped.c.capture_id, t.skipped.c.reason))
            return [
                Skipped(
                    capture=CaptureId(r.capture_id),
                    reason=r.reason,
                    count=r._mapping["count"],
                    examples=tuple(int(x) for x in r.examples.split(",") if x),
                )
                for r in rows
            ]

    def analysis(self) -> Analysis:
        """Everything in the store as one Analysis (what reports render)."""
        return Analysis(
            captures=tuple(self.captures()),
            devices=tuple(self.devices()),
            flows=tuple(self.flows()),
            edges=tuple(self.edges()),
            findings=(),
            skipped=tuple(self.skipped()),
        )


# --- row merging helpers (pure) ------------------------------------------------------------------------------


def _addr_sort(a: AddressUse) -> tuple[int, str, int]:
    return (
        4 if ":" not in a.ip else 6,
        a.ip if ":" in a.ip else ".".join(f"{int(p):03d}" for p in a.ip.split(".")),
        a.vlan or 0,
    )


AddrRow = tuple[Any, ...]
"""A ``device_addresses`` row: device_id, ip, vlan, first_ns, last_ns, source, confidence."""
EvidenceRow = tuple[Any, ...]
"""An ``evidence`` row: device_id, attribute, value, source, confidence, capture_id, packet, first_ns, last_ns."""


def _merge_addr(key: tuple[str, str, int], cur: AddrRow | None, a: AddressUse) -> AddrRow:
    """Widen an address row by ``a``; the most confident source wins (ties: alphabetical, order-independent)."""
    if cur is None:
        return (*key, a.first_ns, a.last_ns, a.source, a.confidence)
    _dev, _ip, _vlan, first, last, source, confidence = cur
    if (a.confidence, _neg(a.source)) > (confidence, _neg(source)):
        source, confidence = a.source, a.confidence
    return (*key, min(first, a.first_ns), max(last, a.last_ns), source, confidence)


def _neg(text: str) -> tuple[int, ...]:
    """Sort key under which alphabetically *earlier* strings compare greater."""
    return tuple(-ord(c) for c in text) + (1,)


def _merge_ev(key: tuple[str, str, str, str], cur: EvidenceRow | None, e: Evidence) -> EvidenceRow:
    """Widen an evidence row by ``e``: highest confidence, earliest first sighting (with its packet), latest last."""
    capture = e.packet.capture if e.packet is not None else None
    number = e.packet.number if e.packet is not None else None
    if cur is None:
        return (*key, e.confidence, capture, number, e.first_ns, e.last_ns)
    confidence, old_capture, old_number, first, last = cur[4:]
    if (e.first_ns, capture or "", number or 0) < (first, old_capture or "", old_number or 0):
        first, old_capture, old_number = e.first_ns, capture, number
    return (*key, max(confidence, e.confidence), old_capture, old_number, first, max(last, e.last_ns))


def _with(d: Device, addresses: tuple[AddressUse, ...], evidence: tuple[Evidence, ...]) -> Device:
    return replace(d, addresses=addresses, evidence=evidence)
