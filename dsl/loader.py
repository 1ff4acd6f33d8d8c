"""YAML 1.2 in, keeping line and column of every key and item for messages that point into the file.

What a file may make the loader do is bounded (see the limits below): a 700-byte file whose
aliases nest ten deep ("billion laughs") stands for 10^9 values once its aliases are expanded,
and every walk over the data (ours, pydantic's, the checks') would expand them.
"""

from __future__ import annotations

import bisect
import copy
import datetime
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.reader import ReaderError

try:  # PyYAML with libyaml (its wheels have it); without it, ruamel.yaml reads every file (see `_fast`)
    from yaml._yaml import CParser as _CParser
    from yaml.events import AliasEvent as _Alias
    from yaml.events import DocumentEndEvent as _DocumentEnd
    from yaml.events import MappingEndEvent as _MappingEnd
    from yaml.events import MappingStartEvent as _MappingStart
    from yaml.events import ScalarEvent as _Scalar
    from yaml.events import SequenceEndEvent as _SequenceEnd
    from yaml.events import SequenceStartEvent as _SequenceStart
    from yaml.events import StreamEndEvent as _StreamEnd
except ImportError:
    _CParser = None  # type: ignore[misc,assignment]

from legion.dsl.errors import Issue, ValidationFailed

# ---------------------------------------------------------------- limits
#
# Each is far above what a real chain or rehearsal file holds, and each refusal names the file
# (and the place, when there is one) and what to do. A chain of 50,000 steps, each with a
# `with` of three templates and two or three edges with conditions, is 17 MB, about 1.6
# million values, seven levels deep, and loads (bench/validate.py).

# Bytes in one file. Twice the 50,000-step chain above. libyaml reads several MB/s; ruamel.yaml,
# which judges the files libyaml finds wrong (and a few rare constructs), reads about 170 KB/s
# and holds about 100 bytes of memory per byte of YAML, so this bounds one file to a few
# minutes and a few GB however it is written.
MAX_FILE_BYTES = 32 * 2**20
# Levels of nesting (a chain needs about ten: chain, steps, a step, `with`, then the values;
# a JSON Schema in `input` a few more). Every walk over the data recurses once or more per
# level, so this keeps them all far below Python's recursion limit (1,000 frames).
MAX_DEPTH = 64
# Aliases (`*name`) in one file: one per step of the 50,000-step chain, twice over. Hand-written
# chains use a handful, to share a `retry` or a `with` among steps.
MAX_ALIASES = 100_000
# Values (scalars, lists and mappings, keys included) once every alias is expanded: about three
# times the 50,000-step chain. Without aliases, the file size already bounds them; this is what
# stops a small file whose aliases of aliases stand for billions of values, at the alias that
# goes past it and before anything is expanded.
MAX_VALUES = 5_000_000


class _Map:
    """Where a mapping's keys and values were written: `pairs` holds (key, key line, key col,
    value line, value col, the value's own places or None), lines and columns 0-based; a key
    that came in through a merge (`<<`) has no place of its own (None). Keys are looked up
    through a dict made on the first look-up, so that many look-ups stay linear overall."""

    __slots__ = ("pairs", "_index")

    def __init__(self) -> None:
        self.pairs: list[tuple[str, int | None, int | None, int | None, int | None, Any]] = []
        self._index: dict[str, tuple[str, int | None, int | None, int | None, int | None, Any]] | None = None

    def get(self, key: Any) -> tuple[str, int | None, int | None, int | None, int | None, Any] | None:
        if self._index is None:
            self._index = {pair[0]: pair for pair in self.pairs}
        try:
            return self._index.get(key)
        except TypeError:  # an unhashable key in a path
            return None


