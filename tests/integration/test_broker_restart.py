"""RabbitMQ restarts in the middle of a run: the workers reconnect, and the run completes with
every step run once, none lost, none doubled.

It stops the broker for everything that uses it, so it is left out of the parallel suite
(`-m "not broker_restart"` in pyproject's addopts) and run on its own after it:

    .venv/bin/python -m pytest -q -m broker_restart tests/integration/test_broker_restart.py
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.deployment import Deployment, rabbitmqctl

pytestmark = [pytest.mark.integration, pytest.mark.broker_restart]

ITEMS = 200

LONG = f"""
chain: long
input: {{type: object, required: [log]}}
steps:
  each:
    run: probe.probe.nap
    for_each: "{{{{ range({ITEMS}) | list }}}}"
    concurrency: 4
    with: {{name: "item-{{{{ item }}}}", log: "{{{{ input.log }}}}", seconds: 0.1}}
    next: [{{publish: {{count: "{{{{ result | length }}}}"}}, do: last}}]
  last:
    run: probe.probe.mark
    with: {{name: last, log: "{{{{ input.log }}}}"}}
output: {{count: "{{{{ ctx.count }}}}", last: "{{{{ result }}}}"}}
"""


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, "postgresql")
    try:
        yield d
    finally:
        try:
            rabbitmqctl("start_app", check=False)  # never leave the broker stopped
            rabbitmqctl("await_startup", check=False)
        finally:
            d.close()


def succeeded(d: Deployment, run_id: str) -> int:
    return sum(1 for t in d.tasks(run_id) if t["status"] == "succeeded")


def test_a_run_completes_across_a_broker_restart(deployment: Deployment) -> None:
    d = deployment
    folder = d.tmp / "chains"
    folder.mkdir()
    (folder / "long.yaml").write_text(LONG)
    d.apply(folder)
    d.start(workers=4)
    d.start(workers=4)
    d.wait_up(2)
    log = d.tmp / "calls.log"
    run_id = d.submit("long", {"log": str(log)})

    deadline = time.monotonic() + 60
    while succeeded(d, run_id) < 40:
        assert time.monotonic() < deadline, d.logs()
        time.sleep(0.05)
    rabbitmqctl("stop_app")
    at_stop = succeeded(d, run_id)
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
    assert at_stop < ITEMS, "the run ended before the broker stopped: nothing was tested"

    ended = d.wait_ended(run_id, timeout=180)
    assert (ended["status"], ended["error"]) == ("succeeded", None), d.logs()
    assert ended["output"] == {"count": ITEMS, "last": "last"}
    tasks = d.tasks(run_id)
    each = [t for t in tasks if t["step"] == "each"]
    assert len(each) == ITEMS and all(t["status"] == "succeeded" for t in each), Counter(t["status"] for t in each)
    assert sorted(t["item_index"] for t in each) == list(range(ITEMS))  # one row per item: none lost, none doubled
    assert [(t["step"], t["status"]) for t in tasks if t["step"] != "each"] == [("last", "succeeded")]
    calls = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert calls == Counter({f"item-{i}": 1 for i in range(ITEMS)} | {"last": 1}), \
        {k: v for k, v in calls.items() if v != 1} or f"{len(calls)} distinct calls"
    assert all(p.poll() is None for label, p in d.procs if label.startswith("worker")), d.logs()
