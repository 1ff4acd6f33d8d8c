"""Legion's MCP tools as an agent uses them: through the SDK's in-process client (write,
validate, test, apply and run a chain in one loop; errors an agent can act on; what is not
exposed stays hidden; the resources), and a real `legion mcp` over stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from embedded import embedded_service
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from legion.engine.mcpserver import SCOPE, build_server
from legion.engine.service import Service

ROOT = Path(__file__).resolve().parents[2]

DRAFT = """\
chain: greet
input:
  type: object
  properties: {name: {type: string}}
  required: [name]
steps:
  hello:
    run: core.util.echo
    with: {message: "hello {{ input.name }}"}
output: {greeting: "{{ result }}"}
"""

REHEARSAL = """\
input: {name: ann}
expect:
  status: succeeded
  sequence: [hello]
  output: {greeting: "hello ann"}
"""


@pytest.fixture()
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    with embedded_service(tmp_path / "home", monkeypatch) as service:
        yield service


def tools(service: Service, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Call the tools in order through one in-process client session."""
    async def go() -> list[Any]:
        async with Client(build_server(service)) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(go)


def test_an_agent_writes_tests_applies_and_runs_a_chain_in_one_loop(service: Service) -> None:
    broken = DRAFT.replace("core.util.echo", "core.util.ecko")
    results = tools(service, [
        ("legion.list_functions", {}),
        ("legion.validate_chain", {"yaml": broken}),
        ("legion.validate_chain", {"yaml": DRAFT}),
        ("legion.test_chain", {"yaml": DRAFT, "rehearsal": REHEARSAL}),
        ("legion.test_chain", {"yaml": DRAFT, "rehearsal": REHEARSAL.replace("hello ann", "bye ann")}),
        ("legion.apply_chain", {"yaml": DRAFT}),
        ("legion.run_chain", {"chain": "greet", "input": {"name": "bo"}}),
        ("legion.list_runs", {"chain": "greet"}),
        ("legion.list_chains", {}),
        ("legion.get_chain", {"name": "greet"}),
    ])
    assert not any(r.is_error for r in results), [r.content for r in results if r.is_error]
    functions, invalid, valid, passed, failed, applied, run, runs, chains, chain = (r.structured_content for r in results)
    refs = [f["ref"] for f in functions["functions"]]
    assert "core.util.echo" in refs and "probe.hidden.secret_sauce" not in refs
    assert invalid["valid"] is False
    assert (invalid["issues"][0]["line"], invalid["issues"][0]["col"]) == (8, 10) and "did you mean 'core.util.echo'" in invalid["issues"][0]["message"]
    assert valid == {"valid": True, "issues": []}
    assert passed["passed"] is True and passed["run"]["sequence"] == ["hello"]
    assert failed["passed"] is False and "output" in failed["failures"][0]
    assert applied["applied"][0]["name"] == "greet"
    assert (run["status"], run["output"], run["trace"]) == ("succeeded", {"greeting": "hello bo"}, ["hello"])
    assert [r["id"] for r in runs["runs"]] == [run["id"]]
    assert [c["name"] for c in chains["chains"]] == ["greet"]
    assert chain["source"] == DRAFT
    shown = tools(service, [("legion.get_run", {"run_id": run["id"][:8]})])[0].structured_content
    assert shown["tasks"][0]["result"] == "hello bo"


def test_failures_are_tool_errors_an_agent_can_act_on(service: Service) -> None:
    results = tools(service, [
        ("legion.run_chain", {"chain": "nope"}),
        ("legion.apply_chain", {"yaml": "chain: x\nsteps: {}\n"}),
        ("legion.run_task", {"function": "probe.hidden.secret_sauce"}),
        ("legion.describe_function", {"function": "core.util.nope"}),
        ("legion.get_run", {"run_id": "zz"}),
        ("legion.run_task", {"function": "core.util.echo", "args": {"message": "hi"}}),
    ])
    assert [r.is_error for r in results] == [True, True, True, True, True, False]
    text = [r.content[0].text for r in results[:5]]
    assert "There is no chain 'nope'; `legion chain list` shows the applied chains." in text[0]
    assert "<request>:2:8: error: steps:" in text[1]
    assert "There is no function 'probe.hidden.secret_sauce'" in text[2]
    assert "no function 'core.util.nope' is installed" in text[3]
    assert "run id 'zz' is too short" in text[4]
    assert results[5].structured_content["result"] == "hi"


def test_a_token_scope_bounds_what_the_tools_may_do(service: Service) -> None:
    token = SCOPE.set("read")
    try:
        results = tools(service, [("legion.list_chains", {}), ("legion.apply_chain", {"yaml": DRAFT}),
                                  ("legion.run_task", {"function": "core.util.echo", "args": {"message": "x"}})])
    finally:
        SCOPE.reset(token)
    assert [r.is_error for r in results] == [False, True, True]
    assert "'admin' scope" in results[1].content[0].text and "'run' scope" in results[2].content[0].text
    assert service.list_chains() == []


def test_resources_teach_the_language_and_show_functions_and_chains(service: Service) -> None:
    service.apply_chains(text=DRAFT)

    async def go() -> dict[str, str]:
        async with Client(build_server(service)) as client:
            found = {}
            for uri in ("legion://docs/chains", "legion://schemas/chain", "legion://functions", "legion://chains/greet"):
                found[uri] = (await client.read_resource(uri)).contents[0].text
            return found

    found = anyio.run(go)
    assert "for_each" in found["legion://docs/chains"] and "join" in found["legion://docs/chains"]
    assert '"$schema"' in found["legion://schemas/chain"]
    assert "core.util.echo" in found["legion://functions"] and "secret_sauce" not in found["legion://functions"]
    assert found["legion://chains/greet"] == DRAFT


def test_legion_mcp_over_stdio(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LEGION_DATABASE_URL", "LEGION_AMQP_URL", "LEGION_REDIS_URL")}
    env["LEGION_HOME"] = str(tmp_path / "home")
    params = StdioServerParameters(command=sys.executable, args=["-m", "legion.engine.cli.main", "mcp"], env=env, cwd=str(ROOT))

    async def go() -> list[Any]:
        async with Client(params) as client:
            listed = await client.list_tools()
            applied = await client.call_tool("legion.apply_chain", {"yaml": DRAFT})
            run = await client.call_tool("legion.run_chain", {"chain": "greet", "input": {"name": "cy"}})
            return [sorted(t.name for t in listed.tools), applied, run]

    names, applied, run = anyio.run(go)
    assert {"legion.validate_chain", "legion.test_chain", "legion.apply_chain", "legion.run_chain", "legion.get_run",
            "legion.list_functions", "legion.describe_function", "legion.run_task"} <= set(names)
    assert not applied.is_error and not run.is_error
    assert run.structured_content["output"] == {"greeting": "hello cy"}
