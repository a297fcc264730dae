"""Flow ids become 64-bit integers: ``capture ordinal << 40 | position`` (the SQLite rowid).

Captures get an ``ordinal`` (1, 2, ... in the order they were first analysed). A capture's flows are then one
range of the primary key: replacing them needs no ``capture_id`` index, and inserting them appends to the
B-tree instead of scattering text keys through it. Existing flows are renumbered in their canonical order
(first packet, protocol, endpoints) within their capture.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FLOW_ID_BITS = 40
_COLUMNS = (
    "capture_id, proto, src_ip, src_port, dst_ip, dst_port, first_ns, last_ns, packets_src, packets_dst, "
    "bytes_src, bytes_dst, tcp_flags_src, tcp_flags_dst, initiator, vlans, src_device, dst_device"
)


def _flows_table(id_type: sa.types.TypeEngine[int] | sa.types.TypeEngine[str]) -> None:
    op.create_table(
        "flows",
        sa.Column("id", id_type, nullable=False, autoincrement=False),
        sa.Column("capture_id", sa.String(16), nullable=False),
        sa.Column("proto", sa.Integer(), nullable=False),
        sa.Column("src_ip", sa.String(45), nullable=False),
        sa.Column("src_port", sa.Integer()),
        sa.Column("dst_ip", sa.String(45), nullable=False),
        sa.Column("dst_port", sa.Integer()),
        sa.Column("first_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_ns", sa.BigInteger(), nullable=False),
        sa.Column("packets_src", sa.BigInteger(), nullable=False),
        sa.Column("packets_dst", sa.BigInteger(), nullable=False),
        sa.Column("bytes_src", sa.BigInteger(), nullable=False),
        sa.Column("bytes_dst", sa.BigInteger(), nullable=False),
        sa.Column("tcp_flags_src", sa.Integer(), nullable=False),
        sa.Column("tcp_flags_dst", sa.Integer(), nullable=False),
        sa.Column("initiator", sa.String(16), nullable=False),
        sa.Column("vlans", sa.String(64), nullable=False),
        sa.Column("src_device", sa.String(80)),
        sa.Column("dst_device", sa.String(80)),
        sa.ForeignKeyConstraint(
            ["capture_id"], ["captures.id"], name="fk_flows_capture_id_captures", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_flows"),
    )
    op.create_index("ix_flows_src_device", "flows", ["src_device"])
    op.create_index("ix_flows_dst_device", "flows", ["dst_device"])


def upgrade() -> None:
    with op.batch_alter_table("captures") as batch:
        batch.add_column(sa.Column("ordinal", sa.Integer(), nullable=True))
    conn = op.get_bind()
    ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM captures ORDER BY analysed_ns, id"))]
    for n, capture in enumerate(ids, start=1):
        conn.execute(sa.text("UPDATE captures SET ordinal = :n WHERE id = :id"), {"n": n, "id": capture})
    with op.batch_alter_table("captures") as batch:
        batch.alter_column("ordinal", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint("uq_captures_ordinal", ["ordinal"])

    # copy the flows aside (no constraints travel with the copy), rebuild the table, renumber into it
    op.execute(f"CREATE TABLE flows_0002 AS SELECT id, {_COLUMNS} FROM flows")
    op.drop_index("ix_flows_capture_id", table_name="flows")
    op.drop_index("ix_flows_src_device", table_name="flows")
    op.drop_index("ix_flows_dst_device", table_name="flows")
    op.drop_table("flows")
    _flows_table(sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
    op.execute(
        f"INSERT INTO flows (id, {_COLUMNS}) "
        f"SELECT c.ordinal * {1 << FLOW_ID_BITS} + ROW_NUMBER() OVER (PARTITION BY f.capture_id ORDER BY "
        "f.first_ns, f.proto, f.src_ip, f.src_port, f.dst_ip, f.dst_port, f.id) - 1, "
        + ", ".join(f"f.{c.strip()}" for c in _COLUMNS.split(","))
        + " FROM flows_0002 f JOIN captures c ON c.id = f.capture_id"
    )
    op.drop_table("flows_0002")


def downgrade() -> None:
    op.execute(f"CREATE TABLE flows_0003 AS SELECT id, {_COLUMNS} FROM flows")
    op.drop_index("ix_flows_src_device", table_name="flows")
    op.drop_index("ix_flows_dst_device", table_name="flows")
    op.drop_table("flows")
    _flows_table(sa.String(24))
    op.create_index("ix_flows_capture_id", "flows", ["capture_id"])
    op.execute(f"INSERT INTO flows (id, {_COLUMNS}) SELECT CAST(id AS VARCHAR(24)), {_COLUMNS} FROM flows_0003")
    op.drop_table("flows_0003")
    with op.batch_alter_table("captures") as batch:
        batch.drop_constraint("uq_captures_ordinal", type_="unique")
        batch.drop_column("ordinal")
