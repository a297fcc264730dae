"""The store: ingest analyses idempotently, read devices, flows, edges and captures back.

One writer at a time; SQLite in WAL mode lets readers (CLI, web) work while it writes. An ingest is one
transaction: a capture's flows and skipped counts are replaced; devices are *merged* (earliest first
sighting, latest last sighting, strongest evidence), so analysing the same capture again changes nothing and
analysing another extends the inventory. After every ingest, devices known only by an IP that some MAC
device is now known to own are folded into that device (flows follow).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from importlib import resources
from typing import Any

import xxhash
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, insert, inspect, select, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from wardwatch.errors import StoreError
from wardwatch.model.analysis import Analysis
from wardwatch.model.capture import CaptureInfo, Skipped
from wardwatch.model.flow import Edge, Flow, FlowColumns, flow_sort_key
from wardwatch.model.inventory import AddressUse, Device, DeviceId, DeviceKind, Evidence
from wardwatch.model.observation import CaptureId, PacketRef
from wardwatch.store import schema as t

#: Newest migration in ``migrations/versions`` (a test checks it against Alembic's own view).
HEAD_REVISION = "0002"
#: Flow rows built and inserted per executemany call.
INSERT_SLICE = 20_000
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


def flow_id(f: Flow) -> str:
    """Stable id of a flow: digest of its capture, 5-tuple and first packet time."""
    return _flow_id(f.capture, f.proto, f.src_ip, f.src_port, f.dst_ip, f.dst_port, f.first_ns)


def _flow_id(
    capture: str, proto: int, src_ip: str, src_port: int | None, dst_ip: str, dst_port: int | None, first_ns: int
) -> str:
    key = f"{capture}|{proto}|{src_ip}|{src_port}|{dst_ip}|{dst_port}|{first_ns}"
    return xxhash.xxh3_128_hexdigest(key.encode())[:24]


FlowRow = tuple[Any, ...]
"""A flow as the ``flows`` table stores it, without its id (``FLOW_COLUMNS[1:]``)."""


def flow_rows(flows: Sequence[Flow]) -> list[FlowRow]:
    """The rows of ``flows`` (read straight from the columns when they are ``FlowColumns``)."""
    if not isinstance(flows, FlowColumns):
        return [
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
    c = flows.columns
    texts = (*flows.texts, None)

    def text(name: str) -> list[Any]:
        return [texts[i] for i in c[name].tolist()]

    def optional(name: str) -> list[int | None]:
        return [None if v < 0 else v for v in c[name].tolist()]

    ptr = flows.vlan_ptr.tolist()
    values = flows.vlan_values.tolist()
    vlans = ["" if a == b else ",".join(map(str, values[a:b])) for a, b in zip(ptr[:-1], ptr[1:], strict=True)]
    return list(
        zip(
            text("capture"), c["proto"].tolist(), text("src_ip"), optional("src_port"), text("dst_ip"),
            optional("dst_port"), c["first_ns"].tolist(), c["last_ns"].tolist(), c["packets_src"].tolist(),
            c["packets_dst"].tolist(), c["bytes_src"].tolist(), c["bytes_dst"].tolist(), c["tcp_flags_src"].tolist(),
            c["tcp_flags_dst"].tolist(), text("initiator"), vlans, text("src_device"), text("dst_device"),
            strict=True,
        )
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


def _insert_dicts(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows given as dicts with the same keys, through ``_bulk_insert``."""
    if rows:
        names = list(rows[0])
        _bulk_insert(conn, table, names, [tuple(r[n] for n in names) for r in rows])


def _vlan_col(vlan: int | None) -> int:
    return 0 if vlan is None else vlan


def _vlan_val(vlan: int) -> int | None:
    return None if vlan == 0 else vlan


