"""Walking value trees (mappings, lists and leaves), as YAML and JSON give them.

Templates, validation and the engine's masking of secrets all walk them the same way; no
third-party imports here, so that masking loads without Jinja2.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every leaf (not a mapping or a list) of a tree, with its path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, path + (index,))
    else:
        yield path, value
