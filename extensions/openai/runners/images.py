"""OpenAI's Images: `generate` (POST /images/generations), `edit` (POST /images/edits) and
`variation` (POST /images/variations). An image to edit is given as a path or base64."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from legion.extensions.openai import _http
from legion.extensions.openai._http import ApiBase, ApiKey, FileBase64, Filename, FilePath, Timeout

__all__ = ["generate", "edit", "variation"]

Prompt = Annotated[str, Field(description="what the image should show")]
Count = Annotated[int, Field(ge=1, le=10, description="how many images")]
Size = Annotated[str | None, Field(description="e.g. 1024x1024, 1792x1024, 512x512 (what the model allows)")]
ResponseFormat = Annotated[Literal["url", "b64_json"] | None, Field(description="images as URLs or base64 (dall-e models)")]
User = Annotated[str | None, Field(description="an id of the end user, for abuse monitoring")]


def _result(reply: Any) -> dict[str, Any]:
    body = reply.body if isinstance(reply.body, dict) else {}
    return _http.answer(reply, **({"usage": _http.usage(body["usage"], reply.latency_ms)} if body.get("usage") else {}))


def generate(prompt: Prompt, model: Annotated[str, Field(description="the image model")] = "dall-e-3", n: Count = 1,
             size: Size = "1024x1024",
             quality: Annotated[str | None, Field(description="standard or hd (dall-e-3); low, medium, high (gpt-image-1)")] = None,
             style: Annotated[Literal["vivid", "natural"] | None, Field(description="dall-e-3's style")] = None,
             response_format: ResponseFormat = None, user: User = None, api_key: ApiKey = None, api_base: ApiBase = None,
             timeout: Timeout = 300.0) -> dict[str, Any]:
    """Create images from a prompt: {result: {created, data: [{url | b64_json, revised_prompt}, ...]},
    status, usage (gpt-image models)}."""
    fields = {"quality": quality, "style": style, "response_format": response_format, "user": user}
    body = {"prompt": prompt, "model": model, "n": n, "size": size, **{k: v for k, v in fields.items() if v is not None}}
    return _result(_http.send("openai.images.generate", "POST", "/images/generations", api_key, api_base, json=body, timeout=timeout))


def edit(prompt: Prompt, image: FilePath = None, image_base64: FileBase64 = None, filename: Filename = None,
         mask: Annotated[str | None, Field(description="a PNG's path whose transparent areas say where to edit")] = None,
         mask_base64: Annotated[str | None, Field(description="the mask, base64-encoded (instead of a path)")] = None,
         model: Annotated[str, Field(description="the image model")] = "dall-e-2", n: Count = 1, size: Size = "1024x1024",
         response_format: ResponseFormat = None, user: User = None, api_key: ApiKey = None, api_base: ApiBase = None,
         timeout: Timeout = 300.0) -> dict[str, Any]:
    """Edit an image (a PNG) as the prompt says: {result: {created, data}, status, usage (gpt-image models)}."""
    files = {"image": _http.file_part("openai.images.edit", "image", image, image_base64, filename)}
    if mask is not None or mask_base64 is not None:
        files["mask"] = _http.file_part("openai.images.edit", "mask", mask, mask_base64, None)
    form = {"prompt": prompt, "model": model, "n": n, "size": size, "response_format": response_format, "user": user}
    return _result(_http.send("openai.images.edit", "POST", "/images/edits", api_key, api_base, data=form, files=files,
                              timeout=timeout))


def variation(image: FilePath = None, image_base64: FileBase64 = None, filename: Filename = None,
              model: Annotated[str, Field(description="the image model")] = "dall-e-2", n: Count = 1, size: Size = "1024x1024",
              response_format: ResponseFormat = None, user: User = None, api_key: ApiKey = None, api_base: ApiBase = None,
              timeout: Timeout = 300.0) -> dict[str, Any]:
    """Variations of an image (a square PNG): {result: {created, data}, status}."""
    files = {"image": _http.file_part("openai.images.variation", "image", image, image_base64, filename)}
    form = {"model": model, "n": n, "size": size, "response_format": response_format, "user": user}
    return _result(_http.send("openai.images.variation", "POST", "/images/variations", api_key, api_base, data=form, files=files,
                              timeout=timeout))
