"""The `privatecore` cognitive extension: privacy: inbound probe detection, outbound PII redaction, cryptographic erasure. See docs/agents/privatecore.md."""

from legion.extensions.privatecore.runners import embedding_guard, partition_keys, privatecore
from legion.sdk import Extension

extension = Extension("privatecore", runners=[privatecore, partition_keys, embedding_guard],
                      description="Privacy: inbound probe detection, outbound PII redaction, cryptographic erasure")
