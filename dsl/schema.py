"""JSON Schemas (draft 2020-12) of chain and rehearsal files, generated from the model.

The files in `schemas/` are what editors use (yaml-language-server, through a
`# yaml-language-server: $schema=...` line), so the generated schema is post-processed for
them: a title on every definition and a description on every key, `additionalProperties: false` wherever the
model forbids extra keys, durations as "number or `30s`", one-name-or-a-list for `do` and
`start`, step names checked as mapping keys, and one self-contained file each (the rehearsal
schema carries the chain schema for an inline `chain:`).

Regenerate with `python -m legion.dsl.schema [DIR]` (default: the repository's `schemas/`);
`tests/dsl/test_schema.py` fails when the files and the model drift apart.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from legion.dsl.durations import MAX_DURATION
from legion.dsl.model import (
    FUNCTION_REF,
    RESERVED_STEPS,
    STEP_NAME,
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

DRAFT = "https://json-schema.org/draft/2020-12/schema"
CHAIN_ID = "urn:legion:schemas:chain.schema.json"
REHEARSAL_ID = "urn:legion:schemas:rehearsal.schema.json"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas"
FILES = {"chain": "chain.schema.json", "rehearsal": "rehearsal.schema.json"}

# The models whose schemas become `$defs` entries, with the title and description editors show.
MODELS: dict[type[BaseModel], tuple[str, str]] = {
    Chain: ("Legion chain", "A chain: a YAML graph of steps, each running one extension function (spec section 1)."),
    Step: ("Step", "One step: the function it runs, its arguments and the edges that carry its result onward."),
    Edge: ("Edge", "`{when, publish, do}`: when the condition holds, publish into the context and start `do`."),
    Retry: ("Retry", "Retries after a failed attempt: wait min(delay * backoff ** (attempt - 1), max_delay)."),
    Triggers: ("Triggers", "Ways a run starts besides a manual run."),
    ScheduleEntry: ("Schedule entry", "Exactly one of `cron` and `every`, and the run input."),
    Rehearsal: ("Legion rehearsal", "A rehearsal (`legion chain test`): run a chain on the virtual clock with mocked steps and check what happened (spec section 8)."),
    MockEntry: ("Mock entry", "One mocked step run: `{result: X}` succeeds with X; `{status: failed, error: ...}` fails."),
    Expect: ("Expectations", "What the run must look like at its end."),
}

# Descriptions of keys the model leaves undescribed (or describes too tersely for a hover).
DESCRIPTIONS: dict[type[BaseModel], dict[str, str]] = {
    Chain: {
        "chain": "The chain's unique name: [a-z0-9][a-z0-9_.-]{0,127}.",
        "description": "What the chain does, for people.",
        "input": "JSON Schema (draft 2020-12) of the run input; a run whose input does not fit fails with InputInvalid.",
        "vars": "Initial context; values may be templates over `input` and `run`, rendered once at the start.",
        "on": "Triggers besides a manual run: `schedule` and `events`.",
        "start": "The step (or steps) where runs begin; default: every step with no inbound edge, in file order.",
        "steps": "The steps, by name ([A-Za-z_][A-Za-z0-9_-]*; `fail` is reserved).",
        "output": "Rendered when the run ends; every string at any depth is a template.",
        "max_steps": "The most step runs one run may start (retries and for_each items count); default 10000.",
    },
    Step: {
        "run": "`ext.runner.function` of an installed extension, or `chain:<name>` for a sub-chain.",
        "with": "Arguments of the function; every string at any depth is a template.",
        "next": "Edges, evaluated in order after the step finishes; every edge whose condition holds fires.",
        "join": "`all`, or N >= 1: run once all (or N distinct) predecessor steps have arrived. Without it the step runs once per arrival.",
        "for_each": "A template that yields a list (\"{{ ctx.items }}\"), or a YAML list: the step runs once per item (`item`, `index`).",
        "concurrency": "With for_each: at most this many items queued or running at once.",
        "retry": "Retries after a failed attempt: {count, delay, backoff, max_delay, jitter, when}.",
        "timeout": "Duration of one attempt (250ms, 30s, 5m, 2h, 1d, or seconds); past it the attempt fails with Timeout.",
        "delay": "Duration to wait before the step starts.",
        "priority": "0-9, higher first (RabbitMQ priority queues).",
    },
    Edge: {
        "when": "A condition (Python expression syntax, no braces), or true/false. Default: `succeeded`.",
        "publish": "Templates merged into the context that flows along this edge; they do not see each other.",
        "do": "A step name or a list of them; `fail` marks the run failed. Omitted: the edge fires and its branch ends.",
    },
    Retry: {
        "count": "Retries after the first attempt (0: none).",
        "delay": "Wait before the first retry (default 1s).",
        "backoff": "Factor applied to the wait per attempt (default 2.0).",
        "max_delay": "Upper bound of one wait (default 5m).",
        "jitter": "Full jitter: wait a random time up to the computed one (default true).",
        "when": "Condition over the failed attempt (default `failed`).",
    },
    Triggers: {
        "schedule": "Scheduled runs: entries with `cron` or `every`, and the run input.",
        "events": "Functions (ext.runner.function) whose success in any run starts a run with their result as input.",
    },
    ScheduleEntry: {
        "cron": 'A 5-field cron expression, quoted: "*/5 * * * *" (UTC unless `tz` is given).',
        "every": "A duration between runs (30s, 5m, 1h, or seconds).",
        "tz": "IANA time zone of the cron expression (default UTC).",
        "input": "The run input of the scheduled runs.",
    },
    Rehearsal: {
        "rehearsal": "The rehearsal's name (optional).",
        "chain": "The chain under test: a path relative to this file, or an inline chain mapping.",
        "input": "The run input ({} when omitted).",
        "mocks": "Per step name: entries consumed one per step run of that step, in the order its step runs start.",
        "expect": "What the run must look like at its end.",
    },
    MockEntry: {
        "status": "`succeeded` (default) or `failed`.",
        "result": "The step run's result.",
        "error": "With status failed: a message (type StepFailed) or {type, message}.",
    },
    Expect: {
        "status": "The run's final status (required).",
        "sequence": "Step names in the order their step runs started, duplicates included.",
        "output": "The run's output, equal as JSON values.",
        "error": "A subset of the run's error {type, message, step}.",
    },
}

_DURATION = {
    "anyOf": [
        # The string form's bound (also MAX_DURATION) is the validator's to check.
        {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    ]
}
_DURATION_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    Step: ("timeout", "delay"),
    Retry: ("delay", "max_delay"),
    ScheduleEntry: ("every",),
}
_NAME_LIST = {
    "anyOf": [
        {"type": "string", "pattern": STEP_NAME},
        {"type": "array", "items": {"type": "string", "pattern": STEP_NAME}},
    ]
}
_STEP_NAMES = {"pattern": STEP_NAME, "not": {"enum": sorted(RESERVED_STEPS)}}
_CRON = r"^\s*\S+(\s+\S+){4}\s*$"


def _model_schemas() -> dict[str, dict[str, Any]]:
    """Each model's schema by name: the pydantic output with references into `$defs`."""
    out: dict[str, dict[str, Any]] = {}
    for model in (Chain, Rehearsal):
        generated = model.model_json_schema(by_alias=True, mode="validation")
        defs = generated.pop("$defs", {})
        out[model.__name__] = generated
        out.update(defs)
    return out


