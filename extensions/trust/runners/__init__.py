"""The `trust` extension's runners."""
