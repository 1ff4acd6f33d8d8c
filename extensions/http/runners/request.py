"""HTTP requests. Each returns `{status, headers, text, json, url, elapsed_ms}`; `json` is the
parsed body when the response is JSON, else null. A response status is not a failure (test it
in an edge: `when: result.status == 200`); a connection error or a timeout is."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.sdk import StepError

__all__ = ["get", "post", "put", "patch", "delete", "head"]

# The parameters the functions share, with the descriptions `legion lex list` shows.
Url = Annotated[str, Field(description="the URL to request (http:// or https://)")]
Params = Annotated[dict[str, Any] | None, Field(description="query parameters added to the URL")]
Headers = Annotated[dict[str, str] | None, Field(description="request headers")]
Timeout = Annotated[float, Field(gt=0, description="seconds to wait for the server before failing with Timeout")]
Verify = Annotated[bool, Field(description="check the server's TLS certificate")]
Json = Annotated[Any, Field(description="a JSON body (any JSON value)")]
Data = Annotated[str | None, Field(description="a raw text body, sent as it is (instead of json)")]


def _request(method: str, url: str, *, params: dict[str, Any] | None, headers: dict[str, str] | None,
             json: Any = None, data: str | None = None, timeout: float = 30.0, verify: bool = True,
             follow_redirects: bool = True) -> dict[str, Any]:
    import httpx  # here, not at the top: listing or validating chains need not import it

    try:
        response = httpx.request(method, url, params=params, headers=headers, json=json, content=data,
                                 timeout=timeout, verify=verify, follow_redirects=follow_redirects)
    except httpx.TimeoutException as exc:
        raise StepError(f"{method} {url}: timed out after {timeout}s", type="Timeout") from exc
    except httpx.HTTPError as exc:
        raise StepError(f"{method} {url}: {type(exc).__name__}: {exc}", type="HttpError") from exc
    parsed = None
    if "json" in response.headers.get("content-type", ""):
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "text": response.text,
        "json": parsed,
        "url": str(response.url),
        "elapsed_ms": round(response.elapsed.total_seconds() * 1000, 3),
    }


def get(url: Url, params: Params = None, headers: Headers = None,
        timeout: Timeout = 30.0, verify: Verify = True) -> dict[str, Any]:
    """GET `url`."""
    return _request("GET", url, params=params, headers=headers, timeout=timeout, verify=verify)


def head(url: Url, params: Params = None, headers: Headers = None,
         timeout: Timeout = 30.0, verify: Verify = True) -> dict[str, Any]:
    """HEAD `url`."""
    return _request("HEAD", url, params=params, headers=headers, timeout=timeout, verify=verify)


def delete(url: Url, params: Params = None, headers: Headers = None,
           timeout: Timeout = 30.0, verify: Verify = True) -> dict[str, Any]:
    """DELETE `url`."""
    return _request("DELETE", url, params=params, headers=headers, timeout=timeout, verify=verify)


def post(url: Url, json: Json = None, data: Data = None, params: Params = None,
         headers: Headers = None, timeout: Timeout = 30.0, verify: Verify = True) -> dict[str, Any]:
    """POST to `url` a JSON body (`json`) or raw text (`data`)."""
    return _request("POST", url, params=params, headers=headers, json=json, data=data, timeout=timeout, verify=verify)


def put(url: Url, json: Json = None, data: Data = None, params: Params = None,
        headers: Headers = None, timeout: Timeout = 30.0, verify: Verify = True) -> dict[str, Any]:
    """PUT to `url` a JSON body (`json`) or raw text (`data`)."""
    return _request("PUT", url, params=params, headers=headers, json=json, data=data, timeout=timeout, verify=verify)


def patch(url: Url, json: Json = None, data: Data = None, params: Params = None,
          headers: Headers = None, timeout: Timeout = 30.0, verify: Verify = True) -> dict[str, Any]:
    """PATCH `url` with a JSON body (`json`) or raw text (`data`)."""
    return _request("PATCH", url, params=params, headers=headers, json=json, data=data, timeout=timeout, verify=verify)
