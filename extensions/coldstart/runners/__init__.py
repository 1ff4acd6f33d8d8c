"""The `coldstart` extension's runners."""
