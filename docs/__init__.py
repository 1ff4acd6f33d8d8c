"""Legion's documentation, shipped with the package: the MCP server serves the DSL reference from here."""
