"""Legion engine: runtime, conductor, persistence, CLI."""
