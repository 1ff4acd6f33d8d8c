"""The `trust` cognitive extension: per-agent, per-domain trust on four dimensions, with asymmetric reinforcement, penalty and decay. See docs/agents/trust.md."""

from legion.extensions.trust.runners import trust
from legion.sdk import Extension

extension = Extension("trust", runners=[trust], description="Per-agent, per-domain trust on four dimensions, with asymmetric reinforcement, penalty and decay")
