"""The `llm` extension's runners."""
