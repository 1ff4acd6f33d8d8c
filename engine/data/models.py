"""The database schema, as SQLAlchemy declarative models.

The models define the schema (and the migrations must match them: a test compares the two);
the store reads and writes through their tables with SQLAlchemy Core, which is faster and
hands back plain rows.

Portability rules kept here: every indexed string has a length (MySQL indexes only bounded
columns); JSON is `sqlalchemy.JSON`; datetimes are `UTCDateTime`; constraint names come from
the naming convention so that migrations can refer to them on every backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from legion.engine.data.types import BigId, Json, LongText, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# InnoDB for foreign keys and transactions; a binary collation so that names compare
# case-sensitively, as they do on SQLite and PostgreSQL ("Deploy" and "deploy" are two chains).
MYSQL_TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

NAME = 255  # names, refs and queue names: bounded so they can be indexed on MySQL


def table_args(*items: Any, **options: Any) -> tuple[Any, ...]:
    return (*items, {**MYSQL_TABLE_OPTIONS, **options})


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Extension(Base):
    __tablename__ = "extensions"
    __table_args__ = table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(LongText)
    version: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Runner(Base):
    __tablename__ = "runners"
    __table_args__ = table_args(UniqueConstraint("extension_id", "name"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    extension_id: Mapped[int] = mapped_column(ForeignKey("extensions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    module: Mapped[str] = mapped_column(String(NAME))
    queue: Mapped[str] = mapped_column(String(NAME))
    description: Mapped[str | None] = mapped_column(LongText)


class Function(Base):
    __tablename__ = "functions"
    __table_args__ = table_args(UniqueConstraint("runner_id", "name"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    runner_id: Mapped[int] = mapped_column(ForeignKey("runners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    ref: Mapped[str] = mapped_column(String(NAME), unique=True)  # "ext.runner.function"
    args_schema: Mapped[Any | None] = mapped_column(Json)
    description: Mapped[str | None] = mapped_column(LongText)
    actor: Mapped[Any | None] = mapped_column(Json)


class Chain(Base):
    __tablename__ = "chains"
    __table_args__ = table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    current_version: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChainVersion(Base):
    __tablename__ = "chain_versions"
    __table_args__ = table_args(UniqueConstraint("chain_id", "version"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(ForeignKey("chains.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(LongText)
    definition: Mapped[Any] = mapped_column(Json)
    path: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Relationship(Base):
    """One compiled edge target (kind 'edge') or `on.events` trigger (kind 'entry')."""

    __tablename__ = "relationships"
    __table_args__ = table_args(
        Index(None, "chain_version_id"),
        # Event triggers are looked up by the function that just succeeded.
        Index(None, "trigger_function"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_version_id: Mapped[int] = mapped_column(ForeignKey("chain_versions.id", ondelete="CASCADE"))
    chain_name: Mapped[str] = mapped_column(String(NAME))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # 'edge' | 'entry'
    trigger_step: Mapped[str | None] = mapped_column(String(NAME))
    trigger_function: Mapped[str | None] = mapped_column(String(NAME))
    action_step: Mapped[str | None] = mapped_column(String(NAME))
    action_function: Mapped[str | None] = mapped_column(String(NAME))
    action: Mapped[str | None] = mapped_column(String(16))  # 'step' | 'fail' | null (| 'chain')
    condition: Mapped[str | None] = mapped_column(LongText)
    publish: Mapped[Any | None] = mapped_column(Json)
    # `join` is an SQL keyword; the trailing underscore spares quoting it everywhere.
    join_: Mapped[str | None] = mapped_column(String(32))
    delay: Mapped[float] = mapped_column(Float, default=0.0)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    allow_new_chains: Mapped[bool] = mapped_column(Boolean, default=False)
    edge_index: Mapped[int | None] = mapped_column(Integer)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = table_args(
        Index(None, "chain_name", "created_at"),
        Index(None, "status"),
        Index(None, "parent_run_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a uuid made by the caller
    chain_name: Mapped[str] = mapped_column(String(NAME))
    chain_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    input: Mapped[Any | None] = mapped_column(Json)
    output: Mapped[Any | None] = mapped_column(Json)
    error: Mapped[Any | None] = mapped_column(Json)
    state: Mapped[Any | None] = mapped_column(Json)  # the conductor's state, opaque here
    parent_run_id: Mapped[str | None] = mapped_column(String(36))
    parent_task_id: Mapped[int | None] = mapped_column(BigInteger)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "host:pid" of the process running it: a run whose process is gone is interrupted.
    node: Mapped[str | None] = mapped_column(String(NAME))


class Task(Base):
    """One step run (spec section 2): every attempt and every for_each item is a row."""

    __tablename__ = "tasks"
    __table_args__ = table_args(
        UniqueConstraint("run_id", "number"),
        Index(None, "status"),
        Index(None, "finished_at"),
        # Never hand out an id twice, even after a purge removed the highest ones.
        sqlite_autoincrement=True,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(NAME))
    function: Mapped[str] = mapped_column(String(NAME))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    item_index: Mapped[int | None] = mapped_column(Integer)
    parent_number: Mapped[int | None] = mapped_column(Integer)
    args: Mapped[Any | None] = mapped_column(Json)
    result: Mapped[Any | None] = mapped_column(Json)
    error: Mapped[Any | None] = mapped_column(Json)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    node: Mapped[str | None] = mapped_column(String(NAME))


class TaskLog(Base):
    __tablename__ = "task_logs"
    __table_args__ = table_args(Index(None, "task_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("tasks.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(LongText)
    data: Mapped[Any | None] = mapped_column(Json)


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = table_args()

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    hostname: Mapped[str | None] = mapped_column(String(NAME))
    pid: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="up")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Schedule(Base):
    __tablename__ = "schedules"
    __table_args__ = table_args(
        UniqueConstraint("chain_name", "entry_index"),
        Index(None, "next_fire_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_name: Mapped[str] = mapped_column(String(NAME))
    entry_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # 'cron' | 'every'
    expression: Mapped[str] = mapped_column(String(NAME))
    tz: Mapped[str | None] = mapped_column(String(64))
    input: Mapped[Any | None] = mapped_column(Json)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_fire_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_id: Mapped[str | None] = mapped_column(String(36))


metadata = Base.metadata

extensions = cast(Table, Extension.__table__)
runners = cast(Table, Runner.__table__)
functions = cast(Table, Function.__table__)
chains = cast(Table, Chain.__table__)
chain_versions = cast(Table, ChainVersion.__table__)
relationships = cast(Table, Relationship.__table__)
runs = cast(Table, Run.__table__)
tasks = cast(Table, Task.__table__)
task_logs = cast(Table, TaskLog.__table__)
nodes = cast(Table, Node.__table__)
schedules = cast(Table, Schedule.__table__)
