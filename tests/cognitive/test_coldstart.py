"""coldstart.coldstart and coldstart.ingest: the 7-day imprint window and the calibration state
machine over simulated days (each call given its own `now`), and a partner's notes ingested into
memory through memory.traces.store_trace: imprint origin and x3 reinforcement in the window."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from embedded import embedded_service

from legion import sdk
from legion.engine.registry import Registry
from legion.extensions.coldstart import helpers as h
from legion.extensions.coldstart import parser as p

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
NAMES = itertools.count()

MEMORY_MD = """# Partner notes

## Hard Rules
- Never push to main without a review
- Always ask before deleting customer data

## Key Architecture Facts
- Chains are YAML graphs applied with `legion chain apply`
- Workers take steps from **RabbitMQ** queues
- State lives in `SQLite` by default

## CLI Gotchas
- `legion run show` takes the first four characters of a run id
- Quote `key=value` arguments that hold spaces
- `make test` starts the services it needs

## Identity Auth Pattern
- The agent signs in as a **service principal**
- Tokens rotate every hour

## Project Structure
- Chains live in `chains/`
- 12 extensions ship with Legion
"""

CLAUDE_MD = """# Example extension

## Purpose

Shows how notes become memories.

## What is This?

A job engine that runs chains of steps.

## Development

```bash
make setup
make test
```

- Run `ruff` before committing
- Keep functions small

## Key Concepts

- **Chain**: a graph of steps
- **Step**: one function call
- **Extension**: a package of runners
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('coldstart')}/state.db"


@pytest.fixture()
def notes(tmp_path: Path) -> Path:
    """A partner's notes: lex-example/MEMORY.md and lex-example/CLAUDE.md, and one to skip."""
    folder = tmp_path / "lex-example"
    (folder / "references").mkdir(parents=True)
    (folder / "MEMORY.md").write_text(MEMORY_MD, encoding="utf-8")
    (folder / "CLAUDE.md").write_text(CLAUDE_MD, encoding="utf-8")
    (folder / "references" / "CLAUDE.md").write_text("## Skipped\n- never read\n", encoding="utf-8")
    return folder


def fresh_agent() -> str:
    return f"cold-{next(NAMES)}"


def call(url: str, function: str, now: datetime = T0, agent: str = "ada", **args: Any) -> Any:
    return sdk.call(f"coldstart.{function}", args, now=now, agent=agent, database_url=url)


def memory(url: str, function: str, now: datetime = T0, agent: str = "ada", **args: Any) -> Any:
    return sdk.call(f"memory.{function}", args, now=now, agent=agent, database_url=url)


# ---------------------------------------------------------------- the imprint window


def test_constants_are_legionios() -> None:
    assert h.LAYERS == ("firmware", "imprint_window", "continuous_learning")
    assert h.CALIBRATION_STATES == ("not_started", "imprinting", "baseline_established", "calibrated")
    assert (h.IMPRINT_DURATION, h.IMPRINT_MULTIPLIER, h.IMPRINT_CONSENT_TIER) == (604_800, 3.0, "consult")
    assert (h.IMPRINT_ENTROPY_BASELINE, h.SELF_PLAY_ITERATIONS, h.BOOTSTRAP_TRACE_TYPES) == (50, 100, ("identity", "semantic", "procedural"))


def test_window_formulas() -> None:
    start = h.begin(h.fresh(), T0)["started_at"]
    assert start == "2026-03-01T09:00:00+00:00"
    assert (h.imprint_active(None, T0), h.imprint_progress(None, T0)) == (False, 1.0)  # never begun
    assert (h.imprint_active(start, T0), h.imprint_progress(start, T0)) == (True, 0.0)
    assert h.imprint_progress(start, T0 + 3.5 * DAY) == 0.5
    assert h.imprint_active(start, T0 + 7 * DAY - timedelta(seconds=1)) is True
    assert (h.imprint_active(start, T0 + 7 * DAY), h.imprint_progress(start, T0 + 30 * DAY)) == (False, 1.0)
    assert h.imprint_progress(start, T0 - DAY) == 0.0  # a clock before the start: not negative
    assert (h.multiplier(start, T0 + DAY), h.multiplier(start, T0 + 8 * DAY)) == (3.0, 1.0)
    assert h.current_layer(h.fresh(), T0) == "firmware"
    assert h.current_layer(h.begin(h.fresh(), T0), T0 + DAY) == "imprint_window"
    assert h.current_layer(h.begin(h.fresh(), T0), T0 + 8 * DAY) == "continuous_learning"


