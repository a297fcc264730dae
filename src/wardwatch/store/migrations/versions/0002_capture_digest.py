"""Captures are identified by an xxh3-128 digest; SHA-256 becomes optional (computed on request).

Rows from 0001 keep their SHA-256 and get ``sha256:<hex>`` as digest, so they stay unique; re-analysing
such a file adds it again under its new identity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("captures") as batch:
        batch.add_column(sa.Column("digest", sa.String(80), nullable=True))
    op.execute("UPDATE captures SET digest = 'sha256:' || sha256")
    with op.batch_alter_table("captures") as batch:
        batch.alter_column("digest", existing_type=sa.String(80), nullable=False)
        batch.create_unique_constraint("uq_captures_digest", ["digest"])
        batch.drop_constraint("uq_captures_sha256", type_="unique")
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM captures WHERE sha256 IS NULL")
    with op.batch_alter_table("captures") as batch:
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_captures_sha256", ["sha256"])
        batch.drop_constraint("uq_captures_digest", type_="unique")
        batch.drop_column("digest")
