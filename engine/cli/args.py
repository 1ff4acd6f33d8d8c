"""Command-line arguments: `key=value` / `key:value` pairs, `--input` and `--input-json`
documents (spec 11), and argparse types.

A pair's value is typed by what it feeds (`build_input`): text where the schema admits a
string or says nothing, JSON otherwise. So `file=123` stays "123" for a string argument and
`n=50` is 50 for an integer one, and no shell-ish parsing eats `#` or `:` in a message.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from legion.dsl.durations import MAX_DURATION, MAX_DURATION_DAYS
from legion.engine.errors import BadInput

Item = dict[str, Any] | tuple[str, str]  # a JSON object given whole, or one key and its text


def split_pair(pair: str, what: str = "argument") -> tuple[str, str]:
    """`key=value` or `key:value`, cut at whichever of `=` and `:` comes first."""
    cut = min((i for i in (pair.find("="), pair.find(":")) if i > 0), default=-1)
    if cut <= 0:
        raise BadInput(f"{what} {pair!r} is not key=value or key:value (e.g. name=Ada or url:http://host/)")
    return pair[:cut], pair[cut + 1:]


def input_items(pairs: Sequence[str], documents: Sequence[str] = (), input_json: str | None = None,
                what: str = "argument") -> list[Item]:
    """What the command line gives, in the order it applies (later keys win): the object of
    `--input-json`, then each `--input` (a JSON object, @file.json or key=value), then the
    key=value arguments. Malformed pieces are refused here, before anything else happens;
    the values of pairs stay text until `build_input` knows the schema they feed."""
    items: list[Item] = []
    if input_json is not None:
        items.append(read_input_json(input_json))
    for item in documents:
        if item.startswith("@"):
            path = Path(item[1:])
            try:
                text = read_input_file(path, f"--input {item}")
            except OSError as exc:
                raise BadInput(f"--input {item}: cannot read {path}: {exc.strerror or exc}") from None
        elif item.lstrip().startswith("{"):
            text = item
        else:
            items.append(split_pair(item, "--input"))
            continue
        items.append(_json_object(text, f"--input {item[:40]!r}"))
    items += [split_pair(pair, what) for pair in pairs]
    return items


def read_input_json(source: str) -> dict[str, Any]:
    """The JSON object in the file `source`, or on stdin when it is `-`."""
    if source == "-":
        where = "--input-json - (stdin)"
        text = read_stdin(where)
    else:
        where = f"--input-json {source}"
        try:
            text = read_input_file(Path(source), where)
        except OSError as exc:
            raise BadInput(f"--input-json {source}: cannot read it: {exc.strerror or exc}") from None
    return _json_object(text, where)


# The most an input file (or stdin) may hold. Inputs are stored with the run, and MariaDB's
# default max_allowed_packet is 16 MiB; a larger input is a mistake (`@/dev/zero`, the wrong
# file) that should fail at once rather than after reading it all.
MAX_INPUT_BYTES = 8 * 1024 * 1024


def read_input_file(path: Path, where: str) -> str:
    """The text of an input file; BadInput, naming `where`, when it is larger than
    MAX_INPUT_BYTES or not UTF-8. OSError (missing, a folder, no permission) is left to the
    caller, which words it for its option."""
    with path.open("rb") as file:
        return decode_input(file.read(MAX_INPUT_BYTES + 1), where)


def read_stdin(where: str) -> str:
    """stdin's text, checked like an input file's. Read as bytes when it has them: decoding is
    then ours (strict UTF-8), not the locale's, which may turn bad bytes into lone surrogates."""
    if sys.stdin is None:
        return ""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:  # a text stream put in place of stdin (an embedding program, a test)
        return decode_input(sys.stdin.read(MAX_INPUT_BYTES + 1).encode("utf-8", "surrogateescape"), where)
    return decode_input(binary.read(MAX_INPUT_BYTES + 1), where)


