"""Command-line arguments: `key=value` / `key:value` pairs and `--input` documents (spec 11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from legion.engine.errors import BadInput


def parse_scalar(text: str) -> Any:
    """A value read as a YAML flow scalar (`50` a number, `true` a boolean, `[1, 2]` a list);
    anything that does not read as one is the string itself."""
    from ruamel.yaml import YAML

    try:
        yaml = YAML(typ="safe", pure=True)
        yaml.version = (1, 2)
        value = yaml.load(text)
    except Exception:
        return text
    if value is None and text.strip() not in ("null", "~", ""):
        return text
    if isinstance(value, (str, int, float, bool, list, dict)) or value is None:
        return value
    return text


def parse_pairs(pairs: list[str], what: str = "argument") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        cut = min((i for i in (pair.find("="), pair.find(":")) if i > 0), default=-1)
        if cut <= 0:
            raise BadInput(f"{what} {pair!r} is not key=value or key:value (e.g. name=Ada or url:http://host/)")
        out[pair[:cut]] = parse_scalar(pair[cut + 1:])
    return out


def parse_input(documents: list[str], pairs: list[str]) -> dict[str, Any]:
    """`--input '{"n": 50}'`, `--input @file.json`, or `--input name=Ada` pairs, merged in order."""
    out: dict[str, Any] = {}
    for item in documents:
        if item.startswith("@"):
            path = Path(item[1:])
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise BadInput(f"--input {item}: cannot read {path}: {exc.strerror}") from None
        elif item.lstrip().startswith("{"):
            text = item
        else:
            out.update(parse_pairs([item], "--input"))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"--input {item[:40]!r}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(value, dict):
            raise BadInput(f"--input {item[:40]!r}: the input must be a JSON object")
        out.update(value)
    out.update(parse_pairs(pairs, "--input"))
    return out
