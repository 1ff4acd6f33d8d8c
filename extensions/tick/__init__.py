"""The `tick` cognitive extension: the atomic cognitive cycle: modes, phases and the transitions between them. See docs/agents/tick.md."""

from legion.sdk import Extension

extension = Extension("tick", runners=[], description="The atomic cognitive cycle: modes, phases and the transitions between them")
