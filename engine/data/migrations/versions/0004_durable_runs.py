"""Durable runs: the run's revision (advanced by every event that changes its state), step-run
leases (who runs a step run, until when, how many times it was taken), the outbox
(messages a committed event must still publish), and what a node says of itself (`info`:
role, runners, steps in flight).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from legion.engine.data.types import BigId, Json, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("info", Json, nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("claims", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("message", Json, nullable=False),
        sa.Column("due", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sqlite_autoincrement=True,
        **MYSQL,
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_created_at", "outbox")
    op.drop_table("outbox")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("claims")
        batch.drop_column("lease_until")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("revision")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("info")
