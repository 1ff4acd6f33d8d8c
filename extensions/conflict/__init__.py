"""The `conflict` cognitive extension: conflicts: severity, postures, exchanges, resolution, stale checks. See docs/agents/conflict.md."""

from legion.extensions.conflict.runners import conflict
from legion.sdk import Extension

extension = Extension("conflict", runners=[conflict], description="Conflicts: severity, postures, exchanges, resolution, stale checks")
