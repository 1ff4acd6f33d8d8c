"""The `memory` cognitive extension: memory traces: power-law decay, reinforcement, retrieval, tiers, Hebbian association, consolidation. See docs/agents/memory.md."""

from legion.extensions.memory.runners import consolidation, traces
from legion.sdk import Extension

extension = Extension("memory", runners=[traces, consolidation],
                      description="Memory traces: power-law decay, reinforcement, retrieval, tiers, Hebbian association, consolidation")
