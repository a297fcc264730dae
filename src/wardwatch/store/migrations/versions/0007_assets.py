"""Assets imported from the hospital's asset list (CMMS export).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("asset_id", sa.String(128), nullable=False),
        sa.Column("vendor", sa.Text()),
        sa.Column("model", sa.Text()),
        sa.Column("serial", sa.Text()),
        sa.Column("firmware", sa.Text()),
        sa.Column("mac", sa.String(17)),
        sa.Column("ip", sa.String(45)),
        sa.Column("location", sa.Text()),
        sa.Column("extra", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("imported_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", name="pk_assets"),
    )


def downgrade() -> None:
    op.drop_table("assets")
