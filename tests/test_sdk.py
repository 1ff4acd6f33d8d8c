"""The extension SDK, the registry and the actor host."""

from __future__ import annotations

import sys
import time
import types
from typing import Any, Literal

import pytest

from legion.engine.actors import ActorHost
from legion.engine.errors import ExtensionError, NotFound
from legion.engine.invoke import call
from legion.engine.registry import Registry
from legion.engine.sdk import Actor, Extension, every, function_spec, once, poll


def test_schemas_of_plain_type_hints() -> None:
    def f(a: int, b: list[str], c: dict[str, Any], d: Literal["a", "b"], e: int | None, g: Any) -> None:
        return None

    schemas = {p.name: p.schema for p in function_spec("x.y.f", f).params}
    assert schemas == {
        "a": {"type": "integer"},
        "b": {"type": "array", "items": {"type": "string"}},
        "c": {"type": "object", "additionalProperties": True},
        "d": {"enum": ["a", "b"], "type": "string"},
        "e": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "g": {},
    }


def test_function_spec_reads_the_signature() -> None:
    def f(name: str, count: int = 2, *, tags: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        """Make a thing.

        More words."""
        return {}

    spec = function_spec("x.y.f", f)
    assert [(p.name, p.required) for p in spec.params] == [("name", True), ("count", False), ("tags", False)]
    assert spec.extra_args and spec.description == "Make a thing."
    assert spec.check_args({"count": 1}) == [(None, "x.y.f needs the argument 'name'; add it under `with`")]


def _runner_module(name: str, **functions: Any) -> types.ModuleType:
    module = types.ModuleType(f"fake_ext.runners.{name}")
    for fname, fn in functions.items():
        fn.__module__ = module.__name__
        setattr(module, fname, fn)
    sys.modules[module.__name__] = module
    return module


def test_registry_builds_refs_and_rejects_duplicates() -> None:
    async def shout(text: str) -> str:
        return text.upper()

    def _private() -> None:
        return None

    runner = _runner_module("voice", shout=shout, _private=_private)
    registry = Registry([Extension("fake", runners=[runner])])
    assert list(registry.functions) == ["fake.voice.shout"]
    assert registry.runners["fake.voice"].queue == "lex.fake.voice"
    assert call(registry.function("fake.voice.shout"), {"text": "hi"}).result == "HI"
    with pytest.raises(NotFound):
        registry.function("fake.voice.whisper")
    with pytest.raises(ExtensionError):
        Registry([Extension("fake", runners=[runner]), Extension("fake")])


def test_builtins_register_through_entry_points() -> None:
    registry = Registry.discover()
    assert {"core", "http"} <= set(registry.extensions)
    assert registry.function("core.util.fail").actor == Actor()


def test_actor_decorators_and_validation() -> None:
    @every("2s", a=1)
    def tick() -> None:
        return None

    assert tick.__legion_actor__ == Actor("every", interval=2.0, args={"a": 1})  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        Actor("sometimes")


def test_actor_host_runs_every_once_and_poll(tmp_path: Any) -> None:
    import itertools

    from waiting import wait_until

    from legion.engine.data.store import Store
    from legion.engine.runtime import Engine

    calls: list[str] = []
    readings = itertools.chain([1, 1, 2, 2, 2, 3], itertools.repeat(3))

    @every(0.2)
    def beat() -> str:
        calls.append("beat")
        return "ok"

    @once(0.1)
    def hello() -> str:
        calls.append("once")
        return "hi"

    @poll(0.1)
    def level() -> int:
        return next(readings)

    runner = _runner_module("timers", beat=beat, hello=hello, level=level)
    registry = Registry([Extension("timers", runners=[runner])])
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = Engine(registry, store, workers=2).start()
    fired: list[Any] = []
    engine.fire_event = lambda ref, result, **kw: fired.append((ref, result)) or []  # type: ignore[method-assign]
    host = ActorHost(engine)
    started = time.monotonic()
    host.start()
    try:
        # About a second's worth: time for a `once` that ran again, or a poll that fired on
        # an unchanged reading, to show.
        wait_until(lambda: calls.count("beat") >= 5 and "once" in calls and len(fired) >= 3,
                   what="five beats, the once and three level changes")
    finally:
        host.stop()
        engine.stop()
    elapsed = time.monotonic() - started
    assert calls.count("once") == 1
    # `every` waits its interval before each run: at most one beat per 0.2 s the host lived.
    assert calls.count("beat") <= elapsed / 0.2, (calls.count("beat"), elapsed)
    # A poll fires when the reading changes: 1, 2, 3, then nothing while it stays 3.
    assert fired == [("timers.timers.level", 1), ("timers.timers.level", 2), ("timers.timers.level", 3)]
    assert {r["chain_name"] for r in store.list_runs()} == {"task.timers.timers.beat", "task.timers.timers.hello"}


def test_actors_run_once_per_deployment_not_once_per_host(tmp_path: Any) -> None:
    """Two hosts (two `legion start` processes, as far as leases go) on one database: each
    `every` tick and the `once` run happen in one of them, not in both."""
    from waiting import wait_until

    from legion.engine.data.store import Store
    from legion.engine.runtime import Engine

    calls: list[str] = []

    @every(0.2)
    def beat() -> str:
        calls.append("beat")
        return "ok"

    @once(0.1)
    def hello() -> str:
        calls.append("once")
        return "hi"

    runner = _runner_module("shared_timers", beat=beat, hello=hello)
    registry = Registry([Extension("shared", runners=[runner])])
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    engines = [Engine(registry, store, workers=2).start() for _ in range(2)]
    hosts = [ActorHost(engine) for engine in engines]
    started = time.monotonic()
    for host in hosts:
        host.start()
    try:
        wait_until(lambda: calls.count("beat") >= 6 and "once" in calls, what="six beats and the once")
        # Stopping the leader gives its leases up: the other host takes the beat over.
        leader = next(h for h in hosts if "actor:shared.shared_timers.beat" in h._held)
        leader.stop()
        before = calls.count("beat")
        wait_until(lambda: calls.count("beat") >= before + 3, what="the other host to take the beat over")
    finally:
        for host in hosts:
            host.stop()
        for engine in engines:
            engine.stop()
    elapsed = time.monotonic() - started
    assert calls.count("once") == 1
    # Each host ticks every 0.2 s; only the lease holder runs the beat. Two hosts each running
    # it would make about twice as many.
    assert calls.count("beat") <= elapsed / 0.2 + 1, (calls.count("beat"), elapsed)
