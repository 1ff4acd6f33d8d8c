"""Chains shipped with Legion (examples and agent chains), each with a rehearsal."""