def test_begin_imprint_is_idempotent_unless_forced(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "coldstart.imprint_active", agent=agent) == {"active": False}  # reading begins nothing
    assert call(url, "coldstart.current_multiplier", agent=agent) == {"multiplier": 1.0, "imprint_active": False}
    begun = call(url, "coldstart.begin_imprint", agent=agent)
    assert begun == {"started": True, "started_at": "2026-03-01T09:00:00+00:00", "imprint_duration": 604_800,
                     "multiplier": 3.0, "consent_tier": "consult"}
    again = call(url, "coldstart.begin_imprint", T0 + 2 * DAY, agent)
    assert again["started"] is False and again["reason"] == "already_started" and again["started_at"] == begun["started_at"]
    assert call(url, "coldstart.imprint_active", T0 + DAY, agent) == {"active": True}
    assert call(url, "coldstart.current_multiplier", T0 + DAY, agent) == {"multiplier": 3.0, "imprint_active": True}
    assert call(url, "coldstart.current_multiplier", T0 + 8 * DAY, agent) == {"multiplier": 1.0, "imprint_active": False}
    forced = call(url, "coldstart.begin_imprint", T0 + 8 * DAY, agent, force=True)
    assert forced["started"] is True and forced["started_at"] == "2026-03-09T09:00:00+00:00"
    assert call(url, "coldstart.imprint_active", T0 + 14 * DAY, agent) == {"active": True}  # a new 7 days from day 8
    assert call(url, "coldstart.imprint_active", T0 + 15 * DAY, agent) == {"active": False}


def test_progress_over_simulated_days(url: str) -> None:
    agent = fresh_agent()
    call(url, "coldstart.begin_imprint", agent=agent)
    first = call(url, "coldstart.coldstart_progress", agent=agent)
    assert first == {"firmware_loaded": True, "imprint_active": True, "imprint_progress": 0.0, "observation_count": 0,
                     "calibration_state": "imprinting", "current_layer": "imprint_window"}
    assert call(url, "coldstart.coldstart_progress", T0 + 3.5 * DAY, agent)["imprint_progress"] == 0.5
    last = call(url, "coldstart.coldstart_progress", T0 + 7 * DAY, agent)
    assert (last["imprint_active"], last["imprint_progress"], last["current_layer"]) == (False, 1.0, "continuous_learning")
    assert last["calibration_state"] == "imprinting"  # fewer than 50 observations: not calibrated


def test_the_first_progress_check_begins_the_window(url: str) -> None:
    agent, other = fresh_agent(), fresh_agent()
    born = T0 + 2 * DAY  # the agent's first tick
    progress = call(url, "coldstart.coldstart_progress", born, agent)
    assert (progress["firmware_loaded"], progress["imprint_active"], progress["calibration_state"]) == (True, True, "imprinting")
    assert call(url, "coldstart.begin_imprint", born + DAY, agent)["started_at"] == h.begin(h.fresh(), born)["started_at"]
    assert call(url, "coldstart.imprint_active", born, other) == {"active": False}  # another agent has not begun


def test_calibration_state_machine(url: str) -> None:
    agent = fresh_agent()
    call(url, "coldstart.begin_imprint", agent=agent)
    assert call(url, "coldstart.record_observation", T0 + DAY, agent) == {
        "observation_count": 1, "calibration_state": "imprinting", "current_layer": "imprint_window"}
    for n in range(2, 50):
        assert call(url, "coldstart.record_observation", T0 + DAY, agent)["observation_count"] == n
    assert call(url, "coldstart.record_observation", T0 + 2 * DAY, agent)["calibration_state"] == "baseline_established"
    assert call(url, "coldstart.record_observation", T0 + 3 * DAY, agent) == {
        "observation_count": 51, "calibration_state": "baseline_established", "current_layer": "imprint_window"}
    # The window closes on day 7: calibrated then, without waiting for another observation.
    assert call(url, "coldstart.coldstart_progress", T0 + 6 * DAY, agent)["calibration_state"] == "baseline_established"
    assert call(url, "coldstart.coldstart_progress", T0 + 7 * DAY, agent)["calibration_state"] == "calibrated"
    assert call(url, "coldstart.record_observation", T0 + 9 * DAY, agent) == {
        "observation_count": 52, "calibration_state": "calibrated", "current_layer": "continuous_learning"}


