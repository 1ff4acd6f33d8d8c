"""Actors: functions that run besides on demand (LegionIO's actor kinds), hosted by `legion start`.

- `every`: a task run every `interval` seconds (a tick is skipped while the previous run goes on);
- `poll`: the function is called every `interval` seconds and its `on.events` trigger fires
  only when the result differs from the previous one (the calls themselves are not recorded:
  a poll every few seconds would flood the task table);
- `once`: one task run, `delay` seconds after start;
- `loop`: task runs one after the other (one second apart after a failure, so a broken
  function does not spin).
Every task run is recorded like `legion task run`, and its success fires `on.events`.

Each actor runs once per deployment, not once per process: a host runs it only while it holds
the actor's lease (`legion.engine.leases`), renewed at every tick, so of several `legion
start` processes one runs it, and another takes over when that one dies.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from legion.dsl.errors import LegionError
from legion.engine.invoke import call
from legion.engine.leases import Leases, StoreLeases
from legion.engine.registry import Function

# How long a lease outlives the tick that renewed it: a holder that stops renewing (it died,
# or hangs) loses its actors this long after its last tick.
LEASE_GRACE = 10.0
# A `once` actor's lease is kept (not renewed, not released) this long after it ran, so that
# processes of the same deployment starting meanwhile do not run it again.
ONCE_KEEP = 300.0
# A `loop` actor's lease lasts this long from each task run's start: runs are often long, and
# a loop run after run renews it only between them.
LOOP_LEASE = 60.0

log = logging.getLogger("legion.actors")


class ActorHost:
    def __init__(self, engine: Any, leases: Leases | None = None) -> None:
        self.engine = engine
        self.leases = leases or StoreLeases(engine.store)
        self.holder = f"{engine.process}/{uuid.uuid4().hex[:8]}"  # this host, even beside another in one process
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._held: set[str] = set()

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
        for name in sorted(self._held):  # another process may take them at once
            try:
                self.leases.release(name, self.holder)
            except LegionError as exc:
                log.warning("releasing the lease %s failed: %s", name, exc.message)
        self._held.clear()

    def _lead(self, function: Function, ttl: float) -> bool:
        """Whether this host holds (took or renewed) the actor's lease for `ttl` more seconds."""
        name = f"actor:{function.ref}"
        try:
            held = self.leases.acquire(name, self.holder, ttl)
        except LegionError as exc:
            log.warning("actor %s: its lease cannot be checked (%s); not run this time", function.ref, exc.message)
            held = False
        (self._held.add if held else self._held.discard)(name)
        return held

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
            if self._lead(function, function.actor.interval + LEASE_GRACE):
                self._task(function)

    def _once(self, function: Function) -> None:
        if not self._stop.wait(function.actor.delay) and self._lead(function, ONCE_KEEP):
            self._held.discard(f"actor:{function.ref}")  # kept until it expires, not released
            self._task(function)

    def _loop(self, function: Function) -> None:
        while not self._stop.is_set():
            # Renewed before each task run: a run longer than LOOP_LEASE may be joined by another host's.
            if not self._lead(function, LOOP_LEASE):
                self._stop.wait(1.0)  # another process loops it; look again in a second
            elif self._task(function) != "succeeded":
                self._stop.wait(1.0)

    def _poll(self, function: Function) -> None:
        last: Any = _UNSET
        while not self._stop.wait(function.actor.interval):
            if not self._lead(function, function.actor.interval + LEASE_GRACE):
                last = _UNSET  # when this host leads again, its first reading counts as a change
                continue
            outcome = call(function, dict(function.actor.args))
            if outcome.status != "succeeded":
                log.warning("poll %s failed: %s", function.ref, outcome.error)
                continue
            if outcome.result != last:  # the first result counts as a change, as in LegionIO
                self.engine.fire_event(function.ref, outcome.result)
                last = outcome.result


_UNSET = object()
