"""The `privatecore` extension's runners."""
