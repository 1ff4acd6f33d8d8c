"""The REST API's routes, envelopes, errors and authentication.

Each route is an `Endpoint` in `ENDPOINTS`: its method and path, the scope it needs, how its
body is read, and the service operation it calls. The Starlette routes and the OpenAPI document
(`/api/openapi.json`) are both made from that one table, so they cannot disagree.

Service operations block (the database, an embedded run), so they run in Starlette's thread
pool; the event loop only reads bodies and writes answers.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from legion.dsl.errors import BadInput, LegionError, ValidationFailed
from legion.engine.errors import ConfigError, NotConfigured, ServiceUnavailable
from legion.engine.jsontext import dumps
from legion.engine.service import Service

MAX_BODY = 1024 * 1024  # bytes: a request body larger than this is refused (413) before it is read whole
SCOPES = ("read", "run", "admin")  # each includes the ones before it
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
MAX_LIMIT = 1000


class ApiError(LegionError):
    """An HTTP-level refusal: `status` says which."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.status = status
        self.code = code


STATUS = {"validation_failed": 422, "not_found": 404, "conflict": 409, "bad_input": 400, "expression_error": 400,
          "service_unavailable": 503, "config_error": 500, "timeout": 504}


def status_of(exc: LegionError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, ValidationFailed):
        return 422
    if isinstance(exc, NotConfigured):
        return 409  # the request is fine; this deployment has no such part (the broker, embedded)
    if isinstance(exc, ConfigError):
        return 500  # the deployment's settings, not the request
    if isinstance(exc, ServiceUnavailable):
        return 503
    return STATUS.get(exc.code, 400 if isinstance(exc, BadInput) else 500)


