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
from legion.engine.sdk import Actor, Extension, every, function_spec, once, poll, schema_of


def test_schema_of_type_hints() -> None:
    assert schema_of(int) == {"type": "integer"}
    assert schema_of(list[str]) == {"type": "array", "items": {"type": "string"}}
    assert schema_of(dict[str, Any]) == {"type": "object"}
    assert schema_of(Literal["a", "b"]) == {"enum": ["a", "b"]}
    assert schema_of(int | None) == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert schema_of(Any) == {}


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
