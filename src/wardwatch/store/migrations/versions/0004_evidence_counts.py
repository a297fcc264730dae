"""Evidence repeat counts: how often each piece of evidence was seen, per analysed capture.

A device's count for one piece of evidence is the sum over its rows; ingesting a capture again replaces that
capture's row. Existing evidence is counted once, under the capture of its first sighting.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_counts",
        sa.Column("device_id", sa.String(80), sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attribute", sa.String(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("capture_id", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "attribute", "value", "source", "capture_id"),
    )
    op.execute(
        "INSERT INTO evidence_counts (device_id, attribute, value, source, capture_id, count) "
        "SELECT device_id, attribute, value, source, COALESCE(capture_id, ''), 1 FROM evidence"
    )


def downgrade() -> None:
    op.drop_table("evidence_counts")
