"""What extension authors import: the stable surface of Legion's extension SDK.

    from legion.sdk import Context, Extension, StepError, function

Everything here keeps its name and meaning across releases; the engine's internal modules
may move. See docs/extensions.md.
"""

from legion.engine.errors import Failure, StepError
from legion.engine.sdk import Actor, Canceled, Context, Extension, Options, every, function, loop, once, poll

__all__ = [
    "Actor", "Canceled", "Context", "Extension", "Failure", "Options", "StepError",
    "every", "function", "loop", "once", "poll",
]
