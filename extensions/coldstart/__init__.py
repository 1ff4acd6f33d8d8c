"""The `coldstart` cognitive extension: the imprint window and calibration: ingesting a partner's notes into memory. See docs/agents/coldstart.md."""

from legion.sdk import Extension

extension = Extension("coldstart", runners=[], description="The imprint window and calibration: ingesting a partner's notes into memory")
