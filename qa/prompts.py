"""Typed prompts: what the bot is waiting for, or why a reply reads as it does.

A `Retrieval` carries at most one prompt next to its facts: the question of a clarification
(which product, which order, the new address), the action awaiting a yes or no, the reason
nothing was found, the mode of a recommendation. The template writer words it; the LLM writer
may only rephrase it; the grounding guard counts its values as supported (`as_dict`, the same
keys the dialogue has always used).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qa.facts import ActionKind


class PromptModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the grounding guard (keys as the guard has always read them)."""
        return self.model_dump(by_alias=True)


# -- clarifications (status "clarify") ------------------------------------------------------------
class WhichOne(PromptModel):
    """An ambiguous mention: the candidates, in the order offered."""

    question: Literal["which"] = "which"
    entity_type: str
    mention: str
    options: list[str] = Field(default_factory=list)
    more: bool = False  # more candidates than the options listed ("the charger" in a shop of twelve)


class WhichOrder(PromptModel):
    """An order question without an order number and several orders that could be meant."""

    question: Literal["which_order"] = "which_order"
    entity_type: Literal["ORDER_ID"] = "ORDER_ID"
    options: list[str] = Field(default_factory=list)


class NewAddress(PromptModel):
    """An address change that still needs the new address."""

    question: Literal["new_address"] = "new_address"


AskQuestion = Literal["which_product", "compare_with", "what_kind"]


class AskFor(PromptModel):
    """A missing slot: which product, what to compare it with, what kind of product."""

    question: AskQuestion
    entity_type: str | None = None


Clarification = WhichOne | WhichOrder | NewAddress | AskFor


# -- actions ---------------------------------------------------------------------------------------
class ConfirmAction(PromptModel):
    """An action proposed, awaiting yes or no (status "action_proposed")."""

    action: ActionKind
    confirm: Literal[True] = True


class ActionRefusal(PromptModel):
    """An action that is not possible (status "action_refused")."""

    refusal: str
    action: ActionKind


class ActionTaken(PromptModel):
    """A confirmed action that was written to the graph (status "action_done"); `already`: this
    confirmation came second, and reports the request an earlier one carried out."""

    action: ActionKind
    already: bool = False


class ActionExpired(PromptModel):
    """A yes that came after the confirmation window (PENDING_TTL_S): nothing was done, and the
    bot offers to start again (status "action_cancelled")."""

    action: ActionKind
    minutes: int


# -- nothing found (status "not_found") ------------------------------------------------------------
class OrderNotFound(PromptModel):
    """No such order, or not the caller's: the same prompt either way."""

    order_id: str


class NoOrders(PromptModel):
    """The customer has no order in the plausible statuses."""

    no_orders: Literal[True] = True
    statuses: list[str] = Field(default_factory=list)


class ProductNotFound(PromptModel):
    """A product mention that matches nothing in the catalog."""

    product: str


class MissingVariant(PromptModel):
    """The product line does not come in the asked attribute ("the Aurora X2 in green")."""

    missing_attribute: str
    line: str


class NoProducts(PromptModel):
    """No product of the brand / category / attribute asked about."""

    brand: str | None = None
    category: str | None = None
    attribute: str | None = None


# -- other replies ---------------------------------------------------------------------------------
class AwaitingAgent(PromptModel):
    """The conversation is with a person: a colleague will reply (status "handoff", no summary)."""

    awaiting_agent: Literal[True] = True


class BackToBot(PromptModel):
    """The shopper asked to go on with the bot instead of waiting for a person."""

    back_to_bot: Literal[True] = True


class OfferHuman(PromptModel):
    """No reliable answer: a person is offered (status "no_answer")."""

    offer_human: Literal[True] = True
    best_score: float | None = None


class ProcedureMatch(PromptModel):
    """The score of the FAQ or policy text a procedure answer comes from."""

    score: float


class SmallTalk(PromptModel):
    """Greeting, thanks, goodbye: whether the conversation had turns before."""

    returning: bool


class PromotionsAsOf(PromptModel):
    """The day the promotions were looked up for."""

    today: str


class Recommendation(PromptModel):
    """How the recommendations were chosen (similar, cheaper, compatible, also_bought, personal,
    filtered) and the budget, if one was given."""

    mode: str
    budget: float | None = None


class Subject(PromptModel):
    """What the question was about: a product (with its sku), a brand or a category."""

    for_: str | None = Field(None, serialization_alias="for")
    sku: str | None = None


class OtherRules(PromptModel):
    """"Are there other rules?": the policies listed are the others that apply to this subject
    (a product with its sku, a brand or a category; none: the store)."""

    other_rules: Literal[True] = True
    for_: str | None = Field(None, serialization_alias="for")
    sku: str | None = None


class FieldQuestion(PromptModel):
    """A question about one field of a product (qa/fields.py): the field (`field`: brand,
    category, supplier, rating, an attribute key...), the shopper's word for it (`label`), a value
    they asked about ("is it in English?"), and whether the shop records that field at all."""

    field: str
    label: str
    kind: Literal["product", "supplier", "attribute", "unknown"]
    asked_value: str | None = None
    yes_no: bool = False
    contact: bool = False
    group: str | None = None  # asked of a brand's or category's products ("your e-books"), or of a model line
    line: bool = False  # `group` is a model line: its variants' values ("what colours does it come in?")


class RefundRequests(PromptModel):
    """A refund question: whether the customer has any request at all."""

    no_request: bool


Prompt = (Clarification | ConfirmAction | ActionRefusal | ActionTaken | ActionExpired | AwaitingAgent | BackToBot
          | OrderNotFound | NoOrders | ProductNotFound
          | MissingVariant | NoProducts | OfferHuman | ProcedureMatch | SmallTalk | PromotionsAsOf | Recommendation
          | Subject | OtherRules | RefundRequests | FieldQuestion)
