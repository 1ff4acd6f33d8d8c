"""The extension SDK: what an extension package declares, the options a function declares,
and the run context a function may ask for. Extension authors import these from
`legion.sdk`, the stable surface; this module may move.

An extension is a package that exposes an `Extension` object through the `legion.extensions`
entry-point group; its runners are modules of plain (sync or async) functions. Type hints on
a function are its argument schema (see `legion.engine.signature`).

    # my_ext/__init__.py
    from legion.sdk import Extension
    from my_ext.runners import tickets
    extension = Extension("tickets", runners=[tickets], description="Ticket desk")
"""

from __future__ import annotations

import logging
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, overload

from legion.dsl.catalog import FunctionSpec
from legion.dsl.durations import parse_duration
from legion.engine.agentstate import DEFAULT_AGENT
from legion.engine.errors import StepError

if TYPE_CHECKING:
    from legion.engine.agentstate import AgentState
    from legion.engine.signature import Signature

ACTOR_KINDS = ("subscription", "every", "poll", "once", "loop")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Actor:
    """How a function is run besides on demand (LegionIO's actor kinds).

    `subscription` (the default): on its runner queue, when a step or task asks for it.
    `every`: every `interval` seconds. `poll`: every `interval` seconds, firing its trigger
    (on.events) only when the result differs from the last one. `once`: once, `delay` seconds
    after start. `loop`: again as soon as it returns.
    """

    kind: str = "subscription"
    interval: float = 0.0
    delay: float = 0.0
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind {self.kind!r} is not one of {', '.join(ACTOR_KINDS)}")


def every(interval: str | float, **args: Any) -> Callable[[F], F]:
    return _actor(Actor("every", interval=parse_duration(interval), args=args))


def poll(interval: str | float, **args: Any) -> Callable[[F], F]:
    return _actor(Actor("poll", interval=parse_duration(interval), args=args))


def once(delay: str | float = 1.0, **args: Any) -> Callable[[F], F]:
    return _actor(Actor("once", delay=parse_duration(delay), args=args))


def loop(**args: Any) -> Callable[[F], F]:
    return _actor(Actor("loop", args=args))


def _actor(actor: Actor) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        fn.__legion_actor__ = actor  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True)
class Options:
    """What `@function(...)` declares. `timeout` and `retry` are defaults that a chain's step
    overrides with its own; `expose=False` keeps the function off the REST API and the MCP
    tools (chains and the CLI may still call it)."""

    description: str | None = None
    timeout: float | None = None
    retry: Mapping[str, Any] | None = None
    expose: bool = True


@overload
def function(fn: F, /) -> F: ...
@overload
def function(*, description: str | None = None, timeout: str | float | None = None,
             retry: int | Mapping[str, Any] | None = None, expose: bool = True) -> Callable[[F], F]: ...


def function(fn: Callable[..., Any] | None = None, /, *, description: str | None = None, timeout: str | float | None = None,
             retry: int | Mapping[str, Any] | None = None, expose: bool = True) -> Any:
    """Declare a runner function's options; optional (undecorated functions are callable too).

        @function(timeout="30s", retry={"count": 3, "delay": "2s"}, expose=False)
        def sync(account: str) -> dict: ...

    `retry` is a count of retries or a mapping in the shape of a step's `retry`.
    """
    seconds = None if timeout is None else parse_duration(timeout)
    if seconds is not None and seconds <= 0:
        raise ValueError(f"timeout must be positive, not {timeout!r}")
    policy = _retry_policy(retry)
    options = Options(description, seconds, policy, expose)

    def mark(f: F) -> F:
        f.__legion_options__ = options  # type: ignore[attr-defined]
        return f

    return mark(fn) if fn is not None else mark


