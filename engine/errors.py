"""Engine errors: subtrees of the one root, `LegionError` (defined in `legion.dsl.errors`)."""

from __future__ import annotations

from legion.dsl.errors import BadInput, ExpressionError, Issue, LegionError

__all__ = [
    "BadInput", "ExpressionError", "Issue", "LegionError", "NotFound", "ServiceUnavailable",
    "StepError", "Failure", "ConfigError", "ExtensionError", "Conflict",
]


class NotFound(BadInput):
    """A chain, run, task, extension or function that does not exist."""

    code = "not_found"


class Conflict(BadInput):
    code = "conflict"


class ConfigError(BadInput):
    """A setting is missing or malformed."""

    code = "config_error"


class RunTimeout(LegionError):
    """A run waited for did not end in the time given."""

    code = "timeout"


class NotConfigured(ConfigError):
    """What was asked for needs a service this deployment does not use (the broker, embedded)."""

    code = "not_configured"


class ServiceUnavailable(LegionError):
    """RabbitMQ, the database, Redis or Vault cannot be reached."""

    code = "service_unavailable"
    exit_code = 3


class ExtensionError(LegionError):
    """An installed extension cannot be loaded or is malformed."""

    code = "extension_error"


class StepError(LegionError):
    """Raised by an extension function to fail its step with a chosen error `type`.

    Any other exception fails the step with type `StepFailed` and the exception's message.
    """

    code = "step_failed"
    type = "StepFailed"

    def __init__(self, message: str, *, type: str | None = None, details: object = None) -> None:
        super().__init__(message, details=details)
        if type is not None:
            self.type = type


class Failure(StepError):
    """What `core.util.fail` raises (error type `Failure`)."""

    type = "Failure"
