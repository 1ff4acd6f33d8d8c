"""The `conflict` extension's runners."""
