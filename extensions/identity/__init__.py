"""The `identity` cognitive extension: the partner's behavioural fingerprint: six dimensions, entropy, classification, trend, maturity. See docs/agents/identity.md."""

from legion.extensions.identity.runners import identity
from legion.sdk import Extension

extension = Extension("identity", runners=[identity], description="The partner's behavioural fingerprint: six dimensions, entropy, classification, trend, maturity")
