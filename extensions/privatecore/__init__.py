"""The `privatecore` cognitive extension: privacy: inbound probe detection, outbound PII redaction, cryptographic erasure. See docs/agents/privatecore.md."""

from legion.sdk import Extension

extension = Extension("privatecore", runners=[], description="Privacy: inbound probe detection, outbound PII redaction, cryptographic erasure")
