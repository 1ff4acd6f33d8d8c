"""Reading a database URL without SQLAlchemy, where a command only needs to look at it.

Importing SQLAlchemy costs a good part of a second; `legion chain validate` in a home with
no database yet only needs to see that the SQLite file is not there.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# What SQLAlchemy's URL pattern makes of `sqlite[+driver]:///...`: no user or host, the
# database up to the query string, percent-escapes undone.
_PLAIN_SQLITE = re.compile(r"sqlite(?:\+\w+)?:///([^?]*)")


def sqlite_path(url: str) -> str | None:
    """The database of a `sqlite:///path` URL (any driver, any query), as
    `make_url(url).database` reads it; None for any other URL (which needs SQLAlchemy)."""
    match = _PLAIN_SQLITE.match(url)
    return None if match is None else unquote(match.group(1))
