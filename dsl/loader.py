"""YAML 1.2 in, keeping line and column of every key and item for messages that point into the file."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from legion.dsl.errors import Issue, ValidationFailed


class Document:
    """A loaded YAML file: the plain data plus a way to find where any path in it was written."""

    def __init__(self, file: str, root: Any) -> None:
        self.file = file
        self.root = root
        self.data = _plain(root)

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


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.allow_duplicate_keys = False
    return yaml


def load_text(text: str, file: str = "<chain>") -> Document:
    """Parse YAML text; any YAML problem becomes a ValidationFailed naming file:line:col."""
    try:
        root = _yaml().load(text)
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
        return Document(file, root)
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
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed([Issue(message=f"cannot read the file: {exc.strerror}", file=str(path))]) from None
    except UnicodeDecodeError:
        raise ValidationFailed([Issue(message="the file is not UTF-8 text", file=str(path))]) from None
    return load_text(text, str(path))
