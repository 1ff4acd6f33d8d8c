"""Anthropic's Message Batches API (/v1/messages/batches): many message requests answered
within a day at half the price. `create_batch`, `list_batches`, `retrieve_batch`,
`cancel_batch`, `batch_results`."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import Field

from legion.extensions.claude import _http
from legion.extensions.claude._http import AfterId, ApiBase, ApiKey, BeforeId, Limit, Timeout

__all__ = ["create_batch", "list_batches", "retrieve_batch", "cancel_batch", "batch_results"]

BatchId = Annotated[str, Field(description="the batch's id (msgbatch_...)")]
Requests = Annotated[list[dict[str, Any]], Field(min_length=1, description="the requests: [{custom_id, params: {model, max_tokens, "
                                                                           "messages, ...}}, ...]")]
BATCHES = "/v1/messages/batches"


def _batch(batch_id: str) -> str:
    return f"{BATCHES}/{quote(batch_id, safe='')}"


def create_batch(requests: Requests, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 120.0) -> dict[str, Any]:
    """Send a batch of message requests: {result: the batch {id, processing_status,
    request_counts, ...}, status}."""
    reply = _http.send("claude.batches.create_batch", "POST", BATCHES, api_key, api_base, json={"requests": requests},
                       timeout=timeout)
    return _http.answer(reply)


def list_batches(limit: Limit = 20, before_id: BeforeId = None, after_id: AfterId = None, api_key: ApiKey = None,
                 api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """The batches, newest first: {result: {data, has_more, first_id, last_id}, status}."""
    reply = _http.send("claude.batches.list_batches", "GET", BATCHES, api_key, api_base,
                       params={"limit": limit, "before_id": before_id, "after_id": after_id}, timeout=timeout)
    return _http.answer(reply)


def retrieve_batch(batch_id: BatchId, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """One batch (poll it until `processing_status` is `ended`): {result, status}."""
    return _http.answer(_http.send("claude.batches.retrieve_batch", "GET", _batch(batch_id), api_key, api_base, timeout=timeout))


def cancel_batch(batch_id: BatchId, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """Cancel a batch still in progress: {result: the batch (processing_status `canceling`), status}."""
    reply = _http.send("claude.batches.cancel_batch", "POST", _batch(batch_id) + "/cancel", api_key, api_base, timeout=timeout)
    return _http.answer(reply)


def batch_results(batch_id: BatchId, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 300.0) -> dict[str, Any]:
    """An ended batch's results (a JSONL file, one line per request, in any order): {result:
    [{custom_id, result: {type: succeeded|errored|canceled|expired, message?, error?}}, ...],
    status, usage (summed over the succeeded messages)}."""
    reply = _http.send("claude.batches.batch_results", "GET", _batch(batch_id) + "/results", api_key, api_base,
                       accept="application/binary", timeout=timeout)
    lines = _lines(reply.body)
    counted: dict[str, int] = {}
    for line in lines:
        message = (line.get("result") or {}).get("message") or {}
        for name, value in (message.get("usage") or {}).items():
            if isinstance(value, int):
                counted[name] = counted.get(name, 0) + value
    reply.body = lines
    return _http.answer(reply, usage=_http.usage(counted, reply.latency_ms))


def _lines(body: Any) -> list[dict[str, Any]]:
    """JSONL as it came (bytes), or as already parsed (one line reads as one JSON value)."""
    if isinstance(body, bytes | str):
        text = body.decode() if isinstance(body, bytes) else body
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(body, dict):
        return [body]
    return [line for line in body or [] if isinstance(line, dict)]
