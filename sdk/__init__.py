"""What extension authors import: the stable surface of Legion's extension SDK.

    from legion.sdk import Context, Extension, StepError, function
    legion.sdk.call("trust.trust.get_trust", {...}, now=..., agent="ada")   # outside a chain

Everything here keeps its name and meaning across releases; the engine's internal modules
may move. See docs/extensions.md.
"""

from legion.engine.agentstate import AgentState, StateUnreadable
from legion.engine.errors import Failure, StepError
from legion.engine.sdk import Actor, Canceled, Context, Extension, Options, call, every, function, loop, once, poll

__all__ = [
    "Actor", "AgentState", "Canceled", "Context", "Extension", "Failure", "Options", "StateUnreadable", "StepError",
    "call", "every", "function", "loop", "once", "poll",
]