def test_fifty_observations_after_the_window_calibrate_directly(url: str) -> None:
    agent = fresh_agent()
    for _ in range(49):
        call(url, "coldstart.record_observation", agent=agent)  # the first one begins the window
    assert call(url, "coldstart.coldstart_progress", T0 + 8 * DAY, agent)["calibration_state"] == "imprinting"
    assert call(url, "coldstart.record_observation", T0 + 8 * DAY, agent)["calibration_state"] == "calibrated"


# ---------------------------------------------------------------- the parser


def test_parser_classifies_sections_as_legionio() -> None:
    assert [p.detect_file_type(f) for f in ("/a/MEMORY.md", "/a/CLAUDE.md", "/a/README.md", "memory.txt")] == [
        "memory", "claude_md", "markdown", "markdown"]
    cases = {"Hard Rules": "firmware", "Key Architecture Facts": "semantic", "CLI Gotchas": "procedural",
             "Identity Auth Pattern": "identity", "Random Stuff": "semantic", "Development": "procedural",
             "REST API Routes": "procedural", "Dependencies": "semantic", "Security": "procedural"}
    assert {heading: p.classify_section(heading) for heading in cases} == cases
    assert p.classify_valence("CLI Gotchas") == {"valence": -0.4, "intensity": 0.5}
    assert p.classify_valence("Hard Rules") == {"valence": 0.0, "intensity": 0.8}
    assert p.classify_valence("System Design") == {"valence": 0.3, "intensity": 0.4}
    assert p.classify_valence("Integration") == {"valence": 0.1, "intensity": 0.3}
    assert p.classify_valence("Anything else") == {"valence": 0.1, "intensity": 0.3}
    assert p.slugify("Key Architecture Facts!") == "key-architecture-facts"
    assert p.skip_path("/foo/_deprecated/CLAUDE.md") and p.skip_path("/foo/references/CLAUDE.md")
    assert not p.skip_path("/foo/lex-memory/CLAUDE.md")
    assert p.extract_dir_context("/home/me/lex-example/docs/CLAUDE.md") == "lex-example"
    assert p.extract_dir_context("/home/me/notes/CLAUDE.md") == "notes"
    assert p.extract_dir_context("CLAUDE.md") is None
    assert p.expand_braces("**/{CLAUDE,MEMORY}.md") == ["**/CLAUDE.md", "**/MEMORY.md"]
    assert p.expand_braces("{a,b}/{c,d}") == ["a/c", "a/d", "b/c", "b/d"]


def test_parser_splits_sections_and_items() -> None:
    sections = p.split_sections("## First\nline1\n## Second\nline2\n")
    assert [s["heading"] for s in sections] == ["First", "Second"]
    assert p.split_sections("## Key Architecture Facts\nstuff\n")[0]["heading_slug"] == "key-architecture-facts"
    assert [s["heading"] for s in p.split_sections("## Empty\n\n## HasContent\nreal stuff\n")] == ["HasContent"]
    assert p.extract_items("- first item\n- second item\n- third item\n") == ["first item", "second item", "third item"]
    continued = p.extract_items("- first item\n  continued here\n- second item\n")
    assert continued == ["first item continued here", "second item"]
    code = p.extract_items("- before\n```ruby\ncode here\nmore code\n```\n- after\n")
    assert code == ["before", "```ruby\ncode here\nmore code\n```", "after"]
    assert p.extract_items("This is a paragraph\nwith continuation.\n\nAnother paragraph.\n") == [
        "This is a paragraph with continuation.", "Another paragraph."]
    assert p.extract_inline_tags("Uses `legion-transport` for messaging") == ["legion-transport"]
    assert p.extract_inline_tags("The **Runner** processes `a b`") == ["a_b", "runner"]
    assert p.extract_inline_tags(f"`x` and `a_very_long_tag_{'x' * 60}`") == []


