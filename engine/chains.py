"""Chain files in, applied chains out: validation across files, plan, apply, graph."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion.dsl.compile import Plan, compile_chain
from legion.dsl.errors import Issue, ValidationFailed
from legion.dsl.loader import load_text
from legion.dsl.model import Chain
from legion.dsl.validate import validate_chain_document
from legion.engine.schedules import next_fire
from legion.engine.yamlfiles import YamlFile, YamlFiles, find_yaml

if TYPE_CHECKING:
    from legion.engine.registry import Registry


@dataclass
class ChainFile:
    path: Path
    chain: Chain
    source: str
    issues: list[Issue]
    plan: Plan


def chain_paths(paths: Iterable[str | Path], files: YamlFiles | None = None) -> list[Path]:
    """Chain files named, or found under named folders (rehearsals and other YAML skipped).
    Telling them apart loads them: pass the command's `files` so that they load only once."""
    files = files if files is not None else YamlFiles()
    paths = list(paths)
    named = {Path(p) for p in paths}
    found = []
    for path in find_yaml(paths):
        if Path(path).is_dir():
            continue
        if not Path(path).exists():
            raise ValidationFailed([Issue(f"no such file or folder: {path}", file=str(path))])
        kind = files.get(path).kind
        if kind in ("chain", "broken") or (kind == "other" and path in named):
            found.append(path)
    return found


def load_chains(paths: Iterable[str | Path], registry: Registry, known_chains: Iterable[str] = (),
                files: YamlFiles | None = None) -> tuple[list[ChainFile], list[Issue]]:
    """Validate every chain file; raise ValidationFailed with every error of every file.
    `files`: the command's loaded files, when it has already read some of them."""
    files = files if files is not None else YamlFiles()
    return validate_chain_files([files.get(path) for path in chain_paths(list(paths), files)], registry, known_chains)


def load_chain_text(text: str, registry: Registry, known_chains: Iterable[str] = (), name: str = "<request>") -> tuple[list[ChainFile], list[Issue]]:
    """Validate one chain given as YAML text (an API request's body, an agent's draft), its
    issues placed in `name`; as `load_chains`."""
    try:
        loaded = YamlFile(Path(name), load_text(text, name))
    except ValidationFailed as exc:
        loaded = YamlFile(Path(name), None, tuple(exc.issues))
    if loaded.kind not in ("chain", "broken"):
        raise ValidationFailed([Issue("this is not a chain: a chain is a YAML mapping with `chain` (its name) and `steps`", name, 1, 1)])
    return validate_chain_files([loaded], registry, known_chains)


def validate_chain_files(loaded_files: list[YamlFile], registry: Registry, known_chains: Iterable[str] = ()) -> tuple[list[ChainFile], list[Issue]]:
    docs = []
    issues: list[Issue] = []
    names: dict[str, Path] = {}
    for loaded in loaded_files:
        path = loaded.path
        if loaded.doc is None:
            issues += loaded.issues
            continue
        doc = loaded.doc
        docs.append(doc)
        if isinstance(doc.data, dict) and isinstance(doc.data.get("chain"), str):
            name = doc.data["chain"]
            if name in names:
                line, col = doc.value_position(("chain",))
                issues.append(Issue(f"chain {name!r} is also defined in {names[name]}; chain names are unique", str(path), line, col, path=("chain",)))
            names.setdefault(name, path)
    catalog = registry.catalog()
    every_chain = set(names) | set(known_chains)
    loaded = []
    for doc in docs:
        chain, found = validate_chain_document(doc, functions=catalog, chains=every_chain)
        issues += found
        if chain is not None:
            source = doc.text if doc.text is not None else Path(doc.file).read_text(encoding="utf-8")
            loaded.append(ChainFile(Path(doc.file), chain, source, found, compile_chain(chain)))
    if any(i.severity == "error" for i in issues):
        raise ValidationFailed(issues)
    return loaded, issues


def apply_items(files: list[ChainFile], now: datetime | None = None) -> list[dict[str, Any]]:
    """What the store applies, in one transaction: versions, relationships and schedules."""
    return [{
        "name": f.chain.chain, "source": f.source, "content_hash": f.plan.content_hash,
        "definition": f.plan.definition, "path": str(f.path), "relationships": list(f.plan.relationships),
        "schedules": schedule_rows(f.chain, now),
    } for f in files]


def schedule_rows(chain: Chain, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    rows = []
    for i, entry in enumerate(chain.on.schedule if chain.on else []):
        kind = "cron" if entry.cron is not None else "every"
        expression = entry.cron if entry.cron is not None else str(entry.every)
        rows.append({
            "entry_index": i, "kind": kind, "expression": expression, "tz": entry.tz, "input": dict(entry.input),
            "active": True, "next_fire_at": next_fire(kind, expression, entry.tz, now),
        })
    return rows


def graph(chain: Chain, fmt: str = "mermaid") -> str:
    """The chain as a Mermaid flowchart, a Graphviz digraph or an SVG picture."""
    if fmt == "svg":
        from legion.engine.svg import chain_svg

        return chain_svg(chain)
    starts = set(chain.start_steps())
    if fmt == "dot":
        lines = [f'digraph "{chain.chain}" {{', "  rankdir=LR;"]
        for name, step in chain.steps.items():
            shape = "doublecircle" if step.join is not None else "box"
            style = ", style=bold" if name in starts else ""
            lines.append(f'  "{name}" [label="{name}\\n{step.run}", shape={shape}{style}];')
        for name, step in chain.steps.items():
            for edge in step.next:
                label = edge.when if isinstance(edge.when, str) else str(edge.when).lower()
                for target in edge.do or ["(end)"]:
                    lines.append(f'  "{name}" -> "{target}" [label="{_escape(label)}"];')
        lines.append("}")
        return "\n".join(lines)
    lines = ["flowchart LR"]
    for name, step in chain.steps.items():
        text = f"{name}<br/>{step.run}" + (f"<br/>join: {step.join}" if step.join is not None else "")
        lines.append(f'  {name}{"([" if name in starts else "["}"{text}"{"])" if name in starts else "]"}')
    for name, step in chain.steps.items():
        for edge in step.next:
            label = edge.when if isinstance(edge.when, str) else str(edge.when).lower()
            for target in edge.do or ["end_"]:
                node = "fail_((fail))" if target == "fail" else target
                lines.append(f'  {name} -->|"{_escape(label)}"| {node}')
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace('"', "'")
