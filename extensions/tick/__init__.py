"""The `tick` cognitive extension: the atomic cognitive cycle, its three modes and eleven
phases and the transitions between them, an agent's inbox and replies, and the choice to act.
The cycle itself is a chain (chains/agents/tick.yaml). See docs/agents/tick.md."""

from legion.extensions.tick.runners import action, agents, inbox, orchestrator
from legion.sdk import Extension

extension = Extension("tick", runners=[orchestrator, inbox, action, agents],
                      description="The atomic cognitive cycle: modes, phases and the transitions between them")
