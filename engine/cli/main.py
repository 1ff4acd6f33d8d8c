"""`legion`: parse, call library code, print. Every command takes `--json`.

Imports are lazy so that `legion chain validate` does not load the runtime or a database
driver it does not need.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from legion.dsl.errors import BadInput, LegionError
from legion.engine.cli.args import MAX_ID, int_range, seconds, task_ref
from legion.engine.cli.output import MaskingFormatter, Output
from legion.engine.service import Service
from legion.engine.settings import MAX_WORKERS

Handler = Callable[[argparse.Namespace, "Context"], int]

# What `--status` takes: the conductor's statuses (a test keeps them equal), written out so
# that parsing the command line does not import the conductor.
RUN_STATUSES = ("pending", "running", "paused", "succeeded", "failed", "canceled")
TASK_STATUSES = ("queued", "delayed", "running", "succeeded", "failed", "skipped", "canceled", "timed_out")


class Context(Service):
    """What commands share: the deployment's service (settings, and lazily the store and the
    registry), and the output."""

    def __init__(self, out: Output) -> None:
        super().__init__()
        self.out = out


class Parser(argparse.ArgumentParser):
    """argparse that raises BadInput (exit 2, JSON envelope) instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> Parser:
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print exactly one JSON document")
    common.add_argument("-v", "--verbose", action="store_true", help="log at debug level")

    root = Parser(prog="legion", description="Legion: chains of extension functions, run by workers.", parents=[common])
    root.add_argument("--version", action="version", version=f"legion {_version()}")
    groups = root.add_subparsers(dest="group", metavar="COMMAND", parser_class=Parser)

    def command(sub: Any, name: str, handler: str, help: str) -> Parser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(handler=handler, command_prog=p.prog)
        return p

    limit = int_range(1, 10_000)
    pairs_help = "key=value or key:value; the value is text unless the schema it feeds says otherwise (then JSON)"
    input_json_help = "a JSON object from this file, or from stdin with `-` (key=value arguments override its keys)"

    start = command(groups, "start", "commands:start", "apply the chains and run workers, schedules and triggers until Ctrl-C")
    start.add_argument("--chains", action="append", help="chain folder or file to apply first (default: ./chains, else the shipped chains)")
    start.add_argument("--workers", "--concurrency", dest="workers", type=int_range(1, MAX_WORKERS, "a number of worker threads"),
                       help=f"worker threads, 1 to {MAX_WORKERS} (default: LEGION_WORKERS or 4)")
    start.add_argument("--role", choices=["all", "worker", "scheduler"], default="all",
                       help="worker: take step messages; scheduler: fire schedules and actors; all (default): both")
    start.add_argument("--no-apply", action="store_true", help="do not apply chain files; run what is applied")
    start.add_argument("--port", type=int_range(1, 65535, "a port number"),
                       help="also serve the REST API on this port (e.g. 4567)")
    api = command(groups, "api", "api:serve", "serve only the REST API (runs start on the deployment's workers)")
    api.add_argument("--port", type=int_range(1, 65535, "a port number"), default=4567, help="the port (default 4567)")
    for p in (start, api):
        p.add_argument("--host", default="127.0.0.1", help="the address the API listens on (default 127.0.0.1)")
        p.add_argument("--no-auth", action="store_true", help="serve the API with no token needed (only on a loopback address)")

    schema = groups.add_parser("schema", help="JSON Schemas for editors", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    p = command(schema, "export", "chains:schema_export", "write the chain and rehearsal JSON Schemas (for yaml-language-server)")
    p.add_argument("--out", default="schemas", help="the folder to write them in (default: ./schemas)")
    p.add_argument("--with-extensions", action="store_true",
                   help="`run:` lists the installed functions and `with:` is checked against each one's arguments")

    command(groups, "mcp", "api:mcp_stdio", "serve Legion's MCP tools on stdio (for an agent: Claude Desktop, Claude Code...)")

    token = groups.add_parser("token", help="API tokens", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    p = command(token, "create", "api:token_create", "make an API token (shown once; only its hash is kept)")
    p.add_argument("--scope", required=True, choices=["read", "run", "admin"],
                   help="read: look; run: also start, cancel, pause, resume and retry runs, run tasks; admin: also apply and delete chains")
    p.add_argument("--name", default="token", help="what it is for (shown by `token list`)")
    p.add_argument("--expires", metavar="DURATION", help="it stops working after this long (e.g. 30d, 12h); default never (a JWT: 24h)")
    p.add_argument("--jwt", action="store_true", help="a JWT (HS256, signed with LEGION_API_JWT_KEY or $LEGION_HOME/api-jwt.key)")
    command(token, "list", "api:token_list", "API tokens (never the tokens themselves)")
    p = command(token, "revoke", "api:token_revoke", "stop a token from working")
    p.add_argument("id", type=int_range(1, MAX_ID, "a token id"))

    agent = groups.add_parser("agent", help="cognitive agents", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND",
                                                                                                 parser_class=Parser)
    p = command(agent, "create", "agents:create", "make an agent (and apply its tick and heartbeat chains)")
    p.add_argument("name")
    p.add_argument("--partner", help="who it works with (the partner whose messages are human_direct signals)")
    p.add_argument("settings", nargs="*", help="settings as key=value")
    command(agent, "list", "agents:list_", "agents")
    p = command(agent, "status", "agents:status", "an agent's mode, recent memories, trust, consent tiers, last reply")
    p.add_argument("name")
    for name, what in (("send", "give an agent a message from its partner; it wakes and answers"), ("tick", "run one tick of an agent")):
        p = command(agent, name, f"agents:{name}", what)
        p.add_argument("name")
        if name == "send":
            p.add_argument("text")
        p.add_argument("--model", help="the model its replies come from (provider/name; default LEGION_LLM_MODEL, else by rule)")
        p.add_argument("--api-base", dest="api_base", help="the model provider's URL")
        p.add_argument("--timeout", type=seconds, default=120.0, help="seconds each tick may take (default 120)")
    p = command(agent, "erase", "agents:erase", "erase an agent: its key, then its state (irreversible)")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="yes, erase it")

    lex = groups.add_parser("lex", help="extensions", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    command(lex, "list", "commands:lex_list", "installed extensions, runners and functions with their arguments")
    p = command(lex, "create", "commands:lex_create", "scaffold a new extension package")
    p.add_argument("name")
    p.add_argument("--path", default=".", help="folder to create it in (default: here)")

    task = groups.add_parser("task", help="tasks (step runs)", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    p = command(task, "run", "commands:task_run", "run one function now: legion task run http.request.get url:http://host/")
    p.add_argument("function")
    p.add_argument("args", nargs="*", help=pairs_help)
    p.add_argument("--input-json", metavar="FILE", help=input_json_help)
    p = command(task, "list", "commands:task_list", "recent tasks")
    p.add_argument("--run", dest="run_id", help="tasks of this run (its id, or a unique prefix of it)")
    p.add_argument("--status", choices=TASK_STATUSES, help="tasks in this status")
    p.add_argument("--limit", type=limit, default=50, help="at most this many (1 to 10000; default 50)")
    task_id_help = "a task id, or RUN_ID/NUMBER: the step run NUMBER of a run (whose id may be a unique prefix)"
    p = command(task, "show", "commands:task_show", "one task: status, arguments, result, error and traceback")
    p.add_argument("id", type=task_ref, help=task_id_help)
    p = command(task, "logs", "commands:task_logs", "a task's log entries")
    p.add_argument("id", type=task_ref, help=task_id_help)
    p = command(task, "purge", "commands:task_purge", "delete finished runs and their tasks older than a duration")
    p.add_argument("--older-than", required=True, help="e.g. 30d, 12h")

    chain = groups.add_parser("chain", help="chains", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    p = command(chain, "validate", "chains:validate", "check chain files: every problem, with file:line:col")
    p.add_argument("paths", nargs="+")
    p = command(chain, "plan", "chains:plan", "relationships, RabbitMQ topology and the diff against what is applied")
    p.add_argument("paths", nargs="+")
    p = command(chain, "apply", "chains:apply", "validate, compile and store chains (idempotent)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--prune", action="store_true", help="remove applied chains these files no longer hold")
    p = command(chain, "run", "chains:run", "run an applied chain")
    p.add_argument("name")
    p.add_argument("args", nargs="*", help=f"input as {pairs_help}")
    p.add_argument("--input", action="append", default=[], help="JSON object, @file.json, or key=value")
    p.add_argument("--input-json", metavar="FILE", help=input_json_help)
    p.add_argument("--wait", action="store_true", help="show live progress, then the output and the trace")
    p.add_argument("--timeout", type=seconds, help="cancel the run if it has not ended after this many seconds")
    p.add_argument("--agent", help="the agent the run is for: whose state its functions keep (default: the default agent)")
    p = command(chain, "test", "chains:test", "run rehearsals: N passed, N failed")
    p.add_argument("paths", nargs="+")
    command(chain, "list", "chains:list_", "applied chains")
    p = command(chain, "show", "chains:show", "an applied chain")
    p.add_argument("name")
    p.add_argument("--version", type=int_range(1, MAX_ID, "a version number"))
    p = command(chain, "history", "chains:history", "versions of an applied chain")
    p.add_argument("name")
    p = command(chain, "graph", "chains:graph", "draw a chain (applied, or a file)")
    p.add_argument("name")
    p.add_argument("--format", choices=["mermaid", "dot", "svg"], default="mermaid")
    p = command(chain, "delete", "chains:delete", "delete an applied chain (its runs keep their versions)")
    p.add_argument("name")

    run = groups.add_parser("run", help="runs", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    p = command(run, "list", "commands:run_list", "recent runs")
    p.add_argument("--chain")
    p.add_argument("--status", choices=RUN_STATUSES, help="runs in this status")
    p.add_argument("--limit", type=limit, default=50, help="at most this many (1 to 10000; default 50)")
    p = command(run, "show", "commands:run_show", "a run with its step trace")
    p.add_argument("id", help="a run id, or a unique prefix of it (4 characters or more)")
    p = command(run, "cancel", "commands:run_cancel", "cancel a run")
    p.add_argument("id", help="a run id, or a unique prefix of it (4 characters or more)")
    p = command(run, "pause", "commands:run_pause", "start no more step runs of a run until it is resumed")
    p.add_argument("id", help="a run id, or a unique prefix of it (4 characters or more)")
    p = command(run, "resume", "commands:run_resume", "let a paused run go on")
    p.add_argument("id", help="a run id, or a unique prefix of it (4 characters or more)")
    p = command(run, "retry", "commands:run_retry", "run a failed or canceled run again from its failed step runs, keeping what succeeded")
    p.add_argument("id", help="a run id, or a unique prefix of it (4 characters or more)")
    p.add_argument("--wait", action="store_true", help="wait for the run to end and show it")
    p.add_argument("--timeout", type=seconds, help="with --wait: give up waiting after this long")

    node = groups.add_parser("node", help="the processes running Legion", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    command(node, "list", "ops:node_list", "live and recently seen processes: host, pid, role, runners, steps in flight")

    broker = groups.add_parser("broker", help="RabbitMQ (LEGION_AMQP_URL)", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    command(broker, "status", "ops:broker_status", "Legion's queues: depths, consumers, rates")

    dlq = groups.add_parser("dlq", help="dead letters (RabbitMQ)", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    p = command(dlq, "list", "ops:dlq_list", "dead letters across Legion's dead-letter queues, with why each died")
    p.add_argument("--limit", type=limit, default=100, help="at most this many (default 100)")
    p = command(dlq, "show", "ops:dlq_show", "one dead letter")
    p.add_argument("id")
    p = command(dlq, "replay", "ops:dlq_replay", "run a dead letter again (its run is retried when it has ended)")
    p.add_argument("id")
    p = command(dlq, "purge", "ops:dlq_purge", "delete dead letters")
    p.add_argument("--queue", help="only this dead-letter queue")

    secret = groups.add_parser("secret", help="secrets (Vault when VAULT_ADDR is set, else the embedded store)",
                               parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    p = command(secret, "set", "secrets:set_", "store a secret; the value comes from VALUE, --from-env VAR or stdin, and is never printed")
    p.add_argument("path")
    p.add_argument("key")
    p.add_argument("value", nargs="?", help="the value (it lands in your shell history: prefer stdin or --from-env)")
    p.add_argument("--from-env", metavar="VAR", help="read the value from this environment variable")
    command(secret, "list", "secrets:list_", "paths and their keys (never values)")
    p = command(secret, "delete", "secrets:delete", "delete a key, or a whole path")
    p.add_argument("path")
    p.add_argument("key", nargs="?")

    db = groups.add_parser("db", help="the database", parents=[common]).add_subparsers(dest="sub", metavar="SUBCOMMAND", parser_class=Parser)
    command(db, "upgrade", "commands:db_upgrade", "create or migrate the database schema to this Legion's (every command also does it on first use)")

    command(groups, "doctor", "doctor:doctor", "check the settings, the database, the services and the extensions (-v: tracebacks)")
    return root


def _version() -> str:
    """The installed version. Every command builds the parser, so this is read every time:
    from the METADATA of the first `legion` dist-info on sys.path, the one importlib.metadata
    would find, without importing importlib.metadata (email, zipfile, csv: a third of
    `legion --version`). Anything less plain is left to importlib.metadata."""
    for entry in sys.path:
        folder = entry or "."
        try:
            children = os.listdir(folder)
        except OSError:
            if os.path.isfile(folder):  # an archive: importlib.metadata looks inside it
                break
            continue
        info = next((c for c in children if c.lower().endswith((".dist-info", ".egg-info"))
                     and c.lower().rpartition(".")[0].partition("-")[0] == "legion"), None)
        if info is None:
            continue
        if info.lower().endswith(".dist-info"):
            try:
                with open(os.path.join(folder, info, "METADATA"), encoding="utf-8") as metadata:
                    for line in metadata:
                        if not line.strip():  # the end of the headers
                            break
                        if line.startswith("Version:"):
                            return line[len("Version:"):].strip()
            except OSError:
                pass
        break  # an egg-info, or a dist-info without a version: importlib.metadata decides
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("legion")
    except PackageNotFoundError:
        return "unknown"
    except TypeError:  # a dist-info without METADATA, read by the importlib_metadata backport's finder
        return None  # type: ignore[return-value]  # (what importlib.metadata itself says of one)


def _handler(name: str) -> Handler:
    module, func = name.split(":")
    import importlib

    return getattr(importlib.import_module(f"legion.engine.cli.{module}"), func)  # type: ignore[no-any-return]


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line. `key=value` arguments may come before, between or after the
    options: what argparse leaves over joins the command's `args` when it takes them."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        pairs = getattr(args, "args", None)
        if isinstance(pairs, list):
            pairs += [e for e in extra if not e.startswith("-")]
            extra = [e for e in extra if e.startswith("-")]
        if extra:
            prog = getattr(args, "command_prog", parser.prog)
            raise BadInput(f"{prog}: unrecognized arguments: {' '.join(extra)} (see `{prog} --help`)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stdout = sys.stdout
    out = Output("--json" in argv, stdout)
    root = logging.getLogger()
    level, handler, restore_key = root.level, None, None
    try:
        args = parse(argv)
        out.json_mode = out.json_mode or bool(args.json)
        # The level is on the handler, not the root logger: step functions' INFO records still
        # reach the engine, which keeps them as task logs without printing them.
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if args.verbose else logging.INFO)
        if not getattr(args, "handler", None):
            raise BadInput("give a command: start, lex, task, chain, run, secret, db or doctor (see `legion --help`)")
        handler_fn = _handler(args.handler)
        from legion.dsl.budget import configure
        from legion.engine.limits import limits_from_env

        configure(limits_from_env(os.environ))
        from legion.dsl.tokens import use_key
        from legion.engine.secrets import deployment_token_key

        restore_key = use_key(lambda: deployment_token_key(os.environ))  # read when a `secret()` is first rendered or resolved
        if out.json_mode:
            # Chains run in this process: whatever a step function prints must not land in
            # the one JSON document. It goes to stderr; the envelope to the real stdout.
            sys.stdout = sys.stderr
        try:
            return handler_fn(args, Context(out))
        finally:
            sys.stdout = stdout
    except LegionError as exc:
        return out.error(exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one clear message (and one JSON document)
        logging.getLogger("legion").debug("unexpected error", exc_info=True)
        return out.error(LegionError(f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)"))
    finally:  # a caller that runs several commands in one process (tests, an embedding program) keeps its own state
        if handler is not None:
            root.removeHandler(handler)
            root.setLevel(level)
        if restore_key is not None:
            restore_key()


if __name__ == "__main__":
    sys.exit(main())