def _fix_model(model: type[BaseModel], schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    title, description = MODELS[model]
    schema["title"] = title
    schema["description"] = description
    schema["type"] = "object"
    if model.model_config.get("extra") == "forbid":
        schema["additionalProperties"] = False
    props: dict[str, Any] = schema.setdefault("properties", {})
    for name, field in model.model_fields.items():
        key = field.alias or name
        prop = props.setdefault(key, {})
        prop.pop("title", None)
        text = DESCRIPTIONS.get(model, {}).get(key) or field.description
        if text:
            prop["description"] = text
    for name in _DURATION_FIELDS.get(model, ()):
        prop = props[name]
        nullable = _has_null(prop)
        kept = {k: v for k, v in prop.items() if k in ("default", "description")}
        kept["anyOf"] = copy.deepcopy(_DURATION["anyOf"]) + ([{"type": "null"}] if nullable else [])
        props[name] = kept
    if model is Edge:
        props["do"] = {"description": props["do"]["description"], **copy.deepcopy(_NAME_LIST)}
    if model is Chain:
        props["start"] = {
            "description": props["start"]["description"],
            "anyOf": copy.deepcopy(_NAME_LIST["anyOf"]) + [{"type": "null"}],
            "default": None,
        }
        steps = props["steps"]
        steps.pop("patternProperties", None)
        steps["propertyNames"] = copy.deepcopy(_STEP_NAMES)
        steps["additionalProperties"] = {"$ref": "#/$defs/Step"}
        props["input"] = {
            "description": props["input"]["description"],
            "anyOf": [{"type": "object"}, {"type": "null"}],
            "default": None,
        }
    if model is ScheduleEntry:
        props["cron"]["anyOf"] = [{"type": "string", "pattern": _CRON}, {"type": "null"}]
        props["every"]["anyOf"][0] = {"type": "number", "exclusiveMinimum": 0}
        # Exactly one of `cron` and `every` (a null one counts as absent, as in the model).
        schema["oneOf"] = [
            {"required": ["cron"], "properties": {"cron": {"type": "string"}}},
            {"required": ["every"], "properties": {"every": {"not": {"type": "null"}}}},
        ]
    if model is Rehearsal:
        props["chain"] = {
            "description": props["chain"]["description"],
            "anyOf": [
                {"type": "string", "description": "Path of the chain file, relative to this file."},
                {"$ref": "#/$defs/Chain"},
            ],
        }
        props["mocks"]["propertyNames"] = {"pattern": STEP_NAME}
    if model is Triggers:
        props["events"]["items"] = {"type": "string", "pattern": FUNCTION_REF}
    return schema


def _has_null(schema: dict[str, Any]) -> bool:
    return any(option.get("type") == "null" for option in schema.get("anyOf", []))


def _check(schema: dict[str, Any]) -> None:
    """Every definition made from a strict model forbids extra keys; every reference resolves."""
    defs = schema.get("$defs", {})
    by_name = {model.__name__: model for model in MODELS}
    for name, definition in [("root", schema), *defs.items()]:
        model = by_name.get(name) if name != "root" else None
        if (model is None or model.model_config.get("extra") == "forbid") and definition.get("additionalProperties") is not False:
            raise AssertionError(f"schema definition {name} allows unknown keys")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not (ref.startswith("#/$defs/") and ref[len("#/$defs/"):] in defs):
                raise AssertionError(f"schema reference {ref} does not resolve inside the file")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)


