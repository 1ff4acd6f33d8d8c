"""The chain DSL: YAML in (with line and column), a typed model, validation, compilation.

Pure: nothing here touches the network, a database or the engine.
"""

from legion.dsl.errors import ExpressionError, Issue, LegionError, ValidationFailed

__all__ = ["ExpressionError", "Issue", "LegionError", "ValidationFailed"]
