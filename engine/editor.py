"""JSON Schemas for editors (`legion schema export`): the chain and rehearsal schemas, and, with
the installed extensions, a chain schema where `run:` lists the functions there are and each
step's `with:` is checked against its function's argument schema.

A `with` value may be a template (`"{{ input.n }}"`), which only the run makes into a value, so
every argument also accepts a string holding `{{` or `{%`; what a template yields is checked
when the step runs. A function that takes `**kwargs` takes any further key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from legion.dsl.schema import FILES, chain_schema, rehearsal_schema, render

TEMPLATE = {"type": "string", "pattern": r"\{\{|\{%", "description": "a template, rendered when the step runs"}
SUB_CHAIN = r"^chain:[a-z0-9][a-z0-9_.-]{0,127}$"


def with_extensions(schema: dict[str, Any], functions: list[dict[str, Any]]) -> dict[str, Any]:
    """The chain schema with `run` an enum of `functions` (rows of `function_row`, those
    whose signature reads) or a sub-chain, and `with` checked per function."""
    schema = copy.deepcopy(schema)
    step = schema["$defs"]["Step"]
    readable = [f for f in functions if f.get("args_schema")]
    refs = sorted(f["ref"] for f in readable)
    run = step["properties"]["run"]
    step["properties"]["run"] = {"description": run.get("description", ""), "anyOf": [
        {"enum": refs, "description": "a function of an installed extension"},
        {"type": "string", "pattern": SUB_CHAIN, "description": "a sub-chain: chain:<name>"}]}
    step["allOf"] = [{"if": {"properties": {"run": {"const": f["ref"]}}, "required": ["run"]},
                      "then": {"properties": {"with": _arguments(f["args_schema"], f.get("description"))}}}
                     for f in sorted(readable, key=lambda f: f["ref"])]
    schema["description"] = schema.get("description", "") + f" With the {len(refs)} functions installed where it was exported."
    return schema


def _arguments(args_schema: dict[str, Any], description: str | None) -> dict[str, Any]:
    args = copy.deepcopy(args_schema)
    args["properties"] = {name: {"anyOf": [prop, TEMPLATE], **({"description": prop["description"]} if "description" in prop else {})}
                          for name, prop in args.get("properties", {}).items()}
    if description:
        args["description"] = description
    return args


def export_schemas(directory: Path, functions: list[dict[str, Any]] | None = None) -> list[Path]:
    """Write the chain and rehearsal schemas into `directory` (the chain schema with
    `functions`, when given); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    chain = chain_schema() if functions is None else with_extensions(chain_schema(), functions)
    written = []
    for key, schema in (("chain", chain), ("rehearsal", rehearsal_schema())):
        path = directory / FILES[key]
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
