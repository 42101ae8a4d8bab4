"""Typed values that cross the dialogue layer's boundaries.

Retrieval produces a `Retrieval` (what the graph said, as typed facts, with the name of the query
that said it and the prompt the reply must word); a verbalizer turns a `Retrieval` plus the
conversation into a `Reply`; the engine returns a `TurnResult`, whose public part,
`ChatResponse`, is the body of the chat API's reply (api/schemas.py uses this model; there is no
second copy). Facts stay small flat records (qa/facts.py), not graph objects: that is what lets the
grounding guard check an LLM reply against them and the API show them to the client unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nlu.types import Entity
from qa.facts import Fact
from qa.prompts import Prompt

Status = Literal[
    "ok",  # facts answer the question
    "not_found",  # nothing matched (also: an order that is not the caller's)
    "need_sign_in",  # an order intent without a valid customer token
    "clarify",  # ambiguous mention or missing slot: a question back to the shopper
    "action_proposed",  # an action is described and awaits affirm/deny
    "action_done",  # the confirmed action was written to the graph
    "action_cancelled",  # deny or topic change dropped a pending action
    "action_refused",  # the action is not possible (shipped already, outside the window)
    "handoff",  # passed to a person (and, while a person has it, "a colleague will reply")
    "procedure",  # answered from FAQ/policy text by semantic search
    "no_answer",  # below every threshold; a person is offered
    "chitchat",  # greeting, thanks, goodbye
]


STATUS_HELP = (
    "What the turn came to: `ok` (the facts answer it), `not_found` (nothing matched, or not yours), "
    "`need_sign_in` (an order question without a valid customer token), `clarify` (a question back), "
    "`action_proposed` (awaits yes or no), `action_done`, `action_cancelled`, `action_refused`, "
    "`handoff` (passed to a person; until a person hands it back, every reply says a colleague will "
    "answer), `procedure` (answered from FAQ or policy text), `no_answer` "
    "(a person is offered), `chitchat` (greeting, thanks, goodbye)."
)


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    text: str


class Retrieval(BaseModel):
    intent: str
    status: Status
    facts: list[Fact] = Field(default_factory=list)
    query_name: str | None = None  # the named query that produced the facts
    # What the bot is waiting for (a clarification's question, a pending action) or why nothing
    # was found; the template writer words it, the LLM may only rephrase it.
    prompt: Prompt | None = None
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


# -- the reply to a chat message -------------------------------------------------------------------
class IntentOut(BaseModel):
    name: str
    confidence: float


class ChatResponse(BaseModel):
    """DESIGN section 6's /chat reply, plus `status` and `query_name` (the executed named query)."""

    # sent whole (`public()`), so the API document marks fields with defaults as required too
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    session_id: str
    turn: int = Field(description="This reply's number in the session (1 for the first); feedback names it.")
    answer: str = Field(description="Plain text: clients must escape it, never insert it as HTML.")
    intent: IntentOut
    entities: list[Entity] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    handoff: bool = False
    verbalizer: Literal["template", "llm"] = "template"
    suggestions: list[str] = Field(default_factory=list)
    query_name: str | None = Field(None, description="The named Cypher query that produced the facts.")
    status: Status = Field("ok", description=STATUS_HELP)
    customer_token: Literal["expired", "invalid"] | None = Field(
        None, description="Set when an `X-Customer-Token` was sent and refused: the shopper was answered as "
                          "anonymous; `expired` means a fresh token will do (the API layer fills it in).")


class TurnResult(ChatResponse):
    """What the engine returns for a turn: the chat reply and what only the server sees (the
    grounding guard's verdict, the language model's own draft)."""

    turn: int = 0  # this reply's number among the session's stored replies (what feedback names)
    guard_passed: bool | None = None  # the LLM writer's grounding guard (None: nothing was checked)
    guard_reasons: list[str] = Field(default_factory=list)
    llm_draft: str | None = None  # the model's own text before the guard: evaluation only, never sent
    # What this turn did to a hand-off, for the API's hand-off log: "opened" (handed to a person),
    # "returned" (the shopper went back to the bot), "timeout" (nobody took it in HANDOFF_TIMEOUT_S)
    handoff_event: Literal["opened", "returned", "timeout"] | None = None

    def public(self) -> dict[str, Any]:
        """The chat API's reply body (JSON-safe): the `ChatResponse` fields only."""
        body: dict[str, Any] = self.model_dump(mode="json", include=set(ChatResponse.model_fields))
        return body
