"""The `consent` cognitive extension: the four-tier consent gradient: earned promotion, demotion, cooldown, human approval. See docs/agents/consent.md."""

from legion.sdk import Extension

extension = Extension("consent", runners=[], description="The four-tier consent gradient: earned promotion, demotion, cooldown, human approval")
