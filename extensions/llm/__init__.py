"""The built-in `llm` extension: language models through litellm (imported only when a step
calls one): `llm.chat.complete`, `llm.chat.structured`, `llm.embeddings.create`."""

from legion.extensions.llm.runners import chat, embeddings
from legion.sdk import Extension

extension = Extension("llm", runners=[chat, embeddings],
                      description="Language models (litellm): chat completions, answers checked against a JSON Schema, embeddings")
