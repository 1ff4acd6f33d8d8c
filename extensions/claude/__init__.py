"""The built-in `claude` extension: Anthropic's own API, operation by operation (messages,
streamed messages, token counts, models, message batches), through `legion.extensions.llm.rest`
(retries honouring retry-after, the provider's circuit breaker and rate limit, typed errors)."""

from legion.extensions.claude.runners import batches, messages, models
from legion.sdk import Extension

extension = Extension("claude", runners=[messages, models, batches],
                      description="Anthropic's API: messages (streamed too), token counts, models, message batches")