class _Seq:
    """Where a list's items were written: (line, col, the item's own places or None), 0-based."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[int, int, Any]] = []


class Document:
    """A loaded YAML file: the plain data plus a way to find where any path in it was written.

    `text` is the YAML it was read from (None when the document is part of another one), so
    that what is stored when a chain is applied is exactly what was validated. `positions`
    (made by the loader) says where each key and item was written; without it every place is
    the start of the file.
    """

    def __init__(self, file: str, data: Any, text: str | None = None, positions: _Map | _Seq | None = None) -> None:
        self.file = file
        self.data = data
        self.text = text
        self._positions = positions

    def named(self, file: str) -> Document:
        """The same document under another name (the same file reached by another path)."""
        other = copy.copy(self)
        other.file = file
        return other

    def sub(self, key: str | int) -> Document:
        """The value at `key` as a document of its own (an inline chain in a rehearsal file),
        in the same file and with the same places."""
        node = self._positions
        child = None
        if isinstance(node, _Map):
            pair = node.get(key)
            child = pair[5] if pair is not None else None
        elif isinstance(node, _Seq) and isinstance(key, int) and 0 <= key < len(node.items):
            child = node.items[key][2]
        return Document(self.file, _copy(self.data[key]), None, child)

    def position(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        """1-based (line, col) of the deepest part of `path` present in the file."""
        node = self._positions
        line, col = 1, 1
        for key in path:
            if isinstance(node, _Map):
                pair = node.get(key)
                if pair is None:
                    break
                if pair[1] is not None and pair[2] is not None:
                    line, col = pair[1] + 1, pair[2] + 1
                node = pair[5]
            elif isinstance(node, _Seq) and isinstance(key, int) and 0 <= key < len(node.items):
                il, ic, node = node.items[key]
                line, col = il + 1, ic + 1
            else:
                break
        return line, col

    def value_position(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        """1-based (line, col) of the value at `path` (the key's position when not found)."""
        if not path:
            return 1, 1
        parent = self._positions
        for key in path[:-1]:
            if isinstance(parent, _Map):
                pair = parent.get(key)
                if pair is None:
                    return self.position(path)
                parent = pair[5]
            elif isinstance(parent, _Seq) and isinstance(key, int) and 0 <= key < len(parent.items):
                parent = parent.items[key][2]
            else:
                return self.position(path)
        if isinstance(parent, _Map):
            pair = parent.get(path[-1])
            if pair is not None and pair[3] is not None and pair[4] is not None:
                return pair[3] + 1, pair[4] + 1
        return self.position(path)

    def issue(self, path: tuple[str | int, ...], message: str, *, severity: str = "error", value: bool = False) -> Issue:
        line, col = self.value_position(path) if value else self.position(path)
        return Issue(message=message, file=self.file, line=line, col=col, severity=severity, path=path)


class _NotJson(ValueError):
    pass


def _plain(node: Any) -> Any:
    """Plain JSON values. YAML 1.2's core schema has no timestamps, so a date stays the text it was."""
    if isinstance(node, TaggedScalar):
        if node.tag is not None and str(node.tag.value if hasattr(node.tag, "value") else node.tag).endswith(":value"):
            return str(node.value)
        raise _NotJson(f"YAML tag {getattr(node.tag, 'value', node.tag)} on {node.value!r} is not supported; remove the tag or quote the value")
    if isinstance(node, datetime.datetime):
        return node.isoformat()
    if isinstance(node, datetime.date):
        return node.isoformat()
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    raise _NotJson(f"a YAML value of type {type(node).__name__} is not a JSON value; quote it")


class _Refused(Exception):
    """A limit was passed at `mark` (its 0-based `line` and `column`, from ruamel.yaml or libyaml)."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


def _too_deep() -> str:
    return f"the YAML nests more than {MAX_DEPTH} levels deep here; flatten it (a chain needs about ten levels)"


def _too_many_values() -> str:
    return (f"the file holds more than {MAX_VALUES:,} values; split it into smaller files "
            f"(a step can run another chain: `run: chain:<name>`)")


def _alias_inside(name: str) -> str:
    return (f"alias *{name} is inside the value it names (&{name}), so the data would never end; "
            f"remove the alias or move it out of that value")


def _too_many_aliases() -> str:
    return f"more than {MAX_ALIASES:,} aliases (*name) in one file; write the values out or split the file"


def _alias_too_many_values(name: str, values: int) -> str:
    return (f"alias *{name} takes the data past {MAX_VALUES:,} values once aliases are expanded "
            f"(each alias stands for a copy of what it names, {values:,} values here); "
            f"use fewer aliases of aliases, or write the values out")


def _alias_too_deep(name: str) -> str:
    return (f"alias *{name} nests the data more than {MAX_DEPTH} levels deep once expanded; "
            f"flatten what &{name} names or write the value out here")


class _BoundedComposer(Composer):
    """ruamel.yaml's composer, measuring as it composes what the data will be once aliases
    are expanded, without expanding anything.

    An alias is composed as a reference to the node it names, so a node's expanded size and
    height are known once it is complete: 1 + its children's (an alias child counting what it
    names). Each anchored node's measure is kept, so an alias costs one look-up, and the file
    is refused at the first alias or node that takes the data past a limit.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._open: list[list[int]] = []  # per node being composed: [values in it, its height]
        self._anchored: dict[int, tuple[int, int]] = {}  # id of a complete anchored node: (values, height)
        self._aliases = 0
        self._values = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        depth = len(self._open) + 1  # the root is at depth 1
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # (an undefined alias is ruamel's error)
                self._alias(event, target, depth)
            return super().compose_node(parent, index)
        if depth > MAX_DEPTH:
            raise _Refused(_too_deep(), event.start_mark)
        self._values += 1
        if self._values > MAX_VALUES:
            raise _Refused(_too_many_values(), event.start_mark)
        self._open.append([1, 1])
        try:
            node = super().compose_node(parent, index)
        finally:
            values, height = self._open.pop()
        if node.anchor is not None:
            self._anchored[id(node)] = (values, height)
        self._add(values, height)
        return node

    def _alias(self, event: Any, target: Any, depth: int) -> None:
        name = event.anchor
        measure = self._anchored.get(id(target))
        if measure is None:  # the anchored node is still open: the alias is inside it
            raise _Refused(_alias_inside(name), event.start_mark)
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise _Refused(_too_many_aliases(), event.start_mark)
        values, height = measure
        self._values += values
        if self._values > MAX_VALUES:
            raise _Refused(_alias_too_many_values(name, values), event.start_mark)
        if depth + height - 1 > MAX_DEPTH:
            raise _Refused(_alias_too_deep(name), event.start_mark)
        self._add(values, height)

    def _add(self, values: int, height: int) -> None:
        """Count a complete child in the node that holds it."""
        if self._open:
            holder = self._open[-1]
            holder[0] += values
            holder[1] = max(holder[1], height + 1)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.allow_duplicate_keys = False
    yaml.Composer = _BoundedComposer
    return yaml


