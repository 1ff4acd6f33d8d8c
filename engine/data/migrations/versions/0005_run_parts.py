"""Runs written in parts: a for_each group's items, and each of its step runs, waits and
results, as a row of its own, so that an event rewrites what it changed, not every item.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from legion.engine.data.types import Json

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table(
        "run_parts",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("part", sa.String(64), nullable=False),
        sa.Column("grp", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("data", Json, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_parts_run_id_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "part", name="pk_run_parts"),
        **MYSQL,
    )
    op.create_index("ix_run_parts_run_id_revision", "run_parts", ["run_id", "revision"])


def downgrade() -> None:
    op.drop_index("ix_run_parts_run_id_revision", "run_parts")
    op.drop_table("run_parts")
