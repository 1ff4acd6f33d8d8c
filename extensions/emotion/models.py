"""The shapes emotion's functions take: a signal and a valence (their schemas in `legion lex list`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class Signal(BaseModel):
    """A signal as the tick passes it: its own keys (value, salience, channel_id...) are kept
    as they are; the hints below shape the raw scores, each in [0, 1] when given."""

    model_config = ConfigDict(extra="allow")

    value: Any = Field(default=None, description="what was perceived (not read here)")
    source_type: str | None = Field(default=None, description="where it came from: human_direct, ambient, ...")
    domain: str | None = Field(default=None, description="its domain, when the call names none")
    urgency_hint: Unit | None = Field(default=None, description="urgency the signal claims (default 0)")
    domain_weight: Unit | None = Field(default=None, description="how much its domain matters (default 0.5)")
    impact_scope: Unit | None = Field(default=None, description="how far its effects reach (default 0.3)")
    reversibility: Unit | None = Field(default=None, description="how easily its effects are undone (default 0.5)")
    outcome_severity: Unit | None = Field(default=None, description="how bad its outcome could be (default 0.3)")
    novelty_score: Unit | None = Field(default=None, description="how new it is (default 0.5)")


class Valence(BaseModel):
    """A four-dimension valence; a dimension left out is 0 (LegionIO's new_valence)."""

    model_config = ConfigDict(extra="forbid")

    urgency: Unit = 0.0
    importance: Unit = 0.0
    novelty: Unit = 0.0
    familiarity: Unit = 0.0
