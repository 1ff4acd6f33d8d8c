"""The `emotion` extension's runners."""
