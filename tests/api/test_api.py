"""The REST API over an embedded deployment (SQLite in a fresh home), through Starlette's test
client: envelopes, errors and their statuses, tokens and scopes, chains applied from YAML,
runs started, listed page by page and shown with their trace, tasks, functions; and the
OpenAPI document made from the same routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from embedded import embedded_service
from starlette.testclient import TestClient

from legion.engine.api import MAX_BODY, create_app
from legion.engine.data.types import utcnow
from legion.engine.service import Service

HELLO = """\
chain: hello
input:
  type: object
  properties: {name: {type: string}}
  required: [name]
steps:
  greet:
    run: core.util.echo
    with: {message: "hello {{ input.name }}"}
output: {greeting: "{{ result }}"}
"""

BROKEN = """\
chain: broken
steps:
  a:
    run: core.util.nope
"""


@pytest.fixture()
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    with embedded_service(tmp_path / "home", monkeypatch) as service:
        yield service


def _token(service: Service, scope: str, **kw: Any) -> dict[str, str]:
    scopes = {"read": ["read"], "run": ["read", "run"], "admin": ["read", "run", "admin"]}[scope]
    return {"Authorization": "Bearer " + service.store.create_token(scope, scopes, **kw)["token"]}


@pytest.fixture()
def client(service: Service) -> TestClient:
    return TestClient(create_app(service), raise_server_exceptions=False)


YAML = {"Content-Type": "application/yaml"}


def test_health_ready_metrics_and_the_page_need_no_token_the_openapi_document_does(service: Service, client: TestClient) -> None:
    assert client.get("/api/health").json() == {"data": {"status": "ok"}}
    assert client.get("/api/ready").json() == {"data": {"status": "ready"}}
    assert client.get("/metrics").status_code == 200
    assert client.get("/").headers["content-type"].startswith("text/html")
    assert client.get("/api/openapi.json").status_code == 401
    doc = client.get("/api/openapi.json", headers=_token(service, "read")).json()
    assert doc["openapi"].startswith("3.1")
    assert doc["paths"]["/api/runs"]["post"]["security"] == [{"bearer": ["run"]}]


def test_the_openapi_document_lists_every_route_the_app_serves_and_no_other(service: Service, client: TestClient) -> None:
    served = {(method.lower(), r.path.replace(":path", "")) for r in client.app.routes for method in r.methods if method != "HEAD"}
    document = client.get("/api/openapi.json", headers=_token(service, "read")).json()
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert served == documented
    assert len(served) >= 25


def test_tokens_and_their_scopes(service: Service, client: TestClient) -> None:
    missing = client.get("/api/chains")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    assert client.get("/api/chains", headers={"Authorization": "Bearer lgn_nope"}).status_code == 401
    read, run, admin = _token(service, "read"), _token(service, "run"), _token(service, "admin")
    assert client.get("/api/chains", headers=read).json() == {"data": []}
    refused = client.post("/api/chains", content=HELLO, headers=read | YAML)
    assert refused.status_code == 403 and refused.json()["error"]["details"] == {"needs": "admin", "has": ["read"]}
    assert client.post("/api/chains", content=HELLO, headers=run | YAML).status_code == 403
    assert client.post("/api/chains", content=HELLO, headers=admin | YAML).status_code == 200
    assert client.post("/api/runs", json={"chain": "hello", "input": {"name": "x"}}, headers=read).status_code == 403
    assert client.post("/api/runs", json={"chain": "hello", "input": {"name": "x"}}, headers=run).status_code == 201
    revoked = service.store.list_tokens()[0]["id"]
    service.store.revoke_token(revoked)
    assert client.get("/api/chains", headers=read).status_code == 401
    expired = _token(service, "read", expires_at=utcnow() - timedelta(seconds=1))
    assert client.get("/api/chains", headers=expired).status_code == 401


def test_apply_a_chain_run_it_and_read_the_run_back(service: Service) -> None:
    no_auth = TestClient(create_app(service, auth=False))
    applied = no_auth.post("/api/chains", content=HELLO, headers=YAML)
    assert applied.status_code == 200
    assert applied.json()["data"]["applied"][0] | {"version": 1} == {"action": "created", "name": "hello", "version": 1}
    chain = no_auth.get("/api/chains/hello").json()["data"]
    assert chain["source"] == HELLO and "lex.core.util" in [q["name"] for q in chain["plan"]["topology"]["queues"]]
    assert no_auth.get("/api/secrets").json()["data"]["secrets"] == {}
    assert [v["version"] for v in no_auth.get("/api/chains/hello/versions").json()["data"]] == [1]
    graph = no_auth.get("/api/chains/hello/graph", params={"format": "dot"}).json()["data"]
    assert graph["format"] == "dot" and "greet" in graph["graph"]
    svg = ElementTree.fromstring(no_auth.get("/api/chains/hello/graph", params={"format": "svg"}).json()["data"]["graph"])
    steps = [g.get("data-step") for g in svg.iter("{http://www.w3.org/2000/svg}g")]
    assert steps == ["greet"]
    assert no_auth.get("/api/chains/hello/graph", params={"format": "png"}).status_code == 400
    started = no_auth.post("/api/runs", json={"chain": "hello", "input": {"name": "ann"}, "wait": True})
    assert started.status_code == 201
    run = started.json()["data"]
    assert (run["status"], run["output"], run["trace"]) == ("succeeded", {"greeting": "hello ann"}, ["greet"])
    shown = no_auth.get(f"/api/runs/{run['id'][:8]}").json()["data"]  # a unique prefix will do
    assert shown["id"] == run["id"] and shown["tasks"][0]["result"] == "hello ann"
    task = shown["tasks"][0]
    assert no_auth.get(f"/api/tasks/{task['id']}").json()["data"]["step"] == "greet"
    assert isinstance(no_auth.get(f"/api/tasks/{task['id']}/logs").json()["data"], list)
    assert [t["id"] for t in no_auth.get("/api/tasks", params={"run_id": run["id"]}).json()["data"]] == [task["id"]]


def test_runs_are_listed_newest_first_page_by_page(service: Service) -> None:
    client = TestClient(create_app(service, auth=False))
    client.post("/api/chains", content=HELLO, headers=YAML)
    ids = [client.post("/api/runs", json={"chain": "hello", "input": {"name": str(i)}, "wait": True}).json()["data"]["id"]
           for i in range(3)]
    first = client.get("/api/runs", params={"limit": 2}).json()
    assert [r["id"] for r in first["data"]] == ids[::-1][:2]
    second = client.get("/api/runs", params={"limit": 2, "cursor": first["meta"]["next_cursor"]}).json()
    assert [r["id"] for r in second["data"]] == ids[:1] and second["meta"]["next_cursor"] is None
    assert client.get("/api/runs", params={"cursor": "garbage"}).status_code == 400
    assert client.get("/api/runs", params={"limit": "0"}).status_code == 400
    assert [r["id"] for r in client.get("/api/runs", params={"status": "failed"}).json()["data"]] == []


def test_bad_input_gets_a_clear_4xx_and_changes_nothing(service: Service) -> None:
    client = TestClient(create_app(service, auth=False), raise_server_exceptions=False)
    broken = client.post("/api/chains", content=BROKEN, headers=YAML)
    assert broken.status_code == 422
    error = broken.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"][0] | {"message": ""} == {"file": "<request>", "line": 4, "col": 10, "severity": "error",
                                                      "message": "", "path": ["steps", "a", "run"]}
    assert client.get("/api/chains").json()["data"] == []  # nothing applied
    assert client.post("/api/chains/validate", content="[1, 2", headers=YAML).status_code == 422
    assert client.post("/api/chains/validate", content=HELLO, headers=YAML).json()["data"]["valid"] is True
    assert client.post("/api/chains", content=HELLO, headers={"Content-Type": "application/json"}).status_code == 415
    huge = client.post("/api/chains", content="x" * (MAX_BODY + 1), headers=YAML)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "too_large"
    client.post("/api/chains", content=HELLO, headers=YAML)
    for body, status, where in (
            (b'{"chain": ', 400, "not JSON"),
            (b'[1]', 400, "JSON object"),
            (b'{"chain": 3}', 400, "'chain' must be a string"),
            (b'{"chain": "hello", "input": []}', 400, "'input' must be an object"),
            (b'{"chain": "hello", "input": {}}', 400, "does not fit its input schema"),
            (b'{"chain": "nope"}', 404, "nope"),
            (b'{"chain": "hello", "input": {"name": "x"}, "timeout": -1}', 400, "timeout")):
        answer = client.post("/api/runs", content=body, headers={"Content-Type": "application/json"})
        assert (answer.status_code, where in answer.json()["error"]["message"]) == (status, True), body
    assert client.get("/api/runs").json()["data"] == []  # no run was made by any of them
    assert client.get("/api/runs/no-such-run").status_code == 404
    assert client.get("/api/tasks/x").status_code == 400
    assert client.get("/api/tasks/999").status_code == 404
    assert client.get("/api/nowhere").json()["error"]["code"] == "not_found"
    assert client.delete("/api/runs").status_code == 405
    done = client.post("/api/runs", json={"chain": "hello", "input": {"name": "x"}, "wait": True}).json()["data"]
    again = client.post(f"/api/runs/{done['id']}/cancel")
    assert again.status_code == 400 and "already ended" in again.json()["error"]["message"]
    assert client.post(f"/api/runs/{done['id']}/pause").status_code == 400


def test_functions_and_tasks_leave_out_what_is_not_exposed(service: Service) -> None:
    client = TestClient(create_app(service, auth=False))
    refs = [f["ref"] for f in client.get("/api/functions").json()["data"]]
    assert "core.util.echo" in refs and "probe.hidden.secret_sauce" not in refs
    echo = client.get("/api/functions/core.util.echo").json()["data"]
    assert echo["args_schema"]["properties"]["message"]
    assert client.get("/api/functions/probe.hidden.secret_sauce").status_code == 404
    assert client.post("/api/tasks", json={"function": "probe.hidden.secret_sauce"}).status_code == 404
    hidden = [f for e in client.get("/api/extensions").json()["data"] for r in e["runners"] for f in r["functions"]
              if f["ref"] == "probe.hidden.secret_sauce"]
    assert hidden == []
    task = client.post("/api/tasks", json={"function": "core.util.echo", "args": {"message": "hi"}})
    assert task.status_code == 201 and (task.json()["data"]["status"], task.json()["data"]["result"]) == ("succeeded", "hi")
    assert client.post("/api/tasks", json={"function": "core.util.nope"}).status_code == 404


def test_metrics_in_the_prometheus_format_and_broker_routes_when_embedded(service: Service) -> None:
    client = TestClient(create_app(service, auth=True))
    client.post("/api/chains", content=HELLO, headers=YAML | _token(service, "admin"))
    for name in ("a", "b"):
        service.start_run("hello", {"name": name}, wait=True)
    text = client.get("/metrics").text  # no token needed
    assert 'legion_runs{status="succeeded"} 2' in text.splitlines()
    assert 'legion_steps{status="succeeded"} 2' in text.splitlines()
    assert "# TYPE legion_step_duration_seconds histogram" in text
    assert 'legion_step_duration_seconds_bucket{le="+Inf"} 2' in text and "legion_step_duration_seconds_count 2" in text
    buckets = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("legion_step_duration_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == 2  # cumulative
    assert "legion_queue_messages" not in text  # embedded: no broker
    embedded = client.get("/api/dead-letters", headers=_token(service, "read"))
    assert embedded.status_code == 409 and embedded.json()["error"]["code"] == "not_configured"


def test_events_stream_run_and_step_changes_each_once(service: Service) -> None:
    client = TestClient(create_app(service, auth=False))
    client.post("/api/chains", content=HELLO, headers=YAML)
    since = utcnow() - timedelta(seconds=1)
    run = service.start_run("hello", {"name": "ev"}, wait=True)
    streamed = client.get("/api/events", params={"since": since.isoformat(), "for": 2})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in streamed.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        events.append((lines["event"], json.loads(lines["data"])))
    mine = [(kind, data.get("step")) for kind, data in events if data["run_id"] == run["id"]]
    assert mine == [("run.created", None), ("run.started", None), ("step.started", "greet"), ("step.finished", "greet"),
                    ("run.ended", None)]  # each once, over the several looks of two seconds
    assert [data["status"] for kind, data in events if kind == "run.ended"] == ["succeeded"]
    assert client.get("/api/events", params={"since": "yesterday"}).status_code == 400


def test_jwts_signed_with_the_deployment_key_expire_and_can_be_revoked(service: Service) -> None:
    from legion.engine.secrets import api_jwt_key

    client = TestClient(create_app(service))
    key = api_jwt_key()
    made = service.store.create_token("ci", ["read", "run"], utcnow() + timedelta(hours=1), jwt_key=key)
    assert made["token"].count(".") == 2
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert client.get("/api/runs", headers=bearer).status_code == 200
    assert client.post("/api/chains", content=HELLO, headers=bearer | YAML).status_code == 403  # run, not admin
    head, claims, signature = made["token"].split(".")
    forged = f"{head}.{claims}.{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}"
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    other = service.store.create_token("other", ["admin"], utcnow() + timedelta(hours=1), jwt_key=b"another deployment")
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {other['token']}"}).status_code == 401
    stale = service.store.create_token("old", ["read"], utcnow() - timedelta(seconds=5), jwt_key=key)
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {stale['token']}"}).status_code == 401
    service.store.revoke_token(made["id"])
    assert client.get("/api/runs", headers=bearer).status_code == 401
