"""`legion secret ...`: set, list and delete secrets in the store steps read them from (Vault
when VAULT_ADDR is set, else the embedded store in LEGION_HOME). Values are never printed."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from legion.dsl.errors import BadInput
from legion.engine.cli.main import Context


def _store() -> Any:
    from legion.engine.secrets import store_from_env

    return store_from_env()


def _where(store: Any) -> dict[str, str]:
    return {"store": store.kind, "location": store.describe()}


def _value(args: argparse.Namespace) -> str:
    """The value from the argument, the named environment variable, or stdin (a prompt that
    does not echo when stdin is a terminal)."""
    if args.value is not None and args.from_env:
        raise BadInput("give the value either as VALUE or with --from-env, not both")
    if args.value is not None:
        value = args.value
    elif args.from_env:
        found = os.environ.get(args.from_env)
        if found is None:
            raise BadInput(f"--from-env {args.from_env}: that environment variable is not set")
        value = found
    elif sys.stdin is None:
        value = ""
    elif sys.stdin.isatty():
        value = getpass.getpass(f"value for {args.path}#{args.key} (not echoed): ")
    else:
        value = sys.stdin.read()
        # What `echo` or a here-string adds is not part of the secret.
        value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
    if value == "":
        raise BadInput("no value: give VALUE, --from-env VAR, or the value on stdin (`legion secret set PATH KEY < file`)")
    return value


def set_(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.secrets import MASKER, check_path

    path = check_path(args.path, args.key)
    value = _value(args)
    MASKER.remember(value)  # nothing printed from here on can show it
    store = _store()
    store.write(path, args.key, value)
    ctx.out.data(dict(_where(store), path=path, key=args.key), f"set {path}#{args.key} in {store.describe()}")
    return 0


def list_(args: argparse.Namespace, ctx: Context) -> int:
    store = _store()
    secrets = store.list()

    def text() -> str:
        if not secrets:
            return f"no secrets in {store.describe()} (add one with `legion secret set PATH KEY`)"
        return "\n".join(f"{path}: {', '.join(keys)}" for path, keys in secrets.items())

    ctx.out.data(dict(_where(store), secrets=secrets), text)
    return 0


def delete(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.secrets import check_path

    path = check_path(args.path, args.key)
    store = _store()
    store.delete(path, args.key)
    what = f"{path}#{args.key}" if args.key is not None else f"{path} (all its keys)"
    ctx.out.data(dict(_where(store), path=path, key=args.key), f"deleted {what} from {store.describe()}")
    return 0
