"""200 concurrent `POST /api/runs` against a `legion api` process, on SQLite and on
PostgreSQL: every request is accepted (201) or refused to be tried again (429, 503), and no
accepted run is lost; each ends. The figures are bench/api_load.py's (the same code)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import services
from sqlalchemy.exc import DBAPIError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from api_load import load  # noqa: E402


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_200_concurrent_run_starts_are_each_accepted_or_refused_and_none_is_lost(backend: str) -> None:
    url = None
    if backend == "postgresql":
        try:
            url = services.create_database("postgresql", "legion_load")
        except DBAPIError as exc:
            services.unreachable(f"PostgreSQL is unreachable: {exc.orig}")
    try:
        found = load(200, url)
    finally:
        if url is not None:
            services.drop_database("postgresql", url)
    assert set(found["statuses"]) <= {201, 429, 503}, found["statuses"]
    assert found["accepted"] == found["statuses"].get(201, 0) > 0
    assert found["lost"] == 0 and found["succeeded"] == found["accepted"]
