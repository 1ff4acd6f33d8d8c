"""An agent's life end to end, through the real CLI in processes of their own, on a fresh
LEGION_HOME (embedded SQLite and secret store): made with a partner, spoken to (its model a fake
OpenAI-compatible server on 127.0.0.1 whose answer holds an address and a phone number, which
privatecore strips before the partner sees it), woken mode by mode, remembering what it was
told and forgetting it over a week of virtual time, its trust and consent reported as they
change, and then erased: its rows gone, a copy of one that a backup kept unreadable, and
another agent untouched."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))

from fake_openai import FakeOpenAI, chat_body  # noqa: E402

from legion import sdk  # noqa: E402
from legion.engine.agentstate import AgentKeys, AgentStates, StateUnreadable  # noqa: E402
from legion.engine.data.store import Store  # noqa: E402
from legion.engine.secrets import store_from_env  # noqa: E402

KEY = "sk-test-0123456789abcdef"
MODEL = "openai/local"
ADDRESS, PHONE = "ada.lovelace@example.com", "555-867-5309"
ANSWER = f"Happy to help. Write to {ADDRESS} or call {PHONE}."
ASKED = "How can I reach you outside this channel?"
SECOND = "The launch moved to Friday."
TO_BOB = "Are you there, bob?"
LEGION = [sys.executable, "-m", "legion.engine.cli.main"]


class Cli:
    """`legion ...` in a process of its own, on one LEGION_HOME."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*LEGION, *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == code, f"legion {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def data(self, *args: str) -> Any:
        proc = self(*args, "--json")
        return json.loads(proc.stdout)["data"]


def _rows(db: Path, agent: str) -> list[tuple[str, str, str, str, str]]:
    with sqlite3.connect(db) as conn:
        return sorted(conn.execute("SELECT extension, kind, key, data, updated_at FROM agent_state WHERE agent = ?", (agent,)))


def test_an_agent_talks_remembers_forgets_earns_trust_and_is_erased(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    db = home / "legion.db"
    url = f"sqlite:///{db}"
    env = dict(os.environ, LEGION_HOME=str(home), OPENAI_API_KEY=KEY, LEGION_LLM_RETRIES="0")
    for name in ("LEGION_DATABASE_URL", "LEGION_LLM_MODEL", "VAULT_ADDR", "VAULT_TOKEN"):
        env.pop(name, None)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEGION_HOME", str(home))  # this process's sdk calls: the same database and secret store
    legion = Cli(env)

    # -- made, with a partner; another agent beside it -------------------------------------
    made = legion.data("agent", "create", "ada", "--partner", "matt")
    assert (made["name"], made["partner"], made["erased_at"]) == ("ada", "matt", None)
    assert legion.data("agent", "create", "bob", "--partner", "sue")["partner"] == "sue"
    fresh = legion.data("agent", "status", "ada")
    assert (fresh["mode"]["mode"], fresh["mode"]["tick_count"], fresh["mode"]["mode_history"]) == ("dormant", 0, [])
    assert fresh["memories"] == [] and fresh["conversation"] == {"replies": [], "waiting": []}
    assert fresh["trust"] == {"total_entries": 0, "partner": {"found": False, "agent_id": "matt", "domain": "conversation"}}
    assert fresh["consent"] == {"domains": {}, "count": 0}

    with FakeOpenAI() as fake:
        # -- spoken to: woken one mode step per tick, answered by the model, PII stripped ------
        fake.answer(200, chat_body(ANSWER))
        proc = legion("agent", "send", "ada", ASKED, "--model", MODEL, "--api-base", fake.url, "--json")
        sent = json.loads(proc.stdout)["data"]
        assert [(t["status"], t["mode"]) for t in sent["ticks"]] == [("succeeded", "sentinel"), ("succeeded", "full_active")]
        assert sent["ticks"][0]["replied"] is None  # sentinel notices; only full_active acts
        reply = sent["reply"]
        assert reply["text"] == "Happy to help. Write to [REDACTED] or call [REDACTED]."
        assert reply["in_reply_to"] == [sent["message"]["id"]] == [1]
        assert sent["ticks"][1]["replied"] == reply["text"]
        assert ADDRESS not in proc.stdout and PHONE not in proc.stdout and "867" not in proc.stdout
        # The model was asked, once, with the partner's message, as ada.
        [asked] = fake.by("POST", "*/chat/completions")
        messages = asked.body["messages"]
        assert messages[-1] == {"role": "user", "content": ASKED}
        assert messages[0]["role"] == "system" and "You are ada" in messages[0]["content"]
        assert asked.body["model"] == "local"

        status = legion.data("agent", "status", "ada")
        assert status["mode"]["mode"] == "full_active" and status["mode"]["tick_count"] == 2
        assert [(h["from"], h["to"], h["reason"]) for h in status["mode"]["mode_history"]] == [
            ("dormant", "sentinel", "threshold"), ("sentinel", "full_active", "threshold")]
        [memory] = status["memories"]  # the partner's message, remembered once, from the partner
        assert (memory["trace_type"], memory["content_payload"], memory["source_agent_id"]) == ("episodic", ASKED, "matt")
        assert memory["domain_tags"] == ["conversation"] and memory["storage_tier"] == "hot"
        assert 0.59 < memory["strength"] <= 0.6  # an episodic trace starts at 0.6
        assert status["conversation"]["waiting"] == []  # answered: out of the inbox

        # Awake, a second message is answered at the first tick.
        fake.answer(200, chat_body("Friday it is."))
        again = legion.data("agent", "send", "ada", SECOND, "--model", MODEL, "--api-base", fake.url)
        assert [(t["mode"], t["replied"]) for t in again["ticks"]] == [("full_active", "Friday it is.")]
        assert again["reply"]["in_reply_to"] == [2]
        assert len(fake.by("POST", "*/chat/completions")) == 2
        assert fake.requests[-1].body["messages"][-1]["content"] == SECOND

    # A tick with nothing new: still full_active (less than 5 minutes since the partner wrote), no act.
    ticked = legion.data("agent", "tick", "ada")
    assert ticked["status"] == "succeeded"
    output = ticked["output"]
    assert (output["tick"], output["previous_mode"], output["mode"], output["reason"], output["replied"]) == (4, "full_active", "full_active", None, None)
    assert "action_selection" in ticked["output"]["phases"]

    # bob, by rule (no model): its own conversation.
    bobs = legion.data("agent", "send", "bob", TO_BOB)
    assert [t["mode"] for t in bobs["ticks"]] == ["sentinel", "full_active"]
    assert bobs["reply"]["text"] == f'Noted: "{TO_BOB}".'

    # -- memories formed, and decaying: the same traces a week later (virtual time) --------
    status = legion.data("agent", "status", "ada")
    assert sorted(m["content_payload"] for m in status["memories"]) == sorted([ASKED, SECOND])
    now = datetime.now(UTC)
    today = sdk.call("memory.traces.retrieve_by_type", {"type": "episodic"}, now=now, agent="ada", database_url=url)
    later = sdk.call("memory.traces.retrieve_by_type", {"type": "episodic"}, now=now + timedelta(days=7), agent="ada", database_url=url)
    assert today["count"] == later["count"] == 2
    strength = {t["content_payload"]: t["strength"] for t in today["traces"]}
    weaker = {t["content_payload"]: t["strength"] for t in later["traces"]}
    for text in (ASKED, SECOND):
        assert 0.55 < strength[text] <= 0.6
        assert 0.0 < weaker[text] < strength[text] / 3  # a 50 h half-life, slowed by how it felt: far weaker, not yet pruned
    first = next(t for t in today["traces"] if t["content_payload"] == ASKED)
    week = sdk.call("memory.traces.get_trace", {"trace_id": first["trace_id"]}, now=now + timedelta(days=7), agent="ada",
                    database_url=url)
    assert week["found"] and week["trace"]["strength"] == pytest.approx(weaker[ASKED])

    # -- trust and consent: the ticks record them (each message an interaction with the partner,
    # each reply an action in its domain); more recorded as ada; status reports them ----------
    status = legion.data("agent", "status", "ada")
    partner = status["trust"]["partner"]["trust"]
    assert (status["trust"]["total_entries"], partner["agent_id"], partner["interaction_count"]) == (1, "matt", 2)
    assert partner["composite"] == pytest.approx(0.4, abs=0.01)  # two messages, no probe: 0.3 + 2 x 0.05, less a few seconds of decay
    assert status["consent"]["domains"]["conversation"]["total_actions"] == 2  # two replies
    trusted = sdk.call("trust.trust.record_trust_interaction", {"agent_id": "matt", "positive": True, "domain": "conversation"},
                       agent="ada", database_url=url)
    assert (trusted["agent_id"], trusted["interactions"]) == ("matt", 3) and trusted["composite"] > 0.4
    for n in range(8):
        recorded = sdk.call("consent.consent.record_action", {"domain": "conversation", "success": True}, agent="ada", database_url=url)
        assert recorded["total"] == n + 3 and recorded["success_rate"] == 1.0
    swept = sdk.call("consent.consent.evaluate_and_apply_tiers", agent="ada", database_url=url)
    assert swept["applied_promotions"] == 1  # ten successes: consult -> act_notify
    status = legion.data("agent", "status", "ada")
    assert status["trust"]["total_entries"] == 1 and status["trust"]["partner"]["trust"]["interaction_count"] == 3
    assert min(m["strength"] for m in status["memories"]) > 0.55  # reading a week ahead wrote nothing: today they are strong
    conversation = status["consent"]["domains"]["conversation"]
    assert (conversation["tier"], conversation["success_rate"], conversation["total_actions"]) == ("act_notify", 1.0, 10)
    bobs_trust = sdk.call("trust.trust.get_trust", {"agent_id": "sue", "domain": "conversation"}, agent="bob", database_url=url)
    assert bobs_trust["trust"]["interaction_count"] == 1  # bob's own partner, from his one message: none of ada's
    assert sdk.call("trust.trust.get_trust", {"agent_id": "matt", "domain": "conversation"}, agent="bob", database_url=url)["found"] is False

    # -- erased ----------------------------------------------------------------------------
    legion("agent", "erase", "ada", code=2)  # not without --yes
    ada_rows, bob_rows = _rows(db, "ada"), _rows(db, "bob")
    assert {(e, k) for e, k, *_ in ada_rows} >= {("tick", "outbox"), ("memory", "traces"), ("trust", "entries"), ("consent", "domains")}
    backup = next(r for r in ada_rows if r[:2] == ("tick", "outbox") and r[2] == "000000000001")
    assert ASKED not in backup[3] and "REDACTED" not in backup[3]  # sealed at rest
    before = Store(url)
    try:  # before the erasure, read as another process would (its own key source): it opens
        opened = AgentStates(before, AgentKeys(lambda: store_from_env(os.environ))).of("ada", "tick").get("outbox", backup[2])
    finally:
        before.close()
    assert opened is not None and opened["text"] == reply["text"]
    assert "agents/ada" in store_from_env(os.environ).list()

    erased = legion.data("agent", "erase", "ada", "--yes")
    assert erased["agent"] == "ada" and erased["erased"] == len(ada_rows) and erased["erased_at"] is not None
    assert erased["runs_deleted"] == 4  # its ticks: what it was told and said is in their tasks
    with sqlite3.connect(db) as conn:  # nothing ada was told or said is left anywhere in the database
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = "\n".join(str(row) for table in tables for row in conn.execute(f"SELECT * FROM {table}"))
    assert ASKED not in dump and SECOND not in dump and ADDRESS not in dump and TO_BOB in dump  # bob's are his

    gone = legion("agent", "status", "ada", code=2)
    assert "agent 'ada' was erased at" in gone.stderr and "nothing of it is left" in gone.stderr
    assert _rows(db, "ada") == []
    assert "agents/ada" not in store_from_env(os.environ).list() and "agents/bob" in store_from_env(os.environ).list()
    with sqlite3.connect(db) as conn:  # the records stay, ada's marked erased
        assert dict(conn.execute("SELECT name, erased_at IS NOT NULL FROM agents")) == {"ada": 1, "bob": 0}

    # A row a backup kept, put back where it was: it does not open.
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO agent_state (agent, extension, kind, key, data, updated_at) VALUES ('ada', ?, ?, ?, ?, ?)", backup)
    after = Store(url)
    try:
        with pytest.raises(StateUnreadable, match="its key is gone"):
            AgentStates(after, AgentKeys(lambda: store_from_env(os.environ))).of("ada", "tick").get("outbox", backup[2])
    finally:
        after.close()

    # bob is untouched: every row as it was, and he still answers from what he remembers.
    assert _rows(db, "bob") == bob_rows
    bob = legion.data("agent", "status", "bob")
    assert bob["mode"]["mode"] == "full_active" and bob["conversation"]["replies"][-1]["text"] == f'Noted: "{TO_BOB}".'
    assert [m["content_payload"] for m in bob["memories"]] == [TO_BOB]
