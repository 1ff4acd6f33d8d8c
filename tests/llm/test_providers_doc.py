"""The chains docs/providers.md shows run as written, against the fake providers on 127.0.0.1
(keys from the secret store, base URLs from the LEGION_*_API_BASE settings), and `legion run
show` sums the usage of their model calls."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from fake_anthropic import FakeAnthropic
from fake_gemini import FakeGemini
from fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_chains_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "providers.md").read_text(encoding="utf-8"), re.S)
    chains = tmp_path / "chains"
    chains.mkdir()
    for i, block in enumerate(blocks):
        (chains / f"doc{i}.yaml").write_text(block, encoding="utf-8")
    env = dict(os.environ, LEGION_HOME=str(tmp_path / "home"), GEMINI_API_KEY="gemini-doc-key")
    env.pop("LEGION_DATABASE_URL", None)
    legion = [sys.executable, "-m", "legion.engine.cli.main"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*legion, *args], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    with FakeAnthropic() as anthropic, FakeOpenAI() as openai, FakeGemini() as gemini:
        openai.route("POST", "/v1/moderations", {"id": "modr-1", "results": [{"flagged": False}]})
        gemini.route("POST", "/v1beta/cachedContents", {"name": "cachedContents/c9", "model": "models/gemini-2.0-flash-001"})
        env.update(LEGION_CLAUDE_API_BASE=anthropic.url, LEGION_OPENAI_API_BASE=openai.url, LEGION_GEMINI_API_BASE=gemini.url)
        for path, key in (("llm/openai", "sk-openai-doc"), ("llm/anthropic", "sk-ant-doc")):
            subprocess.run([*legion, "secret", "set", path, "api_key", key], env=env, check=True, capture_output=True, timeout=120)
        run("chain", "apply", str(chains))
        triage = json.loads(run("chain", "run", "triage", "ticket=my printer is on fire", "--json").stdout)["data"]
        assert triage["output"] == {"reply": "echo: my printer is on fire"}
        assert openai.requests[0].headers["authorization"] == "Bearer sk-openai-doc"
        assert anthropic.requests[0].headers["x-api-key"] == "sk-ant-doc"
        assert triage["usage"]["calls"] == 1 and triage["usage"]["prompt_tokens"] == 7
        manual = json.loads(run("chain", "run", "ask-the-manual", "manual=a long manual", "question=what?", "--json").stdout)["data"]
        assert manual["output"] == {"answer": "echo: what?"}
        assert gemini.requests[-1].body["cachedContent"] == "cachedContents/c9"
        shown = run("run", "show", manual["id"]).stdout
        assert "models: 1 call(s), 7 tokens in, 3 out, unknown cost" in shown