def test_preview_parses_a_memory_file(notes: Path) -> None:
    path = str(notes / "MEMORY.md")
    preview = sdk.call("coldstart.ingest.preview_ingest", {"file_path": path})
    traces = preview["traces"]
    assert preview["file"] == path and preview["file_type"] == "memory" and len(traces) == 13
    firmware = [t for t in traces if t["trace_type"] == "firmware"]
    assert len(firmware) == 2 and "review" in firmware[0]["content_payload"]
    assert all(t["confidence"] == 1.0 and t["emotional_valence"] == 0.0 and t["emotional_intensity"] == 0.8 for t in firmware)
    procedural = [t for t in traces if t["trace_type"] == "procedural"]
    assert [t["emotional_valence"] for t in procedural] == [-0.4] * 3 and all(t["confidence"] == 0.7 for t in procedural)
    assert any(t["trace_type"] == "identity" for t in traces)
    assert all(t["origin"] == "firmware" and t["source_file"] == path for t in traces)  # a MEMORY.md: firmware origin
    architecture = [t for t in traces if t["section"] == "key-architecture-facts"]
    assert architecture[0]["domain_tags"] == ["memory", "MEMORY.md", "lex-example", "key-architecture-facts", "legion_chain_apply"]
    assert architecture[1]["domain_tags"][-1] == "rabbitmq"
    claude = sdk.call("coldstart.ingest.preview_ingest", {"file_path": str(notes / "CLAUDE.md")})["traces"]
    assert all(t["origin"] == "direct_experience" for t in claude) and len(claude) == 9
    assert any(t["trace_type"] == "semantic" for t in claude)
    assert sdk.call("coldstart.ingest.preview_ingest", {"file_path": "/nonexistent/file.md"}) == {
        "file": "/nonexistent/file.md", "error": "file not found"}


# ---------------------------------------------------------------- ingest into memory


def test_ingest_in_the_window_imprints_the_notes(url: str, notes: Path) -> None:
    agent = fresh_agent()
    call(url, "coldstart.begin_imprint", agent=agent)
    done = call(url, "ingest.ingest_file", T0 + DAY, agent, file_path=str(notes / "MEMORY.md"))
    assert (done["file_type"], done["traces_parsed"], done["traces_stored"], done["imprint_active"]) == ("memory", 13, 13, True)
    assert done["coactivated"] == 1 + 3 + 3 + 1 + 1  # pairs within each section (the preamble has one item)
    strengths = {t["trace_type"]: t["strength"] for t in done["traces"]}
    assert strengths == pytest.approx({"semantic": 0.8, "firmware": 1.0, "procedural": 0.7, "identity": 1.0})
    stored = {t["trace_id"]: memory(url, "traces.get_trace", T0 + DAY, agent, trace_id=t["trace_id"])["trace"] for t in done["traces"]}
    assert all(t["origin"] == "imprint" and t["partition_id"] == agent for t in stored.values())
    semantic = next(t for t in stored.values() if t["trace_type"] == "semantic")
    assert (semantic["reinforcement_count"], semantic["confidence"]) == (2, 0.7)  # stored in the window, then reinforced x3
    firmware = next(t for t in stored.values() if t["trace_type"] == "firmware")
    assert (firmware["strength"], firmware["reinforcement_count"], firmware["emotional_intensity"]) == (1.0, 1, 0.8)
    # One co-activation of each pair was recorded: two more link them.
    gotchas = [t["trace_id"] for t in done["traces"] if t["section"] == "cli-gotchas"]
    assert memory(url, "consolidation.hebbian_link", T0 + DAY, agent, trace_id_a=gotchas[0], trace_id_b=gotchas[1]) == {
        "linked": True, "coactivation_count": 2, "associated": False}
    assert memory(url, "traces.retrieve_by_domain", T0 + DAY, agent, domain_tag="cli-gotchas")["count"] == 3


def test_ingest_after_the_window_stores_plain_notes(url: str, notes: Path) -> None:
    agent = fresh_agent()
    call(url, "coldstart.begin_imprint", agent=agent)
    done = call(url, "ingest.ingest_file", T0 + 8 * DAY, agent, file_path=str(notes / "CLAUDE.md"))
    assert (done["file_type"], done["traces_stored"], done["imprint_active"], done["coactivated"]) == ("claude_md", 9, False, 3 + 3)
    got = memory(url, "traces.get_trace", T0 + 8 * DAY, agent, trace_id=done["traces"][0]["trace_id"])["trace"]
    assert (got["origin"], got["strength"], got["reinforcement_count"]) == ("direct_experience", 0.5, 0)


