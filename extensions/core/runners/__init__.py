"""Runners of the core extension."""
