"""The `extinction` cognitive extension: five-level containment escalation with authority and reversibility rules. See docs/agents/extinction.md."""

from legion.extensions.extinction.runners import extinction
from legion.sdk import Extension

extension = Extension("extinction", runners=[extinction],
                      description="Five-level containment escalation with authority and reversibility rules")
