"""The `governance` cognitive extension: four-layer governance: council proposals with quorum voting and timeouts. See docs/agents/governance.md."""

from legion.extensions.governance.runners import governance
from legion.sdk import Extension

extension = Extension("governance", runners=[governance],
                      description="Four-layer governance: council proposals with quorum voting and timeouts")
