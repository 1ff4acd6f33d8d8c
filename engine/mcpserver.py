"""Legion's MCP server (the `mcp` SDK 2.x, `MCPServer`): tools that let an agent write, test,
apply and run chains in one loop, named as LegionIO names them, over the service layer.

`legion mcp` serves it on stdio; `legion api` and `legion start --port` also at `/mcp`
(streamable HTTP, with the API's tokens: each tool needs the scope its REST route needs).
Tools answer structured content (a JSON object, with an output schema); a failure is a tool
error whose message says what to change. Functions declared `expose=False` never appear.
"""

from __future__ import annotations

import contextvars
import json
from importlib import resources
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from legion.dsl.errors import LegionError, ValidationFailed
from legion.engine.jsontext import encode, masked
from legion.engine.service import Service, installed_version

# Over HTTP, the scope of the token the request came with (None: stdio, or --no-auth).
SCOPE: contextvars.ContextVar[str | None] = contextvars.ContextVar("legion_mcp_scope", default=None)
SCOPES = ("read", "run", "admin")

INSTRUCTIONS = """Legion runs chains: YAML graphs of steps, each calling an extension function.
To build one: read legion://docs/chains (the language) and legion.list_functions (what steps can
run, with their argument schemas); draft the YAML; legion.validate_chain it (issues come with
line and column); legion.test_chain it with a rehearsal (mocks and expectations, no side
effects); legion.apply_chain it; legion.run_chain it and legion.get_run the result."""


def _plain(value: Any) -> Any:
    """JSON-ready data (datetimes as text), known secrets masked."""
    return json.loads(encode(masked(value)))


def _needs(scope: str) -> None:
    held = SCOPE.get()
    if held is not None and SCOPES.index(held) < SCOPES.index(scope):
        raise ToolError(f"this tool needs a token with the {scope!r} scope; this one has {held!r}")


