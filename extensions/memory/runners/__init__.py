"""The `memory` extension's runners."""
