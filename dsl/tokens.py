"""Secret reference tokens (spec section 7): what `secret("path#key")` renders to.

`secret()` renders to a reference token, not the value: the worker that runs the step swaps
tokens for values just before the call, so messages, task records and run contexts only ever
hold the reference. A token carries a MAC made with a key the engine keeps: only `secret()`
can make one, so text that merely looks like a token (in a run's input, in a step's result)
is never resolved — a run cannot be made to read any secret it likes. Processes that render
and resolve in different places share the key through LEGION_SECRET_TOKEN_KEY; otherwise each
process makes its own.

Apart from the templates (`legion.dsl.expressions`), only the engine's secret stores and
masking read these, and they load in every command: so no Jinja2 here.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from legion.dsl.errors import ExpressionError

SECRET_OPEN = "«secret:"
SECRET_CLOSE = "»"
_MAC_SEP = "|"
_TOKEN_KEY = os.environ.get("LEGION_SECRET_TOKEN_KEY", "").encode() or os.urandom(32)


def _mac(reference: str) -> str:
    return hmac.new(_TOKEN_KEY, reference.encode(), hashlib.sha256).hexdigest()[:24]


def token_reference(inner: str) -> str | None:
    """The `path#key` of a token's inner text when its MAC is right, else None (not a token)."""
    reference, sep, mac = inner.rpartition(_MAC_SEP)
    if sep and hmac.compare_digest(mac, _mac(reference)):
        return reference
    return None


def split_reference(reference: object) -> tuple[str, str]:
    """`"path#key"` as (path, key); ExpressionError naming the reference when it is not one."""
    if isinstance(reference, str):
        path, sep, key = reference.partition("#")
        if (sep and path.strip("/") and key and "#" not in key and path == path.strip() and key == key.strip()
                and not any(c in reference for c in (SECRET_OPEN[0], SECRET_CLOSE, _MAC_SEP))):
            return path, key
    raise ExpressionError(f"secret({reference!r}): a secret reference is 'path#key' with both parts "
                          f"non-empty, one '#' and no '|', such as secret('db#password')")


def make_token(reference: object) -> str:
    """The token for a reference: `«secret:path#key|mac»`."""
    path, key = split_reference(reference)
    return f"{SECRET_OPEN}{path}#{key}{_MAC_SEP}{_mac(f'{path}#{key}')}{SECRET_CLOSE}"