def _too_large(file: str, size: str = "") -> ValidationFailed:
    """`size`: what the file was found to be, e.g. "40,000,000 bytes" (empty when not known)."""
    what = f"the file is {size}, more than" if size else "the file holds more than"
    return ValidationFailed([Issue(
        message=f"{what} the {MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES // 2**20} MiB) a chain or rehearsal file may hold; "
                f"split it into smaller files (a step can run another chain: `run: chain:<name>`)",
        file=file,
    )])


def load_text(text: str, file: str = "<chain>") -> Document:
    """Parse YAML text; any YAML problem becomes a ValidationFailed naming file:line:col."""
    if len(text) > MAX_FILE_BYTES:  # characters: never more than its bytes in UTF-8
        raise _too_large(file, f"{len(text):,} characters")
    data, positions = _parse(text, file)
    return Document(file, data, text, positions)


def _parse(text: str, file: str) -> tuple[Any, _Map | _Seq | None]:
    """The plain data of `text` and where its parts were written.

    libyaml reads the file (see `_fast`). What it leaves to the pure-Python ruamel.yaml, which
    read every file before: any text libyaml finds wrong (so that each YAML error keeps its
    message and place), and the few things the fast path does not do itself (tags, `%YAML`
    directives other than 1.2, keys that are lists or mappings, timestamps, odd merges and
    numbers); ruamel.yaml then decides, error or data, as it always did.
    """
    if _CParser is not None:
        try:
            return _fast(text)
        except _Refused as exc:
            raise ValidationFailed([Issue(message=exc.message, file=file, line=exc.mark.line + 1, col=exc.mark.column + 1)]) from None
        except _Duplicate as exc:
            raise ValidationFailed([Issue(message=_duplicate_message(exc.description), file=file,
                                          line=exc.line + 1, col=exc.col + 1)]) from None
        except Exception:  # noqa: BLE001 - _Unusual, libyaml's errors: ruamel.yaml says what is wrong
            pass
    root = _load_ruamel(text, file)
    try:
        return _plain(root), _ruamel_positions(root, {})
    except _NotJson as exc:
        raise ValidationFailed([Issue(message=str(exc), file=file)]) from None
    except RecursionError:
        raise ValidationFailed([Issue(message="the YAML is nested too deeply; flatten it", file=file)]) from None


