"""Typed values that cross the dialogue layer's boundaries.

Retrieval produces a `Retrieval` (what the graph said, with the name of the query that said it);
a verbalizer turns a `Retrieval` plus the conversation into text. Keeping facts as small flat
records (not graph objects) is what lets the grounding guard check an LLM reply against them and
lets the API show them to the client unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal[
    "ok",  # facts answer the question
    "not_found",  # nothing matched (also: an order that is not the caller's)
    "need_sign_in",  # an order intent without a valid customer token
    "clarify",  # ambiguous mention or missing slot: a question back to the shopper
    "action_proposed",  # an action is described and awaits affirm/deny
    "action_done",  # the confirmed action was written to the graph
    "action_cancelled",  # deny or topic change dropped a pending action
    "action_refused",  # the action is not possible (shipped already, outside the window)
    "handoff",  # passed to a person
    "procedure",  # answered from FAQ/policy text by semantic search
    "no_answer",  # below every threshold; a person is offered
    "chitchat",  # greeting, thanks, goodbye
]


class Fact(BaseModel):
    """One record retrieved from the graph: `kind` says what it is ("product", "order",
    "policy", "shipping_method", "faq", ...); `data` holds JSON-safe scalars and short lists."""

    kind: str
    data: dict[str, Any] = Field(default_factory=dict)


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    text: str


class Retrieval(BaseModel):
    intent: str
    status: Status
    facts: list[Fact] = Field(default_factory=list)
    query_name: str | None = None  # the named query that produced the facts
    # What the bot is waiting for (the candidates of a clarification, a pending action); the
    # template writer words it, the LLM may only rephrase it.
    prompt: dict[str, Any] = Field(default_factory=dict)
    # Seed for the template writer's choice of wording (a hash of session id and turn), kept out
    # of `prompt` so the grounding guard never mistakes it for a fact.
    variant: str = ""


class Reply(BaseModel):
    text: str
    verbalizer: Literal["template", "llm"]
    guard_passed: bool | None = None  # None for the template writer (nothing to check)
    guard_reasons: list[str] = Field(default_factory=list)
    # What the language model wrote, before the guard and the safety filter, when it wrote anything:
    # for the evaluation's hallucination count only. Never stored in the session, never sent (the
    # API's reply schema has no such field).
    llm_draft: str | None = None
