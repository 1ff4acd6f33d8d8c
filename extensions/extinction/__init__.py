"""The `extinction` cognitive extension: five-level containment escalation with authority and reversibility rules. See docs/agents/extinction.md."""

from legion.sdk import Extension

extension = Extension("extinction", runners=[], description="Five-level containment escalation with authority and reversibility rules")
