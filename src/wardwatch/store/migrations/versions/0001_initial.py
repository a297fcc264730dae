"""Initial schema: captures, devices (addresses, VLANs, host names, evidence), flows, skipped.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "captures",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("linktypes", sa.String(128), nullable=False),
        sa.Column("packets", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("first_ns", sa.BigInteger()),
        sa.Column("last_ns", sa.BigInteger()),
        sa.Column("error", sa.Text()),
        sa.Column("error_offset", sa.BigInteger()),
        sa.Column("analysed_ns", sa.BigInteger(), nullable=False),
        sa.Column("tool_version", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_captures"),
        sa.UniqueConstraint("sha256", name="uq_captures_sha256"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("mac", sa.String(17)),
        sa.Column("vendor", sa.Text()),
        sa.Column("model", sa.Text()),
        sa.Column("device_type", sa.Text()),
        sa.Column("firmware", sa.Text()),
        sa.Column("os", sa.Text()),
        sa.Column("first_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_ns", sa.BigInteger(), nullable=False),
        sa.Column("mac_randomized", sa.Boolean(), nullable=False),
        sa.Column("router", sa.Boolean(), nullable=False),
        sa.Column("via", sa.String(80)),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
    )
    op.create_table(
        "device_addresses",
        sa.Column("device_id", sa.String(80), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("vlan", sa.Integer(), nullable=False),
        sa.Column("first_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_ns", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_device_addresses_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", "ip", "vlan", name="pk_device_addresses"),
    )
    op.create_index("ix_device_addresses_ip", "device_addresses", ["ip"])
    op.create_table(
        "device_vlans",
        sa.Column("device_id", sa.String(80), nullable=False),
        sa.Column("vlan", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_device_vlans_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", "vlan", name="pk_device_vlans"),
    )
    op.create_table(
        "device_hostnames",
        sa.Column("device_id", sa.String(80), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_device_hostnames_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", "name", name="pk_device_hostnames"),
    )
    op.create_table(
        "evidence",
        sa.Column("device_id", sa.String(80), nullable=False),
        sa.Column("attribute", sa.String(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("capture_id", sa.String(16)),
        sa.Column("packet", sa.BigInteger()),
        sa.Column("first_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_evidence_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", "attribute", "value", "source", name="pk_evidence"),
    )
    op.create_table(
        "flows",
        sa.Column("id", sa.String(24), nullable=False),
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
    op.create_index("ix_flows_capture_id", "flows", ["capture_id"])
    op.create_index("ix_flows_src_device", "flows", ["src_device"])
    op.create_index("ix_flows_dst_device", "flows", ["dst_device"])
    op.create_table(
        "skipped",
        sa.Column("capture_id", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("examples", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["capture_id"], ["captures.id"], name="fk_skipped_capture_id_captures", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("capture_id", "reason", name="pk_skipped"),
    )


def downgrade() -> None:
    for table in ("skipped", "flows", "evidence", "device_hostnames", "device_vlans", "device_addresses"):
        op.drop_table(table)
    op.drop_table("devices")
    op.drop_table("captures")
