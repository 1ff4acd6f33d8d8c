"""Validation of chain and rehearsal files: every issue at once, each with file:line:col.

Shape and types come from the pydantic model; everything that needs the whole chain (step
references, expressions and the names they use, function signatures, joins, reachability)
is checked here over the raw data, so that one misspelt key does not hide the other problems.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from legion.dsl.catalog import Catalog, missing_function
from legion.dsl.errors import ExpressionError, Issue, LegionError, ValidationFailed
from legion.dsl.expressions import (
    ITEM_NAMES,
    RUN_NAMES,
    STEP_NAMES,
    Condition,
    _is_template,
    template_sources,
)
from legion.dsl.loader import Document, load_file, load_text
from legion.dsl.model import (
    Chain,
    Edge,
    Expect,
    MockEntry,
    Rehearsal,
    Retry,
    ScheduleEntry,
    Step,
    Triggers,
)

OUTPUT_NAMES = frozenset({"input", "ctx", "result", "status", "succeeded", "failed", "error", "run"})
# A message that names an unknown step lists the chain's steps only when they are this few; a
# chain of thousands would repeat thousands of names in every such message.
LISTED_STEPS = 20
# Close-match hints ("did you mean ...?") compare a name with every candidate (difflib, about
# 10 µs a candidate): at most this many comparisons per file, about a second, so that a chain
# of 50,000 steps whose targets are all misspelt is judged in seconds, not hours. Every problem
# is still reported; past the budget, without the hint.
HINT_COMPARISONS = 200_000


def _model_at(root: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that describes the mapping at `path` (for 'allowed keys' hints)."""
    model: type[BaseModel] | None = root
    i = 0
    while i < len(path) and model is not None:
        key = path[i]
        if model is Chain and key == "steps":
            model, i = (Step, i + 2) if i + 1 < len(path) else (None, i + 1)
        elif model is Step and key == "next":
            model, i = (Edge, i + 2) if i + 1 < len(path) else (None, i + 1)
        elif model is Step and key == "retry":
            model, i = Retry, i + 1
        elif model is Chain and key == "on":
            model, i = Triggers, i + 1
        elif model is Triggers and key == "schedule":
            model, i = (ScheduleEntry, i + 2) if i + 1 < len(path) else (None, i + 1)
        elif model is Rehearsal and key == "mocks":
            model, i = (MockEntry, i + 3) if i + 2 < len(path) else (None, i + 1)
        elif model is Rehearsal and key == "expect":
            model, i = Expect, i + 1
        else:
            return None
    return model


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _existing_prefix(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The longest prefix of a pydantic error location that names real keys and items."""
    path: list[Any] = []
    node = data
    for key in loc:
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            break
        path.append(key)
    return tuple(path)


def schema_issues(doc: Document, model: type[BaseModel]) -> tuple[BaseModel | None, list[Issue]]:
    """Validate the document's data against a model; issues grouped by place."""
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    grouped: dict[tuple[Any, ...], list[str]] = {}
    key_issues: set[tuple[Any, ...]] = set()  # problems with a key itself point at the key
    for err in errors:
        loc = tuple(err["loc"])
        path = _existing_prefix(doc.data, loc)
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, path[:-1])
            key = path[-1] if path else loc[-1]
            message = f"unknown key {key!r}"
            if owner is not None:
                allowed = _allowed_keys(owner)
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                message += f"{hint} (allowed here: {', '.join(allowed)})"
        elif err["type"] == "missing":
            message = f"missing required key {loc[len(path)]!r}" if len(loc) > len(path) else "missing value"
        elif err["type"] == "string_pattern_mismatch":
            message = _pattern_message(path, loc, err.get("input"))
        else:
            where = ".".join(str(p) for p in path) or "file"
            text = err["msg"]
            if text.startswith("Value error, "):
                text = text[len("Value error, "):]
            message = f"{where}: {text}"
        if "[key]" in loc:
            key_issues.add(path)
        grouped.setdefault(path, [])
        if message not in grouped[path]:
            grouped[path].append(message)
    issues = []
    for path, messages in grouped.items():
        extra = [m for m in messages if m.startswith("unknown key") or m.startswith("missing")]
        rest = [m for m in messages if m not in extra]
        for message in extra:
            issues.append(doc.issue(path, message))
        if rest:
            issues.append(doc.issue(path, rest[0] if len(rest) == 1 else " or ".join(rest), value=path not in key_issues))
    return None, issues