def _build(root: type[BaseModel], schema_id: str, names: tuple[str, ...]) -> dict[str, Any]:
    raw = _model_schemas()
    by_name = {model.__name__: model for model in MODELS}
    fixed = {name: _fix_model(by_name[name], raw[name]) for name in names}
    top = fixed.pop(root.__name__)
    out: dict[str, Any] = {"$schema": DRAFT, "$id": schema_id, **top}
    if root is Rehearsal:
        # The inline chain is the chain schema itself, carried here so the file stands alone.
        fixed["Chain"] = _fix_model(Chain, raw["Chain"])
    out["$defs"] = fixed
    _check(out)
    return out


_CHAIN_DEFS = ("Chain", "Step", "Edge", "Retry", "Triggers", "ScheduleEntry")


def chain_schema() -> dict[str, Any]:
    """The JSON Schema of a chain file."""
    return _build(Chain, CHAIN_ID, _CHAIN_DEFS)


def rehearsal_schema() -> dict[str, Any]:
    """The JSON Schema of a rehearsal file (its `chain` may be a path or an inline chain)."""
    return _build(Rehearsal, REHEARSAL_ID, ("Rehearsal", "MockEntry", "Expect") + _CHAIN_DEFS[1:])


def render(schema: dict[str, Any]) -> str:
    """The file text of a schema: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write `chain.schema.json` and `rehearsal.schema.json` into `directory`; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for key, schema in (("chain", chain_schema()), ("rehearsal", rehearsal_schema())):
        path = directory / FILES[key]
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print("usage: python -m legion.dsl.schema [DIR]   (default: the repository's schemas/)", file=sys.stderr)
        return 2
    directory = Path(args[0]) if args else DEFAULT_DIR
    for path in write_schemas(directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
