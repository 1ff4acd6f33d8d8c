"""OpenAI's Audio: `speech` (text to speech, POST /audio/speech), `transcribe` (speech to text,
POST /audio/transcriptions) and `translate` (speech to English text, POST /audio/translations).
Audio comes back as base64 (or saved to a path); audio to read is given as a path or base64."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from legion.extensions.openai import _http
from legion.extensions.openai._http import ApiBase, ApiKey, FileBase64, Filename, FilePath, Timeout
from legion.sdk import StepError

__all__ = ["speech", "transcribe", "translate"]

TextFormat = Annotated[Literal["json", "text", "srt", "verbose_json", "vtt"] | None, Field(description="the text's format")]
Prompt = Annotated[str | None, Field(description="text to guide the style, or the previous part of the audio")]
Temperature = Annotated[float | None, Field(ge=0, le=1, description="sampling temperature")]


def speech(input: Annotated[str, Field(max_length=4096, description="the text to speak")],
           model: Annotated[str, Field(description="the speech model: tts-1, tts-1-hd, gpt-4o-mini-tts")] = "tts-1",
           voice: Annotated[str, Field(description="alloy, ash, coral, echo, fable, onyx, nova, sage, shimmer...")] = "alloy",
           response_format: Annotated[Literal["mp3", "opus", "aac", "flac", "wav", "pcm"], Field(description="the audio's format")] = "mp3",
           speed: Annotated[float | None, Field(ge=0.25, le=4, description="how fast")] = None,
           instructions: Annotated[str | None, Field(description="how to speak (gpt-4o-mini-tts)")] = None,
           save_to: Annotated[str | None, Field(description="also write the audio to this path on the worker")] = None,
           api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 300.0) -> dict[str, Any]:
    """Speak a text: {result: {audio_base64, content_type, bytes, path?}, status}."""
    body = {"input": input, "model": model, "voice": voice, "response_format": response_format,
            **({"speed": speed} if speed is not None else {}), **({"instructions": instructions} if instructions else {})}
    reply = _http.send("openai.audio.speech", "POST", "/audio/speech", api_key, api_base, json=body, timeout=timeout)
    audio = reply.body if isinstance(reply.body, bytes) else b""
    result: dict[str, Any] = {"audio_base64": base64.b64encode(audio).decode(), "bytes": len(audio),
                              "content_type": reply.headers.get("content-type", f"audio/{response_format}")}
    if save_to:
        try:
            Path(save_to).expanduser().write_bytes(audio)
        except OSError as exc:
            raise StepError(f"openai.audio.speech: cannot write {save_to!r}: {exc.strerror or exc}", type="InvalidArguments") from None
        result["path"] = save_to
    reply.body = result
    return _http.answer(reply)


def _listen(kind: str, path: str, file: str | None, file_base64: str | None, filename: str | None, form: dict[str, Any],
            api_key: str | None, api_base: str | None, timeout: float) -> dict[str, Any]:
    files = {"file": _http.file_part(kind, "file", file, file_base64, filename)}
    reply = _http.send(kind, "POST", path, api_key, api_base, data=form, files=files, timeout=timeout)
    if isinstance(reply.body, bytes):  # text, srt, vtt
        reply.body = reply.body.decode("utf-8", "replace")
    body = reply.body if isinstance(reply.body, dict) else {}
    text = body.get("text", "") if body else str(reply.body or "")
    return _http.answer(reply, text=text, **({"usage": _http.usage(body["usage"], reply.latency_ms)}
                                            if isinstance(body.get("usage"), dict) and body["usage"].get("type") == "tokens" else {}))


def transcribe(file: FilePath = None, file_base64: FileBase64 = None, filename: Filename = None,
               model: Annotated[str, Field(description="whisper-1, gpt-4o-transcribe, gpt-4o-mini-transcribe")] = "whisper-1",
               language: Annotated[str | None, Field(description="the audio's language (ISO-639-1, e.g. en)")] = None,
               prompt: Prompt = None, response_format: TextFormat = None, temperature: Temperature = None,
               api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 300.0) -> dict[str, Any]:
    """Write down what an audio file says: {result: {text, ...} (or the text, for text, srt and
    vtt), text, status, usage (gpt-4o models)}."""
    form = {"model": model, "language": language, "prompt": prompt, "response_format": response_format, "temperature": temperature}
    return _listen("openai.audio.transcribe", "/audio/transcriptions", file, file_base64, filename, form, api_key, api_base,
                   timeout)


def translate(file: FilePath = None, file_base64: FileBase64 = None, filename: Filename = None,
              model: Annotated[str, Field(description="the model (whisper-1)")] = "whisper-1", prompt: Prompt = None,
              response_format: TextFormat = None, temperature: Temperature = None, api_key: ApiKey = None,
              api_base: ApiBase = None, timeout: Timeout = 300.0) -> dict[str, Any]:
    """Write down in English what an audio file says: {result, text, status}."""
    form = {"model": model, "prompt": prompt, "response_format": response_format, "temperature": temperature}
    return _listen("openai.audio.translate", "/audio/translations", file, file_base64, filename, form, api_key, api_base, timeout)
