"""Database schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create exactly these tables.

Times are integer nanoseconds since the Unix epoch (UTC). ``vlan`` 0 means "untagged" (VLAN id 0 is a
priority tag, never a VLAN). Flow rows belong to the capture they were read from: re-analysing a capture
replaces its rows, so the same input always leaves the same database.

A flow's id is ``captures.ordinal << FLOW_ID_BITS | position`` (its place in the canonical flow order of its
capture): a capture's flows are one range of the primary key (the SQLite rowid), so replacing them needs no
index of their own, and rows arrive in key order. Ids are stable while a capture stays in a database; two
databases that stored the same captures in another order number them differently.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

#: Bits of a flow id that number the flows of one capture (the capture's ordinal sits above them).
FLOW_ID_BITS = 40
#: A 64-bit integer primary key; on SQLite exactly ``INTEGER``, so that it is the table's rowid.
RowId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

captures = Table(
    "captures",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("digest", String(80), nullable=False, unique=True),
    Column("sha256", String(64)),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("format", String(32), nullable=False),
    Column("linktypes", String(128), nullable=False),
    Column("packets", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("first_ns", BigInteger),
    Column("last_ns", BigInteger),
    Column("error", Text),
    Column("error_offset", BigInteger),
    Column("analysed_ns", BigInteger, nullable=False),
    Column("tool_version", String(32), nullable=False),
    Column("ordinal", Integer, nullable=False, unique=True),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("mac", String(17)),
    Column("vendor", Text),
    Column("model", Text),
    Column("device_type", Text),
    Column("firmware", Text),
    Column("os", Text),
    Column("first_ns", BigInteger, nullable=False),
    Column("last_ns", BigInteger, nullable=False),
    Column("mac_randomized", Boolean, nullable=False),
    Column("router", Boolean, nullable=False),
    Column("via", String(80)),
)

device_addresses = Table(
    "device_addresses",
    metadata,
    Column("device_id", String(80), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("ip", String(45), primary_key=True),
    Column("vlan", Integer, primary_key=True),
    Column("first_ns", BigInteger, nullable=False),
    Column("last_ns", BigInteger, nullable=False),
    Column("source", String(32), nullable=False),
    Column("confidence", Float, nullable=False),
    Index("ix_device_addresses_ip", "ip"),
)

device_vlans = Table(
    "device_vlans",
    metadata,
    Column("device_id", String(80), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("vlan", Integer, primary_key=True),
)

device_hostnames = Table(
    "device_hostnames",
    metadata,
    Column("device_id", String(80), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("confidence", Float, nullable=False),
)

evidence = Table(
    "evidence",
    metadata,
    Column("device_id", String(80), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("attribute", String(32), primary_key=True),
    Column("value", Text, primary_key=True),
    Column("source", String(64), primary_key=True),
    Column("confidence", Float, nullable=False),
    Column("capture_id", String(16)),
    Column("packet", BigInteger),
    Column("first_ns", BigInteger, nullable=False),
    Column("last_ns", BigInteger, nullable=False),
)

evidence_counts = Table(
    "evidence_counts",
    metadata,
    Column("device_id", String(80), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("attribute", String(32), primary_key=True),
    Column("value", Text, primary_key=True),
    Column("source", String(64), primary_key=True),
    # the capture of the evidence's first sighting in the analysis that counted it ('' when unknown)
    Column("capture_id", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
)
"""How often each piece of evidence was seen, per analysed capture: a device's count is the sum, and ingesting
the same capture again replaces its row instead of adding to it."""

flows = Table(
    "flows",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=False),
    Column("capture_id", String(16), ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    Column("proto", Integer, nullable=False),
    Column("src_ip", String(45), nullable=False),
    Column("src_port", Integer),
    Column("dst_ip", String(45), nullable=False),
    Column("dst_port", Integer),
    Column("first_ns", BigInteger, nullable=False),
    Column("last_ns", BigInteger, nullable=False),
    Column("packets_src", BigInteger, nullable=False),
    Column("packets_dst", BigInteger, nullable=False),
    Column("bytes_src", BigInteger, nullable=False),
    Column("bytes_dst", BigInteger, nullable=False),
    Column("tcp_flags_src", Integer, nullable=False),
    Column("tcp_flags_dst", Integer, nullable=False),
    Column("initiator", String(16), nullable=False),
    Column("vlans", String(64), nullable=False),
    Column("src_device", String(80)),
    Column("dst_device", String(80)),
    Index("ix_flows_src_device", "src_device"),
    Index("ix_flows_dst_device", "dst_device"),
)

skipped = Table(
    "skipped",
    metadata,
    Column("capture_id", String(16), ForeignKey("captures.id", ondelete="CASCADE"), primary_key=True),
    Column("reason", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("examples", String(128), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("ts_ns", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    # no foreign keys: a device folded into another later keeps the events that named it
    Column("device_id", String(80)),
    Column("peer_id", String(80)),
    Column("service", String(32)),
    Column("summary", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("sensor", String(255), nullable=False),
    Index("ix_events_ts_ns", "ts_ns"),
)
"""Live monitoring's event log, append-only; ``id`` orders it (``wardwatch events --after``). ``detail`` is a
JSON object of further fields."""

sensor_status = Table(
    "sensor_status",
    metadata,
    Column("sensor", String(255), primary_key=True),
    Column("interface", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("started_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("packets", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("kernel_packets", BigInteger, nullable=False),
    Column("drops", BigInteger, nullable=False),
    Column("outgoing", BigInteger, nullable=False),
    Column("queue_blocks", Integer, nullable=False),
    Column("ring_blocks", Integer, nullable=False),
    Column("backlog", Integer, nullable=False),
    Column("packets_per_s", Float, nullable=False),
    Column("bytes_per_s", Float, nullable=False),
    Column("message", Text, nullable=False),
)
"""The latest operational figures of each monitored interface (one row per sensor and interface)."""

suppressions = Table(
    "suppressions",
    metadata,
    Column("finding_id", String(96), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("until_ns", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)
"""Findings a person suppressed: never without a reason, never without an expiry (``until_ns``)."""

assets = Table(
    "assets",
    metadata,
    Column("asset_id", String(128), primary_key=True),
    Column("vendor", Text),
    Column("model", Text),
    Column("serial", Text),
    Column("firmware", Text),
    Column("mac", String(17)),
    Column("ip", String(45)),
    Column("location", Text),
    Column("extra", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("imported_ns", BigInteger, nullable=False),
)
"""The hospital's asset list as last imported (a row per asset id; importing it again replaces the rows).
``extra`` is a JSON object of the list's other columns; ``source`` the file and line."""

#: Alembic's bookkeeping table, as Alembic creates it (a new database is stamped with the head revision
#: through it); kept apart from ``metadata``, which holds wardwatch's own tables.
alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