@dataclass
class Call:
    """What an operation gets from its request: path parameters, the query, the body."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any = None

    def text(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)

    def integer(self, name: str, default: int, low: int = 1, high: int = MAX_LIMIT) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadInput(f"query parameter {name!r} must be an integer, not {raw!r}", details={"parameter": name}) from None
        if not low <= value <= high:
            raise BadInput(f"query parameter {name!r} must be between {low} and {high}, not {value}", details={"parameter": name})
        return value

    def field(self, name: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        """A field of the JSON body, of the given type."""
        body = self.body if isinstance(self.body, dict) else {}
        if name not in body or body[name] is None:
            if required:
                raise BadInput(f"the request body needs {name!r}", details={"field": name})
            return default
        value = body[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):  # True is an int, not a number here
            wanted = " or ".join(k.__name__ for k in kinds)
            raise BadInput(f"{name!r} must be {wanted.replace('dict', 'an object').replace('str', 'a string')}, "
                           f"not {type(value).__name__}", details={"field": name})
        return value


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    name: str  # the OpenAPI operationId
    summary: str
    scope: str | None  # None: open to anyone (health, readiness, this document)
    call: Callable[[Service, Call], Any]  # -> data, or (status, data, meta)
    body: str | None = None  # "json" or "yaml"
    query: tuple[str, ...] = ()
    responses: dict[int, str] = field(default_factory=lambda: {200: "OK"})


def _run_wait(call: Call) -> tuple[bool, float | None]:
    wait = call.field("wait", bool, False)
    timeout = call.field("timeout", (int, float), None)
    if timeout is not None and timeout <= 0:
        raise BadInput("'timeout' must be a positive number of seconds", details={"field": "timeout"})
    return wait, timeout


def _start_run(service: Service, call: Call) -> Any:
    wait, timeout = _run_wait(call)
    run = service.start_run(call.field("chain", str, required=True), call.field("input", dict, {}), wait=wait, timeout=timeout,
                            agent=call.field("agent", str, None))
    return 201, run, None


def _list_runs(service: Service, call: Call) -> Any:
    limit = call.integer("limit", 50)
    runs = service.list_runs(chain=call.text("chain"), status=call.text("status"), limit=limit, after=_cursor(call.text("cursor")))
    last = runs[-1] if len(runs) == limit else None
    return 200, runs, {"next_cursor": _make_cursor(last["created_at"], last["id"]) if last else None}


def _run_task(service: Service, call: Call) -> Any:
    function = call.field("function", str, required=True)
    service.describe_function(function, exposed=True)  # a function not exposed is not there for the API
    return 201, service.run_task(function, call.field("args", dict, {})), None


def _task_ref(call: Call) -> int:
    try:
        return int(call.params["id"])
    except ValueError:
        raise BadInput(f"a task id is a number, not {call.params['id']!r}") from None


def _retry(service: Service, call: Call) -> Any:
    wait, timeout = _run_wait(call)
    return service.retry_run(call.params["id"], wait=wait, timeout=timeout)


def _make_cursor(created: datetime, run_id: str) -> str:
    raw = json.dumps([created.isoformat(), run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if not text:
        return None
    try:
        created, run_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return datetime.fromisoformat(created), str(run_id)
    except (ValueError, TypeError, binascii.Error):
        raise BadInput("query parameter 'cursor' is not one this API gave (use meta.next_cursor of the page before)",
                       details={"parameter": "cursor"}) from None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/health", "health", "The server answers", None, lambda s, c: {"status": "ok"}),
    Endpoint("GET", "/api/ready", "ready", "The server can reach its database", None, lambda s, c: s.ready(),
             responses={200: "ready", 503: "the database cannot be reached"}),
    Endpoint("GET", "/api/chains", "list_chains", "Applied chains", "read", lambda s, c: s.list_chains()),
    Endpoint("POST", "/api/chains", "apply_chain", "Apply a chain (YAML body)", "admin",
             lambda s, c: s.apply_chains(text=c.body), body="yaml", responses={200: "applied", 422: "the chain is broken"}),
    Endpoint("POST", "/api/chains/validate", "validate_chain", "Validate a chain (YAML body)", "read",
             lambda s, c: s.validate_chains(text=c.body), body="yaml", responses={200: "valid", 422: "the chain is broken"}),
    Endpoint("POST", "/api/chains/plan", "plan_chain", "What applying a chain would do (YAML body)", "read",
             lambda s, c: s.plan_chains(text=c.body), body="yaml", responses={200: "the plan", 422: "the chain is broken"}),
    Endpoint("GET", "/api/chains/{name}", "get_chain", "An applied chain: its source (YAML), definition and plan", "read",
             lambda s, c: s.get_chain(c.params["name"], c.integer("version", 0, 0, 2**31) or None, plan=True), query=("version",)),
    Endpoint("GET", "/api/chains/{name}/versions", "chain_versions", "The versions of a chain", "read",
             lambda s, c: s.chain_versions(c.params["name"])),
    Endpoint("GET", "/api/chains/{name}/graph", "chain_graph", "A chain drawn (format: mermaid, dot or svg)", "read",
             lambda s, c: s.chain_graph(c.params["name"], _graph_format(c)), query=("format",)),
    Endpoint("DELETE", "/api/chains/{name}", "delete_chain", "Delete a chain (its runs stay)", "admin",
             lambda s, c: s.delete_chain(c.params["name"])),
    Endpoint("POST", "/api/runs", "start_run", "Start a run: {chain, input, wait, timeout}", "run", _start_run, body="json",
             responses={201: "started (ended, with wait)", 400: "bad input", 404: "no such chain"}),
    Endpoint("GET", "/api/runs", "list_runs", "Runs, newest first (cursor pagination)", "read", _list_runs,
             query=("chain", "status", "limit", "cursor")),
    Endpoint("GET", "/api/runs/{id}", "get_run", "A run with its tasks and trace", "read", lambda s, c: s.get_run(c.params["id"])),
    Endpoint("POST", "/api/runs/{id}/cancel", "cancel_run", "Cancel a run", "run", lambda s, c: s.cancel_run(c.params["id"])),
    Endpoint("POST", "/api/runs/{id}/pause", "pause_run", "Pause a run", "run", lambda s, c: s.pause_run(c.params["id"])),
    Endpoint("POST", "/api/runs/{id}/resume", "resume_run", "Resume a paused run", "run", lambda s, c: s.resume_run(c.params["id"])),
    Endpoint("POST", "/api/runs/{id}/retry", "retry_run", "Retry a failed or canceled run from its failed steps: {wait, timeout}",
             "run", _retry, body="json"),
    Endpoint("GET", "/api/tasks", "list_tasks", "Tasks, newest first", "read",
             lambda s, c: s.list_tasks(run_id=c.text("run_id"), status=c.text("status"), limit=c.integer("limit", 100)),
             query=("run_id", "status", "limit")),
    Endpoint("POST", "/api/tasks", "run_task", "Run one function now: {function, args}", "run", _run_task, body="json",
             responses={201: "its task, ended", 400: "bad input", 404: "no such function"}),
    Endpoint("GET", "/api/tasks/{id}", "get_task", "A task", "read", lambda s, c: s.get_task(_task_ref(c))),
    Endpoint("GET", "/api/tasks/{id}/logs", "task_logs", "A task's log entries", "read", lambda s, c: s.task_logs(_task_ref(c))),
    Endpoint("GET", "/api/extensions", "list_extensions", "Installed extensions, their runners and functions", "read",
             lambda s, c: s.list_extensions(exposed=True)),
    Endpoint("GET", "/api/functions", "list_functions", "Functions with their argument schemas", "read",
             lambda s, c: s.list_functions(exposed=True)),
    Endpoint("GET", "/api/functions/{ref}", "describe_function", "A function with its argument schema", "read",
             lambda s, c: s.describe_function(c.params["ref"], exposed=True)),
    Endpoint("GET", "/api/schedules", "list_schedules", "Schedules (`on.schedule` of applied chains)", "read",
             lambda s, c: s.list_schedules()),
    Endpoint("GET", "/api/nodes", "list_nodes", "The processes running Legion, live or not", "read", lambda s, c: s.list_nodes()),
    Endpoint("GET", "/api/secrets", "list_secrets", "Secret paths and their keys (never a value)", "admin",
             lambda s, c: s.list_secrets()),
    Endpoint("GET", "/api/broker", "broker_status", "Legion's queues on RabbitMQ: depths, consumers, rates", "read",
             lambda s, c: s.broker_status()),
    Endpoint("GET", "/api/dead-letters", "list_dead_letters", "Dead letters, with why each died (RabbitMQ)", "read",
             lambda s, c: s.list_dead_letters(c.integer("limit", 100)), query=("limit",)),
    Endpoint("GET", "/api/dead-letters/{id}", "get_dead_letter", "One dead letter", "read", lambda s, c: s.get_dead_letter(c.params["id"])),
    Endpoint("POST", "/api/dead-letters/{id}/replay", "replay_dead_letter", "Run a dead letter again (its run is retried when it ended)",
             "run", lambda s, c: s.replay_dead_letter(c.params["id"])),
    Endpoint("DELETE", "/api/dead-letters", "purge_dead_letters", "Delete dead letters (all, or those of one queue)", "admin",
             lambda s, c: s.purge_dead_letters(c.text("queue")), query=("queue",)),
)


EVENTS_EVERY = 0.5  # seconds between looks at the database for changes
EVENTS_LAG = 5.0  # seconds looked back each time: a change committed late, or by a process whose clock is behind
KEEPALIVE = 15.0  # seconds: a comment line, so proxies keep an idle stream open


def _moment(text: str | None) -> datetime:
    from legion.engine.data.types import utcnow

    if not text:
        return utcnow()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"query parameter 'since' is an ISO 8601 time (2026-01-31T12:00:00Z), not {text!r}",
                       details={"parameter": "since"}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def event_stream(service: Service, request: Request, since: datetime, lasting: float | None) -> AsyncIterator[str]:
    """Server-sent events of run and step changes after `since`, read from the database every
    EVENTS_EVERY seconds (so every process's runs), each once; for `lasting` seconds, or until
    the client goes."""
    import anyio

    started = time.monotonic()
    watermark, seen = since, set()
    quiet = time.monotonic()
    while lasting is None or time.monotonic() - started < lasting:
        if await request.is_disconnected():
            return
        found = await run_in_threadpool(service.changes_since, watermark - timedelta(seconds=EVENTS_LAG))
        for event in found:
            key = (event["event"], event["run_id"], event.get("task_id"))
            if key in seen or event["at"] <= since:
                continue
            seen.add(key)
            quiet = time.monotonic()
            yield f"event: {event['event']}\ndata: {dumps(event)}\n\n"
        if found:
            watermark = max(watermark, max(e["at"] for e in found))
        if time.monotonic() - quiet > KEEPALIVE:
            quiet = time.monotonic()
            yield ": keep-alive\n\n"
        await anyio.sleep(EVENTS_EVERY)


def _graph_format(call: Call) -> str:
    fmt = call.text("format", "mermaid") or "mermaid"
    if fmt not in ("mermaid", "dot", "svg"):
        raise BadInput(f"query parameter 'format' is mermaid, dot or svg, not {fmt!r}", details={"parameter": "format"})
    return fmt


def refused(exc: LegionError) -> Response:
    """The answer to a request an error stopped: its status, and the token challenge on a 401."""
    status = status_of(exc)
    return answer(status, error=exc, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


def answer(status: int, data: Any = None, meta: Any = None, *, error: LegionError | None = None,
           headers: dict[str, str] | None = None) -> Response:
    if error is not None:
        body: dict[str, Any] = {"error": error.to_dict()}
    else:
        body = {"data": data} if meta is None else {"data": data, "meta": meta}
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


class Authorizer:
    """Bearer tokens (`legion token create`), checked against the store. `None` scope routes
    are open; a token's scope includes the ones before it in SCOPES."""

    def __init__(self, service: Service, enabled: bool) -> None:
        self.service = service
        self.enabled = enabled
        self._jwt_key: bytes | None = None

    def jwt_key(self) -> bytes:
        if self._jwt_key is None:
            from legion.engine.secrets import api_jwt_key

            self._jwt_key = api_jwt_key()
        return self._jwt_key

    def check(self, request: Request, scope: str | None) -> str | None:
        """The token's highest scope (None when tokens are off); ApiError when it may not."""
        if scope is None or not self.enabled:
            return None
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "this route needs a token: send `Authorization: Bearer <token>` "
                           "(`legion token create --scope read` makes one)")
        token = token.strip()
        found = self.service.store.token_for(token, self.jwt_key() if token.count(".") == 2 else None)
        if found is None:
            raise ApiError(401, "unauthorized", "the token is not valid: unknown, revoked or expired")
        level = max((SCOPES.index(s) for s in found["scopes"] if s in SCOPES), default=-1)
        if level < SCOPES.index(scope):
            raise ApiError(403, "forbidden", f"the token's scopes ({', '.join(found['scopes'])}) do not include {scope!r}",
                           details={"needs": scope, "has": found["scopes"]})
        return SCOPES[level]


