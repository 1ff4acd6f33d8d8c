"""The `governance` extension's runners."""
