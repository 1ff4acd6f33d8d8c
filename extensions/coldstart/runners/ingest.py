"""coldstart.ingest: a partner's notes (CLAUDE.md, MEMORY.md, any markdown) into the agent's
memory, through memory.traces.store_trace (ctx.call: same agent, same clock).

During the imprint window each note is stored with origin "imprint" and `imprint_active`, then
reinforced once with the imprint multiplier (memory.consolidation.reinforce, +0.30); the first
ten notes of each section are co-activated pairwise once (memory.consolidation.hebbian_link).

The functions that read files are kept off the REST API and the MCP tools (`expose=False`): a
chain or the CLI may call them, an AI agent may not read the worker's files through them.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.coldstart import bootstrap, parser
from legion.extensions.coldstart import helpers as h
from legion.sdk import Context, StepError, function

__all__ = ["ingest_file", "ingest_directory", "preview_ingest", "ingest_text"]

MAX_FILE_BYTES = 1_000_000  # a notes file larger than this is refused (it would be thousands of traces)
COACTIVATED_PER_SECTION = 10  # as LegionIO: the first ten of a section, to keep pairs few


@function(expose=False)
def ingest_file(file_path: str, store_traces: bool = True, *, ctx: Context) -> dict[str, Any]:
    """Ingest one markdown file into memory: {file, file_type, traces_parsed, traces_stored,
    traces, imprint_active, coactivated}; {file, error: "file not found"} when there is none.

    Args:
        file_path: the file's path on the worker
        store_traces: false: only parse (traces are then the candidates)
    """
    path = Path(file_path)
    if not path.is_file():
        return {"file": file_path, "error": "file not found"}
    candidates = parser.parse_text(_read(path), file_path)
    return {"file": file_path, "file_type": parser.detect_file_type(file_path), **_ingest(ctx, candidates, store_traces)}


@function(expose=False)
def ingest_directory(dir_path: str, pattern: Annotated[str, Field(min_length=1, max_length=200)] = parser.DEFAULT_PATTERN,
                     store_traces: bool = True, *, ctx: Context) -> dict[str, Any]:
    """Ingest every file under a directory that matches `pattern` (a glob; {a,b} alternatives
    allowed; paths with _deprecated/, _ignored/, z_other/, _working/, test/, .terraform/ or
    references/ skipped): {directory, files_found, total_parsed, total_stored, files,
    imprint_active, coactivated}; {directory, error: "directory not found"} when there is none.

    Args:
        dir_path: the directory on the worker
        pattern: which files, relative to the directory
        store_traces: false: only parse
    """
    root = Path(dir_path)
    if not root.is_dir():
        return {"directory": dir_path, "error": "directory not found"}
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise StepError(f"pattern {pattern!r} must stay inside the directory (relative, without '..')", type="InvalidPattern")
    paths = sorted({p for each in parser.expand_braces(pattern) for p in root.glob(each) if p.is_file()})
    candidates = [c for p in paths if not parser.skip_path(str(p)) for c in parser.parse_text(_read(p), str(p))]
    files = list(dict.fromkeys(c["source_file"] for c in candidates))
    done = _ingest(ctx, candidates, store_traces)
    return {"directory": dir_path, "files_found": len(files), "total_parsed": done["traces_parsed"],
            "total_stored": done["traces_stored"], "files": files, "imprint_active": done["imprint_active"],
            "coactivated": done["coactivated"]}


@function(expose=False)
def preview_ingest(file_path: str) -> dict[str, Any]:
    """What ingesting a file would store, storing nothing: {file, file_type, traces};
    {file, error: "file not found"} when there is none.

    Args:
        file_path: the file's path on the worker
    """
    path = Path(file_path)
    if not path.is_file():
        return {"file": file_path, "error": "file not found"}
    return {"file": file_path, "file_type": parser.detect_file_type(file_path), "traces": parser.parse_text(_read(path), file_path)}


def ingest_text(content: Annotated[str, Field(max_length=MAX_FILE_BYTES)], file_name: str = "notes.md", store_traces: bool = True,
                *, ctx: Context) -> dict[str, Any]:
    """Ingest notes given as text (as a file's content would be): {file, file_type,
    traces_parsed, traces_stored, traces, imprint_active, coactivated}.

    Args:
        content: the markdown
        file_name: the name the notes go by: it sets the file type (a *memory*.md gives firmware origin, *claude*.md) and tags
        store_traces: false: only parse
    """
    candidates = parser.parse_text(content, file_name)
    return {"file": file_name, "file_type": parser.detect_file_type(file_name), **_ingest(ctx, candidates, store_traces)}


def _read(path: Path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise StepError(f"{path} is larger than {MAX_FILE_BYTES} bytes: split it", type="FileTooLarge")
    return path.read_text(encoding="utf-8", errors="replace")


def _ingest(ctx: Context, candidates: list[dict[str, Any]], store_traces: bool) -> dict[str, Any]:
    """Store the candidates (when asked) and co-activate each section's first ten."""
    if not store_traces:
        return {"traces_parsed": len(candidates), "traces_stored": 0, "traces": candidates, "imprint_active": False,
                "coactivated": 0}
    now = ctx.now()
    imprinting = h.imprint_active(bootstrap.begun(ctx)["started_at"], now)
    stored = _store(ctx, candidates, imprinting)
    coactivated = _coactivate(ctx, stored) if stored else 0
    traces = [{k: v for k, v in s.items() if k != "group"} for s in stored]
    return {"traces_parsed": len(candidates), "traces_stored": len(stored), "traces": traces or candidates,
            "imprint_active": imprinting, "coactivated": coactivated}


def _store(ctx: Context, candidates: list[dict[str, Any]], imprinting: bool) -> list[dict[str, Any]]:
    stored = []
    for candidate in candidates:
        args = {
            "type": candidate["trace_type"], "content_payload": candidate["content_payload"],
            "domain_tags": candidate["domain_tags"], "origin": "imprint" if imprinting else candidate["origin"],
            "confidence": candidate["confidence"], "imprint_active": imprinting,
            "emotional_valence": candidate["emotional_valence"], "emotional_intensity": candidate["emotional_intensity"],
        }
        try:
            result = dict(ctx.call("memory.traces.store_trace", args))
        except StepError as exc:
            if exc.type == "UnknownFunction":  # no memory extension installed: parse only, as LegionIO
                ctx.log.warning("coldstart: memory.traces.store_trace is not installed; nothing stored")
                return []
            raise
        if imprinting and candidate["trace_type"] != "firmware":  # firmware is never reinforced
            reinforced = ctx.call("memory.consolidation.reinforce", {"trace_id": result["trace_id"], "imprint_active": True})
            result["strength"] = reinforced["new_strength"]
        stored.append({**result, "section": candidate["section"], "group": (candidate["source_file"], candidate["section"])})
    return stored


def _coactivate(ctx: Context, stored: list[dict[str, Any]]) -> int:
    """Co-activate the first ten stored traces of each section pairwise, once (below the
    threshold of three, so one ingest links nothing by itself)."""
    groups: dict[Any, list[str]] = {}
    for trace in stored:
        groups.setdefault(trace["group"], []).append(trace["trace_id"])
    count = 0
    for ids in groups.values():
        for a, b in combinations(ids[:COACTIVATED_PER_SECTION], 2):
            ctx.call("memory.consolidation.hebbian_link", {"trace_id_a": a, "trace_id_b": b})
            count += 1
    return count
