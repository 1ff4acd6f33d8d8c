"""The `openai` extension's runners: chat, embeddings, images, audio, files, models, moderations."""
