"""conflict.conflict with a language model: resolutions and stale checks ask
`llm.chat.structured` (through ctx.call) when the call names a model or LEGION_LLM_MODEL is
set, against a fake OpenAI-compatible server on 127.0.0.1; a model that fails leaves the
rule-based answer; with no model configured, nothing is asked."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))

from fake_openai import FakeOpenAI, chat_body  # noqa: E402

from legion import sdk  # noqa: E402
from legion.extensions.conflict import helpers as h  # noqa: E402

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MODEL = "openai/local"


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    from legion.extensions.llm import guard

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    monkeypatch.delenv("LEGION_LLM_MODEL", raising=False)
    guard.BREAKER.reset()  # each test starts with the provider's circuit closed
    guard.LIMITS.reset()
    with FakeOpenAI() as server:
        yield server
    guard.BREAKER.reset()
    guard.LIMITS.reset()


def call(url: str, function: str, now: datetime = T0, **args: Any) -> Any:
    return sdk.call(f"conflict.conflict.{function}", args, now=now, agent="ada", database_url=url)


def argued(url: str) -> str:
    cid = str(call(url, "register_conflict", parties=["agent", "human"], severity="high",
                   description="disagreement over shutdown procedure")["conflict_id"])
    call(url, "add_exchange", conflict_id=cid, speaker="agent", message="I object")
    call(url, "add_exchange", conflict_id=cid, speaker="human", message="proceed anyway")
    return cid


def test_the_model_mediates_a_resolution(url: str, fake: FakeOpenAI) -> None:
    cid = argued(url)
    fake.answer(200, chat_body(json.dumps({"outcome": "deferred", "notes": "Pause the shutdown. Review the procedure together."})))
    done = call(url, "resolve_conflict", now=T0 + timedelta(hours=1), conflict_id=cid, outcome="compromise", model=MODEL,
                api_base=fake.url)
    assert done == {"resolved": True, "outcome": "compromise", "suggested_outcome": "deferred", "notes_source": "model",
                    "resolution_notes": "Pause the shutdown. Review the procedure together."}
    conflict = call(url, "get_conflict", conflict_id=cid)["conflict"]
    assert (conflict["outcome"], conflict["resolution_notes"]) == ("compromise", "Pause the shutdown. Review the procedure together.")
    [request] = fake.requests
    _, path, body, _ = request
    assert path == "/v1/chat/completions" and body["model"] == "local"
    messages = body["messages"]
    assert '"outcome"' in messages[0]["content"]  # the schema the answer must fit
    assert messages[1] == {"role": "system", "content": h.SYSTEM_PROMPT}
    assert "DESCRIPTION: disagreement over shutdown procedure" in messages[2]["content"]
    assert "SEVERITY: high" in messages[2]["content"] and "[agent]: I object\n[human]: proceed anyway" in messages[2]["content"]


def test_legion_llm_model_is_the_default_model(url: str, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_MODEL", MODEL)
    cid = argued(url)
    fake.answer(200, chat_body(json.dumps({"outcome": "escalated", "notes": "Bring in the owner."})))
    done = call(url, "resolve_conflict", conflict_id=cid, outcome="escalated", api_base=fake.url)
    assert (done["notes_source"], done["resolution_notes"]) == ("model", "Bring in the owner.")
    assert fake.requests[0][2]["model"] == "local"


def test_a_failing_model_leaves_the_rules_answer(url: str, fake: FakeOpenAI) -> None:
    cid = argued(url)
    fake.answer(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
    done = call(url, "resolve_conflict", conflict_id=cid, outcome="agreement", model=MODEL, api_base=fake.url)
    assert (done["notes_source"], done["suggested_outcome"]) == ("rules", "resolved")
    assert done["resolution_notes"].startswith("Closed as agreement: a high conflict between agent, human")
    assert len(fake.requests) == 1


def test_given_notes_or_no_model_ask_nothing(url: str, fake: FakeOpenAI) -> None:
    cid = argued(url)
    assert call(url, "resolve_conflict", conflict_id=cid, outcome="agreement", resolution_notes="agreed",
                model=MODEL, api_base=fake.url)["notes_source"] == "given"
    other = argued(url)
    assert call(url, "resolve_conflict", conflict_id=other, outcome="agreement", api_base=fake.url)["notes_source"] == "rules"
    assert fake.requests == []


def test_the_model_analyses_a_stale_conflict(url: str, fake: FakeOpenAI) -> None:
    cid = argued(url)
    fake.answer(200, chat_body(json.dumps({"recommendation": "escalate", "analysis": "Nobody has moved in a day."})))
    late = T0 + timedelta(hours=25)
    done = call(url, "check_stale_conflicts", now=late, model=MODEL, api_base=fake.url)
    assert done == {"checked": 1, "stale_count": 1, "stale_ids": [cid], "marked_ids": [cid]}
    last = call(url, "get_conflict", conflict_id=cid)["conflict"]["exchanges"][-1]
    assert last == {"speaker": "system", "message": "conflict marked stale — Nobody has moved in a day. (recommendation: escalate)",
                    "at": late.isoformat()}
    prompt = fake.requests[0][2]["messages"][-1]["content"]
    assert prompt.startswith("A conflict has been unresolved for 25.0 hours with 2 exchanges.")
