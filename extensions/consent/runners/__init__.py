"""The `consent` extension's runners."""
