"""The `claude` extension's runners: messages, models, batches."""
