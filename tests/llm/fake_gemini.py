"""A small Gemini API (v1beta) server on 127.0.0.1, close enough for litellm's real HTTP path
(`gemini/<model>` with `api_base` = `.v1beta`) and for the `gemini` extension (`api_base` =
`.url`). Unless scripted (fake_server: a script, then routes, then this):

- `POST /v1beta/models/<m>:generateContent` answers "echo: <last user text>";
  `:streamGenerateContent?alt=sse` the same as server-sent events of GenerateContentResponse
  chunks (the text in pieces, a functionCall part whole, finishReason and usageMetadata last);
- `:embedContent` and `:batchEmbedContents` a vector per text ([len, 0.5, -1.0]);
- `:countTokens` counts words;
- `POST /upload/v1beta/files` speaks the resumable upload protocol (start, then upload and
  finalize at the URL it gives) and answers the new file.

Errors are Google's `{"error": {"code", "message", "status"}}` (`error_body`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fake_server import FakeServer, Request, pieces, sse

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
          500: "INTERNAL", 503: "UNAVAILABLE"}


def content_body(text: str, prompt_tokens: int = 7, completion_tokens: int = 3, finish: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish, "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": completion_tokens,
                              "totalTokenCount": prompt_tokens + completion_tokens},
            "modelVersion": "gemini-fake"}


def function_call_body(name: str, arguments: dict[str, Any], prompt_tokens: int = 7, completion_tokens: int = 3) -> dict[str, Any]:
    """An answer that calls the function `name` with `arguments`."""
    body = content_body("", prompt_tokens, completion_tokens)
    body["candidates"][0]["content"]["parts"] = [{"functionCall": {"name": name, "args": arguments}}]
    return body


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": STATUS.get(code, "UNKNOWN")}}


def content_events(body: dict[str, Any]) -> Iterator[str]:
    """`body` as :streamGenerateContent?alt=sse sends it: text pieces, each other part whole,
    then the finish reason and the usage."""
    candidate = (body.get("candidates") or [{}])[0]
    role = (candidate.get("content") or {}).get("role", "model")
    parts = (candidate.get("content") or {}).get("parts") or []
    head = {"modelVersion": body.get("modelVersion", "gemini-fake")}
    chunks: list[dict[str, Any]] = []
    for part in parts:
        if "text" in part:
            chunks += [{"text": p} for p in pieces(part["text"])]
        else:
            chunks.append(part)
    for i, part in enumerate(chunks or [{"text": ""}]):
        last = i == max(len(chunks), 1) - 1
        event: dict[str, Any] = {**head, "candidates": [{"content": {"parts": [part], "role": role}, "index": 0}]}
        if last:
            event["candidates"][0]["finishReason"] = candidate.get("finishReason", "STOP")
            event["usageMetadata"] = body.get("usageMetadata", {})
        yield sse(event)


def _texts(content: Any) -> list[str]:
    return [p["text"] for p in (content or {}).get("parts", []) if isinstance(p, dict) and "text" in p]


class FakeGemini(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.v1beta = self.url + "/v1beta"
        self.uploads = 0
        self.pending: dict[str, Any] = {}

    def reply(self, request: Request) -> tuple[Any, ...]:
        body = request.body if isinstance(request.body, dict) else {}
        route, method = request.route, request.method
        model, _, action = route.rpartition(":")
        if method == "POST" and route.startswith("/v1beta/models/") and action in ("generateContent", "streamGenerateContent"):
            users = [c for c in body.get("contents", []) if c.get("role", "user") == "user"]
            return 200, content_body("echo: " + " ".join(_texts(users[-1]) if users else []))
        if method == "POST" and action == "embedContent":
            return 200, {"embedding": {"values": self._vector(body.get("content"))}}
        if method == "POST" and action == "batchEmbedContents":
            return 200, {"embeddings": [{"values": self._vector(r.get("content"))} for r in body.get("requests", [])]}
        if method == "POST" and action == "countTokens":
            words = sum(len(t.split()) for c in body.get("contents", []) for t in _texts(c))
            return 200, {"totalTokens": words}
        if method == "POST" and route == "/upload/v1beta/files":
            return self._upload(request)
        return 404, error_body(404, f"no route for {method} {route}")

    @staticmethod
    def _vector(content: Any) -> list[float]:
        return [float(len(" ".join(_texts(content)))), 0.5, -1.0]

    def _upload(self, request: Request) -> tuple[Any, ...]:
        command = request.headers.get("x-goog-upload-command", "")
        if command == "start":
            self.uploads += 1
            self.pending = request.body if isinstance(request.body, dict) else {}
            return 200, {}, {"x-goog-upload-url": f"{self.url}/upload/v1beta/files?upload_id={self.uploads}",
                             "x-goog-upload-status": "active"}
        meta = self.pending.get("file", {})
        name = f"files/upload-{request.query.get('upload_id', '0')}"
        return 200, {"file": {"name": name, "displayName": meta.get("display_name") or meta.get("displayName"),
                              "mimeType": request.headers.get("content-type", "application/octet-stream"),
                              "sizeBytes": str(len(request.raw)), "state": "ACTIVE", "uri": f"{self.url}/v1beta/{name}"}}

    def streams(self, request: Request) -> bool:
        return request.route.endswith(":streamGenerateContent")

    def events(self, request: Request, body: dict[str, Any]) -> Iterator[str]:
        if "candidates" not in body:
            yield sse(body)
            return
        yield from content_events(body)

    def __enter__(self) -> FakeGemini:
        return super().__enter__()  # type: ignore[no-any-return]
