"""Gemini's Files API: `upload` (the resumable protocol at /upload/v1beta/files: start, then
upload and finalize), `list`, `get`, `delete` (/v1beta/files). A file to upload is given as a
path or base64; Gemini keeps it 48 hours, and a request refers to it by its `uri`."""

from __future__ import annotations

import base64
import binascii
import mimetypes
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field

from legion.extensions.gemini import _http
from legion.extensions.gemini._http import ApiBase, ApiKey, PageSize, PageToken, Timeout
from legion.sdk import StepError

__all__ = ["upload", "list", "get", "delete"]

FileName = Annotated[str, Field(description="the file's name, e.g. files/abc123 (or abc123)")]


def _content(file_path: str | None, file_base64: str | None) -> bytes:
    if (file_path is None) == (file_base64 is None):
        raise StepError("gemini.files.upload: give either `file_path` or `file_base64`", type="InvalidArguments")
    if file_path is not None:
        try:
            return Path(file_path).expanduser().read_bytes()
        except OSError as exc:
            raise StepError(f"gemini.files.upload: cannot read {file_path!r}: {exc.strerror or exc}", type="InvalidArguments") from None
    try:
        return base64.b64decode(file_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise StepError("gemini.files.upload: `file_base64` is not base64", type="InvalidArguments") from None


def upload(file_path: Annotated[str | None, Field(description="the file's path on the worker (or give file_base64)")] = None,
           file_base64: Annotated[str | None, Field(description="the file's content, base64-encoded")] = None,
           mime_type: Annotated[str | None, Field(description="its type (default: guessed from the path, else "
                                                               "application/octet-stream)")] = None,
           display_name: Annotated[str | None, Field(description="a name to show for it")] = None,
           api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 300.0) -> dict[str, Any]:
    """Upload a file: {result: {file: {name, uri, mimeType, sizeBytes, state, ...}}, status}."""
    content = _content(file_path, file_base64)
    kind = mime_type or (mimetypes.guess_type(file_path)[0] if file_path else None) or "application/octet-stream"
    start = _http.send("gemini.files.upload", "POST", "/upload/" + _http.path("files").lstrip("/"), api_key, api_base,
                       json={"file": {"display_name": display_name}} if display_name else {"file": {}}, timeout=timeout,
                       headers={"x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start",
                                "x-goog-upload-header-content-length": str(len(content)),
                                "x-goog-upload-header-content-type": kind})
    target = {k.lower(): v for k, v in start.headers.items()}.get("x-goog-upload-url")
    if not target:
        raise StepError("gemini.files.upload: the API gave no upload URL (x-goog-upload-url)", type="LlmError")
    if urlsplit(target).netloc != urlsplit(_http.base(api_base)).netloc:  # the key goes only where it went first
        raise StepError(f"gemini.files.upload: the API gave an upload URL on another host ({urlsplit(target).netloc})", type="LlmError")
    reply = _http.send("gemini.files.upload", "POST", target, api_key, api_base, content=content, timeout=timeout,
                       headers={"content-type": kind, "x-goog-upload-offset": "0", "x-goog-upload-command": "upload, finalize"})
    return _http.answer(reply)


def list(page_size: PageSize = None, page_token: PageToken = None, api_key: ApiKey = None, api_base: ApiBase = None,
         timeout: Timeout = 60.0) -> dict[str, Any]:
    """The files: {result: {files: [{name, uri, mimeType, sizeBytes, expirationTime, state}, ...], nextPageToken}, status}."""
    reply = _http.send("gemini.files.list", "GET", _http.path("files"), api_key, api_base,
                       params={"pageSize": page_size, "pageToken": page_token}, timeout=timeout)
    return _http.answer(reply)


def get(name: FileName, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """One file: {result: {name, uri, mimeType, sizeBytes, state, ...}, status}."""
    return _http.answer(_http.send("gemini.files.get", "GET", _http.path(_http.name("files", name)), api_key, api_base,
                                   timeout=timeout))


def delete(name: FileName, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """Delete a file: {result: {}, status}."""
    return _http.answer(_http.send("gemini.files.delete", "DELETE", _http.path(_http.name("files", name)), api_key, api_base,
                                   timeout=timeout))