class Store:
    """A wardwatch database (SQLite file by default; any SQLAlchemy URL, e.g. PostgreSQL, when configured)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, db: str, create: bool = True) -> Store:
        """Open (migrating as needed) the database ``db``; with ``create=False`` a missing SQLite file is an error."""
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
        """Bring the schema to the newest Alembic revision (Alembic is only loaded when there is work to do)."""
        if self.schema_revision() == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(resources.files("wardwatch.store") / "migrations"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    # --- writing ---------------------------------------------------------------------------------------------

    def ingest(self, analysis: Analysis, tool_version: str, now_ns: int) -> None:
        """Store ``analysis`` in one transaction (idempotent: the same analysis twice leaves the same rows)."""
        try:
            with self.engine.begin() as conn:
                for cap in analysis.captures:
                    self._put_capture(conn, cap, tool_version, now_ns)
                self._merge_devices(conn, analysis.devices)
                by_capture: dict[str, list[FlowRow]] = defaultdict(list)
                for row in flow_rows(analysis.flows):
                    by_capture[row[0]].append(row)
                for cap in analysis.captures:
                    self._replace_flows(conn, cap.id, by_capture.get(cap.id, []))
                    conn.execute(delete(t.skipped).where(t.skipped.c.capture_id == cap.id))
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

    def _put_capture(self, conn: Connection, cap: CaptureInfo, tool_version: str, now_ns: int) -> None:
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
        exists = conn.execute(select(t.captures.c.id).where(t.captures.c.id == cap.id)).first()
        if exists is None:
            conn.execute(
                insert(t.captures).values(
                    id=cap.id, path=cap.path, analysed_ns=now_ns, tool_version=tool_version, sha256=cap.sha256, **values
                )
            )
        else:  # first path and first analysis time are kept: re-analysis must not change the database
            if cap.sha256 is not None:  # a SHA-256 computed once is kept even when later runs skip it
                values["sha256"] = cap.sha256
            conn.execute(update(t.captures).where(t.captures.c.id == cap.id).values(**values))

    def _replace_flows(self, conn: Connection, capture: CaptureId, rows: Sequence[FlowRow]) -> None:
        conn.execute(delete(t.flows).where(t.flows.c.capture_id == capture))
        ids: list[str] = []
        seen: set[str] = set()
        for r in rows:
            fid = base = _flow_id(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
            n = 1
            while fid in seen:  # two flows with one key and start time: disambiguate deterministically
                fid = base[:20] + f"{n:04d}"
                n += 1
            seen.add(fid)
            ids.append(fid)
        # in primary-key order: the B-tree grows at its end instead of splitting pages everywhere; in slices,
        # so the rows are never all in memory twice
        order = sorted(range(len(ids)), key=ids.__getitem__)
        for start in range(0, len(order), INSERT_SLICE):
            _bulk_insert(conn, t.flows, FLOW_COLUMNS, [(ids[k], *rows[k]) for k in order[start : start + INSERT_SLICE]])

    def _merge_devices(self, conn: Connection, devices: Sequence[Device]) -> None:
        ids = [d.id for d in devices]
        existing: dict[str, Any] = {}
        for chunk in _chunks(ids):
            for found in conn.execute(select(t.devices).where(t.devices.c.id.in_(chunk))):
                existing[found.id] = found
        new_rows = []
        for d in devices:
            row = existing.get(d.id)
            if row is None:
                new_rows.append(
                    {
                        "id": d.id,
                        "kind": d.kind.value,
                        "mac": d.macs[0] if d.macs else None,
                        "vendor": d.vendor,
                        "model": d.model,
                        "device_type": d.device_type,
                        "firmware": d.firmware,
                        "os": d.os,
                        "first_ns": d.first_ns,
                        "last_ns": d.last_ns,
                        "mac_randomized": d.mac_randomized,
                        "router": d.router,
                        "via": d.via,
                    }
                )
            else:
                self._widen_device(conn, d.id, d.first_ns, d.last_ns, d.router, d.via, row)
        _insert_dicts(conn, t.devices, new_rows)
        self._merge_children(conn, [(d.id, d) for d in devices])
        self._refresh_vendor(conn, ids)

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

    def _merge_children(self, conn: Connection, items: Sequence[tuple[str, Device]]) -> None:
        """Merge addresses, VLANs, host names and evidence of ``items`` into the rows of their device ids."""
        ids = sorted({dev for dev, _ in items})
        addr_old: dict[tuple[str, str, int], Any] = {}
        vlan_old: set[tuple[str, int]] = set()
        host_old: dict[tuple[str, str], float] = {}
        ev_old: dict[tuple[str, str, str, str], Any] = {}
        for chunk in _chunks(ids):
            for r in conn.execute(select(t.device_addresses).where(t.device_addresses.c.device_id.in_(chunk))):
                addr_old[(r.device_id, r.ip, r.vlan)] = r
            for r in conn.execute(select(t.device_vlans).where(t.device_vlans.c.device_id.in_(chunk))):
                vlan_old.add((r.device_id, r.vlan))
            for r in conn.execute(select(t.device_hostnames).where(t.device_hostnames.c.device_id.in_(chunk))):
                host_old[(r.device_id, r.name)] = r.confidence
            for r in conn.execute(select(t.evidence).where(t.evidence.c.device_id.in_(chunk))):
                ev_old[(r.device_id, r.attribute, r.value, r.source)] = r

        addr_new: dict[tuple[str, str, int], dict[str, Any]] = {}
        vlan_new: set[tuple[str, int]] = set()
        host_new: dict[tuple[str, str], float] = {}
        ev_new: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for dev, d in items:
            for a in d.addresses:
                key = (dev, a.ip, _vlan_col(a.vlan))
                cur = addr_new.get(key) or _addr_row(addr_old.get(key))
                addr_new[key] = _merge_addr(key, cur, a)
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
                cur3 = ev_new.get(key3) or _ev_row(ev_old.get(key3))
                ev_new[key3] = _merge_ev(key3, cur3, e)

        def upsert(table: Any, keys: tuple[str, ...], rows: dict[Any, dict[str, Any]], old: Iterable[Any]) -> None:
            old_keys = set(old)
            fresh = [r for k, r in rows.items() if k not in old_keys]
            for k, r in rows.items():
                if k in old_keys:
                    cond = [getattr(table.c, name) == value for name, value in zip(keys, k, strict=True)]
                    conn.execute(update(table).where(*cond).values(**{c: v for c, v in r.items() if c not in keys}))
            _insert_dicts(conn, table, fresh)

        changed_addr = {k: r for k, r in addr_new.items() if _addr_row(addr_old.get(k)) != r}
        upsert(t.device_addresses, ("device_id", "ip", "vlan"), changed_addr, addr_old)
        if vlan_new:
            conn.execute(insert(t.device_vlans), [{"device_id": d, "vlan": v} for d, v in sorted(vlan_new)])
        host_rows = {k: {"device_id": k[0], "name": k[1], "confidence": c} for k, c in host_new.items()}
        upsert(t.device_hostnames, ("device_id", "name"), host_rows, host_old)
        changed_ev = {k: r for k, r in ev_new.items() if _ev_row(ev_old.get(k)) != r}
        upsert(t.evidence, ("device_id", "attribute", "value", "source"), changed_ev, ev_old)

    def _refresh_vendor(self, conn: Connection, ids: Sequence[str]) -> None:
        """Set each device's vendor to its most confident vendor evidence."""
        for chunk in _chunks(list(ids)):
            best: dict[str, tuple[float, str]] = {}
            rows = conn.execute(
                select(t.evidence.c.device_id, t.evidence.c.value, t.evidence.c.confidence).where(
                    t.evidence.c.device_id.in_(chunk), t.evidence.c.attribute == "vendor"
                )
            )
            for r in rows:
                cand = (r.confidence, r.value)
                cur = best.get(r.device_id)
                # highest confidence wins; ties go to the alphabetically first value (order-independent)
                if cur is None or cand[0] > cur[0] or (cand[0] == cur[0] and cand[1] < cur[1]):
                    best[r.device_id] = cand
            current = {
                r.id: r.vendor
                for r in conn.execute(select(t.devices.c.id, t.devices.c.vendor).where(t.devices.c.id.in_(chunk)))
            }
            for dev, (_, vendor) in best.items():
                if current.get(dev) != vendor:
                    conn.execute(update(t.devices).where(t.devices.c.id == dev).values(vendor=vendor))

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
            for table in (t.device_addresses, t.device_vlans, t.device_hostnames, t.evidence):
                conn.execute(delete(table).where(table.c.device_id.in_(chunk)))
            conn.execute(delete(t.devices).where(t.devices.c.id.in_(chunk)))

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