def test_ingest_parses_only_when_asked_and_reports_missing_files(url: str, notes: Path) -> None:
    agent = fresh_agent()
    parsed = call(url, "ingest.ingest_file", agent=agent, file_path=str(notes / "MEMORY.md"), store_traces=False)
    assert parsed["traces_stored"] == 0 and parsed["traces"][0]["trace_type"] == "semantic" and "trace_id" not in parsed["traces"][0]
    assert call(url, "coldstart.imprint_active", agent=agent) == {"active": False}  # parsing begins nothing
    assert memory(url, "traces.retrieve_ranked", agent=agent)["count"] == 0
    assert call(url, "ingest.ingest_file", agent=agent, file_path="/nonexistent/file.md") == {
        "file": "/nonexistent/file.md", "error": "file not found"}
    assert call(url, "ingest.ingest_directory", agent=agent, dir_path="/nonexistent/dir") == {
        "directory": "/nonexistent/dir", "error": "directory not found"}


def test_ingest_directory(url: str, notes: Path) -> None:
    agent = fresh_agent()
    done = call(url, "ingest.ingest_directory", agent=agent, dir_path=str(notes.parent))  # **/{CLAUDE,MEMORY}.md
    assert done["files"] == [str(notes / "CLAUDE.md"), str(notes / "MEMORY.md")]  # references/ skipped
    assert (done["files_found"], done["total_parsed"], done["total_stored"], done["imprint_active"]) == (2, 22, 22, True)
    assert memory(url, "traces.retrieve_by_domain", agent=agent, domain_tag="lex-example")["count"] == 22
    flat = call(url, "ingest.ingest_directory", agent=agent, dir_path=str(notes), pattern="*.md", store_traces=False)
    assert flat["files_found"] == 2 and flat["total_stored"] == 0
    with pytest.raises(sdk.StepError) as outside:
        call(url, "ingest.ingest_directory", agent=agent, dir_path=str(notes), pattern="../*/*.md")
    assert outside.value.type == "InvalidPattern"


def test_ingest_text_and_agents_kept_apart(url: str) -> None:
    ada, bob = fresh_agent(), fresh_agent()
    done = call(url, "ingest.ingest_text", T0, ada, content=MEMORY_MD, file_name="MEMORY.md")
    assert (done["file"], done["file_type"], done["traces_stored"], done["imprint_active"]) == ("MEMORY.md", "memory", 13, True)
    assert memory(url, "traces.retrieve_by_type", agent=ada, type="firmware")["count"] == 2
    assert memory(url, "traces.retrieve_by_type", agent=bob, type="firmware")["count"] == 0
    assert call(url, "coldstart.imprint_active", agent=bob) == {"active": False}
    assert call(url, "coldstart.coldstart_progress", T0 + DAY, ada)["imprint_active"] is True


def test_the_file_readers_are_kept_from_ai_agents() -> None:
    from legion.engine.registry import Registry

    functions = Registry.installed().functions
    assert [functions[f"coldstart.ingest.{name}"].spec.expose for name in ("ingest_file", "ingest_directory", "preview_ingest")] == [
        False, False, False]
    assert functions["coldstart.ingest.ingest_text"].spec.expose is True


# ---------------------------------------------------------------- in a chain


CHAIN = """
chain: imprint-notes
input:
  type: object
  required: [notes]
steps:
  ingest:
    run: coldstart.ingest.ingest_text
    with: {content: "{{ input.notes }}", file_name: MEMORY.md}
    next:
      - do: recall
  recall:
    run: memory.traces.retrieve_by_type
    with: {type: firmware}
output:
  firmware: "{{ result.count }}"
"""


@pytest.fixture()
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with embedded_service(tmp_path, monkeypatch, Registry.installed(), workers=2) as service:
        yield service


def test_ingest_in_a_chain_stores_into_the_runs_agent(service: Any) -> None:
    service.apply_chains(text=CHAIN)
    run = service.start_run("imprint-notes", {"notes": MEMORY_MD}, wait=True, timeout=30, agent="ada")
    assert run["status"] == "succeeded", run.get("error")
    assert run["output"]["firmware"] == 2
    # Each call into memory is a task of the run, recorded under the ingest step (its caller).
    tasks = service.list_tasks(run_id=run["id"], limit=100)
    called = [t["function"] for t in tasks if t["caller"] is not None and t["step"] == "ingest"]
    assert (called.count("memory.traces.store_trace"), called.count("memory.consolidation.reinforce"),
            called.count("memory.consolidation.hebbian_link")) == (13, 11, 9)
    other = service.start_run("imprint-notes", {"notes": "## Purpose\n- nothing firm\n"}, wait=True, timeout=30, agent="bob")
    assert other["output"]["firmware"] == 0
