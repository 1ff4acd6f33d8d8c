"""The built-in `gemini` extension: the Gemini API (v1beta), operation by operation (content,
streamed content, embeddings, token counts, models, files, context caches), through
`legion.extensions.llm.rest` (retries honouring retry-after, the provider's circuit breaker and
rate limit, typed errors)."""

from legion.extensions.gemini.runners import cached_contents, content, embeddings, files, models, tokens
from legion.sdk import Extension

extension = Extension("gemini", runners=[content, embeddings, tokens, models, files, cached_contents],
                      description="The Gemini API: content (streamed too), embeddings, token counts, models, files, context caches")
