"""Typed results of understanding a message (shared by the model, the linker and the dialogue)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Candidate(BaseModel):
    """A graph node a mention may refer to."""

    node_id: str  # sku, brand name, category name or order id
    label: str  # Product | Brand | Category | Order
    name: str
    score: float = Field(ge=0.0, le=1.0)


class Entity(BaseModel):
    type: str  # one of nlu.labels.ENTITY_TYPES
    text: str
    start: int | None = None  # character offsets in the message; None when taken from context
    end: int | None = None
    node_id: str | None = None  # set once linked
    score: float | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    ambiguous: bool = False
    source: str = "message"  # "message" | "context"


class IntentScore(BaseModel):
    name: str
    confidence: float


class Understanding(BaseModel):
    text: str
    intent: IntentScore
    ranking: list[IntentScore] = Field(default_factory=list)  # top alternatives, best first
    entities: list[Entity] = Field(default_factory=list)