def _retry_policy(retry: int | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if retry is None:
        return None
    policy = {"count": retry} if isinstance(retry, int) and not isinstance(retry, bool) else retry
    if not isinstance(policy, Mapping):
        raise ValueError(f"retry must be a count or a mapping like {{'count': 3, 'delay': '2s'}}, not {retry!r}")
    from pydantic import ValidationError

    from legion.dsl.model import Retry

    try:
        Retry.model_validate(policy)
    except ValidationError as exc:
        raise ValueError(f"retry {dict(policy)!r}: {exc.errors(include_url=False)[0]['msg']}") from None
    return dict(policy)


@dataclass(frozen=True)
class Extension:
    """What an extension package exports as `extension`."""

    name: str
    runners: Sequence[types.ModuleType] = ()
    description: str | None = None
    version: str | None = None


class Canceled(StepError):
    """Raised by `Context.heartbeat()` once the step run was canceled or timed out."""

    type = "Canceled"


class Context:
    """What a running step knows about itself. A function receives one when it declares a
    parameter annotated `Context` (the parameter is not an argument of the chain):

        def sync(account: str, ctx: Context) -> dict:
            ctx.log.info("syncing %s (attempt %d)", account, ctx.attempt)
            for page in pages(account):
                ctx.heartbeat()            # raises Canceled once the run is canceled
                ...

    `log` records become the task's log entries (`legion task logs`); `canceled` turns true
    when the run is canceled or the step times out; `wait(seconds)` sleeps unless canceled;
    `secret("path#key")` reads a secret (masked in records from then on); `call(function,
    args)` runs another function as a task of the run, recorded under this step.
    """

    __slots__ = ("run_id", "chain", "step", "number", "attempt", "function", "index", "agent",
                 "_canceled", "_event", "_task_id", "_resolver", "_beat", "_on_cancel", "_caller", "_registry", "_clock", "_states")

    def __init__(self, *, run_id: str, chain: str, step: str, number: int, attempt: int, function: str,
                 index: int | None = None, task_id: Callable[[], int | None] | None = None,
                 resolver: Any = None, beat: Callable[[], None] | None = None,
                 caller: Callable[[Context, str, dict[str, Any]], Any] | None = None, registry: Any = None,
                 agent: str | None = None, clock: Callable[[], float] | None = None, states: Any = None) -> None:
        self.run_id = run_id
        self.chain = chain
        self.step = step
        self.number = number  # the step run's number within its run
        self.attempt = attempt
        self.function = function
        self.index = index  # the for_each item's index, None outside a for_each
        self._canceled = False
        self._event: threading.Event | None = None  # made on first wait(): most steps never wait
        self._task_id = task_id
        self._resolver = resolver
        self._beat = beat
        self._on_cancel: list[Callable[[], Any]] = []
        self._caller = caller  # the engine's: runs a called function as a task of the run
        self._registry = registry  # the engine's functions (else the installed extensions')
        self.agent = agent or DEFAULT_AGENT  # whose state this is (the run's agent)
        self._clock = clock  # the run's clock: the virtual one in rehearsals
        self._states = states  # the engine's AgentStates

    def now(self) -> datetime:
        """The time now on the run's clock (UTC): the virtual clock in a rehearsal, the time
        given to `legion.sdk.call(now=...)`. Use it, never the wall clock, for anything kept."""
        return datetime.fromtimestamp(self._clock() if self._clock is not None else time.time(), UTC)

    @property
    def state(self) -> AgentState:
        """What this function's extension keeps for `agent` (see legion.engine.agentstate):
        documents by kind and key, sealed with the agent's key."""
        if self._states is None:
            raise StepError(f"{self.function} keeps agent state, which needs a database: run it in a chain, or through "
                            "legion.sdk.call", type="StateUnavailable")
        return self._states.of(self.agent, self.function.split(".", 1)[0])  # type: ignore[no-any-return]

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"legion.ext.{self.function}")

    @property
    def task_id(self) -> int | None:
        """The task's id in the database (`legion task show ID`); None where nothing is recorded."""
        return self._task_id() if self._task_id is not None else None

    @property
    def canceled(self) -> bool:
        return self._canceled

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True as soon as the step run is canceled."""
        if self._event is None:
            self._event = threading.Event()
        if self._canceled:  # canceled before the event existed
            self._event.set()
        return self._event.wait(seconds)

    def heartbeat(self) -> None:
        """Say the step is alive and making progress; raise Canceled once it was canceled."""
        if self._canceled:
            raise Canceled(f"step {self.step!r} of run {self.run_id} was canceled")
        if self._beat is not None:
            self._beat()

    def secret(self, reference: str) -> Any:
        """The secret at `path#key` (Vault, or the embedded store)."""
        if self._resolver is None:
            from legion.engine.secrets import Resolver

            self._resolver = Resolver()
        return self._resolver.get(reference)

    def agents(self) -> list[str]:
        """The names of the agents on record (`legion agent list`) that were not erased: what a
        scheduled chain fans out over, one sub-chain run per agent (a step's `agent:`)."""
        if self._states is None:
            raise StepError("listing agents needs the database: run it in a chain, or through legion.sdk.call",
                            type="StateUnavailable")
        return list(self._states.agents())

    def erase_agent(self) -> int:
        """Erase everything every extension keeps for `agent`: its key is deleted from the
        secret store first (so no copy of its documents can be read again), then its
        documents, then its finished runs. The number of documents deleted. (privatecore's and
        extinction's erasure.)"""
        if self._states is None:
            raise StepError("erasing an agent needs its database: run it in a chain, or through legion.sdk.call",
                            type="StateUnavailable")
        return int(self._states.erase(self.agent))

    def describe(self, function: str) -> dict[str, Any]:
        """What `call` can call: {ref, description, args_schema (JSON Schema)}; StepError
        `UnknownFunction` when no such function is installed."""
        found = self._functions().get(function)
        if found is None:
            raise StepError(f"no function {function!r} is installed: `legion function list` shows what is", type="UnknownFunction")
        spec = found.spec
        return {"ref": function, "description": spec.description, "args_schema": spec.args_schema()}

    def _functions(self) -> Mapping[str, Any]:
        if self._registry is None:
            from legion.engine.registry import Registry

            self._registry = Registry.installed()
        return self._registry.functions  # type: ignore[no-any-return]

    def call(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run the installed function `function` (e.g. "http.request.get") with `args` and
        return its result; raise StepError with its error's type and message when it fails.

        In a run it is a task of the run with a number of its own, recorded under this step
        run (`legion run show`, `legion task list`; its `caller` is this step run's number),
        and it runs here, in this step's worker, so a step that waits on it never waits for a
        free worker. Canceling this step run cancels it. Its arguments are taken as they are
        (a `secret()` in them is not read: a called function's arguments may come from a
        model). Outside a run it is simply called."""
        return result_of((self._caller or _call_here)(self, function, dict(args or {})), function)

    def cancel(self) -> None:
        """Called by the engine: the run was canceled or the step timed out."""
        self._canceled = True
        if self._event is not None:
            self._event.set()
        for action in self._on_cancel:
            action()

    def on_cancel(self, action: Callable[[], Any]) -> None:
        """Called by the engine: `action` runs when the step run is canceled."""
        self._on_cancel.append(action)
        if self._canceled:
            action()

    def __repr__(self) -> str:
        return f"Context(run={self.run_id!r}, chain={self.chain!r}, step={self.step!r}, attempt={self.attempt})"


def _call_here(parent: Context, ref: str, args: dict[str, Any]) -> Any:
    """`Context.call` outside an engine: the function, found in the installed extensions, is
    called with a context of its own that the caller's cancel reaches."""
    from legion.engine import invoke

    function = parent._functions().get(ref)
    if function is None:
        return invoke.failure("UnknownFunction", f"{parent.function or 'a step'} called {ref!r}, which is not installed: "
                                                 "`legion function list` shows what is")
    child = Context(run_id=parent.run_id, chain=parent.chain, step=parent.step, number=0, attempt=1, function=ref,
                    resolver=parent._resolver, registry=parent._registry, agent=parent.agent, clock=parent._clock,
                    states=parent._states)
    parent.on_cancel(child.cancel)
    return invoke.call(function, args, function.spec.timeout, child)


_states_by_url: dict[str, Any] = {}
_states_lock = threading.Lock()


def call(function: str, args: Mapping[str, Any] | None = None, *, now: datetime | float | None = None,
         agent: str | None = None, database_url: str | None = None) -> Any:
    """Call an installed function outside a chain, as a step calls it: its arguments checked
    against its signature, a `Context` whose clock says `now` (a datetime or epoch seconds;
    the wall clock when None) and whose agent is `agent` (the default agent when None). Its
    agent state is kept in the deployment's database (`database_url`, else
    LEGION_DATABASE_URL, else LEGION_HOME's SQLite), as in a chain. Its result; StepError
    (with the failure's type and message) when it fails.

        legion.sdk.call("trust.trust.get_trust", {"agent_id": "bob"}, now=datetime(2026, 1, 2, tzinfo=UTC), agent="ada")
    """
    from legion.engine.registry import Registry

    found = Registry.installed().functions.get(function)
    if found is None:
        raise StepError(f"no function {function!r} is installed: `legion function list` shows what is", type="UnknownFunction")
    at = now.timestamp() if isinstance(now, datetime) else now
    return call_as(found, args, agent=agent, clock=(lambda: at) if at is not None else None, states=_states(database_url))


def call_as(found: Any, args: Mapping[str, Any] | None, *, agent: str | None, clock: Callable[[], float] | None,
            states: Any, registry: Any = None) -> Any:
    """Call the registry function `found` outside a run, for `agent`, on `clock`, with agent
    state from `states`: its result, or StepError (its failure's type and message)."""
    from legion.engine import invoke

    context = Context(run_id="", chain="", step="", number=0, attempt=1, function=found.ref, agent=agent, clock=clock,
                      states=states, registry=registry)
    return result_of(invoke.call(found, dict(args or {}), found.spec.timeout, context), found.ref)


def result_of(outcome: Any, function: str) -> Any:
    """A call's outcome as a function sees it: the result, or StepError with the failure's type,
    message and the rest of its error as details."""
    if outcome.status != "succeeded":
        error = outcome.error or {}
        raise StepError(str(error.get("message") or f"{function} failed"), type=str(error.get("type") or "StepFailed"),
                        details={k: v for k, v in error.items() if k not in ("type", "message")} or None)
    return outcome.result


def _states(database_url: str | None) -> Any:
    """The AgentStates over the deployment's database, opened once per process and URL."""
    import functools
    import os

    from legion.engine.agentstate import AgentKeys, AgentStates
    from legion.engine.secrets import default_home, store_from_env
    from legion.engine.settings import Settings

    url = database_url or Settings.from_env().database_url
    with _states_lock:
        found = _states_by_url.get(url)
        if found is None:
            def open_store() -> Any:
                from legion.engine.data.store import Store

                default_home(os.environ).mkdir(parents=True, exist_ok=True)
                return Store(url)

            secrets = functools.cache(lambda: store_from_env(os.environ))
            found = _states_by_url[url] = AgentStates(open_store, AgentKeys(secrets))
        return found


def function_spec(ref: str, fn: Callable[..., Any], signature: Signature | None = None) -> FunctionSpec:
    """The FunctionSpec of a runner function: its signature's schema, its declared options,
    and the check that runs at step start."""
    from legion.engine.signature import build_signature

    signature = signature or build_signature(fn, Context)
    options: Options = getattr(fn, "__legion_options__", Options())
    return FunctionSpec(
        ref=ref, params=signature.params, extra_args=signature.extra_args,
        description=options.description or signature.summary, returns=signature.returns,
        timeout=options.timeout, retry=options.retry, expose=options.expose,
        check=lambda name, value: signature.check(ref, name, value),
    )
