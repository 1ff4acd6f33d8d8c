"""Agents (a name, a partner, settings, when erased), what extensions keep for each agent
(sealed with the agent's own key), and the agent a run is for.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from legion.engine.data.types import BigId, Json, LongText, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("partner", sa.String(255), nullable=True),
        sa.Column("settings", Json, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("erased_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("name", name="uq_agents_name"),
        **MYSQL,
    )
    op.create_table(
        "agent_state",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("extension", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("data", LongText, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_state"),
        sa.UniqueConstraint("agent", "extension", "kind", "key", name="uq_agent_state_agent_extension_kind_key"),
        **MYSQL,
    )
    op.create_index("ix_agent_state_agent_extension_kind", "agent_state", ["agent", "extension", "kind"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("agent", sa.String(255), nullable=True))
        batch.create_index("ix_runs_agent", ["agent"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_agent")
        batch.drop_column("agent")
    op.drop_index("ix_agent_state_agent_extension_kind", "agent_state")
    op.drop_table("agent_state")
    op.drop_table("agents")
