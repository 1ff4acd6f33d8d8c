"""The `gemini` extension's runners: content, embeddings, tokens, models, files, cached_contents."""
