"""The `extinction` extension's runners."""