async def read_body(request: Request, kind: str | None) -> Any:
    """The body as the endpoint takes it: parsed JSON, or YAML text; refused when it is
    larger than MAX_BODY, of another content type, or malformed."""
    if kind is None:
        return None
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "too_large", f"the request body is {int(declared):,} bytes; at most {MAX_BODY:,} are taken")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "too_large", f"the request body is over {MAX_BODY:,} bytes, the most taken")
        chunks.append(chunk)
    raw = b"".join(chunks)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "yaml":
        if media not in YAML_TYPES:
            raise ApiError(415, "unsupported_media_type", f"send the chain as YAML (Content-Type: application/yaml), not {media or 'no type'}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("the body is not UTF-8 text") from None
    if media not in ("application/json", ""):
        raise ApiError(415, "unsupported_media_type", f"send JSON (Content-Type: application/json), not {media}")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadInput("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"the body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                       details={"line": exc.lineno, "col": exc.colno}) from None
    if not isinstance(body, dict):
        raise BadInput(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def route(service: Service, auth: Authorizer, endpoint: Endpoint) -> Route:
    async def handle(request: Request) -> Response:
        try:
            auth.check(request, endpoint.scope)
            call = Call(dict(request.path_params), dict(request.query_params), await read_body(request, endpoint.body))
            result = await run_in_threadpool(endpoint.call, service, call)
            status, data, meta = result if isinstance(result, tuple) else (200, result, None)
            return answer(status, data, meta)
        except LegionError as exc:
            return refused(exc)

    path = endpoint.path.replace("{ref}", "{ref:path}")
    return Route(path, handle, methods=[endpoint.method], name=endpoint.name)


def mcp_route(service: Service, auth: Authorizer, host: str) -> tuple[Route, Callable[[], Any]]:
    """`/mcp`: the MCP tools over streamable HTTP, behind the API's tokens (a `read` token
    reaches the read tools only; see `legion.engine.mcpserver`), and the lifespan that runs
    its sessions. The MCP SDK is an extra (`pip install legion[mcp]`): without it `/mcp`
    answers 501."""
    try:
        from legion.engine.mcpserver import SCOPE, build_server
    except ImportError:
        async def missing(request: Request) -> Response:
            return answer(501, error=ApiError(501, "not_installed", "the MCP server needs the mcp extra: pip install 'legion[mcp]'"))

        return Route("/mcp", missing, methods=["GET", "POST", "DELETE"], name="mcp"), contextlib.nullcontext
    server = build_server(service)
    inner = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True, host=host)
    return Route("/mcp", McpEndpoint(inner, auth, SCOPE), methods=["GET", "POST", "DELETE"], name="mcp"), server.session_manager.run


class McpEndpoint:
    """An ASGI app: the API's token check, then the MCP app with the token's scope set (each
    tool checks the scope it needs)."""

    def __init__(self, inner: Any, auth: Authorizer, scope_var: Any) -> None:
        self.inner, self.auth, self.scope_var = inner, auth, scope_var

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            held = self.auth.check(Request(scope, receive), "read")
        except LegionError as exc:
            await refused(exc)(scope, receive, send)
            return
        token = self.scope_var.set(held)
        try:
            await self.inner(scope, receive, send)
        finally:
            self.scope_var.reset(token)


def create_app(service: Service, *, auth: bool = True, host: str = "127.0.0.1") -> Starlette:
    """The API over `service`. `auth=False` opens every route (`--no-auth`: loopback only,
    which the command serving it checks). `host`: where it is served (the MCP endpoint
    accepts only requests naming it, against DNS rebinding)."""
    from legion.engine.api.openapi import openapi_document

    authorizer = Authorizer(service, auth)
    routes = [route(service, authorizer, e) for e in ENDPOINTS]
    document = openapi_document(ENDPOINTS, auth=auth)
    mcp, sessions = mcp_route(service, authorizer, host)
    routes.append(mcp)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sessions():
            yield

    async def openapi(request: Request) -> Response:
        try:
            authorizer.check(request, "read")
        except LegionError as exc:
            return refused(exc)
        return Response(json.dumps(document), media_type="application/json")

    async def not_found(request: Request, exc: Exception) -> Response:
        return answer(404, error=ApiError(404, "not_found", f"no route {request.method} {request.url.path} (see /api/openapi.json)"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return answer(405, error=ApiError(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}"))

    async def failed(request: Request, exc: Exception) -> Response:
        return answer(500, error=LegionError(f"internal error: {type(exc).__name__}: {exc}"))

    async def metrics(request: Request) -> Response:
        try:
            found = await run_in_threadpool(service.metrics)
        except LegionError as exc:
            return refused(exc)
        return Response(prometheus(found), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def events(request: Request) -> Response:
        try:
            authorizer.check(request, "read")
            call = Call({}, dict(request.query_params))
            since = _moment(call.text("since"))
            lasting = call.integer("for", 0, 0, 86400) or None
        except LegionError as exc:
            return refused(exc)
        return StreamingResponse(event_stream(service, request, since, lasting), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    page = resources.files("legion.engine.api").joinpath("dashboard.html").read_bytes()

    async def dashboard(request: Request) -> Response:
        # The page holds no data: it asks the API, with the token the user gives it.
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; "
                                 "style-src 'unsafe-inline' 'self'; img-src 'self' data:", "X-Frame-Options": "DENY"})

    routes.append(Route("/", dashboard, methods=["GET"], name="dashboard"))
    routes.append(Route("/api/openapi.json", openapi, methods=["GET"], name="openapi"))
    routes.append(Route("/api/events", events, methods=["GET"], name="events"))
    routes.append(Route("/metrics", metrics, methods=["GET"], name="metrics"))
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed, Exception: failed}, lifespan=lifespan)


def prometheus(found: dict[str, Any]) -> str:
    """`Service.metrics` in the Prometheus text format."""
    lines = ["# HELP legion_runs Runs in the database, by status.", "# TYPE legion_runs gauge"]
    lines += [f'legion_runs{{status="{status}"}} {n}' for status, n in sorted(found["runs"].items())]
    lines += ["# HELP legion_steps Step runs (tasks) in the database, by status.", "# TYPE legion_steps gauge"]
    lines += [f'legion_steps{{status="{status}"}} {n}' for status, n in sorted(found["tasks"].items())]
    durations = found["durations"]
    lines += ["# HELP legion_step_duration_seconds How long step runs took, from start to finish.",
              "# TYPE legion_step_duration_seconds histogram"]
    lines += [f'legion_step_duration_seconds_bucket{{le="{bound:g}"}} {n}' for bound, n in durations["buckets"]]
    lines += [f'legion_step_duration_seconds_bucket{{le="+Inf"}} {durations["count"]}',
              f"legion_step_duration_seconds_sum {durations['sum']:.6f}", f"legion_step_duration_seconds_count {durations['count']}"]
    lines += ["# HELP legion_workers Processes running Legion that are up, by role.", "# TYPE legion_workers gauge"]
    lines += [f'legion_workers{{role="{role}"}} {n}' for role, n in sorted(found["workers"].items())]
    if found["queues"]:
        lines += ["# HELP legion_queue_messages Messages in Legion's RabbitMQ queues, ready to deliver.",
                  "# TYPE legion_queue_messages gauge"]
        lines += [f'legion_queue_messages{{queue="{q["name"]}"}} {q.get("ready") or 0}' for q in found["queues"]]
    return "\n".join(lines) + "\n"
