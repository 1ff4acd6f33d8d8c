"""Runners of the http extension."""
