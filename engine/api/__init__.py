"""Legion's REST API (Starlette): a thin adapter over `legion.engine.service`.

`create_app(service, auth=True)` builds the application; `legion api` and `legion start
--port` serve it with uvicorn. Every answer is JSON in an envelope: `{"data": ..., "meta":
...}`, or `{"error": {"code", "message", "details"}}` with a 4xx or 5xx status.
"""

from legion.engine.api.app import MAX_BODY, create_app

__all__ = ["MAX_BODY", "create_app"]
