"""A sub-chain fanned out with `for_each` and `concurrency` on the embedded runtime ends: each
child's end reaches its parent once the child's final state is written (a parent that read a
child still running would wait for ever, its concurrency slot held)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from embedded import embedded_service

from legion.engine.registry import Registry
from legion.engine.service import Service

CHILD = """
chain: child
steps:
  one: {run: core.util.echo, with: {message: "{{ input.n }}"}, next: [{do: two}]}
  two: {run: core.util.echo, with: {message: "{{ input.n }}"}}
output: "{{ result }}"
"""
PARENT = """
chain: fan
steps:
  each:
    run: chain:child
    for_each: "{{ range(input.count) | list }}"
    concurrency: 4
    with: {n: "{{ item }}"}
output: "{{ result }}"
"""


@pytest.fixture()
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    with embedded_service(tmp_path, monkeypatch, Registry([Registry.discover().extensions["core"]]), workers=4) as service:
        yield service


def test_a_fanned_out_sub_chain_ends_every_time(service: Service) -> None:
    service.apply_chains(text=CHILD)
    service.apply_chains(text=PARENT)
    for _ in range(3):
        run = service.start_run("fan", {"count": 120}, wait=True, timeout=120)
        assert run["status"] == "succeeded", run.get("error")
        assert run["output"] == list(range(120))
