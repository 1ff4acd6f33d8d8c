"""The `identity` extension's runners."""
