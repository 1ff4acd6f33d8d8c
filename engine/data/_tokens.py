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
    def create_token(self, name: str, scopes: Sequence[str], expires_at: datetime | None = None,
                     jwt_key: bytes | None = None) -> dict[str, Any]:
        """A new token: its row and, this once, the token itself (`token`). With `jwt_key`, a
        JWT (HS256) signed with it, carrying its scopes and expiry; its row (by its `jti`)
        is what revokes it."""
        created = utcnow()
        if jwt_key is None:
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            key = token
        else:
            import jwt

            key = secrets.token_urlsafe(16)
            claims: dict[str, Any] = {"sub": name, "scope": " ".join(scopes), "jti": key, "iat": int(created.timestamp())}
            if expires_at is not None:
                claims["exp"] = int(expires_at.timestamp())
            token = jwt.encode(claims, jwt_key, algorithm="HS256")
        values = {"name": name, "token_hash": token_hash(key), "scopes": ",".join(scopes), "created_at": created,
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

    def token_for(self, token: str, jwt_key: bytes | None = None) -> dict[str, Any] | None:
        """The live token a client sent (not revoked, not expired), or None. A JWT is checked
        with `jwt_key` (signature, expiry), then by its `jti`."""
        key = token
        if token.count(".") == 2:
            if jwt_key is None:
                return None
            import jwt

            try:
                key = str(jwt.decode(token, jwt_key, algorithms=["HS256"], options={"require": ["jti"]})["jti"])
            except jwt.PyJWTError:
                return None
        query = select(*_SHOWN).where(api_tokens.c.token_hash == token_hash(key))
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None or row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= utcnow()):
            return None
        return _shown(dict(row))


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in row.items() if k != "token_hash"}
    row["scopes"] = [s for s in str(row["scopes"]).split(",") if s]
    return row