def _pattern_message(path: tuple[Any, ...], loc: tuple[Any, ...], value: Any) -> str:
    """Say what a name must look like, not which regular expression it failed."""
    if "[key]" in loc and path[:1] == ("steps",):
        return f"step name {value!r}: use letters, digits, '_' and '-', starting with a letter or '_'"
    if path == ("chain",) or (path[-1:] == ("chain",) and "chain" not in path[:-1]):
        return (f"chain name {value!r}: use lowercase letters, digits, '_', '.' and '-', starting with a "
                f"letter or digit (at most 128 characters)")
    if path[-1:] == ("run",) or path[:2] == ("on", "events"):
        return f"{value!r} is not a function reference: write extension.runner.function (three parts) or chain:<name>"
    return f"{'.'.join(map(str, path))}: {value!r} does not have the required form"


class _Checker:
    """Cross-reference checks over the raw chain data (defensive about shapes)."""

    def __init__(self, doc: Document, functions: Catalog | None, chains: Iterable[str] | None) -> None:
        self.doc = doc
        self.functions = functions
        self.chains = set(chains) if chains is not None else None
        self.issues: list[Issue] = []
        # Checked once per source: large chains repeat their templates and conditions, and
        # parsing them (Jinja2, ast) is most of what checking a step costs.
        self._templates: dict[str, frozenset[str] | ExpressionError] = {}
        self._conditions: dict[str, Condition | ExpressionError] = {}
        self._comparisons = HINT_COMPARISONS

    def error(self, path: tuple[Any, ...], message: str, *, value: bool = False) -> None:
        self.issues.append(self.doc.issue(path, message, value=value))

    def warn(self, path: tuple[Any, ...], message: str) -> None:
        self.issues.append(self.doc.issue(path, message, severity="warning"))

    def close_match(self, word: str, candidates: Collection[str]) -> str | None:
        """The candidate closest to `word` (None when none is close, or when the file has
        used up its budget of comparisons)."""
        if len(candidates) > self._comparisons:
            return None
        self._comparisons -= len(candidates)
        close = difflib.get_close_matches(word, list(candidates), n=1)
        return close[0] if close else None

    def condition(self, path: tuple[Any, ...], source: Any, allowed: frozenset[str]) -> None:
        if not isinstance(source, (str, bool)):
            return
        cond = self._conditions.get(source) if isinstance(source, str) else None
        if cond is None:
            try:
                cond = Condition(source)
            except ExpressionError as exc:
                cond = exc
            if isinstance(source, str):
                self._conditions[source] = cond
        if isinstance(cond, ExpressionError):
            self.error(path, cond.message, value=True)
            return
        for name in sorted(cond.names - allowed):
            self.error(path, f"condition {source!r} uses unknown name {name!r}; names here: {', '.join(sorted(allowed))}", value=True)

    def templates(self, path: tuple[Any, ...], value: Any, allowed: frozenset[str]) -> None:
        for sub, source in template_sources(value):
            # Parsed, not compiled: validation never runs a template, and compiling costs
            # twice what parsing does (the conductor compiles when a run needs it).
            names = self._templates.get(source)
            if names is None:
                from legion.dsl.sandbox import template_names  # Jinja2 loads with the first template

                try:
                    names = template_names(source)
                except ExpressionError as exc:
                    names = exc
                self._templates[source] = names
            if isinstance(names, ExpressionError):
                self.error(path + sub, names.message, value=True)
                continue
            for name in sorted(names - allowed):
                self.error(path + sub, f"template {source!r} uses unknown name {name!r}; names here: {', '.join(sorted(allowed))}", value=True)

    def run(self) -> list[Issue]:
        data = self.doc.data
        if not isinstance(data, Mapping):
            return [self.doc.issue((), "a chain file must be a mapping with `chain:` and `steps:`")]
        steps = data.get("steps")
        steps = steps if isinstance(steps, Mapping) else {}
        names = set(steps)
        # Each step's predecessors, in order, each once (a dict as an ordered set: a step that
        # many steps lead to, such as a shared failure handler, must not cost a scan per edge).
        preds: dict[str, dict[str, None]] = {name: {} for name in steps}

        schema = data.get("input")
        if isinstance(schema, Mapping):
            strangers = [k for k in schema if k not in SCHEMA_KEYWORDS]
            for key in strangers:
                self.error(("input", key), f"`input` holds JSON Schema keywords only, and {key!r} is not one; "
                           f"describe the input (e.g. properties: {{{key}: {{type: ...}}}}) and give run input values "
                           f"in a rehearsal, a schedule entry or the run request")
            import jsonschema  # here, not at the top: only chains that describe their input need it

            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                self.error(("input",), f"input is not a valid JSON Schema: {exc.message}")
        for path in _non_finite(data):
            self.error(path, "not a JSON number (NaN and infinities cannot be stored or sent); use a finite number or a string", value=True)
        self.templates(("vars",), data.get("vars"), RUN_NAMES)
        if "output" in data:
            self.templates(("output",), data.get("output"), OUTPUT_NAMES)
        self._triggers(data.get("on"))

        for name, step in steps.items():
            if not isinstance(step, Mapping):
                continue
            here = ("steps", name)
            has_items = step.get("for_each") is not None
            self._function(here, step)
            self.templates(here + ("with",), step.get("with"), STEP_NAMES | (ITEM_NAMES if has_items else frozenset()))
            for_each = step.get("for_each")
            if isinstance(for_each, str):
                if not _is_template(for_each):
                    self.error(here + ("for_each",), "for_each must be a template that yields a list (e.g. \"{{ input.items }}\") or a YAML list", value=True)
                else:
                    self.templates(here + ("for_each",), for_each, STEP_NAMES)
            elif isinstance(for_each, list):
                self.templates(here + ("for_each",), for_each, STEP_NAMES)
            if step.get("concurrency") is not None and for_each is None:
                self.error(here + ("concurrency",), "concurrency only applies with for_each; add for_each or remove concurrency")
            if for_each is not None and step.get("concurrency") is None:
                self.warn(here + ("for_each",), "for_each without concurrency queues every item at once; set concurrency to bound it")
            if step.get("agent") is not None and not str(step.get("run", "")).startswith("chain:"):
                self.error(here + ("agent",), "`agent` is for sub-chain steps (run: chain:<name>): a function runs for its run's agent")
            elif step.get("agent") is not None:
                self.templates(here + ("agent",), step.get("agent"), STEP_NAMES | (ITEM_NAMES if has_items else frozenset()))
            retry = step.get("retry")
            if isinstance(retry, Mapping) and "when" in retry:
                self.condition(here + ("retry", "when"), retry["when"], STEP_NAMES)
            edges = step.get("next")
            for i, edge in enumerate(edges if isinstance(edges, list) else []):
                if not isinstance(edge, Mapping):
                    continue
                epath = here + ("next", i)
                if "when" in edge:
                    self.condition(epath + ("when",), edge["when"], STEP_NAMES)
                self.templates(epath + ("publish",), edge.get("publish"), STEP_NAMES)
                targets = edge.get("do")
                targets = [targets] if isinstance(targets, str) else targets if isinstance(targets, list) else []
                for j, target in enumerate(targets):
                    if not isinstance(target, str) or target == "fail":
                        continue
                    tpath = epath + ("do",) + ((j,) if isinstance(edge.get("do"), list) else ())
                    if target not in names:
                        close = self.close_match(target, names)
                        hint = (f"; did you mean {close!r}?" if close else f"; steps: {', '.join(sorted(names))}"
                                if len(names) <= LISTED_STEPS else "")
                        self.error(tpath, f"`do` names {target!r}, which is not a step{hint}", value=True)
                    else:
                        preds[target][name] = None

        self._graph(data, steps, preds)
        return self.issues

    def _function(self, here: tuple[Any, ...], step: Mapping[str, Any]) -> None:
        ref = step.get("run")
        if not isinstance(ref, str):
            return
        if ref.startswith("chain:"):
            sub = ref[len("chain:"):]
            if self.chains is not None and sub not in self.chains:
                self.error(here + ("run",), f"no chain named {sub!r} is known; apply it or put its file beside this one", value=True)
            return
        if self.functions is None or ref.count(".") != 2:
            return
        try:
            spec = self.functions.get(ref)
        except LegionError as exc:  # the function's signature cannot be read
            self.error(here + ("run",), exc.message, value=True)
            return
        if spec is None:
            broken = missing_function(self.functions, ref)
            if broken is not None:
                self.error(here + ("run",), broken, value=True)
                return
            close = self.close_match(ref, self.functions)
            hint = f"; did you mean {close!r}?" if close else "; `legion lex list` shows the installed functions"
            self.error(here + ("run",), f"unknown function {ref!r}{hint}", value=True)
            return
        args = step.get("with")
        if not isinstance(args, Mapping):
            args = {}
        for arg, message in spec.check_args(args, is_template=lambda v: isinstance(v, str) and _is_template(v)):
            path = here + ("with", arg) if arg is not None else here + ("run",)
            self.error(path, message, value=arg is None)

    def _triggers(self, on: Any) -> None:
        if not isinstance(on, Mapping):
            return
        schedule = on.get("schedule")
        for i, entry in enumerate(schedule if isinstance(schedule, list) else []):
            if isinstance(entry, Mapping) and isinstance(entry.get("tz"), str):
                try:
                    ZoneInfo(entry["tz"])
                except (ZoneInfoNotFoundError, ValueError):
                    self.error(("on", "schedule", i, "tz"), f"unknown time zone {entry['tz']!r}; use an IANA name such as UTC or Europe/Paris", value=True)
            if isinstance(entry, Mapping) and isinstance(entry.get("cron"), str):
                try:
                    from croniter import croniter

                    if not croniter.is_valid(entry["cron"]):
                        self.error(("on", "schedule", i, "cron"), f"cron {entry['cron']!r} is not a valid 5-field cron expression", value=True)
                except ImportError:  # pragma: no cover - croniter is a dependency
                    pass
        events = on.get("events")
        if self.functions is not None and isinstance(events, list):
            for i, ref in enumerate(events):
                if isinstance(ref, str) and ref.count(".") == 2 and ref not in self.functions:
                    self.error(("on", "events", i), f"unknown function {ref!r} in on.events; `legion lex list` shows the installed functions", value=True)

    def _graph(self, data: Mapping[str, Any], steps: Mapping[str, Any], preds: dict[str, dict[str, None]]) -> None:
        if not steps:
            return
        start = data.get("start")
        if start is not None:
            starts = [start] if isinstance(start, str) else [s for s in start if isinstance(s, str)] if isinstance(start, list) else []
            for s in starts:
                if s not in steps:
                    self.error(("start",), f"start names {s!r}, which is not a step", value=True)
            starts = [s for s in starts if s in steps]
        else:
            starts = [name for name in steps if not preds.get(name)]
        if not starts:
            self.error(("steps",), "no start step: every step has an inbound edge; add `start: <step>` to say where runs begin")
            return
        for name, step in steps.items():
            if not isinstance(step, Mapping):
                continue
            join = step.get("join")
            count = len(preds.get(name, {}))
            if isinstance(join, int) and not isinstance(join, bool) and join > count:
                self.error(("steps", name, "join"), f"join: {join} waits for more predecessors than step {name!r} has ({count})", value=True)
            if join is None and count >= 2:
                self.warn(("steps", name), f"step {name!r} has {count} predecessors and no `join`: it runs once per arrival; add `join: all` to run it once")
        succs: dict[str, list[str]] = {}
        for target, sources in preds.items():
            for source in sources:
                succs.setdefault(source, []).append(target)
        seen: set[str] = set()
        todo = list(starts)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo.extend(succs.get(name, ()))
        for name in steps:
            if name not in seen:
                self.warn(("steps", name), f"step {name!r} is unreachable from the start steps ({', '.join(starts)})")


