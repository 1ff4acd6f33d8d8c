"""JSON text as every interface writes it (the CLI's `--json`, the REST API): datetimes as
ISO 8601 UTC, objects by their `to_dict`, non-finite floats as null, and every secret value
known to this process masked as `***` on the value's structure (spec section 7), so that what
is written stays JSON.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from legion.engine.secrets import MASKER


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text of `value` with every known secret masked (on the value, so the text is JSON);
    a NaN or infinite float (which JSON cannot hold) becomes null."""
    return encode(masked(value), indent=indent)


def encode(value: Any, *, indent: int | None = None) -> str:
    """JSON text of `value` as it is."""
    try:
        return json.dumps(value, default=_default, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
    return json.dumps(_finite(value), default=_default, ensure_ascii=False, indent=indent, allow_nan=False)


def _finite(value: Any) -> Any:
    """The value with every non-finite float replaced by None (what `_default` makes of other
    objects included)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return _finite(_default(value))


def masked(value: Any) -> Any:
    """`value` with known secrets masked (see `Masker.mask`), on its JSON form: dates and
    objects already turned into strings, tuples into lists."""
    if not MASKER.active:
        return value
    return MASKER.mask(json.loads(encode(value)))
