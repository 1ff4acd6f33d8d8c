"""`legion api` (serve the REST API) and `legion token ...` (its tokens)."""

from __future__ import annotations

import argparse
import ipaddress
import socket
from datetime import timedelta
from typing import Any

from legion.dsl.durations import parse_duration
from legion.engine.cli.main import Context
from legion.engine.cli.output import table
from legion.engine.errors import BadInput

JWT_LIFE = "24h"  # a JWT without --expires


def check_binding(host: str, no_auth: bool) -> None:
    """--no-auth is for a server only this machine can reach."""
    if no_auth and not is_loopback(host):
        raise BadInput(f"--no-auth serves the API to anyone who can reach {host}; it is allowed only on a loopback address "
                       "(127.0.0.1, ::1, localhost). Make a token with `legion token create --scope ...` instead")


def is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def api_server(ctx: Context, host: str, port: int, no_auth: bool) -> Any:
    """A uvicorn server of the API over `ctx` (started by the caller, in a thread or not)."""
    import uvicorn

    from legion.engine.api import create_app

    check_binding(host, no_auth)
    config = uvicorn.Config(create_app(ctx, auth=not no_auth, host=host), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="on")
    return uvicorn.Server(config)


def serve(args: argparse.Namespace, ctx: Context) -> int:
    server = api_server(ctx, args.host, args.port, args.no_auth)  # refused before anything starts when --no-auth is off loopback
    engine = ctx.engine(consume=False)  # embedded, runs started here run here; on RabbitMQ, on the workers
    ctx.use_engine(engine)
    with engine:
        ctx.out.progress(f"legion API on http://{args.host}:{args.port}/api ({'no auth' if args.no_auth else 'tokens'}); Ctrl-C stops it")
        server.run()
    ctx.out.data({"stopped": f"{args.host}:{args.port}"}, "stopped")
    return 0


def mcp_stdio(args: argparse.Namespace, ctx: Context) -> int:
    """The MCP server on this process's stdin and stdout (whatever else prints goes to stderr)."""
    from legion.engine.mcpserver import build_server

    engine = ctx.engine(consume=False)  # embedded, runs an agent starts run here; on RabbitMQ, on the workers
    ctx.use_engine(engine)
    with engine:
        build_server(ctx).run("stdio")
    return 0


def token_create(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.data.types import utcnow

    expires = None
    if args.expires or args.jwt:
        try:
            expires = utcnow() + timedelta(seconds=parse_duration(args.expires or JWT_LIFE))
        except ValueError as exc:
            raise BadInput(f"--expires: {exc}") from None
    scopes = {"read": ["read"], "run": ["read", "run"], "admin": ["read", "run", "admin"]}[args.scope]
    jwt_key = None
    if args.jwt:
        from legion.engine.secrets import api_jwt_key

        jwt_key = api_jwt_key()
    made = ctx.store.create_token(args.name, scopes, expires, jwt_key=jwt_key)
    ctx.out.data(made, lambda: f"{made['token']}\n(token {made['id']}, {args.scope}; shown this once: keep it now)")
    return 0


def token_list(args: argparse.Namespace, ctx: Context) -> int:
    tokens = ctx.store.list_tokens()
    shown = [dict(t, scopes=",".join(t["scopes"])) for t in tokens]
    ctx.out.data(tokens, lambda: table(shown, ["id", "name", "scopes", "created_at", "expires_at", "revoked_at"], "no API tokens"))
    return 0


def token_revoke(args: argparse.Namespace, ctx: Context) -> int:
    revoked = ctx.store.revoke_token(args.id)
    ctx.out.data(revoked, f"revoked token {args.id}")
    return 0
