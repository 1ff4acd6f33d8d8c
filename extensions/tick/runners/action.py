"""The action_selection phase and the act it leads to. Choosing is pure (what the tick saw);
whether the agent may act is the chain's next steps (consent for the domain, trust in the
partner, governance); acting asks the language model when one is configured, else answers
by rule; what it says passes privatecore before it is sent (the chain's step after)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.tick import helpers as h
from legion.sdk import Context, StepError

__all__ = ["select_action", "act"]

DOMAIN = "conversation"  # the consent domain of answering the partner
SYSTEM = ("You are {agent}, an agent working with your partner. Answer their message briefly and plainly. "
          "What you remember that may bear on it:\n{memories}")


def select_action(signals: Annotated[list[dict[str, Any]], Field(description="the signals attended to this tick")],
                  gut: Annotated[dict[str, Any] | None, Field(description="gut_instinct's reading")] = None,
                  ) -> dict[str, Any]:
    """What the agent means to do this tick: {act: true, intent: {kind: reply, domain, action,
    in_reply_to, message, urgency}} when its partner wrote to it, else {act: false, reason}."""
    partner = [s for s in signals if h.is_human(s)]
    if not partner:
        return {"act": False, "reason": "nothing was asked of the agent", "intent": None}
    signal = str((gut or {}).get("signal") or "neutral")
    return {"act": True, "reason": "the partner wrote", "intent": {
        "kind": "reply", "domain": DOMAIN, "action": "reply_to_partner",
        "in_reply_to": [int(s["id"]) for s in partner if s.get("id") is not None],
        "message": "\n".join(str(s.get("value", "")) for s in partner),
        "urgency": "high" if signal in ("alarm", "heightened") else "normal"}}


def act(ctx: Context, intent: Annotated[dict[str, Any], Field(description="select_action's intent")],
        memories: Annotated[list[dict[str, Any]] | None, Field(description="traces retrieved this tick")] = None,
        model: Annotated[str | None, Field(description="provider/name (default LEGION_LLM_MODEL; none: answer by rule)")] = None,
        api_base: Annotated[str | None, Field(description="the model provider's URL")] = None) -> dict[str, Any]:
    """Carry out a reply: {text, by: model|rule, model}. With a model (the argument, else
    LEGION_LLM_MODEL) the reply is the model's, through `llm.chat.complete` (a task under this
    step); without one, a plain acknowledgement that says what the agent recalls."""
    message = str(intent.get("message") or "").strip()
    if intent.get("kind") != "reply" or not message:
        raise StepError("act carries out a reply: give select_action's intent (kind reply, with the message)", type="InvalidArguments")
    recalled = [str(_content(m)) for m in (memories or []) if _content(m) and str(_content(m)).strip() != message][:5]
    chosen = model or os.environ.get("LEGION_LLM_MODEL")
    if chosen:
        asked: dict[str, Any] = {"prompt": message, "model": chosen, "max_tokens": 400,
                                 "system": SYSTEM.format(agent=ctx.agent, memories="\n".join(f"- {r}" for r in recalled) or "- nothing yet")}
        if api_base:
            asked["api_base"] = api_base
        answer = ctx.call("llm.chat.complete", asked)
        return {"text": str(answer.get("text") or ""), "by": "model", "model": answer.get("model")}
    first = message.splitlines()[0][:200]
    text = f"Noted: \"{first}\"."
    if recalled:
        text += f" It brings to mind: {recalled[0][:200]}."
    return {"text": text, "by": "rule", "model": None}


def _content(memory: dict[str, Any]) -> Any:
    trace = memory.get("trace", memory) if isinstance(memory, dict) else {}
    return trace.get("content_payload") if isinstance(trace, dict) else None
