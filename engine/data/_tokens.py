"""API tokens: made, listed, revoked, and looked up by the SHA-256 of what a client sends."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from legion.engine.data._base import StoreBase, new_id, rows
from legion.engine.data.models import api_tokens
from legion.engine.data.types import utcnow
from legion.engine.errors import NotFound

TOKEN_PREFIX = "lgn_"  # says what a token is where it turns up (a log, a paste)
_SHOWN = (api_tokens.c.id, api_tokens.c.name, api_tokens.c.scopes, api_tokens.c.created_at, api_tokens.c.expires_at,
          api_tokens.c.revoked_at)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore(StoreBase):
    def create_token(self, name: str, scopes: Sequence[str], expires_at: datetime | None = None) -> dict[str, Any]:
        """A new token: its row and, this once, the token itself (`token`)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        values = {"name": name, "token_hash": token_hash(token), "scopes": ",".join(scopes), "created_at": utcnow(),
                  "expires_at": expires_at}
        with self._write() as conn:
            token_id = new_id(conn.execute(insert(api_tokens).values(values)))
        return _shown(dict(values, id=token_id, revoked_at=None)) | {"token": token}

    def list_tokens(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            return [_shown(r) for r in rows(conn.execute(select(*_SHOWN).order_by(api_tokens.c.id)))]

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        with self._write() as conn:
            if not conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=utcnow())).rowcount:
                raise NotFound(f"There is no API token {token_id}; `legion token list` shows them.")
            return _shown(dict(conn.execute(select(*_SHOWN).where(api_tokens.c.id == token_id)).mappings().one()))

    def token_for(self, token: str) -> dict[str, Any] | None:
        """The live token a client sent (not revoked, not expired), or None."""
        query = select(*_SHOWN).where(api_tokens.c.token_hash == token_hash(token))
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None or row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= utcnow()):
            return None
        return _shown(dict(row))


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in row.items() if k != "token_hash"}
    row["scopes"] = [s for s in str(row["scopes"]).split(",") if s]
    return row
