"""The `memory` cognitive extension: memory traces: power-law decay, reinforcement, retrieval, tiers, Hebbian association, consolidation. See docs/agents/memory.md."""

from legion.sdk import Extension

extension = Extension("memory", runners=[], description="Memory traces: power-law decay, reinforcement, retrieval, tiers, Hebbian association, consolidation")
