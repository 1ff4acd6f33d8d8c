"""The `conflict` cognitive extension: conflicts: severity, postures, exchanges, resolution, stale checks. See docs/agents/conflict.md."""

from legion.sdk import Extension

extension = Extension("conflict", runners=[], description="Conflicts: severity, postures, exchanges, resolution, stale checks")
