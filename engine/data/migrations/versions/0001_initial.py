"""Initial schema: registry, chains and their versions, runs, tasks, nodes, schedules.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from legion.engine.data.types import BigId, Json, LongText, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than imported from the models: a migration is a snapshot and must
# not change when the models do.
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table(
        "extensions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", LongText, nullable=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_extensions"),
        sa.UniqueConstraint("name", name="uq_extensions_name"),
        **MYSQL,
    )
    op.create_table(
        "runners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("extension_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("module", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("description", LongText, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runners"),
        sa.ForeignKeyConstraint(
            ["extension_id"], ["extensions.id"], name="fk_runners_extension_id_extensions", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("extension_id", "name", name="uq_runners_extension_id_name"),
        **MYSQL,
    )
    op.create_table(
        "functions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("runner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("args_schema", Json, nullable=True),
        sa.Column("description", LongText, nullable=True),
        sa.Column("actor", Json, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_functions"),
        sa.ForeignKeyConstraint(
            ["runner_id"], ["runners.id"], name="fk_functions_runner_id_runners", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("runner_id", "name", name="uq_functions_runner_id_name"),
        sa.UniqueConstraint("ref", name="uq_functions_ref"),
        **MYSQL,
    )
    op.create_table(
        "chains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chains"),
        sa.UniqueConstraint("name", name="uq_chains_name"),
        **MYSQL,
    )
    op.create_table(
        "chain_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", LongText, nullable=False),
        sa.Column("definition", Json, nullable=False),
        sa.Column("path", sa.String(1024), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chain_versions"),
        sa.ForeignKeyConstraint(
            ["chain_id"], ["chains.id"], name="fk_chain_versions_chain_id_chains", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("chain_id", "version", name="uq_chain_versions_chain_id_version"),
        **MYSQL,
    )
    op.create_table(
        "relationships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_version_id", sa.Integer(), nullable=False),
        sa.Column("chain_name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("trigger_step", sa.String(255), nullable=True),
        sa.Column("trigger_function", sa.String(255), nullable=True),
        sa.Column("action_step", sa.String(255), nullable=True),
        sa.Column("action_function", sa.String(255), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("condition", LongText, nullable=True),
        sa.Column("publish", Json, nullable=True),
        sa.Column("join_", sa.String(32), nullable=True),
        sa.Column("delay", sa.Float(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("allow_new_chains", sa.Boolean(), nullable=False),
        sa.Column("edge_index", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_relationships"),
        sa.ForeignKeyConstraint(
            ["chain_version_id"],
            ["chain_versions.id"],
            name="fk_relationships_chain_version_id_chain_versions",
            ondelete="CASCADE",
        ),
        **MYSQL,
    )
    op.create_index("ix_relationships_chain_version_id", "relationships", ["chain_version_id"])
    op.create_index("ix_relationships_trigger_function", "relationships", ["trigger_function"])
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("chain_name", sa.String(255), nullable=False),
        sa.Column("chain_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", Json, nullable=True),
        sa.Column("output", Json, nullable=True),
        sa.Column("error", Json, nullable=True),
        sa.Column("state", Json, nullable=True),
        sa.Column("parent_run_id", sa.String(36), nullable=True),
        sa.Column("parent_task_id", sa.BigInteger(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        **MYSQL,
    )
    op.create_index("ix_runs_chain_name_created_at", "runs", ["chain_name", "created_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    op.create_table(
        "tasks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(255), nullable=False),
        sa.Column("function", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=True),
        sa.Column("parent_number", sa.Integer(), nullable=True),
        sa.Column("args", Json, nullable=True),
        sa.Column("result", Json, nullable=True),
        sa.Column("error", Json, nullable=True),
        sa.Column("queued_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_tasks_run_id_runs", ondelete="CASCADE"),
        sa.UniqueConstraint("run_id", "number", name="uq_tasks_run_id_number"),
        sqlite_autoincrement=True,
        **MYSQL,
    )
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_index("ix_tasks_finished_at", "tasks", ["finished_at"])
    op.create_table(
        "task_logs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("task_id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", LongText, nullable=False),
        sa.Column("data", Json, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_task_logs"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_task_logs_task_id_tasks", ondelete="CASCADE"),
        **MYSQL,
    )
    op.create_index("ix_task_logs_task_id", "task_logs", ["task_id"])
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_nodes"),
        sa.UniqueConstraint("name", name="uq_nodes_name"),
        **MYSQL,
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_name", sa.String(255), nullable=False),
        sa.Column("entry_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("expression", sa.String(255), nullable=False),
        sa.Column("tz", sa.String(64), nullable=True),
        sa.Column("input", Json, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("next_fire_at", UTCDateTime(), nullable=False),
        sa.Column("last_fire_at", UTCDateTime(), nullable=True),
        sa.Column("last_run_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_schedules"),
        sa.UniqueConstraint("chain_name", "entry_index", name="uq_schedules_chain_name_entry_index"),
        **MYSQL,
    )
    op.create_index("ix_schedules_next_fire_at", "schedules", ["next_fire_at"])


def downgrade() -> None:
    for table in (
        "schedules", "nodes", "task_logs", "tasks", "runs", "relationships",
        "chain_versions", "chains", "functions", "runners", "extensions",
    ):
        op.drop_table(table)
