"""Calls to language models through litellm, the one place the `llm` runners reach a provider.

litellm is imported on the first call, never at import (it takes seconds), with
LITELLM_OFFLINE_MODE set first so that importing it fetches nothing. A call names its model in
litellm's `provider/name` form (`openai/gpt-4o-mini`, `anthropic/claude-3-5-haiku-latest`,
`ollama/llama3`, `openai/<any>` with `api_base` for an OpenAI-compatible server), else the
deployment's LEGION_LLM_MODEL. Keys come from `api_key` (a `secret()` reference in a chain,
resolved just before the call and masked everywhere) or the provider's usual environment
variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...).

Every call goes through `guard` (retries honouring `retry-after`, a circuit breaker and a rate
limit per provider). What still fails becomes one step error with a type a chain can test
(`error.type`) and a message without any key.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from legion.extensions.llm import guard
from legion.sdk import StepError

_import_lock = threading.Lock()
QUIETED_LOGGERS = ("httpx", "apscheduler.executors.default", "apscheduler.scheduler")
_litellm: Any = None


def litellm() -> Any:
    global _litellm
    if _litellm is None:
        with _import_lock:
            if _litellm is None:
                os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")  # the price list is the packaged one
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                # litellm quiets some libraries' loggers on import; a step's logs must not change
                # because another step used a model first, so their levels are put back.
                levels = {name: logging.getLogger(name).level for name in QUIETED_LOGGERS}
                import litellm as module

                for name, level in levels.items():
                    logging.getLogger(name).setLevel(level)

                module.telemetry = False
                module.suppress_debug_info = True
                _litellm = module
    return _litellm


def model_of(model: str | None) -> str:
    chosen = model or os.environ.get("LEGION_LLM_MODEL")
    if not chosen:
        raise StepError("no model: give `model` (in provider/name form, e.g. openai/gpt-4o-mini) or set LEGION_LLM_MODEL",
                        type="InvalidArguments")
    if "/" not in chosen:
        raise StepError(f"model {chosen!r} names no provider: write it as provider/name (openai/{chosen}, anthropic/{chosen}...)",
                        type="InvalidArguments")
    return chosen


def fallbacks(given: list[str] | None) -> list[str]:
    """The models to try, in order, when a model keeps failing: the step's `fallbacks`, else
    LEGION_LLM_FALLBACKS (comma-separated)."""
    if given is not None:
        return [model_of(m) for m in given]
    return [model_of(m.strip()) for m in os.environ.get("LEGION_LLM_FALLBACKS", "").split(",") if m.strip()]


# Failures another model may not have: the next one in the fallback list is tried.
FALL_BACK_ON = ("LlmRateLimited", "LlmUnreachable", "Timeout", "LlmError", "LlmModelNotFound", "LlmCircuitOpen")


def provider_of(model: str) -> str:
    return model.split("/", 1)[0]


def env_key(variable: str) -> str | None:
    """The key in the environment variable `variable` (OPENAI_API_KEY...), which may itself be
    a reference: `vault://path#key` (the secret store) or `env://NAME`. Masked from then on."""
    from legion.engine.secrets import MASKER, resolve_setting, store_from_env

    value = resolve_setting(variable, os.environ.get(variable) or None, os.environ, lambda: store_from_env(os.environ))
    if value:
        MASKER.remember(value)
    return value


def key_option(model: str, api_key: str | None) -> dict[str, str]:
    """The `api_key` to hand litellm: the one given, else the provider's variable when it is a
    reference (a plain value litellm reads itself)."""
    if api_key:
        return {"api_key": api_key}
    variable = f"{provider_of(model).upper().replace('-', '_')}_API_KEY"
    raw = os.environ.get(variable, "")
    if raw.startswith(("vault://", "env://")):
        return {"api_key": env_key(variable) or ""}
    return {}


def call(kind: str, model: str, request: Callable[[Any], Any]) -> tuple[Any, float]:
    """`request(litellm)` through the guard (retries, circuit breaker, rate limit): its
    response and how long the try that answered took (ms)."""
    lib = litellm()

    def fault(exc: Exception, tries: int) -> guard.Fault:
        error = _step_error(lib, exc, kind, model, tries)
        again = _transient(lib, exc)
        return guard.Fault(error, again=again, outage=again and error.type != "LlmRateLimited", wait=_retry_after(exc))

    return guard.guarded(provider_of(model), kind, lambda: request(lib), fault, tokens=_tokens)


def _tokens(response: Any) -> int:
    return int(getattr(getattr(response, "usage", None), "total_tokens", 0) or 0)


MISSING_KEY = re.compile(r"(?i)missing [\w ]*api[ _]key|api_key client option must be set|no api key")


def _missing_key(exc: Exception) -> bool:
    """litellm refuses some providers' calls without a key as a connection error (Gemini's)."""
    return bool(MISSING_KEY.search(str(exc)))


def _transient(lib: Any, exc: Exception) -> bool:
    transient = tuple(t for t in (getattr(lib, name, None) for name in (
        "RateLimitError", "InternalServerError", "ServiceUnavailableError", "APIConnectionError", "Timeout")) if isinstance(t, type))
    if _missing_key(exc):
        return False
    if isinstance(exc, transient):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        value = headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _step_error(lib: Any, exc: Exception, kind: str, model: str, attempts: int) -> StepError:
    """One error with a type a chain can test; the provider's words, never a key."""
    def is_(name: str) -> bool:
        cls = getattr(lib, name, None)
        return isinstance(cls, type) and isinstance(exc, cls)

    said = str(getattr(exc, "message", None) or exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
    tries = f" (after {attempts} tries)" if attempts > 1 else ""
    if is_("Timeout"):
        return StepError(f"{kind} with {model} timed out{tries}", type="Timeout")
    if _missing_key(exc):
        return StepError(f"{kind} with {model}: no key: give `api_key` (a secret() reference) or set the provider's key "
                         f"variable ({said})", type="LlmAuthenticationFailed")
    if is_("AuthenticationError"):
        return StepError(f"{kind} with {model}: the provider refused the credentials: give `api_key` (a secret() reference) "
                         f"or set the provider's key variable (e.g. OPENAI_API_KEY)", type="LlmAuthenticationFailed")
    if is_("RateLimitError"):
        return StepError(f"{kind} with {model}: rate limited{tries}: {said}", type="LlmRateLimited")
    if is_("NotFoundError"):
        return StepError(f"{kind} with {model}: no such model at the provider: {said}", type="LlmModelNotFound")
    if is_("APIConnectionError") or "Connection error" in str(exc):  # litellm reports a refused connection as a 500
        return StepError(f"{kind} with {model}: the provider cannot be reached{tries}: {said}", type="LlmUnreachable")
    if is_("BadRequestError") and "Provider NOT provided" in str(exc):
        return StepError(f"{kind}: litellm knows no provider in {model!r}: write the model as provider/name", type="InvalidArguments")
    return StepError(f"{kind} with {model} failed{tries}: {type(exc).__name__}: {said}", type="LlmError")


def usage_of(lib: Any, response: Any, latency_ms: float) -> dict[str, Any]:
    """Tokens in and out, the cost when litellm knows the model's price (else null), latency."""
    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    try:
        cost: float | None = float(lib.completion_cost(completion_response=response))
    except Exception:  # noqa: BLE001 -- an unknown price is not a failure
        cost = None
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, "cost": cost,
            "latency_ms": round(latency_ms, 3)}
