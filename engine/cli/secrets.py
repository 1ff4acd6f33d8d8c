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
    from legion.engine.settings import check_environment

    check_environment()  # the secret commands do not build Settings, which checks it too
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
        from legion.engine.cli.args import read_stdin

        value = read_stdin("the value on stdin")
        # What `echo` or a here-string adds is not part of the secret.
        value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
    if value == "":
        raise BadInput("no value: give VALUE, --from-env VAR, or the value on stdin (`legion secret set PATH KEY < file`)")
    _text(value, "the value" + (f" of {args.from_env}" if args.from_env else ""))
    return value


def _text(value: str, what: str) -> None:
    """BadInput when `value` came from bytes that are not UTF-8 (an argument or a variable,
    which Python hands over with lone surrogates in their place): no store can hold it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{what} holds bytes that are not UTF-8 text; give UTF-8 text") from None


def set_(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.secrets import MASKER, check_path

    _text(args.path, "PATH")
    _text(args.key, "KEY")
    path = check_path(args.path, args.key)
    value = _value(args)
    MASKER.remember(value)  # nothing printed from here on can show it
    store = _store()
    store.write(path, args.key, value)
    ctx.out.data(dict(_where(store), path=path, key=args.key), f"set {path}#{args.key} in {store.describe()}")
    return 0


def list_(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.list_secrets()
    secrets = data["secrets"]

    def text() -> str:
        if not secrets:
            return f"no secrets in {data['location']} (add one with `legion secret set PATH KEY`)"
        return "\n".join(f"{path}: {', '.join(keys)}" for path, keys in secrets.items())

    ctx.out.data(data, text)
    return 0


def delete(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.secrets import check_path

    _text(args.path, "PATH")
    if args.key is not None:
        _text(args.key, "KEY")
    path = check_path(args.path, args.key)
    store = _store()
    store.delete(path, args.key)
    what = f"{path}#{args.key}" if args.key is not None else f"{path} (all its keys)"
    ctx.out.data(dict(_where(store), path=path, key=args.key), f"deleted {what} from {store.describe()}")
    return 0