def _addr_row(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "device_id": row.device_id,
        "ip": row.ip,
        "vlan": row.vlan,
        "first_ns": row.first_ns,
        "last_ns": row.last_ns,
        "source": row.source,
        "confidence": row.confidence,
    }


def _merge_addr(key: tuple[str, str, int], cur: dict[str, Any] | None, a: AddressUse) -> dict[str, Any]:
    """Widen an address row by ``a``; the most confident source wins (ties: alphabetical, order-independent)."""
    if cur is None:
        return {
            "device_id": key[0],
            "ip": key[1],
            "vlan": key[2],
            "first_ns": a.first_ns,
            "last_ns": a.last_ns,
            "source": a.source,
            "confidence": a.confidence,
        }
    out = dict(cur, first_ns=min(cur["first_ns"], a.first_ns), last_ns=max(cur["last_ns"], a.last_ns))
    if (a.confidence, _neg(a.source)) > (cur["confidence"], _neg(cur["source"])):
        out["source"] = a.source
        out["confidence"] = a.confidence
    return out


def _neg(text: str) -> tuple[int, ...]:
    """Sort key under which alphabetically *earlier* strings compare greater."""
    return tuple(-ord(c) for c in text) + (1,)


def _ev_row(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "device_id": row.device_id,
        "attribute": row.attribute,
        "value": row.value,
        "source": row.source,
        "confidence": row.confidence,
        "capture_id": row.capture_id,
        "packet": row.packet,
        "first_ns": row.first_ns,
        "last_ns": row.last_ns,
    }


def _merge_ev(key: tuple[str, str, str, str], cur: dict[str, Any] | None, e: Evidence) -> dict[str, Any]:
    """Widen an evidence row by ``e``: highest confidence, earliest first sighting (with its packet), latest last."""
    capture = e.packet.capture if e.packet is not None else None
    number = e.packet.number if e.packet is not None else None
    if cur is None:
        return {
            "device_id": key[0],
            "attribute": key[1],
            "value": key[2],
            "source": key[3],
            "confidence": e.confidence,
            "capture_id": capture,
            "packet": number,
            "first_ns": e.first_ns,
            "last_ns": e.last_ns,
        }
    out = dict(cur, confidence=max(cur["confidence"], e.confidence), last_ns=max(cur["last_ns"], e.last_ns))
    if (e.first_ns, capture or "", number or 0) < (
        cur["first_ns"],
        cur["capture_id"] or "",
        cur["packet"] or 0,
    ):
        out.update(first_ns=e.first_ns, capture_id=capture, packet=number)
    return out


def _with(d: Device, addresses: tuple[AddressUse, ...], evidence: tuple[Evidence, ...]) -> Device:
    return replace(d, addresses=addresses, evidence=evidence)
