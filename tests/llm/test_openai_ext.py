"""The `openai` extension against a fake OpenAI API on 127.0.0.1: every operation's request
(method, path, the key as a Bearer token, JSON or multipart body) and result, streamed chat,
usage in the shape run show sums, and failures as typed errors with no key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from ext_calls import failed, nowhere, ok, tokens
from fake_openai import FakeOpenAI, chat_body, tool_call_body

KEY = "sk-openai-ext-0123456789abcdef"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LEGION_LLM_RETRIES", "2")
    with FakeOpenAI() as server:
        monkeypatch.setenv("LEGION_OPENAI_API_BASE", server.url)
        yield server


def sent(fake: FakeOpenAI, method: str, route: str) -> dict:
    (request,) = fake.requests
    assert (request.method, request.route) == (method, route)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    fake.requests.clear()
    return request.body if isinstance(request.body, dict) else {}


def test_chat_create(fake: FakeOpenAI) -> None:
    fake.answer(200, tool_call_body("weather", '{"city": "Paris"}', prompt_tokens=20, completion_tokens=8))
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    done = ok("openai.chat.create", model="gpt-test", prompt="weather?", system="be brief", temperature=0.3, max_tokens=50,
              top_p=0.5, frequency_penalty=0.1, presence_penalty=0.2, stop=["END"], tools=tools, tool_choice="auto",
              response_format={"type": "text"}, seed=7, extra={"user": "u1"}, api_base=fake.url)
    body = sent(fake, "POST", "/v1/chat/completions")
    assert body == {"model": "gpt-test", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather?"}],
                    "temperature": 0.3, "max_completion_tokens": 50, "top_p": 0.5, "frequency_penalty": 0.1, "presence_penalty": 0.2,
                    "stop": ["END"], "tools": tools, "tool_choice": "auto", "response_format": {"type": "text"}, "seed": 7,
                    "user": "u1"}
    assert done["result"]["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "weather"
    assert done["text"] == ""
    tokens(done["usage"], 20, 8)
    nowhere(KEY, done)


def test_chat_create_streamed(fake: FakeOpenAI) -> None:
    done = ok("openai.chat.create", messages=[{"role": "user", "content": "a long story"}], stream=True)
    body = sent(fake, "POST", "/v1/chat/completions")
    assert body["model"] == "gpt-4o" and body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert done["text"] == "echo: a long story" and done["result"]["choices"][0]["finish_reason"] == "stop"
    assert len(done["events"]) > 3 and done["events"][0]["data"]["object"] == "chat.completion.chunk"
    tokens(done["usage"], 7, 3)
    fake.answer(200, tool_call_body("weather", '{"city": "Oslo", "days": 3}', call_id="call_9"))
    tool = ok("openai.chat.create", prompt="weather?", stream=True)
    (called,) = tool["result"]["choices"][0]["message"]["tool_calls"]
    assert called == {"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo", "days": 3}'}}
    assert tool["result"]["choices"][0]["finish_reason"] == "tool_calls"


def test_embeddings(fake: FakeOpenAI) -> None:
    done = ok("openai.embeddings.create", input=["ab", "abcd"], dimensions=3)
    assert sent(fake, "POST", "/v1/embeddings") == {"input": ["ab", "abcd"], "model": "text-embedding-3-small", "dimensions": 3}
    assert done["embeddings"] == [[2.0, 0.5, -1.0], [4.0, 0.5, -1.0]]
    tokens(done["usage"], 2, 0)


def test_images(fake: FakeOpenAI, tmp_path: Path) -> None:
    image = {"created": 1, "data": [{"url": "https://images.example/1.png", "revised_prompt": "a red fox"}]}
    for route in ("/v1/images/generations", "/v1/images/edits", "/v1/images/variations"):
        fake.route("POST", route, image)
    assert ok("openai.images.generate", prompt="a fox", quality="hd", style="vivid")["result"] == image
    assert sent(fake, "POST", "/v1/images/generations") == {"prompt": "a fox", "model": "dall-e-3", "n": 1, "size": "1024x1024",
                                                           "quality": "hd", "style": "vivid"}
    picture = tmp_path / "fox.png"
    picture.write_bytes(PNG)
    ok("openai.images.edit", prompt="make it blue", image=str(picture), mask_base64=base64.b64encode(PNG[:20]).decode(), n=2)
    form = sent(fake, "POST", "/v1/images/edits")
    assert form["image"] == {"filename": "fox.png", "content_type": "image/png", "data": PNG}
    assert form["mask"]["data"] == PNG[:20]
    assert {k: form[k] for k in ("prompt", "model", "n", "size")} == {"prompt": "make it blue", "model": "dall-e-2", "n": "2",
                                                                      "size": "1024x1024"}
    assert "response_format" not in form  # not given, not sent
    ok("openai.images.variation", image_base64=base64.b64encode(PNG).decode(), filename="x.png", size="512x512")
    form = sent(fake, "POST", "/v1/images/variations")
    assert form["image"]["data"] == PNG and form["image"]["filename"] == "x.png" and form["size"] == "512x512"
    fake.route("POST", "/v1/images/generations", {**image, "usage": {"input_tokens": 12, "output_tokens": 4000, "total_tokens": 4012}})
    tokens(ok("openai.images.generate", prompt="a fox", model="gpt-image-1")["usage"], 12, 4000)


def test_audio(fake: FakeOpenAI, tmp_path: Path) -> None:
    mp3 = b"ID3\x03\x00" + bytes(range(200))
    fake.route("POST", "/v1/audio/speech", mp3, headers={"content-type": "audio/mpeg"})
    done = ok("openai.audio.speech", input="Hello there", voice="nova", speed=1.5, save_to=str(tmp_path / "hello.mp3"))
    assert sent(fake, "POST", "/v1/audio/speech") == {"input": "Hello there", "model": "tts-1", "voice": "nova",
                                                      "response_format": "mp3", "speed": 1.5}
    assert base64.b64decode(done["result"]["audio_base64"]) == mp3 and done["result"]["content_type"] == "audio/mpeg"
    assert done["result"]["bytes"] == len(mp3) and (tmp_path / "hello.mp3").read_bytes() == mp3
    fake.route("POST", "/v1/audio/transcriptions", {"text": "hello there", "usage": {"type": "duration", "seconds": 2}})
    recording = tmp_path / "talk.wav"
    recording.write_bytes(b"RIFF....WAVE")
    heard = ok("openai.audio.transcribe", file=str(recording), language="en", temperature=0)
    form = sent(fake, "POST", "/v1/audio/transcriptions")
    assert form["file"] == {"filename": "talk.wav", "content_type": "audio/x-wav", "data": b"RIFF....WAVE"}
    assert (form["model"], form["language"], form["temperature"]) == ("whisper-1", "en", "0.0")
    assert heard["text"] == "hello there" and "usage" not in heard  # billed by the second, not by the token
    fake.route("POST", "/v1/audio/translations", "good morning\n", headers={"content-type": "text/plain"})
    english = ok("openai.audio.translate", file_base64=base64.b64encode(b"OggS").decode(), filename="x.ogg", response_format="text")
    form = sent(fake, "POST", "/v1/audio/translations")
    assert form["file"]["data"] == b"OggS" and form["response_format"] == "text"
    assert english["result"] == english["text"] == "good morning\n"
    error = failed("openai.audio.transcribe", file=str(tmp_path / "missing.wav"))
    assert error["type"] == "InvalidArguments" and fake.requests == []


def test_files(fake: FakeOpenAI, tmp_path: Path) -> None:
    record = {"id": "file-1", "object": "file", "bytes": 12, "filename": "data.jsonl", "purpose": "batch"}
    fake.route("GET", "/v1/files", {"object": "list", "data": [record], "has_more": False})
    fake.route("POST", "/v1/files", record)
    fake.route("GET", "/v1/files/file-1", record)
    fake.route("DELETE", "/v1/files/file-1", {"id": "file-1", "object": "file", "deleted": True})
    fake.route("GET", "/v1/files/file-1/content", b'{"a": 1}\n{"a": 2}\n', headers={"content-type": "application/octet-stream"})
    fake.route("GET", "/v1/files/file-2/content", b"\xff\xfe\x00", headers={"content-type": "application/octet-stream"})
    assert ok("openai.files.list", purpose="batch", limit=5)["result"]["data"] == [record]
    (request,) = fake.requests
    assert request.query == {"purpose": "batch", "limit": "5"}
    sent(fake, "GET", "/v1/files")
    data = tmp_path / "data.jsonl"
    data.write_text('{"a": 1}\n')
    assert ok("openai.files.upload", file=str(data), purpose="batch")["result"] == record
    form = sent(fake, "POST", "/v1/files")
    assert form["purpose"] == "batch" and form["file"]["filename"] == "data.jsonl" and form["file"]["data"] == b'{"a": 1}\n'
    assert ok("openai.files.retrieve", file_id="file-1")["result"] == record
    sent(fake, "GET", "/v1/files/file-1")
    assert ok("openai.files.delete", file_id="file-1")["result"]["deleted"] is True
    sent(fake, "DELETE", "/v1/files/file-1")
    assert ok("openai.files.content", file_id="file-1")["result"] == {"content": '{"a": 1}\n{"a": 2}\n', "encoding": "utf-8",
                                                                      "bytes": 18, "content_type": "application/octet-stream"}
    sent(fake, "GET", "/v1/files/file-1/content")
    binary = ok("openai.files.content", file_id="file-2")["result"]
    assert (binary["encoding"], base64.b64decode(binary["content"])) == ("base64", b"\xff\xfe\x00")


def test_models_and_moderations(fake: FakeOpenAI) -> None:
    model = {"id": "ft:gpt-test:org::1", "object": "model", "created": 1, "owned_by": "org"}
    fake.route("GET", "/v1/models", {"object": "list", "data": [model]})
    fake.route("GET", "/v1/models/*", model)
    fake.route("DELETE", "/v1/models/*", {"id": model["id"], "object": "model", "deleted": True})
    fake.route("POST", "/v1/moderations", {"id": "modr-1", "model": "omni-moderation-latest",
                                           "results": [{"flagged": False}, {"flagged": True, "categories": {"violence": True}}]})
    assert ok("openai.models.list")["result"]["data"] == [model]
    sent(fake, "GET", "/v1/models")
    assert ok("openai.models.retrieve", model=model["id"])["result"] == model
    sent(fake, "GET", "/v1/models/ft:gpt-test:org::1")
    assert ok("openai.models.delete", model=model["id"])["result"]["deleted"] is True
    sent(fake, "DELETE", "/v1/models/ft:gpt-test:org::1")
    done = ok("openai.moderations.create", input=["fine", "not fine"])
    assert sent(fake, "POST", "/v1/moderations") == {"input": ["fine", "not fine"], "model": "omni-moderation-latest"}
    assert done["flagged"] is True and len(done["result"]["results"]) == 2


def test_retries_and_typed_errors(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer(429, {"error": {"message": "Rate limit reached", "type": "requests"}}, {"retry-after": "0.4"})
    fake.answer(500, {"error": {"message": "server error"}})
    assert ok("openai.chat.create", prompt="again")["text"] == "echo: again"
    times = [r.at for r in fake.requests]
    assert len(times) == 3 and times[1] - times[0] >= 0.4
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    for status, said, expected in [(401, f"Incorrect API key provided: {KEY}", "LlmAuthenticationFailed"),
                                   (400, "Invalid value for 'size'", "InvalidArguments"),
                                   (404, "The model 'gpt-nope' does not exist", "NotFound"),
                                   (429, "Rate limit reached", "LlmRateLimited")]:
        fake.answer(status, {"error": {"message": said, "type": "invalid_request_error"}})
        error = failed("openai.images.generate", prompt="x")
        assert error["type"] == expected, (status, error)
        nowhere(KEY, error)
    monkeypatch.delenv("OPENAI_API_KEY")
    fake.requests.clear()
    error = failed("openai.chat.create", prompt="x")
    assert error["type"] == "LlmAuthenticationFailed" and "OPENAI_API_KEY" in error["message"] and fake.requests == []
    assert chat_body("x")["usage"]["total_tokens"] == 10
