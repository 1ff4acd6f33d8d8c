"""What Legion offers every interface: the CLI, the REST API and the MCP tools are thin
adapters over these operations (validate, plan, apply and delete chains; start, show, list,
cancel, pause, resume and retry runs; tasks and their logs; functions and their argument
schemas; schedules; nodes), so they share one behaviour, one set of errors (`LegionError`,
whose `to_dict` is the `{code, message, details}` every interface shows) and the same
file:line:col issues.

Operations return plain JSON-ready data (dicts and lists; datetimes are left to each
interface's encoder). Chains come as files (`paths`) or as YAML text (`text`). Imports are lazy:
a command that only validates a file loads neither the runtime nor a database driver.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion.dsl.errors import BadInput, Issue, LegionError
from legion.engine.agentops import AgentOps, check_agent_name
from legion.engine.errors import ConfigError, NotConfigured, NotFound, RunTimeout

if TYPE_CHECKING:
    from legion.engine.chains import ChainFile
    from legion.engine.runtime import Engine

RUN_REQUESTS = {"pause": ("running",), "resume": ("paused",)}  # what a run must be for each request
LIVE_WITHIN = 15.0  # seconds: a node that sent a heartbeat this recently is up (it sends one a second; every 10 s with Redis)


class Service(AgentOps):
    """One deployment as its settings describe it: the store, the registry of installed
    extensions, and engines made on demand; each built on first use."""

    def __init__(self, settings: Any = None, *, registry: Any = None) -> None:
        self._settings = settings
        self._store: Any = None
        self._registry: Any = registry
        self._engine: Engine | None = None  # a long-lived engine of this process (a server's), when it has one

    def use_engine(self, engine: Engine | None) -> None:
        """Start runs on this started engine rather than one made (and stopped) per call."""
        self._engine = engine

    @contextmanager
    def _engine_for_call(self, workers: int | None = None) -> Iterator[Engine]:
        if self._engine is not None:
            yield self._engine
            return
        engine = self.engine(workers, consume=False)
        with engine:
            yield engine

    # -- what it is made of ----------------------------------------------------------------

    @property
    def settings(self) -> Any:
        """Built on first use: a `vault://` setting is read from the secret store then, and
        `legion secret ...` (which may be how that secret gets there) never needs it."""
        if self._settings is None:
            from legion.engine.settings import Settings

            self._settings = Settings.from_env()
        return self._settings

    @property
    def store(self) -> Any:
        if self._store is None:
            from legion.engine.data.store import Store

            self.make_home()
            self._store = Store(self.settings.database_url)
        return self._store

    def make_home(self) -> Path:
        """LEGION_HOME, created when missing (the embedded database and secrets live there)."""
        home: Path = self.settings.home
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "a file of that name is in the way" if isinstance(exc, FileExistsError) else exc.strerror or str(exc)
            raise ConfigError(f"LEGION_HOME={home}: cannot create that folder ({why}); "
                              "set LEGION_HOME to a folder Legion may write to") from None
        return home

    def existing_store(self) -> Any:
        """The store if its database already exists and can be reached, else None. Unlike
        `store`, this creates nothing: no folder, no SQLite file."""
        if self._store is not None:
            return self._store
        from legion.engine.data.urls import sqlite_path
        from legion.engine.errors import ServiceUnavailable

        url = self.settings.database_url
        # The embedded default's URL is read without SQLAlchemy: seeing that there is no file
        # yet must not cost importing it.
        database = sqlite_path(url)
        if database is None:
            from legion.engine.data.connect import parse_url

            parsed = parse_url(url)
            if parsed.get_backend_name() == "sqlite":
                database = parsed.database or ""
        if database is not None and (not database or database == ":memory:" or database.startswith("file:")
                                     or not Path(database).is_file()):
            return None
        from legion.engine.data.store import Store

        try:
            self._store = Store(url)
        except ServiceUnavailable:
            return None
        return self._store

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from legion.engine.registry import Registry

            self._registry = Registry.discover()
        return self._registry

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def engine(self, workers: int | None = None, *, consume: bool = True) -> Engine:
        """An engine of this deployment. With LEGION_AMQP_URL it is shared: its runs are kept
        in the database and travel through RabbitMQ, so any worker anywhere carries them on,
        and `consume=False` makes one that only starts runs and waits for them. Without it,
        this process runs its runs itself (embedded)."""
        from legion.engine.runtime import Engine

        transport = None
        if self.settings.amqp_url:
            if not os.environ.get("LEGION_SECRET_TOKEN_KEY"):
                raise ConfigError(
                    "LEGION_AMQP_URL is set, so steps run in other processes, on other hosts, but LEGION_SECRET_TOKEN_KEY "
                    "is not: every process of a deployment must sign `secret()` references with the same key. Set "
                    "LEGION_SECRET_TOKEN_KEY (a value, env://NAME or vault://path#key) alike in every process.")
            from legion.engine.transport.amqp import AmqpTransport

            transport = AmqpTransport(self.settings.amqp_url, name=f"legion {self.settings.node}:{os.getpid()}")
        else:
            consume = True  # embedded: nobody else would run this process's runs
        signals = None
        if self.settings.redis_url and transport is not None:
            from legion.engine.signals import RedisSignals

            signals = RedisSignals(self.settings.redis_url)
        self.store.sync_registry(registry_rows(self.registry))
        engine = Engine(self.registry, self.store, workers=workers or self.settings.workers, node=self.settings.node,
                        transport=transport, consume=consume, lease=self.settings.step_lease, signals=signals)
        engine.refresh_events()
        return engine

    def request(self, run_id: str, kind: str) -> None:
        """Ask whichever process carries a run on to cancel, pause or resume it: on RabbitMQ, a
        control message (any worker takes it); embedded, a request the process holding the
        run reads within half a second."""
        from legion.engine.transport import Message

        message = Message(run_id, kind=kind)
        if self.settings.amqp_url:
            from legion.engine.transport.amqp import AmqpTransport

            transport = AmqpTransport(self.settings.amqp_url, name=f"legion {self.settings.node}:{os.getpid()}")
            try:
                transport.publish([message])
            finally:
                transport.close()
        else:
            self.store.request(message.to_dict())

    # -- chains ----------------------------------------------------------------------------

    def applied_names(self) -> list[str]:
        return [c["name"] for c in self.store.list_chains()]

    def load_chains(self, *, paths: list[str] | None = None, text: str | None = None,
                    known: list[str] | None = None) -> tuple[list[ChainFile], list[Issue]]:
        """Validated chains, from files (`paths`) or YAML text; ValidationFailed with every
        issue otherwise. `known`: the chains a `run: chain:<name>` may name besides these
        (the applied ones when not given)."""
        known = self.applied_names() if known is None else known
        if text is not None:
            from legion.engine.chains import load_chain_text

            return load_chain_text(text, self.registry, known)
        from legion.engine.chains import chain_paths, load_chains
        from legion.engine.yamlfiles import YamlFiles

        loaded = YamlFiles()  # each file is read and parsed once for the whole operation
        files = unique_paths(chain_paths(paths or [], loaded))
        if not files:
            raise BadInput(f"no chain files (YAML with top-level `chain` and `steps`) in {', '.join(paths or [])}")
        return load_chains(files, self.registry, known, loaded)

    def validate_chains(self, *, paths: list[str] | None = None, text: str | None = None) -> dict[str, Any]:
        """{valid, chains: [{chain, file}], warnings}; ValidationFailed with the issues. The
        applied chains count as known when there is a database to ask (none is created)."""
        store = self.existing_store()
        known = [c["name"] for c in store.list_chains()] if store is not None else []
        files, issues = self.load_chains(paths=paths, text=text, known=known)
        return {"valid": True, "chains": [{"chain": f.chain.chain, "file": str(f.path)} for f in files],
                "warnings": [i.to_dict() for i in issues]}

    def plan_chains(self, *, paths: list[str] | None = None, text: str | None = None) -> dict[str, Any]:
        """What applying would do: {plans (relationships and topology per chain), diff (each
        chain created, updated or unchanged), warnings, broker (on RabbitMQ: objects to
        declare, change and remove)}."""
        from legion.engine.chains import apply_items

        files, issues = self.load_chains(paths=paths, text=text)
        data: dict[str, Any] = {"plans": [dict(f.plan.to_dict(), file=str(f.path)) for f in files],
                                "diff": self.store.plan_diff(apply_items(files)), "warnings": [i.to_dict() for i in issues]}
        if self.settings.amqp_url:
            from legion.engine.transport.admin import broker_diff

            data["broker"] = broker_diff(self.settings.amqp_url, topology_of(files), self._unused_topology(files))
        return data

    def apply_chains(self, *, paths: list[str] | None = None, text: str | None = None, prune: bool = False) -> dict[str, Any]:
        """Apply chains (and, on RabbitMQ, declare what they need there first): {applied:
        [{action, name, version}], warnings}. Nothing is applied when any chain is broken."""
        from legion.engine.chains import apply_items

        files, issues = self.load_chains(paths=paths, text=text)
        if self.settings.amqp_url:  # the broker first: a chain applied is one whose steps can be published
            from legion.engine.transport import control_topology
            from legion.engine.transport.amqp import AmqpTransport

            transport = AmqpTransport(self.settings.amqp_url, name="legion chain apply")
            try:
                transport.declare(topology_of(files).merge(control_topology()))
            finally:
                transport.close()
        report = self.store.apply_chains(apply_items(files), prune=prune)
        return {"applied": report, "warnings": [i.to_dict() for i in issues]}

    def _unused_topology(self, files: list[ChainFile]) -> Any:
        """The queues the applied chains use that no chain needs once `files` are applied
        (their new versions replace the applied ones of the same names; the others stay)."""
        from legion.dsl.compile import Topology, compile_chain
        from legion.dsl.model import Chain

        replaced = {f.chain.chain for f in files}
        before, after = Topology(), topology_of(files)
        for row in self.store.list_chains():
            try:
                topology = compile_chain(Chain.model_validate(self.store.get_chain(row["name"])["definition"])).topology
            except LegionError:  # deleted, or no longer compiles here: nothing it needs counts
                continue
            before = before.merge(topology)
            if row["name"] not in replaced:
                after = after.merge(topology)
        needed = {q.name for q in after.queues}
        return Topology(queues=tuple(q for q in before.queues if q.name not in needed))

    def test_chain(self, text: str, rehearsal: str) -> dict[str, Any]:
        """Rehearse a chain given as YAML text: `rehearsal` is a rehearsal's YAML (`input`,
        `mocks`, `expect`; its `chain` is this chain unless it names another). {passed,
        failures, issues, run: {status, sequence, output, error}}: what `legion chain test`
        reports for one rehearsal file."""
        import tempfile

        from legion.engine.rehearsal import run_rehearsal

        with tempfile.TemporaryDirectory(prefix="legion-rehearsal-") as folder:
            Path(folder, "chain.yaml").write_text(text, encoding="utf-8")
            path = Path(folder, "rehearsal.test.yaml")
            path.write_text(rehearsal if _names_chain(rehearsal) is not False else rehearsal.rstrip("\n") + "\nchain: chain.yaml\n",
                            encoding="utf-8")
            report = run_rehearsal(path, self.registry).to_dict()
        report.pop("file", None)
        for issue in report["issues"]:
            issue["file"] = {"chain.yaml": "<chain>", "rehearsal.test.yaml": "<rehearsal>"}.get(Path(issue["file"] or "").name, issue["file"])
        return report

    def list_chains(self) -> list[dict[str, Any]]:
        return list(self.store.list_chains())

    def get_chain(self, name: str, version: int | None = None, *, plan: bool = False) -> dict[str, Any]:
        """An applied chain (its current version, or `version`): name, version, source,
        definition...; with `plan`, also what it compiles to (relationships, topology)."""
        record = dict(self.store.get_chain_version(name, version) if version else self.store.get_chain(name))
        if plan:
            from legion.dsl.compile import compile_chain
            from legion.dsl.model import Chain

            record["plan"] = compile_chain(Chain.model_validate(record["definition"])).to_dict()
        return record

    def chain_versions(self, name: str) -> list[dict[str, Any]]:
        return list(self.store.chain_history(name))

    def delete_chain(self, name: str) -> dict[str, Any]:
        self.store.delete_chain(name)
        return {"deleted": name}

    def chain_graph(self, name: str, fmt: str = "mermaid", *, path: str | None = None) -> dict[str, Any]:
        """An applied chain (or the chain in the file `path`) drawn as Mermaid, DOT or SVG."""
        from legion.dsl.model import Chain
        from legion.engine.chains import graph

        if path is not None:
            files, _ = self.load_chains(paths=[path])
            chain = files[0].chain
        else:
            chain = Chain.model_validate(self.store.get_chain(name)["definition"])
        return {"chain": chain.chain, "format": fmt, "graph": graph(chain, fmt)}

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, chain: str, input: dict[str, Any] | None = None, *, wait: bool = False, timeout: float | None = None,
                  listener: Callable[[dict[str, Any]], None] | None = None,
                  started: Callable[[str], None] | None = None, agent: str | None = None) -> dict[str, Any]:
        """Start a run of an applied chain: the run (`get_run`), once it ended when `wait`.
        `agent`: the agent whose state its functions keep (the default agent when None).
        BadInput, before any run exists, when the input does not fit the chain's schema.
        Embedded, the run happens in this process, so it is always waited for. A run that
        does not end within `timeout` is canceled, and LegionError says so."""
        with self._engine_for_call() as engine:  # embedded, the run happens in this process all the same
            program = engine.program(chain)  # NotFound before anything starts; the one read of the chain
            payload = dict(input or {})
            check_input(program, payload)
            run_id = engine.start_program(program, payload, listener=listener, agent=check_agent_name(agent))
            if started is not None:
                started(run_id)
            if wait or (not engine.shared and self._engine is None):
                self._wait(engine, run_id, timeout)
        return self.get_run(run_id)

    def _wait(self, engine: Engine, run_id: str, timeout: float | None) -> None:
        try:
            engine.wait(run_id, timeout)
        except TimeoutError:
            reason = f"the run did not end within {timeout:g}s"
            engine.cancel(run_id, reason)
            try:
                engine.wait(run_id, 5.0)  # the cancel is recorded before the engine stops
            except TimeoutError:
                pass
            raise RunTimeout(f"run {run_id} did not end within {timeout:g}s, so it was canceled "
                              f"(see `legion run show {run_id}`; give a longer timeout to let it finish)",
                              details={"run_id": run_id, "timeout": timeout}) from None

    def resolve_run(self, text: str) -> str:
        """The id of the one run whose id is `text` or starts with it (4 characters or more)."""
        from legion.engine.ids import resolve_run

        return resolve_run(self.store, text)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run with its task rows (`tasks`) and `trace`: the steps of the step runs that
        began, in order."""
        run_id = self.resolve_run(run_id)
        tasks = self.store.run_tasks(run_id)
        run = dict(self.store.get_run(run_id), tasks=tasks, trace=[t["step"] for t in tasks if t.get("started_at") and t.get("caller") is None])
        usage = model_usage(tasks)
        if usage is not None:
            run["usage"] = usage
        return run

    def list_runs(self, *, chain: str | None = None, status: str | None = None, limit: int = 50,
                  after: tuple[Any, str] | None = None) -> list[dict[str, Any]]:
        """Newest first; `after`: the created_at and id of the last run of the page before."""
        return list(self.store.list_runs(chain=chain, status=status, limit=limit, after=after))

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        run_id = self.resolve_run(run_id)
        error = {"type": "Canceled", "message": "canceled by request", "step": None}
        # Conditional: only a run still pending or running is marked, so a run that ends at the
        # same moment keeps its real outcome. The process running it notices and stops it.
        if not self.store.cancel_run(run_id, error):
            raise BadInput(f"run {run_id} already ended ({self.store.get_run(run_id)['status']}); nothing to cancel",
                           details={"run_id": run_id})
        self.request(run_id, "cancel")
        return {"canceled": run_id}

    def pause_run(self, run_id: str) -> dict[str, Any]:
        return self._run_request(run_id, "pause")

    def resume_run(self, run_id: str) -> dict[str, Any]:
        return self._run_request(run_id, "resume")

    def _run_request(self, run_id: str, kind: str) -> dict[str, Any]:
        run_id = self.resolve_run(run_id)
        statuses = RUN_REQUESTS[kind]
        status = self.store.get_run(run_id)["status"]
        if status not in statuses:
            raise BadInput(f"run {run_id} is {status}; only a run that is {' or '.join(statuses)} can be {kind}d",
                           details={"run_id": run_id, "status": status})
        self.request(run_id, kind)
        return {kind + "d": run_id}

    def retry_run(self, run_id: str, *, wait: bool = False, timeout: float | None = None) -> dict[str, Any]:
        """Run a failed or canceled run again from its failed step runs, keeping what
        succeeded. Embedded, the run goes on in this process (nobody else holds an ended
        run), so it is waited for; on RabbitMQ, any worker carries it on."""
        run_id = self.resolve_run(run_id)
        run = self.store.get_run(run_id)
        if run["status"] not in ("failed", "canceled"):
            raise BadInput(f"run {run_id} is {run['status']}; only a failed or canceled run can be retried",
                           details={"run_id": run_id, "status": run["status"]})
        with self._engine_for_call() as engine:
            if not engine.retry(run_id):
                raise BadInput(f"run {run_id} has no step run to start again (it was written before runs kept their state, "
                               f"or it failed at a `fail` target or before any step began); run the chain again instead",
                               details={"run_id": run_id})
            if wait or (not engine.shared and self._engine is None):
                try:
                    engine.wait(run_id, timeout)
                except TimeoutError:
                    raise RunTimeout(f"run {run_id} did not end within {timeout:g}s (it goes on: `legion run show {run_id}`)",
                                      details={"run_id": run_id, "timeout": timeout}) from None
        return self.get_run(run_id)

    # -- tasks -----------------------------------------------------------------------------

    def run_task(self, function: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one function now, as a one-step run: its task row (status, result, error)."""
        _ = self.registry.function(function).spec  # NotFound (or a broken extension) before anything starts
        with self._engine_for_call(1) as engine:
            run_id = engine.run_task(function, dict(args or {}))
            engine.wait(run_id)
        tasks = self.store.run_tasks(run_id)
        if not tasks:  # the run ended before its one task was recorded
            run = self.store.get_run(run_id)
            error = run.get("error") or {}
            detail = f": {error.get('type')}: {error.get('message')}" if error else ""
            raise LegionError(f"run {run_id} of {function} recorded no task; it ended {run['status']}{detail}",
                              details={"run_id": run_id, "status": run["status"], "error": run.get("error")})
        return dict(tasks[0])

    def list_tasks(self, *, run_id: str | None = None, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        run_id = self.resolve_run(run_id) if run_id is not None else None
        return list(self.store.list_tasks(run_id=run_id, status=status, limit=limit))

    def get_task(self, ref: int | tuple[str, int]) -> dict[str, Any]:
        """A task by id, or by (run id or prefix, step run number)."""
        from legion.engine.ids import resolve_task

        return resolve_task(self.store, ref)

    def task_logs(self, ref: int | tuple[str, int]) -> list[dict[str, Any]]:
        return list(self.store.task_logs(self.get_task(ref)["id"]))

    # -- functions -------------------------------------------------------------------------

    def list_extensions(self, *, exposed: bool = False) -> list[dict[str, Any]]:
        """The installed extensions with their runners and functions (argument schemas
        included), then those that failed to load, saying why. `exposed`: without the
        functions declared `expose=False`."""
        rows = registry_rows(self.registry)
        if exposed:
            rows = [dict(ext, runners=[dict(r, functions=[f for f in r["functions"] if f["expose"]]) for r in ext["runners"]])
                    for ext in rows]
        return rows + broken_rows(self.registry)

    def list_functions(self, *, exposed: bool = False) -> list[dict[str, Any]]:
        """Every function of the installed extensions (`exposed`: only those not declared
        `expose=False`, which agents never see)."""
        found = [function_row(f) for f in self.registry.functions.values()]
        return [f for f in found if f["expose"]] if exposed else found

    def describe_function(self, ref: str, *, exposed: bool = False) -> dict[str, Any]:
        row = function_row(self.registry.function(ref))
        if exposed and not row["expose"]:
            raise NotFound(f"There is no function {ref!r} (`legion lex list` shows the installed ones).")
        return row

    # -- the deployment --------------------------------------------------------------------

    def list_schedules(self) -> list[dict[str, Any]]:
        return list(self.store.list_schedules())

    # -- the broker ------------------------------------------------------------------------

    def _amqp(self) -> str:
        if not self.settings.amqp_url:
            raise NotConfigured("LEGION_AMQP_URL is not set: Legion runs embedded, with no broker (set it to a RabbitMQ URL, "
                                "e.g. amqp://guest:guest@127.0.0.1:5672/%2F)")
        return str(self.settings.amqp_url)

    def _queues(self) -> list[str]:
        """Legion's queues: each runner's (of every extension any node registered, and this
        one's), with its dead-letter queue, and the control and wait queues. (The broker lists
        them itself only through its management API.)"""
        from legion.engine.transport.admin import fixed_queues

        runners = {f"lex.{ext['name']}.{r['name']}" for ext in self.store.list_extensions() for r in ext.get("runners", [])}
        runners |= {f"lex.{r.extension}.{r.name}" for r in self.registry.runners.values()}
        return sorted(runners | {q + ".dlq" for q in runners} | set(fixed_queues()))

    def broker_status(self) -> dict[str, Any]:
        """Legion's queues on RabbitMQ: depths, consumers, rates (ConfigError when embedded)."""
        from legion.engine.transport.admin import broker_status

        return broker_status(self._amqp(), self._queues())

    def list_dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        from legion.engine.transport.admin import dlq_list

        return dlq_list(self._amqp(), limit, queues=self._queues())

    def get_dead_letter(self, letter_id: str) -> dict[str, Any]:
        from legion.engine.transport.admin import dlq_show

        return dlq_show(self._amqp(), letter_id, queues=self._queues())

    def replay_dead_letter(self, letter_id: str) -> dict[str, Any]:
        """A dead message of a run that has ended (failed because its step stopped its workers
        again and again, say) retries the run, from its failed step runs (`retried`: its id);
        any other is published again as it was. Either way it leaves the dead-letter queue."""
        from legion.engine.transport.admin import dlq_replay, dlq_show

        url, queues = self._amqp(), self._queues()
        message = dlq_show(url, letter_id, queues=queues).get("message")
        run = None
        if isinstance(message, dict) and message.get("run_id"):
            try:
                run = self.store.get_run(str(message["run_id"]))
            except LegionError:
                run = None
        replayed = dlq_replay(url, letter_id, queues=queues)  # a step run that has ended drops the copy when it is taken
        if run is not None and run["status"] in ("failed", "canceled"):
            self.request(run["id"], "retry")
            return dict(replayed, retried=run["id"])
        return dict(replayed)

    def purge_dead_letters(self, queue: str | None = None) -> dict[str, Any]:
        from legion.engine.transport.admin import dlq_purge

        return {"purged": dlq_purge(self._amqp(), queue, queues=self._queues())}

    def metrics(self) -> dict[str, Any]:
        """What `/metrics` shows: runs and step runs by status, step-run durations (a
        cumulative histogram), live workers by role, and (on RabbitMQ) queue depths."""
        found: dict[str, Any] = dict(self.store.counts_by_status(), durations=self.store.step_durations())
        workers: dict[str, int] = {}
        for node in self.list_nodes():
            if node["state"] == "up":
                workers[node["role"] or "all"] = workers.get(node["role"] or "all", 0) + 1
        found["workers"] = workers
        found["queues"] = self.broker_status()["queues"] if self.settings.amqp_url else []
        return found

    def list_secrets(self) -> dict[str, Any]:
        """The secret store (Vault when VAULT_ADDR is set, else the embedded one): its kind
        and location, and each path with its keys. Never a value."""
        from legion.engine.secrets import store_from_env
        from legion.engine.settings import check_environment

        check_environment()
        store = store_from_env()
        return {"store": store.kind, "location": store.describe(), "secrets": store.list()}

    def changes_since(self, after: datetime) -> list[dict[str, Any]]:
        """Run and step events after `after`, from the database (every process's runs)."""
        return list(self.store.changes_since(after))

    def ready(self) -> dict[str, Any]:
        """Whether the database answers (ServiceUnavailable when it does not)."""
        self.store.list_chains()
        return {"status": "ready"}

    def list_nodes(self) -> list[dict[str, Any]]:
        """The processes that ran Legion here: `up`, `lost` (no heartbeat for a while: dead or
        cut off) or `stopped`, with their role, runners and steps in flight; with Redis,
        what they say there, every second."""
        now = datetime.now(UTC)
        live = None  # with Redis: the nodes alive now, and what they say
        if self.settings.redis_url:
            from legion.engine.signals import RedisSignals

            presence = RedisSignals(self.settings.redis_url)
            try:
                live = presence.alive()
            finally:
                presence.close()
        nodes = []
        for row in self.store.list_nodes():
            info = row.get("info") or {}
            age = (now - row["heartbeat_at"]).total_seconds()
            state = "stopped" if row["status"] == "stopped" else "up" if age <= LIVE_WITHIN else "lost"
            if live is not None and state != "stopped":
                state = "up" if row["name"] in live else "lost"
                info = live.get(row["name"], info)
            nodes.append({"name": row["name"], "host": row["hostname"], "pid": row["pid"], "state": state,
                          "role": info.get("role"), "transport": info.get("transport"), "concurrency": info.get("concurrency"),
                          "in_flight": info.get("in_flight"), "runners": info.get("runners") or [],
                          "heartbeat_age_s": round(age, 1), "started_at": row["started_at"]})
        nodes.sort(key=lambda n: (n["state"] != "up", n["name"]))
        return nodes


MODEL_EXTENSIONS = ("llm", "claude", "openai", "gemini")  # whose results carry `usage`


def model_usage(tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the run's language-model calls (the tasks of the model extensions, whose results
    carry `usage`) took, summed: calls, tokens in and out, cost (null when a price is
    unknown), latency."""
    found = [t["result"]["usage"] for t in tasks if t.get("function", "").split(".", 1)[0] in MODEL_EXTENSIONS
             and isinstance(t.get("result"), dict) and isinstance(t["result"].get("usage"), dict)]
    if not found:
        return None
    costs = [u.get("cost") for u in found]
    return {"calls": len(found), "prompt_tokens": sum(int(u.get("prompt_tokens") or 0) for u in found),
            "completion_tokens": sum(int(u.get("completion_tokens") or 0) for u in found),
            "cost": None if any(c is None for c in costs) else sum(float(c) for c in costs),
            "latency_ms": round(sum(float(u.get("latency_ms") or 0) for u in found), 3)}


def _names_chain(rehearsal: str) -> bool | None:
    """Whether a rehearsal's YAML has a top-level `chain` (read as YAML: a key in a comment
    or a nested mapping does not count); None when it does not load (left as it is, for the
    rehearsal's own checks to place what is wrong)."""
    from legion.dsl.loader import load_text

    try:
        data = load_text(rehearsal, "<rehearsal>").data
    except LegionError:
        return None
    return isinstance(data, dict) and "chain" in data


def installed_version() -> str:
    """The installed Legion's version (what the API and the MCP server say they are)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("legion")
    except PackageNotFoundError:
        return "0"


def unique_paths(paths: list[Path]) -> list[Path]:
    """Each file once (a file named and also found under a named folder is one file)."""
    seen: set[Path] = set()
    files = []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)
    return files


def topology_of(files: list[ChainFile]) -> Any:
    """The broker objects the chains' plans need, each once."""
    from legion.dsl.compile import Topology

    topology = Topology()
    for f in files:
        topology = topology.merge(f.plan.topology)
    return topology


def check_input(program: Any, payload: dict[str, Any]) -> None:
    """BadInput, before any run exists, when `payload` does not fit the chain's `input`
    schema: the first problem in the message (its place in the input, and what is wrong),
    every problem in the details."""
    validator = program.input_validator
    if validator is None:
        return
    found = sorted(({"path": _where(e), "message": e.message} for e in validator.iter_errors(payload)),
                   key=lambda p: p["path"].split("/"))
    if not found:
        return
    first = found[0]
    raise BadInput(f"run input of chain {program.name!r} does not fit its input schema at {first['path']}: {first['message']} "
                   f"(`legion chain show {program.name}` shows the schema)",
                   details={"chain": program.name, "problems": found})


def _where(error: Any) -> str:
    """Where in the input a jsonschema error is, as `a/b/0`: for a missing required property,
    the property itself; `input` for the input as a whole."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        # One error per missing property, which only its message names.
        missing = next((k for k in error.validator_value if k not in error.instance and repr(k) in error.message), None)
        if missing is not None:
            path.append(str(missing))
    return "/".join(path) or "input"


def registry_rows(registry: Any) -> list[dict[str, Any]]:
    """The extensions that loaded, with their runners and functions (what `store.sync_registry`
    records and `legion lex list` shows)."""
    rows = []
    for ext in registry.extensions.values():
        runners = [r for r in registry.runners.values() if r.extension == ext.name]
        rows.append({
            "name": ext.name, "status": "ok", "description": ext.description, "version": ext.version,
            "runners": [{
                "name": r.name, "module": r.module, "queue": r.queue, "description": r.description,
                "functions": [function_row(f) for f in r.functions],
            } for r in runners],
        })
    return rows


def function_row(function: Any) -> dict[str, Any]:
    """A function with its parameters and declared options. One whose signature cannot be
    read keeps its row, with the `error` (calling it fails the same way)."""
    actor = function.actor
    row: dict[str, Any] = {"name": function.name, "ref": function.ref,
                           "actor": {"kind": actor.kind, "interval": actor.interval, "delay": actor.delay}}
    try:
        spec = function.spec
    except LegionError as exc:
        return row | {"args_schema": None, "description": None, "params": [], "returns": {}, "timeout": None,
                      "retry": None, "expose": True, "error": exc.message}
    params = [{"name": p.name, "type": _type(p.schema), "schema": p.schema, "required": p.required,
               "default": None if p.required else p.schema.get("default"), "description": p.description}
              for p in spec.params]
    return row | {"args_schema": spec.args_schema(), "description": spec.description, "params": params,
                  "returns": spec.returns, "timeout": spec.timeout, "retry": None if spec.retry is None else dict(spec.retry),
                  "expose": spec.expose, "error": None}


def broken_rows(registry: Any) -> list[dict[str, Any]]:
    """The installed extensions that failed to load: what went wrong and what to do."""
    return [{"name": b.name, "status": "broken", "description": None, "version": None, "entry_point": b.entry_point,
             "error": b.error, "hint": b.hint, "traceback": b.traceback, "runners": []}
            for b in registry.broken.values()]


def _type(schema: dict[str, Any]) -> str:
    """A parameter's JSON Schema in a word or two: `string`, `integer|null`, `"a"|"b"`."""
    import json

    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return "|".join(_type(s) for s in schema[key])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(map(str, kind))
    if kind == "array" and isinstance(schema.get("items"), dict) and schema["items"]:
        return f"array[{_type(schema['items'])}]"
    return str(kind) if kind else "any"
