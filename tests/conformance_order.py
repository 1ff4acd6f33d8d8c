"""Outputs of the conformance rehearsals that depend on the order concurrent branches end
in: a runtime with several workers may end them in either order (the rehearsal, one step at a
time, pins one)."""

from __future__ import annotations

from typing import Any


def _either_branch_last(output: Any) -> bool:  # parallel: the run's `result` is the last ended step's
    return output in ({"left": "L1", "right": "R1", "last": "R1+R2"}, {"left": "L1", "right": "R1", "last": "L1+L2"})


def _either_split_last(output: Any) -> bool:  # split: the context of the branch that ended last
    return output in ({"said": "hello two", "last": "hello two"}, {"said": "hello one", "last": "hello one"})


def _first_two_arrivals(output: Any) -> bool:  # join-count: the first two of a, b and c2
    seen = (output or {}).get("seen") or {}
    full = {"a": "A", "b": "B", "c": "C"}
    return set(seen) == set(full) and sum(1 for k, v in seen.items() if v == full[k]) == 2 and \
        all(v in (None, full[k]) for k, v in seen.items())


ORDER_DEPENDENT = {"parallel": _either_branch_last, "split": _either_split_last, "join-count": _first_two_arrivals}


def output_matches(rehearsal: str, got: Any, expected: Any) -> bool:
    """Whether a run's output is the rehearsal's, or one its branches' other order gives."""
    check = ORDER_DEPENDENT.get(rehearsal)
    return check(got) if check else got == expected
