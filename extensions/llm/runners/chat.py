"""Chat with a language model: `complete` answers a prompt (or messages) with text;
`structured` answers with a JSON value that fits a JSON Schema, asking again with the
validation error when it does not, up to `attempts` times."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.llm import client
from legion.sdk import Context, StepError

__all__ = ["complete", "structured"]  # the other public names are helpers the agent runner shares

Prompt = Annotated[str | None, Field(description="the user's message (or give `messages`)")]
Messages = Annotated[list[dict[str, Any]] | None, Field(description="the conversation: [{role, content}, ...] (or give `prompt`)")]
System = Annotated[str | None, Field(description="a system prompt, put first")]
Model = Annotated[str | None, Field(description="provider/name, e.g. openai/gpt-4o-mini (default: LEGION_LLM_MODEL)")]
Temperature = Annotated[float | None, Field(ge=0, le=2, description="sampling temperature")]
MaxTokens = Annotated[int | None, Field(gt=0, description="the longest answer, in tokens")]
ApiBase = Annotated[str | None, Field(description="the provider's URL, e.g. http://127.0.0.1:8080/v1 for an OpenAI-compatible server")]
ApiKey = Annotated[str | None, Field(description="the key: a secret() reference (default: the provider's environment variable)")]
Timeout = Annotated[float, Field(gt=0, description="seconds to wait for each answer")]
Fallbacks = Annotated[list[str] | None, Field(description="models tried in turn when `model` keeps failing (default: LEGION_LLM_FALLBACKS)")]
Stream = Annotated[bool | None, Field(description="read the answer as it is written (default: when it may be long: no max_tokens, or over 256)")]
LONG_ANSWER = 256  # tokens: a max_tokens above this may take long enough that streaming it pays


def messages_of(prompt: str | None, messages: list[dict[str, Any]] | None, system: str | None) -> list[dict[str, Any]]:
    if (prompt is None) == (messages is None):
        raise StepError("give either `prompt` or `messages`", type="InvalidArguments")
    found = [{"role": "user", "content": prompt}] if prompt is not None else list(messages or [])
    for i, m in enumerate(found):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool") or "content" not in m:
            raise StepError(f"messages[{i}] must be {{role: system|user|assistant|tool, content}}", type="InvalidArguments")
    return ([{"role": "system", "content": system}] if system else []) + found


@dataclass
class Answer:
    message: Any  # the model's message: content, and tool_calls when it asks for tools
    usage: dict[str, Any]
    finish_reason: str | None
    model: str  # the model that answered

    @property
    def text(self) -> str:
        return str(self.message.content or "")


def ask(kind: str, messages: list[dict[str, Any]], models: list[str], options: dict[str, Any], *,
        stream: bool = False, ctx: Context | None = None) -> Answer:
    """The first model of `models` that answers (the next is tried when one keeps failing in a
    way another may not: see client.FALL_BACK_ON). Streamed, the answer is read as it comes:
    the step says it is alive at each piece (a cancel stops it there) and the time to the
    first token is kept in the usage; the whole answer is returned all the same."""
    for i, model in enumerate(models):
        first: list[float] = []

        def request(lib: Any, model: str = model, first: list[float] = first) -> Any:
            given = dict(options, **client.key_option(model, options.get("api_key")))
            if not stream:
                return lib.completion(model=model, messages=messages, num_retries=0, **given)
            started = time.perf_counter()
            first.clear()
            pieces = []
            for piece in lib.completion(model=model, messages=messages, num_retries=0, stream=True,
                                        stream_options={"include_usage": True}, **given):
                if not first:
                    first.append((time.perf_counter() - started) * 1e3)
                pieces.append(piece)
                if ctx is not None:
                    ctx.heartbeat()
            return lib.stream_chunk_builder(pieces, messages=messages)

        try:
            response, latency = client.call(kind, model, request)
        except StepError as exc:
            if i + 1 == len(models) or exc.type not in client.FALL_BACK_ON:
                raise
            continue
        choice = response.choices[0]
        usage = client.usage_of(client.litellm(), response, latency)
        if first:
            usage["first_token_ms"] = round(first[0], 3)
        return Answer(choice.message, usage, getattr(choice, "finish_reason", None), model)
    raise AssertionError("no model")


def streams(stream: bool | None, max_tokens: int | None) -> bool:
    """Whether to stream: as asked, else when the answer may be long."""
    return stream if stream is not None else (max_tokens is None or max_tokens > LONG_ANSWER)


def options_of(temperature: float | None, max_tokens: int | None, api_base: str | None, api_key: str | None,
             timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {"timeout": timeout}
    for name, value in (("temperature", temperature), ("max_tokens", max_tokens), ("api_base", api_base), ("api_key", api_key)):
        if value is not None:
            options[name] = value
    return options


def complete(ctx: Context, prompt: Prompt = None, messages: Messages = None, system: System = None, model: Model = None,
             temperature: Temperature = None, max_tokens: MaxTokens = None, api_base: ApiBase = None,
             api_key: ApiKey = None, timeout: Timeout = 120.0, fallbacks: Fallbacks = None, stream: Stream = None) -> dict[str, Any]:
    """Answer a prompt with text: {text, model (the one that answered), finish_reason,
    usage: {prompt_tokens, completion_tokens, total_tokens, cost, latency_ms, first_token_ms
    when streamed}}."""
    models = [client.model_of(model), *client.fallbacks(fallbacks)]
    answer = ask("llm.chat.complete", messages_of(prompt, messages, system), models,
                 options_of(temperature, max_tokens, api_base, api_key, timeout), stream=streams(stream, max_tokens), ctx=ctx)
    return {"text": answer.text, "model": answer.model, "finish_reason": answer.finish_reason, "usage": answer.usage}


def structured(schema: Annotated[dict[str, Any], Field(description="the JSON Schema the answer must fit")],
               prompt: Prompt = None, messages: Messages = None, system: System = None, model: Model = None,
               attempts: Annotated[int, Field(ge=1, le=10, description="answers asked for at most")] = 3,
               temperature: Temperature = None, max_tokens: MaxTokens = None, api_base: ApiBase = None,
               api_key: ApiKey = None, timeout: Timeout = 120.0, fallbacks: Fallbacks = None) -> dict[str, Any]:
    """Answer with a JSON value that fits `schema`: {value, model, attempts, usage} (usage
    summed over the attempts). An answer that is not JSON, or does not fit, is sent back
    with what is wrong; after `attempts` answers the step fails with LlmAnswerInvalid."""
    import jsonschema

    try:
        checker = jsonschema.Draft202012Validator(schema)
        checker.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise StepError(f"`schema` is not a JSON Schema: {exc.message}", type="InvalidArguments") from None
    models = [client.model_of(model), *client.fallbacks(fallbacks)]
    asked = messages_of(prompt, messages, system)
    asked.insert(0, {"role": "system", "content": "Answer with one JSON value only, no prose and no code fence, that fits this "
                                                  "JSON Schema:\n" + json.dumps(schema)})
    options = options_of(temperature, max_tokens, api_base, api_key, timeout)
    total: dict[str, Any] = {}
    problem = ""
    for attempt in range(1, attempts + 1):
        answer = ask("llm.chat.structured", asked, models, options)
        text, chosen = answer.text, answer.model
        total = add_usage(total, answer.usage)
        try:
            value = json.loads(_unfenced(text))
            error = next(iter(sorted(checker.iter_errors(value), key=lambda e: list(e.path))), None)
            if error is None:
                return {"value": value, "model": chosen, "attempts": attempt, "usage": total}
            where = "/".join(str(p) for p in error.absolute_path) or "the answer"
            problem = f"at {where}: {error.message}"
        except ValueError as exc:
            problem = f"it is not JSON: {exc}"
        asked += [{"role": "assistant", "content": text},
                  {"role": "user", "content": f"That answer does not fit the schema ({problem}). Answer again with JSON only."}]
    raise StepError(f"llm.chat.structured with {models[0]}: no answer fitted the schema in {attempts} attempts; the last: {problem}",
                    type="LlmAnswerInvalid", details={"attempts": attempts, "usage": total})


def _unfenced(text: str) -> str:
    """The JSON inside a ```json fence, which models add although asked not to."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


def add_usage(total: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    if not total:
        return dict(usage)
    summed = {k: total[k] + usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens", "latency_ms")}
    if "first_token_ms" in total:
        summed["first_token_ms"] = total["first_token_ms"]  # the first answer's
    summed["cost"] = None if total["cost"] is None or usage["cost"] is None else total["cost"] + usage["cost"]
    return summed