# The keywords of JSON Schema draft 2020-12 (core, applicator, validation, meta-data, format,
# content, unevaluated), plus `definitions` and `dependencies`, which validators still honour.
SCHEMA_KEYWORDS = frozenset("""
$schema $id $ref $anchor $dynamicRef $dynamicAnchor $vocabulary $comment $defs
allOf anyOf oneOf not if then else dependentSchemas prefixItems items contains properties
patternProperties additionalProperties propertyNames unevaluatedItems unevaluatedProperties
type enum const multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength
pattern maxItems minItems uniqueItems maxContains minContains maxProperties minProperties required
dependentRequired title description default deprecated readOnly writeOnly examples format
contentEncoding contentMediaType contentSchema definitions dependencies
""".split())


def _non_finite(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of NaN and infinities in a tree. Every value of the file passes here, so
    it does not go through `leaves` (a generator per level, and a path per leaf): only
    containers and floats cost more than a type check. The loader bounds the depth."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    found: list[tuple[Any, ...]] = []
    for key, item in items:
        if isinstance(item, (dict, list, float)):
            found += _non_finite(item, path + (key,))
    return found


def validate_chain_document(
    doc: Document, *, functions: Catalog | None = None, chains: Iterable[str] | None = None
) -> tuple[Chain | None, list[Issue]]:
    """Every issue in a loaded chain file; the model when there are no errors."""
    model, issues = schema_issues(doc, Chain)
    issues += _Checker(doc, functions, chains).run()
    issues.sort(key=lambda i: (i.line, i.col))
    if any(i.severity == "error" for i in issues):
        return None, issues
    assert isinstance(model, Chain)
    return model, issues


def load_chain(
    source: str, *, text: str | None = None, functions: Catalog | None = None, chains: Iterable[str] | None = None
) -> tuple[Chain, list[Issue]]:
    """Load and validate a chain file (or `text` named `source`); raise ValidationFailed on errors."""
    doc = load_text(text, source) if text is not None else load_file(source)
    chain, issues = validate_chain_document(doc, functions=functions, chains=chains)
    if chain is None:
        raise ValidationFailed(issues)
    return chain, issues


def validate_rehearsal_document(doc: Document) -> tuple[Rehearsal | None, list[Issue]]:
    model, issues = schema_issues(doc, Rehearsal)
    return (model if not issues else None), issues  # type: ignore[return-value]