def _duplicate_message(description: str) -> str:
    """`description`: what follows ruamel.yaml's "found duplicate key", e.g. `"a" with value "2" (original value: "1")`."""
    return f"duplicate key {description}: each key may appear once in a mapping; remove or rename one"


def _load_ruamel(text: str, file: str) -> Any:
    """The text through ruamel.yaml (round trip, YAML 1.2, with the limits of `_BoundedComposer`)."""
    try:
        return _yaml().load(text)
    except _Refused as exc:
        raise ValidationFailed([Issue(message=exc.message, file=file, line=exc.mark.line + 1, col=exc.mark.column + 1)]) from None
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        key = (exc.problem or "").replace("found duplicate key", "").strip()
        raise ValidationFailed([Issue(
            message=_duplicate_message(key),
            file=file, line=(mark.line + 1) if mark else 0, col=(mark.column + 1) if mark else 0,
        )]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        hint = "fix the YAML at this place"
        lines = text.splitlines()
        if mark and mark.line < len(lines) and "cron:" in lines[mark.line]:
            hint = 'quote the cron expression: cron: "*/5 * * * *"'
        raise ValidationFailed([Issue(
            message=f"YAML syntax error: {what}; {hint}",
            file=file, line=(mark.line + 1) if mark else 0, col=(mark.column + 1) if mark else 0,
        )]) from None
    except ReaderError as exc:
        line, col = _line_col(text, exc.position)
        raise ValidationFailed([Issue(
            message=f"the file holds a character YAML does not allow ({exc.character!r}); remove it",
            file=file, line=line, col=col,
        )]) from None
    except RecursionError:
        raise ValidationFailed([Issue(message="the YAML is nested too deeply; flatten it", file=file)]) from None
    except (YAMLError, ValueError, TypeError) as exc:
        raise ValidationFailed([Issue(message=f"YAML error: {exc}", file=file)]) from None
    except Exception as exc:  # the YAML library's own failures on odd input (e.g. `-_`)
        raise ValidationFailed([Issue(message=f"the YAML cannot be read ({type(exc).__name__}: {exc}); check its syntax", file=file)]) from None


def _ruamel_positions(node: Any, seen: dict[int, Any]) -> _Map | _Seq | None:
    """The places ruamel.yaml noted (`lc`) in the form Document reads. An alias is the node it
    names, so each node is converted once (`seen`); the composer bounded the depth."""
    if not isinstance(node, (CommentedMap, CommentedSeq)):
        return None
    done = seen.get(id(node))
    if done is not None:
        return done  # type: ignore[no-any-return]
    if isinstance(node, CommentedSeq):
        seq = _Seq()
        seen[id(node)] = seq
        for i, item in enumerate(node):
            try:
                il, ic = node.lc.item(i)
            except (KeyError, TypeError):
                il, ic = 0, 0
            seq.items.append((il, ic, _ruamel_positions(item, seen)))
        return seq
    mapping = _Map()
    seen[id(node)] = mapping
    for name in node:  # each key as read: a path (str or int) finds it as ruamel.yaml's data did
        key = name
        try:
            kl, kc = node.lc.key(key)
        except (KeyError, TypeError):  # a key that came in through a merge: no place of its own
            mapping.pairs.append((name, None, None, None, None, _ruamel_positions(node[key], seen)))
            continue
        try:
            vl, vc = node.lc.value(key)
        except (KeyError, TypeError):
            vl = vc = None
        mapping.pairs.append((name, kl, kc, vl, vc, _ruamel_positions(node[key], seen)))
    return mapping


# ---------------------------------------------------------------- the fast path: libyaml
#
# libyaml (C, in PyYAML's wheels) turns the text into events, about fifteen times faster than
# ruamel.yaml's pure-Python reader; one loop over the events builds the plain data and the
# places directly, resolving plain scalars by YAML 1.2's core schema, checking the limits as
# `_BoundedComposer` does, and refusing duplicate keys. Without libyaml (a PyYAML built without
# it), every file goes through ruamel.yaml as before: PyYAML's own pure-Python parser would be
# no faster.


class _Unusual(Exception):
    """Something the fast path leaves to ruamel.yaml (an error, or a rare construct)."""


class _Duplicate(Exception):
    def __init__(self, description: str, line: int, col: int) -> None:
        super().__init__(description)
        self.description = description
        self.line = line
        self.col = col


# YAML 1.2 core schema, as ruamel.yaml resolves it (its `implicit_resolvers` for (1, 2)).
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_FLOAT = re.compile(r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0o?[0-7_]+
    |[-+]?[0-9_]+
    |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_TIMESTAMP = re.compile(r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?
    :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
# First characters of the plain scalars that are not strings (the empty scalar is null).
_SPECIAL = frozenset("tTfF~nN<-+.0123456789")
_MERGE = object()  # the plain key `<<`


def _resolve(value: str) -> Any:
    """A plain scalar's value under YAML 1.2's core schema."""
    first = value[:1]
    if first not in _SPECIAL:
        return None if not value else value
    if first in "tTfF":
        return _BOOLS.get(value, value)
    if first in "~nN":
        return None if value in _NULLS else value
    if first == "<":
        return _MERGE if value == "<<" else value
    try:
        if _FLOAT.match(value):
            digits = value.replace("_", "").lower()
            sign = -1 if digits[0] == "-" else 1
            if digits[0] in "+-":
                digits = digits[1:]
            if digits == ".inf":
                return sign * math.inf
            if digits == ".nan":
                return math.nan
            return sign * float(digits)
        if first != "." and _INT.match(value):
            digits = value.replace("_", "")
            sign = -1 if digits[0] == "-" else 1
            if digits[0] in "+-":
                digits = digits[1:]
            base = {"0b": 2, "0x": 16, "0o": 8}.get(digits[:2])
            return sign * (int(digits[2:], base) if base else int(digits))
    except (ValueError, IndexError):  # e.g. `._` or `_`: ruamel.yaml has its own word for them
        raise _Unusual(value) from None
    if first.isdigit() and _TIMESTAMP.match(value):
        # A date stays the text it was (the core schema has no timestamps); a date and time
        # ruamel.yaml reads as a timestamp, so leave it the odd case to it.
        date = _DATE.match(value)
        if date is None:
            raise _Unusual(value)
        try:
            datetime.date(int(date[1]), int(date[2]), int(date[3]))
        except ValueError:
            raise _Unusual(value) from None
    return value


def _copy(value: Any) -> Any:
    """A copy of plain data (what an alias stands for); its depth is bounded by MAX_DEPTH."""
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


class _Open:
    """A list or mapping being read."""

    __slots__ = ("value", "places", "values", "height", "anchor", "line", "col", "key", "key_line", "key_col",
                 "raw_keys", "merges", "block")

    def __init__(self, value: Any, places: Any, anchor: str | None, line: int, col: int, block: bool) -> None:
        self.block = block  # a block mapping (not a flow one: `{...}`)
        self.value = value
        self.places = places
        self.values = 1  # values in it once aliases are expanded, itself included
        self.height = 1
        self.anchor = anchor
        self.line = line
        self.col = col
        self.key: Any = _NO_KEY  # a mapping's key waiting for its value
        self.key_line = 0
        self.key_col = 0
        self.raw_keys: set[Any] | None = None  # the keys as read, once one is not a string
        self.merges: list[tuple[dict[str, Any], _Map]] | None = None  # what `<<` merges in, and its places


_NO_KEY = object()


# Anchor names libyaml and ruamel.yaml both read alike; ruamel.yaml judges the others.
_ANCHOR = re.compile(r"[0-9A-Za-z_-]+\Z")
# The header of a block scalar (`|`, `>-`, `|2+`) as both read it: then a blank or the end.
_BLOCK_HEADER = re.compile(r"[|>][-+0-9]*(?=[ \r\n]|\Z)")
_SKIPPED = re.compile(r"(?:[ \r\n]|#[^\n]*)*")


def _line_starts(text: str) -> list[int]:
    starts = [0]
    find = text.find
    at = find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = find("\n", at + 1)
    return starts


def _check_name(text: str, starts: list[int], mark: Any, name: str) -> None:
    """An anchor (`&name`) or alias (`*name`) at `mark` that ruamel.yaml reads as libyaml does:
    letters, digits, `-` and `_`, then a blank, a flow indicator or the end (ruamel.yaml takes
    more characters into a name, e.g. `&a:`)."""
    at = starts[mark.line] + mark.column + 1 if mark.line < len(starts) else -1
    end = at + len(name)
    if (not _ANCHOR.match(name) or at < 1 or text[at - 1] not in "&*" or text[at:end] != name
            or (end < len(text) and text[end] not in " \r\n,[]{}")):
        raise _Unusual("anchor")


def _after_colon(text: str, starts: list[int], line: int, col: int) -> tuple[int, int]:
    """Just after the `:` before (line, col), 0-based, across blanks; (line, col) when there is none."""
    if line >= len(starts):
        return line, col
    at = starts[line] + col
    while at > 0 and text[at - 1] in " \r\n":
        at -= 1
    if at == 0 or text[at - 1] != ":":
        return line, col
    line = bisect.bisect_right(starts, at) - 1
    return line, at - starts[line]


def _next_token(text: str, starts: list[int], line: int, col: int, indent: int) -> tuple[int, int]:
    """Where ruamel.yaml places an empty value that libyaml places at (line, col), 0-based, just
    after its `:`, in a block mapping whose keys are at column `indent`: at the next token past
    blanks and comments, unless a comment follows the `:` on its line and the mapping goes on
    (then just after the `:`, as libyaml)."""
    if line >= len(starts):
        return line, col
    start = starts[line] + col
    skipped = _SKIPPED.match(text, start)
    at = skipped.end() if skipped else start
    next_line = bisect.bisect_right(starts, at) - 1
    next_col = at - starts[next_line]
    line_end = text.find("\n", start)
    if at < len(text) and next_col >= indent and "#" in text[start:at if line_end < 0 else min(line_end, at)]:
        return line, col
    return next_line, next_col


def _fast(text: str) -> tuple[Any, _Map | _Seq | None]:
    """The data and places of `text`, read by libyaml. Raises _Refused past a limit, _Duplicate
    for a key written twice (the first one whose value is complete, as ruamel.yaml reports it),
    and _Unusual or libyaml's error for what ruamel.yaml is to judge."""
    max_depth, max_values, max_aliases = MAX_DEPTH, MAX_VALUES, MAX_ALIASES
    if "\t" in text:  # ruamel.yaml takes a tab for the start of a token where libyaml reads it as a space
        raise _Unusual("tab")
    parser = _CParser(text)
    get: Callable[[], Any] = parser.get_event  # events, as libyaml reads them
    stack: list[_Open] = []
    # Anchored values: (data, places, line, col, values, height), or None while still open.
    anchors: dict[str, tuple[Any, Any, int, int, int, int] | None] = {}
    values = 0
    aliases = 0
    duplicate: _Duplicate | None = None
    root: Any = None
    root_places: Any = None
    starts: list[int] | None = None  # where each line starts, once an empty value needs it
    shared = False  # whether an alias stands for a list or a mapping

    get()  # the stream's start
    event = get()
    if type(event) is _StreamEnd:
        return None, None
    if event.version not in (None, (1, 2)) or event.tags:
        raise _Unusual("directive")
    try:
        while True:
            event = get()
            kind = type(event)
            if kind is _Scalar or kind is _MappingStart or kind is _SequenceStart:
                # A new value: within the depth and value limits, and untagged (tags go to ruamel.yaml).
                mark = event.start_mark
                if len(stack) >= max_depth:
                    raise _Refused(_too_deep(), mark)
                values += 1
                if values > max_values:
                    raise _Refused(_too_many_values(), mark)
                if event.tag is not None:
                    raise _Unusual("tag")
            if kind is _Scalar:
                if event.style == "|" or event.style == ">":
                    if starts is None:
                        starts = _line_starts(text)
                    at = starts[mark.line] + mark.column if mark.line < len(starts) else -1
                    if not _BLOCK_HEADER.match(text, at):  # e.g. `>#`, which ruamel.yaml refuses
                        raise _Unusual("block scalar header")
                value = _resolve(event.value) if event.implicit[0] else event.value
                if value is _MERGE and (event.anchor is not None or not stack or type(stack[-1].value) is not dict
                                        or stack[-1].key is not _NO_KEY):
                    raise _Unusual("`<<` that is not a key")
                places = None
                line, col = mark.line, mark.column
                if not event.value and event.implicit[0] and stack and stack[-1].block and stack[-1].key is not _NO_KEY:
                    # An empty value in a block mapping: ruamel.yaml places it at the next token.
                    if starts is None:
                        starts = _line_starts(text)
                    line, col = _next_token(text, starts, line, col, stack[-1].col)
                elif not event.value and event.implicit[0] and stack and stack[-1].key is not _NO_KEY and type(stack[-1].value) is dict:
                    # An empty value in a flow mapping: libyaml places it at the next token,
                    # ruamel.yaml just after the `:`.
                    if starts is None:
                        starts = _line_starts(text)
                    line, col = _after_colon(text, starts, line, col)
                count, height = 1, 1
                if event.anchor is not None:
                    if starts is None:
                        starts = _line_starts(text)
                    _check_name(text, starts, mark, event.anchor)
                    anchors[event.anchor] = (value, None, line, col, 1, 1)
            elif kind is _MappingStart or kind is _SequenceStart:
                if event.anchor is not None:
                    if starts is None:
                        starts = _line_starts(text)
                    _check_name(text, starts, mark, event.anchor)
                    anchors[event.anchor] = None
                if kind is _MappingStart:
                    stack.append(_Open({}, _Map(), event.anchor, mark.line, mark.column, not event.flow_style))
                else:
                    stack.append(_Open([], _Seq(), event.anchor, mark.line, mark.column, False))
                continue
            elif kind is _MappingEnd or kind is _SequenceEnd:
                done = stack.pop()
                value, places = done.value, done.places
                if done.merges is not None:
                    for source, source_places in done.merges:
                        for key, item in source.items():
                            if key not in value:
                                value[key] = item
                                pair = source_places.get(key)
                                places.pairs.append((key, None, None, None, None, pair[5] if pair is not None else None))
                line, col, count, height = done.line, done.col, done.values, done.height
                if done.anchor is not None:
                    anchors[done.anchor] = (value, places, line, col, count, height)
            elif kind is _Alias:
                mark = event.start_mark
                name = event.anchor
                if name not in anchors:
                    raise _Unusual("undefined alias")
                if starts is None:
                    starts = _line_starts(text)
                _check_name(text, starts, mark, name)
                target = anchors[name]
                if target is None:
                    raise _Refused(_alias_inside(name), mark)
                aliases += 1
                if aliases > max_aliases:
                    raise _Refused(_too_many_aliases(), mark)
                value, places, line, col, count, height = target
                values += count
                if values > max_values:
                    raise _Refused(_alias_too_many_values(name, count), mark)
                if len(stack) + height > max_depth:
                    raise _Refused(_alias_too_deep(name), mark)
                shared = shared or places is not None  # copied once the whole file is read (`_unshare`)
                # The place of an alias is the place of what it names, as ruamel.yaml gives it.
            elif kind is _DocumentEnd:
                if type(get()) is not _StreamEnd:
                    raise _Unusual("another document")
                break
            else:  # pragma: no cover - libyaml gives no other events inside a document
                raise _Unusual(kind.__name__)

            # A complete value (`value`, `places`, at `line`, `col`; `count` values, `height`
            # levels once expanded) goes into the list or mapping that holds it.
            if not stack:
                root, root_places = value, places
                continue
            holder = stack[-1]
            holder.values += count
            if height >= holder.height:
                holder.height = height + 1
            if type(holder.value) is list:
                holder.value.append(value)
                holder.places.items.append((line, col, places))
                continue
            key = holder.key
            if key is _NO_KEY:  # this is a key
                if places is not None or type(value) in (dict, list):
                    raise _Unusual("a key that is a list or a mapping")
                holder.key, holder.key_line, holder.key_col = value, line, col
                continue
            holder.key = _NO_KEY
            mapping = holder.value
            if key is _MERGE:
                if holder.merges is not None:
                    raise _Unusual("a second merge key")
                holder.merges = []
                if type(value) is dict:
                    holder.merges.append((value, cast(_Map, places)))
                elif type(value) is list and all(type(v) is dict for v in value):
                    holder.merges.extend((v, item[2]) for v, item in zip(value, cast(_Seq, places).items, strict=True))
                else:
                    raise _Unusual("a merge of something other than mappings")
                continue
            name = key if type(key) is str else str(key)
            raw = holder.raw_keys
            if raw is None and name is not key:
                raw = holder.raw_keys = set(mapping)
            if (key in raw) if raw is not None else (name in mapping):
                if type(key) is not str:
                    raise _Unusual("a duplicate key that is not a string")
                if duplicate is None:
                    duplicate = _Duplicate(f'"{key}" with value "{value}" (original value: "{mapping[key]}")',
                                           holder.key_line, holder.key_col)
                continue
            if raw is not None:
                raw.add(key)
            mapping[name] = value
            holder.places.pairs.append((key, holder.key_line, holder.key_col, line, col, places))
    except _Refused:
        try:  # the token after: ruamel.yaml, reading ahead, reports an error there first
            get()
        except Exception:  # noqa: BLE001
            raise _Unusual("an error next to a refusal") from None
        raise
    if duplicate is not None:
        raise duplicate
    if shared and type(root) in (dict, list):
        root = _unshare(root, set())
    return root, root_places


def _unshare(value: Any, seen: set[int]) -> Any:
    """`value` with a copy in place of each list or mapping met again (reached through an alias
    or a merge), so that the data is a tree, as if every alias had been written out. Its depth
    is bounded by MAX_DEPTH."""
    if id(value) in seen:
        return _copy(value)
    seen.add(id(value))
    if type(value) is dict:
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                value[key] = _unshare(item, seen)
    else:
        for i, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                value[i] = _unshare(item, seen)
    return value


def _line_col(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, col


def load_file(path: str | Path) -> Document:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _too_large(str(path), f"{size:,} bytes")
        # Read no more than the limit allows, whatever stat said (a pipe, a device, a file
        # that grew). Text mode: newlines read as `Path.read_text` reads them.
        with path.open(encoding="utf-8") as stream:
            text = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValidationFailed([Issue(message=f"cannot read the file: {exc.strerror}", file=str(path))]) from None
    except UnicodeDecodeError:
        raise ValidationFailed([Issue(message="the file is not UTF-8 text", file=str(path))]) from None
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(str(path))
    return load_text(text, str(path))
