"""The built-in `openai` extension: OpenAI's own API, operation by operation (chat, embeddings,
images, audio, files, models, moderations), through `legion.extensions.llm.rest` (retries
honouring retry-after, the provider's circuit breaker and rate limit, typed errors)."""

from legion.extensions.openai.runners import audio, chat, embeddings, files, images, models, moderations
from legion.sdk import Extension

extension = Extension("openai", runners=[chat, embeddings, images, audio, files, models, moderations],
                      description="OpenAI's API: chat (streamed too), embeddings, images, audio, files, models, moderations")