def decode_input(data: bytes, where: str) -> str:
    if len(data) > MAX_INPUT_BYTES:
        raise BadInput(f"{where}: more than {MAX_INPUT_BYTES // (1024 * 1024)} MiB; give a smaller input "
                       "(a run's input is stored with it)")
    try:
        return data.decode("utf-8-sig")  # a leading byte order mark is not part of the JSON
    except UnicodeDecodeError as exc:
        raise BadInput(f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                       "give the input as UTF-8") from None


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # NaN, Infinity: not JSON, although Python's reader takes them
        raise BadInput(f"{where}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BadInput(f"{where}: the input must be a JSON object")
    return value


def loads(text: str) -> Any:
    """JSON text as a value; ValueError for what JSON cannot hold (NaN, Infinity, 1e999),
    although Python's reader takes it."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def build_input(items: list[Item], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The items merged in order, each key=value text typed by what `schema` (a JSON Schema
    of an object: a chain's `input`, a function's arguments) says of its key."""
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, tuple):
            key, text = item
            out[key] = typed_value(text, property_schema(schema, key), schema)
        else:
            out.update(item)
    return out


def typed_value(text: str, schema: Any, root: Any = None) -> Any:
    """The text itself when `schema` admits a string (or says nothing); otherwise the text
    read as JSON (`50`, `true`, `null`, `[1, 2]`, `{"a": 1}`), and the text again when it
    is not JSON, so that validation says what is wrong with it."""
    if admits_string(schema, root):
        return text
    try:
        return loads(text)
    except ValueError:
        return text


def property_schema(schema: Any, key: str) -> Any:
    """The schema an object schema gives the property `key`; None when it does not describe it."""
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and key in properties:
        return properties[key]
    patterns = schema.get("patternProperties")
    if isinstance(patterns, Mapping):
        for pattern, sub in patterns.items():
            try:
                if re.search(pattern, key):
                    return sub
            except re.error:
                continue
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None


def admits_string(schema: Any, root: Any = None, depth: int = 0) -> bool:
    """Whether some string fits `schema` as far as its types say (no schema: yes). Every
    keyword that restricts types counts: `type`, `enum`, `const`, `$ref` (to `root`'s
    definitions), `anyOf`/`oneOf` (some branch) and `allOf` (every branch)."""
    if schema is None or schema is True or depth > 32:
        return True
    if schema is False:
        return False
    if not isinstance(schema, Mapping):
        return True
    if "const" in schema and not isinstance(schema["const"], str):
        return False
    if isinstance(schema.get("enum"), list) and not any(isinstance(v, str) for v in schema["enum"]):
        return False
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "string" or isinstance(kind, list) and "string" not in kind:
        return False
    ref = schema.get("$ref")
    if isinstance(ref, str) and not admits_string(_resolve(ref, root), root, depth + 1):
        return False
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches and not any(admits_string(b, root, depth + 1) for b in branches):
            return False
    branches = schema.get("allOf")
    if isinstance(branches, list) and not all(admits_string(b, root, depth + 1) for b in branches):
        return False
    return True


def _resolve(ref: str, root: Any) -> Any:
    """The schema a local `$ref` (`#/$defs/Name`) points at in `root`; None (anything) else."""
    if not ref.startswith("#") or not isinstance(root, Mapping):
        return None
    node: Any = root
    for part in ref[1:].split("/")[1:] if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


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


def task_ref(text: str) -> int | tuple[str, int]:
    """An argparse type: a task id, or `RUN_ID/NUMBER` (the step run NUMBER of a run, whose
    id may be shortened to a unique prefix)."""
    run, slash, number = text.strip().rpartition("/")
    if not slash:
        return int_range(1, MAX_ID, "a task id (or RUN_ID/NUMBER)")(text)
    if not run:
        raise argparse.ArgumentTypeError(f"{text!r}: give RUN_ID/NUMBER, such as 3f2a/2 (a run id or its first characters, then a step run number)")
    return run, int_range(1, MAX_ID, "a step run number")(number)


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds, at most MAX_DURATION (ten years,
    the bound of every duration in Legion)."""
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (e.g. 30 or 2.5)") from None
    if math.isnan(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds (e.g. 30 or 2.5)")
    if value > MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{text} is too long; give at most {MAX_DURATION:.0f} seconds "
                                         f"({MAX_DURATION_DAYS} days)")
    return value
