"""What a handler is: the intents it answers (one `IntentSpec` each), the named queries it runs,
and how it turns a resolved question (`Ask`) into an `Outcome` (its retrieval).

The registry (qa/registry.py) is the index of handlers; retrieval dispatch, the template
writer, context resolution, hand-off and the grounding guard read intent properties from it, so a
new kind of question is one module (plus its training phrasings in nlu/data).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from common.errors import UnknownQuery
from kg.queries import get
from kg.store import GraphStore
from nlu.linking.search import NameSearch
from nlu.types import Entity
from qa.fields import FieldAsk
from qa.handlers.wording import Picker, Writer
from qa.state import DialogueState, PendingAction, PendingClarification, Ref
from qa.types import Retrieval

if TYPE_CHECKING:
    from qa.search import ProcedureSearch


@dataclass(frozen=True)
class IntentSpec:
    """Everything about one intent except its phrasings (those are training data, nlu/data)."""

    name: str  # an intent of nlu/labels.py
    # The reply when facts answer the question (status "ok"); other statuses have shared writers.
    write: Writer | None = None
    # Follow-up questions the client may offer after an answer.
    suggestions: tuple[str, ...] = ("Talk to a person",)
    # Words that ask for this intent in a follow-up: an elliptical message ("and how much is it?")
    # that contains them keeps its own intent instead of the previous one.
    cue: re.Pattern[str] | None = None
    # Actions a reply may claim once this intent's action is done ("I have cancelled ..."): the guard.
    action_words: frozenset[str] = frozenset()
    # Asking this hands the conversation to a person, for this reason.
    handoff: str | None = None
    # A turn with this intent counts as a failed one (two in a row hand the conversation off).
    failed: bool = False
    # FAQ topics that answer it: a small boost in procedure search, never a filter.
    topics: tuple[str, ...] = ()
    # Asked without an order number: the orders it is plausibly about (by status).
    order_statuses: tuple[str, ...] = ()
    # "it" after an order question means that order (policy questions that take an order).
    order_context: bool = False
    # An empty answer is still an answer ("no promotions right now") rather than "nothing found".
    answers_without_facts: bool = False
    # A pleasantry (hello, thanks, bye): not a question, never a follow-up, never a complaint.
    small_talk: bool = False


@dataclass(frozen=True)
class Ask:
    """One resolved question: the intent, the entities (message and context), and who asks."""

    intent: str
    entities: list[Entity]
    message: str
    customer_id: str | None
    state: DialogueState
    address: str | None = None  # a new address given in answer to "what is the new address?"
    field: FieldAsk | None = None  # the product field asked about (qa/fields.py)


@dataclass
class Outcome:
    """A handler's result: the `Retrieval` the verbalizers word, the entities as they should be
    reported, what was mentioned and listed (the next turn's context), and a clarification or an
    action to keep pending."""

    retrieval: Retrieval
    entities: list[Entity]
    mentioned: list[Ref] = field(default_factory=list)  # becomes the state's last entity of each type
    listed: list[Ref] = field(default_factory=list)  # what "the first one" refers to next
    clarification: PendingClarification | None = None
    action: PendingAction | None = None


ProductLinker = Callable[[str, Sequence[str]], Entity]


@dataclass(frozen=True)
class Context:
    """What a handler may use: the graph (only through the named queries it declared), procedure
    search, the store's currency and the clock ("now" for promotions, windows and fees)."""

    store: GraphStore
    procedures: ProcedureSearch | None
    currency: str
    clock: Callable[[], datetime]
    queries: frozenset[str]
    handler: str = ""
    # The entity linker's product look-up (nlu/linking: the one place names become nodes), for a
    # name the understander did not tag: (mention, words that pick a variant) -> the linked entity.
    link_product: ProductLinker | None = None
    # The linker's graph stage (nlu/linking/search.py): products found by a mention's words.
    names: NameSearch | None = None
    # Product rows read during one question, by sku (None: an absent product): a clarification
    # that tries every candidate, or a step that re-reads the product the last one read, costs no
    # second query. A fresh dict per question (`for_question`); never kept between questions, so
    # a stock or price change is seen by the next one.
    product_rows: dict[str, dict[str, Any] | None] | None = None

    def for_question(self, *, currency: str | None = None) -> Context:
        """This context for the retrieval of one question: an empty product-row cache, and the
        shop's `currency` when given."""
        return replace(self, product_rows={}, currency=currency or self.currency)

    def run(self, name: str, **params: Any) -> list[dict[str, Any]]:
        if name not in self.queries:
            raise UnknownQuery(f"handler {self.handler!r} runs the named query {name!r} without declaring it")
        if name == BY_SKUS and self.product_rows is not None:
            return self._products(params["skus"])
        return self.store.run(get(name), params)

    def _products(self, skus: Sequence[str]) -> list[dict[str, Any]]:
        """`products.by_skus` through this question's cache: only skus not read yet are queried."""
        rows = self.product_rows
        assert rows is not None
        wanted = list(dict.fromkeys(skus))
        missing = [s for s in wanted if s not in rows]
        if missing:
            found = {r["sku"]: r for r in self.store.run(get(BY_SKUS), {"skus": missing})}
            rows.update((s, found.get(s)) for s in missing)
        return [dict(row) for s in wanted if (row := rows[s]) is not None]


BY_SKUS = "products.by_skus"


# Every handler may ask which product an ambiguous mention meant (the candidates are read by sku).
SHARED_QUERIES = frozenset({BY_SKUS})


class Handler:
    """One family of intents. Subclasses set `family`, `intents` and `queries` and implement
    `retrieve`; `write` and `clarify_mention` are optional hooks."""

    family: ClassVar[str]
    intents: ClassVar[tuple[IntentSpec, ...]]
    queries: ClassVar[frozenset[str]]  # every named query its retrieval runs
    # Its questions name products: a name the model read as a brand or category is tried as one
    # first (shared.product_from_mentions).
    names_products: ClassVar[bool] = False

    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        raise NotImplementedError

    def spec(self, intent: str) -> IntentSpec:
        """The properties of one of this handler's intents."""
        return next(s for s in self.intents if s.name == intent)

    def takes(self, ask: Ask, ctx: Context) -> str | None:
        """One of this handler's intents when a question the model gave another intent is really
        this handler's (a shipping question read as a product price); None: not this handler's."""
        return None

    def write(self, r: Retrieval, pick: Picker) -> str | None:
        """The reply for a status this handler words itself (its own prompts); None: the shared
        writer of the status (or, for "ok", the intent's `write`)."""
        return None

    def suggest(self, r: Retrieval) -> list[str] | None:
        """Follow-ups that fit a reply of this handler's own (a prompt it words itself); None: the
        intent's `suggestions`."""
        return None

    def clarify_mention(self, intent: str, confidence: float, entity: Entity, others: list[Entity],
                        ctx: Context, *, field: FieldAsk | None = None) -> Outcome | None:
        """A question back for an ambiguous mention, when this handler asks it differently (or an
        answer for every candidate, when they agree on the `field` asked about); None: the shared
        "which one do you mean?"."""
        return None