def _call(scope: str, operation: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a service operation for a tool: its result as plain data, or a tool error with the
    operation's message (for a broken chain, it lists every issue with its line and column)."""
    _needs(scope)
    try:
        return _plain(operation(*args, **kwargs))
    except LegionError as exc:
        raise ToolError(exc.message) from None


def build_server(service: Service) -> MCPServer:
    server = MCPServer(name="legion", title="Legion", instructions=INSTRUCTIONS, version=installed_version())

    @server.tool(name="legion.list_functions", description="Functions steps can run, with their argument schemas.")
    def list_functions() -> dict[str, Any]:
        rows = _call("read", service.list_functions, exposed=True)
        return {"functions": [{k: f[k] for k in ("ref", "description", "args_schema", "returns")} for f in rows]}

    @server.tool(name="legion.describe_function", description="One function: its parameters and argument schema.")
    def describe_function(function: str) -> dict[str, Any]:
        return dict(_call("read", service.describe_function, function, exposed=True))

    @server.tool(name="legion.validate_chain",
                 description="Validate a chain (YAML text): {valid, issues}; each issue has line, col, path and message.")
    def validate_chain(yaml: str) -> dict[str, Any]:
        _needs("read")
        try:
            data = service.validate_chains(text=yaml)
        except ValidationFailed as exc:
            return {"valid": False, "issues": [i.to_dict() for i in exc.issues]}
        except LegionError as exc:
            raise ToolError(exc.message) from None
        return {"valid": True, "issues": data["warnings"]}

    @server.tool(name="legion.plan_chain", description="What applying a chain (YAML text) would do: relationships, queues, the diff.")
    def plan_chain(yaml: str) -> dict[str, Any]:
        return dict(_call("read", service.plan_chains, text=yaml))

    @server.tool(name="legion.test_chain",
                 description="Rehearse a chain (YAML text) with a rehearsal (YAML: input, mocks by step, expect): "
                             "no function runs for a mocked step. {passed, failures, run: {status, sequence, output, error}}.")
    def test_chain(yaml: str, rehearsal: str) -> dict[str, Any]:
        return dict(_call("read", service.test_chain, yaml, rehearsal))

    @server.tool(name="legion.apply_chain", description="Apply a chain (YAML text): it can be run from now on.")
    def apply_chain(yaml: str) -> dict[str, Any]:
        return dict(_call("admin", service.apply_chains, text=yaml))

    @server.tool(name="legion.run_chain",
                 description="Run an applied chain with an input; with wait (the default) the run ended, else started.")
    def run_chain(chain: str, input: dict[str, Any] | None = None, wait: bool = True, timeout: float = 300.0) -> dict[str, Any]:
        return _run(_call("run", service.start_run, chain, input or {}, wait=wait, timeout=timeout))

    @server.tool(name="legion.get_run", description="A run (id or unique prefix): status, output, error, trace and its tasks.")
    def get_run(run_id: str) -> dict[str, Any]:
        return _run(_call("read", service.get_run, run_id))

    @server.tool(name="legion.list_runs", description="Recent runs, newest first.")
    def list_runs(chain: str | None = None, status: str | None = None, limit: int = 20) -> dict[str, Any]:
        return {"runs": _call("read", service.list_runs, chain=chain, status=status, limit=max(1, min(limit, 1000)))}

    @server.tool(name="legion.cancel_run", description="Cancel a run that has not ended.")
    def cancel_run(run_id: str) -> dict[str, Any]:
        return dict(_call("run", service.cancel_run, run_id))

    @server.tool(name="legion.list_chains", description="Applied chains.")
    def list_chains() -> dict[str, Any]:
        return {"chains": _call("read", service.list_chains)}

    @server.tool(name="legion.get_chain", description="An applied chain: its YAML source and version.")
    def get_chain(name: str) -> dict[str, Any]:
        chain = _call("read", service.get_chain, name)
        return {k: chain.get(k) for k in ("name", "version", "source", "path", "created_at")}

    @server.tool(name="legion.delete_chain", description="Delete an applied chain (its runs keep their versions).")
    def delete_chain(name: str) -> dict[str, Any]:
        return dict(_call("admin", service.delete_chain, name))

    @server.tool(name="legion.list_schedules", description="Schedules of the applied chains.")
    def list_schedules() -> dict[str, Any]:
        return {"schedules": _call("read", service.list_schedules)}

    @server.tool(name="legion.run_task", description="Run one function now with arguments: its task (status, result, error).")
    def run_task(function: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        _call("read", service.describe_function, function, exposed=True)
        return dict(_call("run", service.run_task, function, args or {}))

    @server.resource("legion://functions", name="functions", mime_type="application/json",
                     description="Every function steps can run, with its argument schema.")
    def functions_resource() -> str:
        return json.dumps(_call("read", service.list_functions, exposed=True))

    @server.resource("legion://chains/{name}", name="chain", mime_type="application/yaml",
                     description="An applied chain's YAML source.")
    def chain_resource(name: str) -> str:
        return str(_call("read", service.get_chain, name)["source"])

    @server.resource("legion://schemas/chain", name="chain-schema", mime_type="application/schema+json",
                     description="The JSON Schema of chain files.")
    def schema_resource() -> str:
        return resources.files("legion.schemas").joinpath("chain.schema.json").read_text(encoding="utf-8")

    @server.resource("legion://docs/chains", name="chains-reference", mime_type="text/markdown",
                     description="The chain language reference: steps, edges, conditions, templates, for_each, joins, retries.")
    def docs_resource() -> str:
        return resources.files("legion.docs").joinpath("chains.md").read_text(encoding="utf-8")

    return server


def _run(run: dict[str, Any]) -> dict[str, Any]:
    """A run as an agent reads it: what it needs, and each task briefly."""
    keep = ("id", "chain_name", "chain_version", "status", "output", "error", "trace", "created_at", "ended_at")
    tasks = [{k: t.get(k) for k in ("id", "number", "step", "status", "attempt", "item_index", "result", "error")} for t in run["tasks"]]
    return {k: run.get(k) for k in keep} | {"tasks": tasks}
