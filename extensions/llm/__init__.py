"""The built-in `llm` extension: language models through litellm (imported only when a step
calls one): `llm.chat.complete`, `llm.chat.structured`, `llm.embeddings.create`, `llm.agent.run`."""

from legion.extensions.llm.runners import agent, chat, embeddings
from legion.sdk import Extension

extension = Extension("llm", runners=[chat, embeddings, agent],
                      description="Language models (litellm): chat completions, answers checked against a JSON Schema, embeddings, agents that call Legion functions as tools")
