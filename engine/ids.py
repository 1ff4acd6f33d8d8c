"""Run and task ids as people type them: a run id or a unique prefix of it (4 characters or
more), a task id, or `RUN_ID/NUMBER` (the step run NUMBER of that run)."""

from __future__ import annotations

from typing import Any

from legion.engine.errors import BadInput, NotFound

MIN_PREFIX = 4
SHOWN = 10  # candidates listed when a prefix is ambiguous


def resolve_run(store: Any, text: str) -> str:
    """The id of the one run whose id is `text` or starts with it."""
    text = text.strip()
    found = store.runs_with_id_prefix(text, limit=SHOWN + 1) if text else []
    if any(r["id"] == text for r in found):
        return text
    if len(found) > SHOWN and _exists(store, text):  # an exact id beyond the candidates read
        return text
    if len(text) < MIN_PREFIX:
        raise BadInput(f"run id {text!r} is too short: give the run id, or at least {MIN_PREFIX} of its first characters "
                       "(`legion run list` shows the ids)")
    if not found:
        raise NotFound(f"There is no run whose id starts with {text!r}; `legion run list` shows the recent ones.")
    if len(found) > 1:
        shown = found[:SHOWN]
        listing = "; ".join(f"{r['id']} ({r['chain_name']}, {r['status']})" for r in shown)
        more = " and more" if len(found) > SHOWN else ""
        raise BadInput(f"run id prefix {text!r} is ambiguous: {len(shown)}{more} runs match: {listing}; "
                       "give more characters",
                       details={"prefix": text, "candidates": [r["id"] for r in shown]})
    return str(found[0]["id"])


def _exists(store: Any, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except NotFound:
        return False
    return True


def resolve_task(store: Any, ref: int | tuple[str, int]) -> dict[str, Any]:
    """The task a `task_ref` names (see `legion.engine.cli.args.task_ref`)."""
    if isinstance(ref, int):
        return dict(store.get_task(ref))
    run, number = ref
    return dict(store.get_task_by_number(resolve_run(store, run), number))
