"""The `tick` extension's runners."""
