"""Secret reference tokens (spec section 7): what `secret("path#key")` renders to.

`secret()` renders to a reference token, not the value: the worker that runs the step swaps
tokens for values just before the call, so messages, task records and run contexts only ever
hold the reference. A token carries a MAC made with a key the engine keeps, over the
reference and the step run it was made for (its *binding*: run id and step run number, when
`secret()` is called in a step's `with`). Only that step run's call resolves it: a token
copied out of a record — into another run's input, a `legion task run` argument, a step's
result, a context — never resolves, nor does one made outside a step's `with`, nor one
signed with another key. The key is the deployment's, given by `use_key` (the CLI reads
LEGION_SECRET_TOKEN_KEY, or a key generated into LEGION_HOME): every process that renders
or resolves uses the same one. A program that sets none gets LEGION_SECRET_TOKEN_KEY as it
is, else a key of its own.

Apart from the templates (`legion.dsl.expressions`), only the engine's secret stores and
masking read these, and they load in every command: so no Jinja2 here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable

from legion.dsl.errors import ExpressionError

SECRET_OPEN = "«secret:"
SECRET_CLOSE = "»"
_MAC_SEP = "|"


def _process_key() -> bytes:
    # The variable's bytes as the environment holds them (surrogateescape): any key works, UTF-8 or not.
    return os.environ.get("LEGION_SECRET_TOKEN_KEY", "").encode("utf-8", "surrogateescape") or os.urandom(32)


_key: bytes | None = None
_key_source: Callable[[], bytes] = _process_key
_key_lock = threading.Lock()


def use_key(source: Callable[[], bytes]) -> Callable[[], None]:
    """Where the signing key comes from; read on first need (a command that renders no
    `secret()` and resolves none never reads it). Returns what puts back the key there was
    before (its source, and the key itself if it had been read)."""
    global _key, _key_source
    with _key_lock:
        before = _key, _key_source
        _key, _key_source = None, source

    def undo() -> None:
        global _key, _key_source
        with _key_lock:
            _key, _key_source = before

    return undo


def _signing_key() -> bytes:
    global _key
    key = _key
    if key is None:
        with _key_lock:
            if _key is None:
                _key = _key_source()
            key = _key
    return key


def _mac(reference: str, binding: str) -> str:
    # The binding first, with a separator no reference holds: ("a", "b#c") and ("a\nb", "#c")
    # cannot sign the same text.
    return hmac.new(_signing_key(), f"{binding}\n{reference}".encode(), hashlib.sha256).hexdigest()[:24]


def token_reference(inner: str, binding: str) -> str | None:
    """The `path#key` of a token's inner text when its MAC is right for `binding` (the step
    run about to be called), else None: not a token, or not one for this call. An empty
    binding never resolves anything."""
    reference, sep, mac = inner.rpartition(_MAC_SEP)
    if sep and binding and hmac.compare_digest(mac, _mac(reference, binding)):
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


def make_token(reference: object, binding: str) -> str:
    """The token for a reference, bound to a step run: `«secret:path#key|mac»`."""
    path, key = split_reference(reference)
    return f"{SECRET_OPEN}{path}#{key}{_MAC_SEP}{_mac(f'{path}#{key}', binding)}{SECRET_CLOSE}"
