"""The `consent` cognitive extension: the four-tier consent gradient: earned promotion, demotion, cooldown, human approval. See docs/agents/consent.md."""

from legion.extensions.consent.runners import consent
from legion.sdk import Extension

extension = Extension("consent", runners=[consent], description="The four-tier consent gradient: earned promotion, demotion, cooldown, human approval")
