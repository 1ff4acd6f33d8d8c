"""The `coldstart` cognitive extension: the imprint window and calibration: ingesting a partner's notes into memory. See docs/agents/coldstart.md."""

from legion.extensions.coldstart.runners import coldstart, ingest
from legion.sdk import Extension

extension = Extension("coldstart", runners=[coldstart, ingest],
                      description="The imprint window and calibration: ingesting a partner's notes into memory")
