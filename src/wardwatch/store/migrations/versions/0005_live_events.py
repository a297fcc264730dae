"""Live monitoring: the event log and the sensors' interface status.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", RowId, nullable=False, autoincrement=True),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(80)),
        sa.Column("peer_id", sa.String(80)),
        sa.Column("service", sa.String(32)),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("sensor", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_ts_ns", "events", ["ts_ns"])
    op.create_table(
        "sensor_status",
        sa.Column("sensor", sa.String(255), nullable=False),
        sa.Column("interface", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.Column("packets", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("kernel_packets", sa.BigInteger(), nullable=False),
        sa.Column("drops", sa.BigInteger(), nullable=False),
        sa.Column("outgoing", sa.BigInteger(), nullable=False),
        sa.Column("queue_blocks", sa.Integer(), nullable=False),
        sa.Column("ring_blocks", sa.Integer(), nullable=False),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.Column("packets_per_s", sa.Float(), nullable=False),
        sa.Column("bytes_per_s", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sensor", "interface", name="pk_sensor_status"),
    )


def downgrade() -> None:
    op.drop_table("sensor_status")
    op.drop_index("ix_events_ts_ns", table_name="events")
    op.drop_table("events")
