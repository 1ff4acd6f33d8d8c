"""Command-line arguments: `key=value` / `key:value` pairs and `--input` documents (spec 11)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
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
    if not _finite(value):  # `.nan`, `.inf`: JSON has no such numbers; keep what was typed
        return text
    if isinstance(value, (str, int, float, bool, list, dict)) or value is None:
        return value
    return text


def _finite(value: Any) -> bool:
    """False when a float anywhere in the value is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


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
            value = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise BadInput(f"--input {item[:40]!r}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        except ValueError as exc:  # NaN, Infinity: not JSON, although Python's reader takes them
            raise BadInput(f"--input {item[:40]!r}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise BadInput(f"--input {item[:40]!r}: the input must be a JSON object")
        out.update(value)
    out.update(parse_pairs(pairs, "--input"))
    return out


# -- argparse types: a bad value is a usage error (exit 2) with a sentence -----------------

MAX_ID = 2**63 - 1


def int_range(low: int, high: int | None = None, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` (no upper bound when None)."""
    bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; give a whole number {bounds}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text} is out of range; give a whole number {bounds}")
        return value

    return parse


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (e.g. 30 or 2.5)") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds (e.g. 30 or 2.5)")
    return value
