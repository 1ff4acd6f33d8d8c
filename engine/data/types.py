"""Column types that behave the same on SQLite, PostgreSQL and MariaDB/MySQL.

The migrations import these too, so they must stay backwards compatible: a change here is a
change to every database already created.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, Text, TypeDecorator
from sqlalchemy.dialects import mysql

from legion.engine.errors import BadInput

MYSQL = ("mysql", "mariadb")
# As fast as json.dumps with its defaults (one shared C encoder), but strict.
_ENCODER = json.JSONEncoder(allow_nan=False)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in, an aware UTC datetime out, on every backend.

    PostgreSQL stores `timestamptz`. SQLite and MySQL have no time zones, so the value is
    stored as naive UTC and the zone is put back on read. MySQL's DATETIME drops fractions of
    a second unless asked (fsp=6), which would break ordering of tasks within one second.
    A naive datetime is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        else:
            value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_dumps(value: Any) -> str:
    """The text of a JSON column, the same on every backend: standard JSON only. NaN and
    infinity (which PostgreSQL and MariaDB refuse and SQLite would store as invalid JSON) and
    values JSON has no form for are BadInput."""
    try:
        return _ENCODER.encode(value)
    except ValueError as exc:
        raise BadInput(
            f"A value cannot be stored as JSON: {exc}. JSON has no NaN or infinity; use null or a string."
        ) from exc
    except TypeError as exc:
        raise BadInput(f"A value cannot be stored as JSON: {exc}.") from exc


# SQL NULL for Python None (not the JSON text 'null'), so "no output yet" is a plain NULL that
# `IS NULL` finds on every backend.
Json = JSON(none_as_null=True)

# MySQL's TEXT holds only 64 KiB; chain sources and log messages may be longer.
LongText = Text().with_variant(mysql.LONGTEXT(), *MYSQL)

# 64-bit ids for the tables that grow with every step run; SQLite only autoincrements a
# column declared exactly INTEGER PRIMARY KEY (which is 64-bit there anyway).
BigId = BigInteger().with_variant(Integer(), "sqlite")
