"""The typed model of chain and rehearsal files (spec sections 1, 2, 3, 8, 10).

The JSON Schemas in `schemas/` are generated from these classes (`legion.dsl.schema`), so the
editor, the validator and the runtime agree on one shape.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from legion.dsl.durations import parse_duration

CHAIN_NAME = r"^[a-z0-9][a-z0-9_.-]{0,127}$"
STEP_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"
FUNCTION_REF = r"^(chain:[a-z0-9][a-z0-9_.-]{0,127}|[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)$"
RESERVED_STEPS = frozenset({"fail"})
DEFAULT_MAX_STEPS = 10_000


def _duration(value: Any) -> float:
    return parse_duration(value)


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    Field(json_schema_extra={"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"}]}),
]


def _names(value: Any) -> Any:
    """`do` and `start` take one name or a list of names; the model always holds a list."""
    return [value] if isinstance(value, str) else value


NameList = Annotated[list[str], BeforeValidator(_names)]


class _Strict(BaseModel):
    # Unknown keys are errors at every level: users misspell keys, and a silent ignore is a bug.
    # strict: YAML values are taken as written (`join: true` is not 1, `priority: '3'` not 3),
    # as the JSON Schema says; an editor and the validator never disagree.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Retry(_Strict):
    count: int = Field(0, ge=0, description="retries after the first attempt")
    delay: Duration = Field(1.0, description="wait before the first retry")
    backoff: float = Field(2.0, ge=1.0, description="factor applied to the wait per attempt")
    max_delay: Duration = Field(300.0, description="upper bound of one wait")
    jitter: bool = Field(True, description="full jitter: wait a random time up to the computed one")
    when: str | bool = Field("failed", description="condition over the failed attempt")

    @model_validator(mode="after")
    def _bounded_growth(self) -> Retry:
        # The wait before retry n is min(delay * backoff ** (n - 1), max_delay): the power must
        # stay a number for every retry, or computing the wait fails at run time.
        try:
            growth = self.backoff ** max(self.count - 1, 0)
        except OverflowError:
            growth = math.inf
        if not math.isfinite(growth):
            raise ValueError(f"backoff {self.backoff:g} over {self.count} retries grows past any number; "
                             "lower backoff or count (each wait stops growing at max_delay anyway)")
        return self


class Edge(_Strict):
    when: str | bool = Field("succeeded", description="condition (no braces); default `succeeded`")
    publish: dict[str, Any] = Field(default_factory=dict, description="templates merged into the context")
    do: NameList = Field(default_factory=list, description="step name(s) to start; `fail` fails the run")


class Step(_Strict):
    run: str = Field(pattern=FUNCTION_REF, description="ext.runner.function or chain:<name>")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="arguments (templates)")
    next: list[Edge] = Field(default_factory=list)
    join: Literal["all"] | Annotated[int, Field(ge=1)] | None = None
    for_each: str | list[Any] | None = None
    concurrency: int | None = Field(None, ge=1)
    retry: Retry | None = None
    timeout: Duration | None = None
    delay: Duration = 0.0
    priority: int = Field(0, ge=0, le=9)
    agent: str | None = Field(None, min_length=1, description="sub-chain steps: the agent the sub-chain run is for (a name or a "
                                                               "template); default the run's own agent")


class ScheduleEntry(_Strict):
    cron: str | None = Field(None, description='5-field cron expression, quoted: "*/5 * * * *"')
    every: Duration | None = None
    tz: str | None = Field(None, description="IANA time zone of the cron expression (default UTC)")
    input: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleEntry:
        if (self.cron is None) == (self.every is None):
            raise ValueError("a schedule entry needs exactly one of `cron` and `every`")
        if self.every is not None and self.every <= 0:
            raise ValueError("`every` must be greater than zero")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r} must have 5 fields (minute hour day month weekday)")
        return self


class Triggers(_Strict):
    schedule: list[ScheduleEntry] = Field(default_factory=list)
    events: list[Annotated[str, Field(pattern=FUNCTION_REF)]] = Field(default_factory=list)


def _not_reserved(name: str) -> str:
    if name in RESERVED_STEPS:
        raise ValueError(f"step name {name!r} is reserved (`do: fail` fails the run); rename the step")
    return name


# A validator on the key itself, so that a problem with a step's name points at that name.
StepName = Annotated[str, Field(pattern=STEP_NAME), AfterValidator(_not_reserved)]


class Chain(_Strict):
    chain: str = Field(pattern=CHAIN_NAME, description="the chain's unique name")
    description: str | None = None
    input: dict[str, Any] | None = Field(None, description="JSON Schema (draft 2020-12) of the run input")
    vars: dict[str, Any] = Field(default_factory=dict, description="initial context; templates over input and run")
    on: Triggers | None = None
    start: NameList | None = None
    steps: dict[StepName, Step] = Field(min_length=1)
    output: Any = None
    max_steps: int = Field(DEFAULT_MAX_STEPS, ge=1)

    def start_steps(self) -> list[str]:
        if self.start:
            return list(self.start)
        targets = {t for step in self.steps.values() for e in step.next for t in e.do}
        return [name for name in self.steps if name not in targets]

    def predecessors(self) -> dict[str, list[str]]:
        # dicts as ordered sets: a step that many steps lead to must not cost a scan per edge
        preds: dict[str, dict[str, None]] = {name: {} for name in self.steps}
        for name, step in self.steps.items():
            for edge in step.next:
                for target in edge.do:
                    if target in preds:
                        preds[target][name] = None
        return {name: list(sources) for name, sources in preds.items()}


class MockEntry(_Strict):
    status: Literal["succeeded", "failed"] | None = None
    result: Any = None
    error: str | dict[str, Any] | None = None


class Expect(_Strict):
    status: Literal["succeeded", "failed", "canceled"]
    sequence: list[str] | None = None
    output: Any = None
    error: dict[str, Any] | None = None


class Rehearsal(_Strict):
    rehearsal: str | None = None
    chain: str | dict[str, Any]
    input: dict[str, Any] = Field(default_factory=dict)
    mocks: dict[str, list[MockEntry]] = Field(default_factory=dict)
    expect: Expect


def is_valid_chain_name(name: str) -> bool:
    return re.match(CHAIN_NAME, name) is not None
