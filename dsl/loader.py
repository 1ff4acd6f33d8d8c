"""YAML 1.2 in, keeping line and column of every key and item for messages that point into the file.

What a file may make the loader do is bounded (see the limits below): a 700-byte file whose
aliases nest ten deep ("billion laughs") stands for 10^9 values once its aliases are expanded,
and every walk over the data (ours, pydantic's, the checks') would expand them.
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.reader import ReaderError

from legion.dsl.errors import Issue, ValidationFailed

# ---------------------------------------------------------------- limits
#
# Each is far above what a real chain or rehearsal file holds, and each refusal names the file
# (and the place, when there is one) and what to do. A chain of 50,000 steps, each with a
# `with` of three templates and two or three edges with conditions, is 17 MB, about 1.6
# million values, seven levels deep, and loads (bench/validate.py).

# Bytes in one file. Twice the 50,000-step chain above; ruamel.yaml reads about 170 KB/s and
# holds about 100 bytes of memory per byte of YAML, so this bounds one file to a few minutes
# and a few GB however it is written.
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


class Document:
    """A loaded YAML file: the plain data plus a way to find where any path in it was written.

    `text` is the YAML it was read from (None when the document is part of another one), so
    that what is stored when a chain is applied is exactly what was validated.
    """

    def __init__(self, file: str, root: Any, text: str | None = None) -> None:
        self.file = file
        self.root = root
        self.text = text
        self.data = _plain(root)

    def named(self, file: str) -> Document:
        """The same document under another name (the same file reached by another path)."""
        other = copy.copy(self)
        other.file = file
        return other

    def position(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        """1-based (line, col) of the deepest part of `path` present in the file."""
        node = self.root
        line, col = 1, 1
        for key in path:
            if isinstance(node, CommentedMap) and key in node:
                try:
                    kl, kc = node.lc.key(key)
                    line, col = kl + 1, kc + 1
                except (KeyError, TypeError):
                    pass
                node = node[key]
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
                try:
                    il, ic = node.lc.item(key)
                    line, col = il + 1, ic + 1
                except (KeyError, TypeError):
                    pass
                node = node[key]
            else:
                break
        return line, col

    def value_position(self, path: tuple[str | int, ...]) -> tuple[int, int]:
        """1-based (line, col) of the value at `path` (the key's position when not found)."""
        if not path:
            return 1, 1
        parent = self.root
        for key in path[:-1]:
            try:
                parent = parent[key]
            except (KeyError, IndexError, TypeError):
                return self.position(path)
        last = path[-1]
        try:
            if isinstance(parent, CommentedMap) and last in parent:
                vl, vc = parent.lc.value(last)
                return vl + 1, vc + 1
        except (KeyError, TypeError):
            pass
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
    """A limit was passed at `mark` (ruamel's 0-based place in the text)."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


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
            raise _Refused(f"the YAML nests more than {MAX_DEPTH} levels deep here; flatten it "
                           f"(a chain needs about ten levels)", event.start_mark)
        self._values += 1
        if self._values > MAX_VALUES:
            raise _Refused(f"the file holds more than {MAX_VALUES:,} values; split it into smaller files "
                           f"(a step can run another chain: `run: chain:<name>`)", event.start_mark)
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
            raise _Refused(f"alias *{name} is inside the value it names (&{name}), so the data would never end; "
                           f"remove the alias or move it out of that value", event.start_mark)
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise _Refused(f"more than {MAX_ALIASES:,} aliases (*name) in one file; write the values out "
                           f"or split the file", event.start_mark)
        values, height = measure
        self._values += values
        if self._values > MAX_VALUES:
            raise _Refused(f"alias *{name} takes the data past {MAX_VALUES:,} values once aliases are expanded "
                           f"(each alias stands for a copy of what it names, {values:,} values here); "
                           f"use fewer aliases of aliases, or write the values out", event.start_mark)
        if depth + height - 1 > MAX_DEPTH:
            raise _Refused(f"alias *{name} nests the data more than {MAX_DEPTH} levels deep once expanded; "
                           f"flatten what &{name} names or write the value out here", event.start_mark)
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
    try:
        root = _yaml().load(text)
    except _Refused as exc:
        raise ValidationFailed([Issue(message=exc.message, file=file, line=exc.mark.line + 1, col=exc.mark.column + 1)]) from None
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        key = (exc.problem or "").replace("found duplicate key", "").strip()
        raise ValidationFailed([Issue(
            message=f"duplicate key {key}: each key may appear once in a mapping; remove or rename one",
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
    try:
        return Document(file, root, text)
    except _NotJson as exc:
        raise ValidationFailed([Issue(message=str(exc), file=file)]) from None
    except RecursionError:
        raise ValidationFailed([Issue(message="the YAML is nested too deeply; flatten it", file=file)]) from None


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
