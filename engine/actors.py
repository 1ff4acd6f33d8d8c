"""Actors: functions that run besides on demand (LegionIO's actor kinds), hosted by `legion start`.

- `every`: a task run every `interval` seconds (a tick is skipped while the previous run goes on);
- `poll`: the function is called every `interval` seconds and its `on.events` trigger fires
  only when the result differs from the previous one (the calls themselves are not recorded:
  a poll every few seconds would flood the task table);
- `once`: one task run, `delay` seconds after start;
- `loop`: task runs one after the other (one second apart after a failure, so a broken
  function does not spin).
Every task run is recorded like `legion task run`, and its success fires `on.events`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from legion.engine.invoke import call
from legion.engine.registry import Function

log = logging.getLogger("legion.actors")


class ActorHost:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def functions(self) -> list[Function]:
        return [f for f in self.engine.registry.functions.values() if f.actor.kind != "subscription"]

    def start(self) -> None:
        for function in self.functions():
            target = getattr(self, f"_{function.actor.kind}")
            t = threading.Thread(target=self._guard, args=(target, function), name=f"legion-actor-{function.ref}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def _guard(self, target: Any, function: Function) -> None:
        try:
            target(function)
        except Exception:
            log.exception("actor %s stopped", function.ref)

    def _task(self, function: Function) -> str:
        run_id = self.engine.run_task(function.ref, dict(function.actor.args))
        self.engine.wait(run_id)
        return str(self.engine.store.get_run(run_id)["status"])

    def _every(self, function: Function) -> None:
        while not self._stop.wait(function.actor.interval):
            self._task(function)

    def _once(self, function: Function) -> None:
        if not self._stop.wait(function.actor.delay):
            self._task(function)

    def _loop(self, function: Function) -> None:
        while not self._stop.is_set():
            if self._task(function) != "succeeded":
                self._stop.wait(1.0)

    def _poll(self, function: Function) -> None:
        last: Any = _UNSET
        while not self._stop.wait(function.actor.interval):
            outcome = call(function, dict(function.actor.args))
            if outcome.status != "succeeded":
                log.warning("poll %s failed: %s", function.ref, outcome.error)
                continue
            if outcome.result != last:  # the first result counts as a change, as in LegionIO
                self.engine.fire_event(function.ref, outcome.result)
                last = outcome.result


_UNSET = object()
