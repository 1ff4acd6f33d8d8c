"""The `prediction` extension's runners."""
