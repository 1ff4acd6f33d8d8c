"""The `gemini` extension against a fake Gemini API (v1beta) on 127.0.0.1: every operation's
request (method, path, the key in x-goog-api-key and never in the URL, body) and result,
streamed content, resumable uploads, usage in the shape run show sums, and failures as typed
errors with no key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from ext_calls import failed, nowhere, ok, tokens
from fake_gemini import FakeGemini, content_body, error_body, function_call_body

KEY = "AIza-gemini-ext-0123456789"


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("LEGION_LLM_RETRIES", "2")
    with FakeGemini() as server:
        monkeypatch.setenv("LEGION_GEMINI_API_BASE", server.url)
        yield server


def sent(fake: FakeGemini, method: str, route: str, query: dict[str, str] | None = None) -> dict:
    (request,) = fake.requests
    assert (request.method, request.route, request.query) == (method, route, query or {})
    assert request.headers["x-goog-api-key"] == KEY and KEY not in request.path
    fake.requests.clear()
    return request.body if isinstance(request.body, dict) else {}


def test_generate(fake: FakeGemini) -> None:
    fake.answer(200, function_call_body("weather", {"city": "Paris"}, prompt_tokens=30, completion_tokens=5))
    tools = [{"functionDeclarations": [{"name": "weather", "parameters": {"type": "object"}}]}]
    done = ok("gemini.content.generate", prompt="weather?", model="gemini-test", system_instruction="be brief",
              generation_config={"temperature": 0.2, "maxOutputTokens": 64}, safety_settings=[{"category": "HARM_CATEGORY_HARASSMENT",
                                                                                               "threshold": "BLOCK_NONE"}],
              tools=tools, tool_config={"functionCallingConfig": {"mode": "ANY"}}, cached_content="abc", api_base=fake.url)
    body = sent(fake, "POST", "/v1beta/models/gemini-test:generateContent")
    assert body == {"contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
                    "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64},
                    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
                    "systemInstruction": {"parts": [{"text": "be brief"}]}, "tools": tools,
                    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}, "cachedContent": "cachedContents/abc"}
    assert done["result"]["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]
    assert done["text"] == ""
    tokens(done["usage"], 30, 5)
    nowhere(KEY, done)
    plain = ok("gemini.content.generate", contents=[{"role": "user", "parts": [{"text": "hello"}]}], model="models/gemini-test")
    assert plain["text"] == "echo: hello"
    sent(fake, "POST", "/v1beta/models/gemini-test:generateContent")


def test_stream_generate(fake: FakeGemini) -> None:
    done = ok("gemini.content.stream_generate", prompt="tell me a story")
    sent(fake, "POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent", {"alt": "sse"})
    assert done["text"] == "echo: tell me a story" and len(done["events"]) == 3
    assert done["result"]["candidates"][0]["content"]["parts"] == [{"text": "echo: tell me a story"}]
    assert done["result"]["candidates"][0]["finishReason"] == "STOP"
    tokens(done["usage"], 7, 3)
    fake.answer(200, function_call_body("weather", {"city": "Oslo"}))
    tool = ok("gemini.content.stream_generate", prompt="weather?")
    assert tool["result"]["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}]


def test_embeddings_and_tokens(fake: FakeGemini) -> None:
    one = ok("gemini.embeddings.embed", content="abcd", task_type="RETRIEVAL_DOCUMENT", title="T", output_dimensionality=3)
    assert sent(fake, "POST", "/v1beta/models/gemini-embedding-001:embedContent") == {
        "model": "models/gemini-embedding-001", "content": {"parts": [{"text": "abcd"}]}, "taskType": "RETRIEVAL_DOCUMENT",
        "title": "T", "outputDimensionality": 3}
    assert one["embedding"] == [4.0, 0.5, -1.0]
    many = ok("gemini.embeddings.batch_embed", requests=["ab", {"content": {"parts": [{"text": "abc"}]}, "taskType": "CLUSTERING"}],
              model="text-embedding-004", task_type="SEMANTIC_SIMILARITY")
    assert sent(fake, "POST", "/v1beta/models/text-embedding-004:batchEmbedContents") == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "ab"}]}, "taskType": "SEMANTIC_SIMILARITY"},
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "abc"}]}, "taskType": "CLUSTERING"}]}
    assert many["embeddings"] == [[2.0, 0.5, -1.0], [3.0, 0.5, -1.0]]
    counted = ok("gemini.tokens.count", prompt="one two three")
    assert sent(fake, "POST", "/v1beta/models/gemini-2.0-flash:countTokens") == {
        "contents": [{"role": "user", "parts": [{"text": "one two three"}]}]}
    assert counted["total_tokens"] == 3 and counted["result"] == {"totalTokens": 3}


def test_models(fake: FakeGemini) -> None:
    model = {"name": "models/gemini-test", "displayName": "Gemini Test", "inputTokenLimit": 1048576}
    fake.route("GET", "/v1beta/models", {"models": [model], "nextPageToken": "next"})
    fake.route("GET", "/v1beta/models/*", model)
    assert ok("gemini.models.list", page_size=10)["result"]["nextPageToken"] == "next"
    sent(fake, "GET", "/v1beta/models", {"pageSize": "10"})
    assert ok("gemini.models.get", name="gemini-test")["result"] == model
    sent(fake, "GET", "/v1beta/models/gemini-test")


def test_files(fake: FakeGemini, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello gemini")
    done = ok("gemini.files.upload", file_path=str(notes), display_name="Notes")
    start, finish = fake.requests
    assert (start.method, start.route, finish.route, finish.query) == ("POST", "/upload/v1beta/files", "/upload/v1beta/files",
                                                                        {"upload_id": "1"})
    assert {k: start.headers[k] for k in ("x-goog-upload-protocol", "x-goog-upload-command", "x-goog-upload-header-content-length",
                                           "x-goog-upload-header-content-type")} == {
        "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start", "x-goog-upload-header-content-length": "12",
        "x-goog-upload-header-content-type": "text/plain"}
    assert start.body == {"file": {"display_name": "Notes"}}
    assert finish.raw == b"hello gemini" and finish.headers["x-goog-upload-command"] == "upload, finalize"
    assert finish.headers["x-goog-upload-offset"] == "0" and finish.headers["x-goog-api-key"] == KEY
    assert done["result"]["file"]["name"] == "files/upload-1" and done["result"]["file"]["sizeBytes"] == "12"
    fake.requests.clear()
    ok("gemini.files.upload", file_base64=base64.b64encode(b"\x00\x01").decode(), mime_type="application/pdf")
    assert fake.requests[0].headers["x-goog-upload-header-content-type"] == "application/pdf" and fake.requests[1].raw == b"\x00\x01"
    fake.requests.clear()
    fake.answer(200, {}, {"x-goog-upload-url": "http://127.0.0.2:9/upload?upload_id=x"})
    error = failed("gemini.files.upload", file_base64="AA==")
    assert error["type"] == "LlmError" and "another host" in error["message"] and len(fake.requests) == 1  # the key went nowhere else
    fake.requests.clear()
    record = {"name": "files/abc", "uri": f"{fake.url}/v1beta/files/abc", "mimeType": "text/plain", "state": "ACTIVE"}
    fake.route("GET", "/v1beta/files", {"files": [record]})
    fake.route("GET", "/v1beta/files/abc", record)
    fake.route("DELETE", "/v1beta/files/abc", {})
    assert ok("gemini.files.list", page_size=5, page_token="p2")["result"]["files"] == [record]
    sent(fake, "GET", "/v1beta/files", {"pageSize": "5", "pageToken": "p2"})
    assert ok("gemini.files.get", name="files/abc")["result"] == record
    sent(fake, "GET", "/v1beta/files/abc")
    assert ok("gemini.files.delete", name="abc")["result"] == {}
    sent(fake, "DELETE", "/v1beta/files/abc")


def test_cached_contents(fake: FakeGemini) -> None:
    cache = {"name": "cachedContents/c1", "model": "models/gemini-test-001", "expireTime": "2030-01-01T00:00:00Z",
             "usageMetadata": {"totalTokenCount": 40000}}
    fake.route("POST", "/v1beta/cachedContents", cache)
    fake.route("GET", "/v1beta/cachedContents", {"cachedContents": [cache]})
    fake.route("GET", "/v1beta/cachedContents/c1", cache)
    fake.route("PATCH", "/v1beta/cachedContents/c1", {**cache, "expireTime": "2031-01-01T00:00:00Z"})
    fake.route("DELETE", "/v1beta/cachedContents/c1", {})
    contents = [{"role": "user", "parts": [{"text": "a long document"}]}]
    assert ok("gemini.cached_contents.create", model="gemini-test-001", contents=contents, system_instruction="answer from it",
              ttl="600s", display_name="doc")["result"] == cache
    assert sent(fake, "POST", "/v1beta/cachedContents") == {
        "model": "models/gemini-test-001", "contents": contents, "systemInstruction": {"parts": [{"text": "answer from it"}]},
        "ttl": "600s", "displayName": "doc"}
    assert ok("gemini.cached_contents.list")["result"]["cachedContents"] == [cache]
    sent(fake, "GET", "/v1beta/cachedContents")
    assert ok("gemini.cached_contents.get", name="cachedContents/c1")["result"] == cache
    sent(fake, "GET", "/v1beta/cachedContents/c1")
    assert ok("gemini.cached_contents.update", name="c1", expire_time="2031-01-01T00:00:00Z")["result"]["expireTime"].startswith("2031")
    assert sent(fake, "PATCH", "/v1beta/cachedContents/c1", {"updateMask": "expireTime"}) == {"expireTime": "2031-01-01T00:00:00Z"}
    ok("gemini.cached_contents.update", name="c1", ttl="60s")
    assert sent(fake, "PATCH", "/v1beta/cachedContents/c1", {"updateMask": "ttl"}) == {"ttl": "60s"}
    assert ok("gemini.cached_contents.delete", name="c1")["result"] == {}
    sent(fake, "DELETE", "/v1beta/cachedContents/c1")
    assert failed("gemini.cached_contents.update", name="c1")["type"] == "InvalidArguments" and fake.requests == []


def test_retries_and_typed_errors(fake: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer(429, error_body(429, "Resource has been exhausted"), {"retry-after": "0.4"})
    fake.answer(503, error_body(503, "The model is overloaded"))
    fake.answer(200, content_body("at last", prompt_tokens=4, completion_tokens=2))
    done = ok("gemini.content.generate", prompt="again")
    times = [r.at for r in fake.requests]
    assert len(times) == 3 and times[1] - times[0] >= 0.4 and done["text"] == "at last"
    tokens(done["usage"], 4, 2)
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    for status, said, expected in [(400, f"API key not valid. Please pass a valid API key. {KEY}", "InvalidArguments"),
                                   (403, "Method doesn't allow unregistered callers", "LlmAuthenticationFailed"),
                                   (404, "models/gemini-nope is not found for API version v1beta", "NotFound"),
                                   (429, "Resource has been exhausted", "LlmRateLimited"),
                                   (500, "An internal error has occurred", "LlmError")]:
        fake.answer(status, error_body(status, said))
        error = failed("gemini.content.generate", prompt="x", model="gemini-nope")
        assert error["type"] == expected, (status, error)
        nowhere(KEY, error)
    monkeypatch.delenv("GEMINI_API_KEY")
    fake.requests.clear()
    error = failed("gemini.models.list")
    assert error["type"] == "LlmAuthenticationFailed" and "GEMINI_API_KEY" in error["message"] and fake.requests == []
