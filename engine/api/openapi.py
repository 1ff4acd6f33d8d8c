"""The OpenAPI 3.1 document of the REST API, made from its endpoint table (`app.ENDPOINTS`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legion.engine.api.app import Endpoint

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}
ENVELOPE = {"type": "object", "required": ["data"], "properties": {"data": {}, "meta": {"type": "object"}}}
BODIES = {
    "start_run": {"type": "object", "required": ["chain"], "additionalProperties": False, "properties": {
        "chain": {"type": "string"}, "input": {"type": "object"}, "wait": {"type": "boolean"},
        "timeout": {"type": "number", "exclusiveMinimum": 0}, "agent": {"type": "string", "minLength": 1, "maxLength": 255}}},
    "retry_run": {"type": "object", "additionalProperties": False, "properties": {
        "wait": {"type": "boolean"}, "timeout": {"type": "number", "exclusiveMinimum": 0}}},
    "run_task": {"type": "object", "required": ["function"], "additionalProperties": False, "properties": {
        "function": {"type": "string"}, "args": {"type": "object"}}},
}
QUERY = {"limit": {"type": "integer", "minimum": 1, "maximum": 1000}, "version": {"type": "integer", "minimum": 1},
         "format": {"type": "string", "enum": ["mermaid", "dot", "svg"]}}


def openapi_document(endpoints: Sequence[Endpoint], *, auth: bool) -> dict[str, Any]:
    from legion.engine.api.app import MAX_BODY
    from legion.engine.service import installed_version

    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        operation: dict[str, Any] = {"operationId": e.name, "summary": e.summary, "parameters": [], "responses": {}}
        for name in re.findall(r"{(\w+)}", e.path):
            operation["parameters"].append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
        for name in e.query:
            operation["parameters"].append({"name": name, "in": "query", "required": False,
                                            "schema": QUERY.get(name, {"type": "string"})})
        if e.body == "yaml":
            operation["requestBody"] = {"required": True, "description": f"a chain, as YAML (at most {MAX_BODY:,} bytes)",
                                        "content": {"application/yaml": {"schema": {"type": "string"}}}}
        elif e.body == "json":
            operation["requestBody"] = {"required": e.name != "retry_run",
                                        "content": {"application/json": {"schema": BODIES.get(e.name, {"type": "object"})}}}
        for status, what in e.responses.items():
            schema = ENVELOPE if status < 300 else ERROR
            operation["responses"][str(status)] = {"description": what, "content": {"application/json": {"schema": schema}}}
        if e.scope is not None:
            operation["responses"].setdefault("401", _error("no valid token"))
            operation["responses"].setdefault("403", _error(f"the token lacks the {e.scope!r} scope"))
            if auth:
                operation["security"] = [{"bearer": [e.scope]}]
            operation["x-scope"] = e.scope
        operation["responses"].setdefault("default", _error("an error"))
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    paths["/api/openapi.json"] = {"get": {"operationId": "openapi", "summary": "This document",
                                          "responses": {"200": {"description": "OpenAPI 3.1"}, "401": _error("no valid token")},
                                          **({"security": [{"bearer": ["read"]}]} if auth else {})}}
    paths["/api/events"] = {"get": {"operationId": "events", "summary": "Server-sent events of run and step changes, every "
                                    "process's (run.created, run.started, run.ended, step.started, step.finished)",
                                    "parameters": [{"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                                                   {"name": "for", "in": "query", "schema": {"type": "integer", "minimum": 1}}],
                                    "responses": {"200": {"description": "text/event-stream"}, "401": _error("no valid token")},
                                    **({"security": [{"bearer": ["read"]}]} if auth else {})}}
    paths["/"] = {"get": {"operationId": "dashboard", "summary": "The web dashboard (HTML)",
                          "responses": {"200": {"description": "text/html"}}}}
    paths["/metrics"] = {"get": {"operationId": "metrics", "summary": "Prometheus metrics: runs and steps by status, step "
                                 "durations (histogram), workers, queue depths", "responses": {"200": {"description": "text/plain"}}}}
    mcp = {"summary": "Legion's MCP tools over streamable HTTP (docs/mcp.md); each tool needs its REST route's scope",
           "responses": {"200": {"description": "an MCP message"}, "401": _error("no valid token")}}
    paths["/mcp"] = {method: dict(mcp, operationId=f"mcp_{method}") | ({"security": [{"bearer": ["read"]}]} if auth else {})
                     for method in ("get", "post", "delete")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Legion", "version": installed_version(),
                 "description": "Chains, runs, tasks and functions of a Legion deployment. Answers are "
                                "{data, meta} envelopes; errors are {error: {code, message, details}}."},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "a token made by `legion token create`"}}},
    }


def _error(what: str) -> dict[str, Any]:
    return {"description": what, "content": {"application/json": {"schema": ERROR}}}
