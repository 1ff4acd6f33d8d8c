"""OpenAI's Files (/files): `list`, `upload`, `retrieve`, `delete`, `content`. A file to upload
is given as a path or base64; a file's content comes back as text when it is UTF-8, else base64."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field

from legion.extensions.openai import _http
from legion.extensions.openai._http import ApiBase, ApiKey, FileBase64, Filename, FilePath, Timeout

__all__ = ["list", "upload", "retrieve", "delete", "content"]

FileId = Annotated[str, Field(description="the file's id (file-...)")]
Purpose = Annotated[str, Field(description="assistants, batch, fine-tune, vision, user_data or evals")]


def _file(file_id: str) -> str:
    return f"/files/{quote(file_id, safe='')}"


def list(purpose: Annotated[str | None, Field(description="only the files of this purpose")] = None,
         limit: Annotated[int | None, Field(ge=1, le=10000, description="how many files per page")] = None,
         after: Annotated[str | None, Field(description="the page after this file id")] = None,
         order: Annotated[Literal["asc", "desc"] | None, Field(description="by creation time")] = None,
         api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """The files: {result: {data: [{id, filename, bytes, purpose, created_at}, ...], has_more}, status}."""
    params = {"purpose": purpose, "limit": limit, "after": after, "order": order}
    return _http.answer(_http.send("openai.files.list", "GET", "/files", api_key, api_base, params=params, timeout=timeout))


def upload(file: FilePath = None, file_base64: FileBase64 = None, filename: Filename = None, purpose: Purpose = "assistants",
           api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 300.0) -> dict[str, Any]:
    """Upload a file: {result: {id, filename, bytes, purpose, ...}, status}."""
    files = {"file": _http.file_part("openai.files.upload", "file", file, file_base64, filename)}
    reply = _http.send("openai.files.upload", "POST", "/files", api_key, api_base, data={"purpose": purpose}, files=files,
                       timeout=timeout)
    return _http.answer(reply)


def retrieve(file_id: FileId, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """One file's record: {result: {id, filename, bytes, purpose, ...}, status}."""
    return _http.answer(_http.send("openai.files.retrieve", "GET", _file(file_id), api_key, api_base, timeout=timeout))


def delete(file_id: FileId, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """Delete a file: {result: {id, deleted}, status}."""
    return _http.answer(_http.send("openai.files.delete", "DELETE", _file(file_id), api_key, api_base, timeout=timeout))


def content(file_id: FileId, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 300.0) -> dict[str, Any]:
    """A file's content: {result: {content, encoding: utf-8|base64, bytes, content_type}, status}."""
    reply = _http.send("openai.files.content", "GET", _file(file_id) + "/content", api_key, api_base, timeout=timeout)
    raw = reply.raw  # byte for byte, JSON or not
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode(), "base64"
    reply.body = {"content": text, "encoding": encoding, "bytes": len(raw),
                  "content_type": reply.headers.get("content-type", "application/octet-stream")}
    return _http.answer(reply)
