"""Agents: a model that answers by calling Legion functions as tools. Each tool call is a task
of the run, recorded under the agent's step (`Context.call`); its result, or its error, goes
back to the model, until the model answers or `max_steps` answers were asked for."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.llm import client
from legion.extensions.llm.runners.chat import (
    ApiBase,
    ApiKey,
    Fallbacks,
    MaxTokens,
    Messages,
    Model,
    Prompt,
    Stream,
    System,
    Temperature,
    Timeout,
    add_usage,
    ask,
    messages_of,
    options_of,
    streams,
)
from legion.sdk import Canceled, Context, StepError

__all__ = ["run"]

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what the providers accept as a tool's name
MAX_TOOL_RESULT = 20_000  # characters of a tool's result sent back to the model


def run(ctx: Context,
        tools: Annotated[list[str], Field(min_length=1, description="the functions the model may call, e.g. [http.request.get]")],
        prompt: Prompt = None, messages: Messages = None, system: System = None, model: Model = None,
        max_steps: Annotated[int, Field(ge=1, le=100, description="answers asked of the model at most")] = 10,
        temperature: Temperature = None, max_tokens: MaxTokens = None, api_base: ApiBase = None, api_key: ApiKey = None,
        timeout: Timeout = 120.0, fallbacks: Fallbacks = None, stream: Stream = None) -> dict[str, Any]:
    """Let the model call `tools` until it answers: {text, model, steps (answers asked for),
    tool_calls: [{tool, arguments, status, result | error}], usage (summed)}. A model still
    calling tools after `max_steps` answers fails the step with LlmToolLoopLimit."""
    named = _tools(ctx, tools)
    specs = [{"type": "function", "function": {"name": name, "description": (info["description"] or info["ref"])[:1024],
                                               "parameters": info["args_schema"]}} for name, info in named.items()]
    models = [client.model_of(model), *client.fallbacks(fallbacks)]
    options = dict(options_of(temperature, max_tokens, api_base, api_key, timeout), tools=specs)
    conversation = messages_of(prompt, messages, system)
    calls: list[dict[str, Any]] = []
    usage: dict[str, Any] = {}
    for step in range(1, max_steps + 1):
        ctx.heartbeat()
        answer = ask("llm.agent.run", conversation, models, options, stream=streams(stream, max_tokens), ctx=ctx)
        usage = add_usage(usage, answer.usage)
        asked = list(answer.message.tool_calls or [])
        if not asked:
            return {"text": answer.text, "model": answer.model, "steps": step, "tool_calls": calls,
                    "finish_reason": answer.finish_reason, "usage": usage}
        conversation.append({"role": "assistant", "content": answer.message.content,
                             "tool_calls": [{"id": c.id, "type": "function",
                                             "function": {"name": c.function.name, "arguments": c.function.arguments or ""}}
                                            for c in asked]})
        for c in asked:
            record = _use(ctx, named, c.function.name, c.function.arguments)
            calls.append(record)
            said = record["result"] if record["status"] == "succeeded" else {"error": record["error"]}
            conversation.append({"role": "tool", "tool_call_id": c.id, "content": _text(said)})
    raise StepError(f"llm.agent.run with {models[0]}: the model was still calling tools after {max_steps} answers "
                    f"({len(calls)} tool calls); raise max_steps or narrow the task", type="LlmToolLoopLimit",
                    details={"tool_calls": calls, "usage": usage})


def _tools(ctx: Context, tools: list[str]) -> dict[str, dict[str, Any]]:
    """The tools by the name the model calls them (`http__request__get` for http.request.get)."""
    named: dict[str, dict[str, Any]] = {}
    for i, ref in enumerate(tools):
        if ref == "llm.agent.run":
            raise StepError(f"tools[{i}]: an agent cannot call llm.agent.run as a tool", type="InvalidArguments")
        try:
            info = ctx.describe(ref)
        except StepError as exc:
            raise StepError(f"tools[{i}]: {exc.message}", type="InvalidArguments") from None
        name = ref.replace(".", "__")
        if not TOOL_NAME.match(name) or name in named:
            raise StepError(f"tools[{i}]: {ref!r} cannot be offered as a tool (its name {name!r} is taken or not allowed)",
                            type="InvalidArguments")
        named[name] = info
    return named


def _use(ctx: Context, named: dict[str, dict[str, Any]], name: str, arguments: str | None) -> dict[str, Any]:
    """Carry out one tool call; what went wrong is told to the model, not raised (it may
    correct itself), except a cancel."""
    info = named.get(name)
    if info is None:
        return {"tool": name, "arguments": arguments, "status": "failed",
                "error": {"type": "UnknownTool", "message": f"there is no tool {name!r}; the tools are {', '.join(named)}"}}
    ref = info["ref"]
    try:
        args = json.loads(arguments or "{}")
        if not isinstance(args, dict):
            raise ValueError(f"a JSON object was expected, not {type(args).__name__}")
    except ValueError as exc:
        return {"tool": ref, "arguments": arguments, "status": "failed",
                "error": {"type": "InvalidArguments", "message": f"the arguments of {name} are not a JSON object: {exc}"}}
    try:
        result = ctx.call(ref, args)
    except Canceled:
        raise
    except StepError as exc:
        if ctx.canceled:
            raise Canceled(f"step {ctx.step!r} was canceled while {ref} ran") from None
        return {"tool": ref, "arguments": args, "status": "failed", "error": {"type": exc.type, "message": exc.message}}
    return {"tool": ref, "arguments": args, "status": "succeeded", "result": result}


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_TOOL_RESULT else text[:MAX_TOOL_RESULT] + f"... ({len(text) - MAX_TOOL_RESULT} more characters)"
