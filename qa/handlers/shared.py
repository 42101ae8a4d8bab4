"""Retrieval helpers every handler family shares, each written once: typed facts from graph rows,
product resolution (linked mentions, clarifying questions), order resolution
(through the signed-in customer only), policy precedence, and procedure search.

Orders are only ever read through the signed-in customer (kg/queries/orders.py). An order id that
is not the caller's takes exactly the path of one that does not exist: same query, same empty
rows, same reply, and the mention is reported without a node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from nlu.linking import text as linking_text
from nlu.linking.search import product_attributes as attributes  # a product row's attributes as scalars
from nlu.types import Candidate, Entity
from qa.facts import (
    CandidateFact,
    Fact,
    FaqFact,
    InvoiceFact,
    OrderFact,
    OrderOptionFact,
    OwnedFact,
    PolicyFact,
    PolicyTextFact,
    ProductFact,
    RecommendationFact,
    ReturnWindowFact,
)
from qa.handlers.base import Ask, Context, IntentSpec, Outcome
from qa.prompts import (
    AskFor,
    AskQuestion,
    NoOrders,
    OfferHuman,
    OrderNotFound,
    ProcedureMatch,
    ProductNotFound,
    WhichOne,
    WhichOrder,
)
from qa.search import Hit
from qa.state import PendingClarification, Ref
from qa.text import FILLER, covers, named_exactly, norm, word_matches
from qa.text import words as name_words
from qa.types import Retrieval

MAX_LIST = 5
MAX_CANDIDATES = 6

# Asks which node an ambiguous mention means: (ctx, intent, confidence, the mention, all entities).
Clarify = Callable[[Context, str, float, Entity, list[Entity]], Outcome]


# -- values from rows ------------------------------------------------------------------------------
def round_money(v: Any) -> float | None:
    """An amount rounded to the cent (None when there is none)."""
    try:
        return None if v is None or v == "" else round(float(v), 2)
    except (TypeError, ValueError):
        return None


# -- products ------------------------------------------------------------------------------------
def product_ref(row: dict[str, Any]) -> Ref:
    return Ref(type="PRODUCT", node_id=row["sku"], name=row.get("name") or row["sku"], label="Product",
               price=round_money(row.get("price")), currency=row.get("currency"), brand=row.get("brand"),
               category=row.get("category"), status=row.get("status"),
               values=[str(v).lower() for v in (row.get("attr_values") or [])])


def _product_data(row: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    attrs = attributes(row)
    stock = row.get("stock")
    data: dict[str, Any] = {
        "sku": row["sku"], "name": row.get("name"), "brand": row.get("brand"), "category": row.get("category"),
        "price": round_money(row.get("price")), "currency": row.get("currency"), "stock": stock,
        "in_stock": bool(stock and stock > 0 and row.get("status") != "discontinued"),
        "status": row.get("status"), "rating": row.get("rating"), "warranty_months": row.get("warranty_months"),
        "description": row.get("description"),
        "attributes": {k: v for k, v in attrs.items() if k not in ("model_line",)},
    }
    if fields is not None:
        data = {k: v for k, v in data.items() if k in fields or k in ("sku", "name")}
    return data


def product_fact(row: dict[str, Any], fields: Sequence[str] | None = None) -> ProductFact:
    """A product row as a fact: every field, or only `fields` (sku and name always)."""
    return ProductFact(**_product_data(row, fields))


def recommendation_fact(row: dict[str, Any], fields: Sequence[str], reason: str, **extra: Any) -> RecommendationFact:
    return RecommendationFact(**_product_data(row, fields), reason=reason, **extra)


def lookup_name(ctx: Context, mention: str, attrs: list[str]) -> list[dict[str, Any]]:
    """Products an unlinked mention names, found in the graph by the linker's last stage
    (nlu/linking/search.py); none when the dialogue runs without it."""
    return ctx.names.products(mention, attrs) if ctx.names is not None else []


# Words that end a product name the model cut short ("the literary | calendar in stock?").
_NAME_ENDS = FILLER | frozenset({
    "if", "in", "on", "at", "from", "by", "be", "can", "could", "do", "does", "is", "are", "was", "will", "how",
    "long", "many", "much", "days", "stock", "available", "return", "returned", "price", "cost", "costs", "when",
    "where", "why", "who", "or", "but", "so", "still", "have", "has", "cheaper", "than", "vs", "and", "under",
    "over", "below", "above", "without", "products", "items", "things", "stuff", "range", "collection",
})


def product_from_mentions(ctx: Context, message: str, entities: list[Entity]) -> list[Entity] | None:
    """A product named partially or misspelt that the model read as a brand or category ("the lumen
    pocket notebooks": brand "lumen", category "pocket", category "notebooks"; "the literary
    calendar": category "literary"), or as a brand that is none ("matilda"): when those mentions,
    with the words right after them, hold a word of no brand or category they linked to and name
    products, they are a product mention (linked, or ambiguous among the products they name), so
    the product's own answer (its policy: product > brand > category > store) is given. The span
    is linked through `ctx.link_product` (the entity linker: typos, partial names) when there is one,
    else looked up by name. Returns the entities with that mention instead, or None."""
    if any(e.type == "PRODUCT" for e in entities):
        return None
    said = [e for e in entities if e.source == "message" and e.start is not None and e.end is not None
            and e.type in ("BRAND", "CATEGORY")]
    if not said:
        return None
    start = min(e.start for e in said if e.start is not None)
    end = max(e.end for e in said if e.end is not None)
    tail: list[int] = []  # where the span may end: after each of up to three words that follow at once
    pos = end
    for m in re.finditer(r"\S+", message[end:]):
        token = m.group()
        bare = token.rstrip("?!.,;:)")
        first = name_words(bare)[:1]
        if message[pos:end + m.start()].strip() or not first or first[0] in _NAME_ENDS or len(tail) == 3:
            break
        tail.append(end + m.start() + len(bare))
        pos = end + m.end()
        if bare != token:
            break
    known = {w for e in said if e.node_id for w in name_words(e.node_id)}
    for stop in sorted({end, *tail}, reverse=True):
        span = message[start:stop]
        leftover = [w for w in name_words(span) if w not in FILLER and not any(word_matches(w, k) for k in known)]
        if not leftover:
            continue
        said_words = name_words(span)
        if ctx.names is not None and ctx.names.count_named(span, MAX_CANDIDATES + 1) > MAX_CANDIDATES:
            return None  # "nordic audio wireless headphones": a group of products, not one that was cut short
        found: list[Candidate] = []
        if ctx.link_product is not None:  # typos and partial names; its candidates must still fit the words
            linked = ctx.link_product(span, [])
            found = [c for c in linked.candidates if (c.node_id == linked.node_id or linked.ambiguous)
                     and covers(said_words, name_words(c.name))]
        if not found:
            found = [Candidate(node_id=r["sku"], label="Product", name=r.get("name") or r["sku"], score=0.9)
                     for r in lookup_name(ctx, span, [])
                     if covers(said_words, name_words(r.get("name") or ""))
                     or any(covers(said_words, name_words(str(v))) for v in (r.get("attr_values") or []))]
        if not found:
            continue
        inside = [e for e in entities if e.start is not None and e.end is not None and e.start >= start
                  and e.end <= stop and e.type != "PRODUCT"]
        mention = Entity(type="PRODUCT", text=span, start=start, end=stop, source="message")
        if len(found) == 1:
            mention = mention.model_copy(update={"node_id": found[0].node_id, "score": found[0].score,
                                                 "candidates": found})
        else:
            mention = mention.model_copy(update={"ambiguous": True, "candidates": found[:MAX_CANDIDATES]})
        return [e for e in entities if e not in inside] + [mention]
    return None


def resolve_products(ctx: Context, intent: str, entities: list[Entity], clarify: Clarify | None = None
                     ) -> tuple[list[dict[str, Any]], list[Entity], Outcome | None]:
    """Rows for the PRODUCT mentions; unlinked ones go through a name look-up. Returns an Outcome
    instead when a mention needs a clarification (`clarify`, by default `clarify_mention`) or
    matches nothing."""
    clarify = clarify or clarify_mention
    rows: list[dict[str, Any]] = []
    out_entities = list(entities)
    attrs = [norm(e.node_id or e.text) for e in entities if e.type == "ATTRIBUTE"]
    for idx, e in enumerate(entities):
        if e.type != "PRODUCT":
            continue
        if e.node_id:
            found = ctx.run("products.by_skus", skus=[e.node_id])
            if found:
                if all(r["sku"] != found[0]["sku"] for r in rows):
                    rows.append(found[0])
                continue
        beside = _beside(e, entities)
        if e.ambiguous and e.candidates:
            if beside & {c.node_id for c in e.candidates}:
                continue  # a piece of a name whose other piece was linked ("Le" + "Petit Nicolas")
            return rows, out_entities, clarify(ctx, intent, 1.0, e, entities)
        if beside and any(covers(name_words(e.text), name_words(r.get("name") or ""))
                          for r in ctx.run("products.by_skus", skus=sorted(beside))):
            continue  # "Nova 5 128 GB | Graphite": the colour of the product named right before it
        matches = lookup_name(ctx, e.text, attrs)
        if beside & {m["sku"] for m in matches}:
            continue
        if len(matches) == 1 and any(r["sku"] == matches[0]["sku"] for r in rows):
            continue
        if len(matches) == 1:
            rows.append(matches[0])
            out_entities[idx] = e.model_copy(update={"node_id": matches[0]["sku"], "score": 0.9})
        elif not matches:
            return rows, out_entities, Outcome(
                Retrieval(intent=intent, status="not_found", query_name=None,
                          prompt=ProductNotFound(product=e.text)), out_entities)
        else:
            refs = [product_ref(r) for r in matches[:MAX_CANDIDATES]]
            return rows, out_entities, clarify_choice(intent, 1.0, e, refs, entities, None)
    return rows, out_entities, None


def _beside(e: Entity, entities: list[Entity]) -> set[str]:
    """The products linked by a product mention right next to `e` (a few characters apart, or
    with attribute mentions between): the model may cut one name in pieces ("Le | Petit Nicolas",
    "años de | soledad", "Nova 5 | 256 GB | Graphite")."""
    if e.start is None or e.end is None:
        return set()
    lo, hi = e.start, e.end
    attrs = [(a.start, a.end) for a in entities if a.type == "ATTRIBUTE" and a.start is not None and a.end is not None]
    grown = True
    while grown:
        grown = False
        for start, end in attrs:
            if not (lo <= start and end <= hi) and (0 <= start - hi <= 5 or 0 <= lo - end <= 5):
                lo, hi, grown = min(lo, start), max(hi, end), True
    return {o.node_id for o in entities if o is not e and o.type == "PRODUCT" and o.node_id and o.start is not None
            and o.end is not None and (0 <= o.start - hi <= 5 or 0 <= lo - o.end <= 5)}


# -- clarifying questions --------------------------------------------------------------------------
def entity_ref(e: Entity) -> Ref:
    label = {"PRODUCT": "Product", "BRAND": "Brand", "CATEGORY": "Category", "ORDER_ID": "Order"}.get(e.type)
    return Ref(type=e.type, node_id=e.node_id, name=e.text, label=label)


def candidate_facts(refs: Sequence[Ref]) -> list[Fact]:
    return [CandidateFact(node_id=r.node_id, name=r.name, label=r.label) for r in refs]


def clarify_mention(ctx: Context, intent: str, confidence: float, entity: Entity, others: list[Entity]) -> Outcome:
    """"Which one do you mean?" for an ambiguous mention, listing its candidates (only those it
    names exactly, when it names some exactly)."""
    cands = entity.candidates[:MAX_CANDIDATES]
    exact = named_exactly(entity.text, [c.name for c in cands]) if entity.type == "PRODUCT" else []
    if exact:
        cands = [cands[i] for i in exact]
    refs: list[Ref] = []
    if entity.type == "PRODUCT":
        rows = {r["sku"]: r for r in ctx.run("products.by_skus", skus=[c.node_id for c in cands])}
        refs = [product_ref(rows[c.node_id]) if c.node_id in rows else
                Ref(type="PRODUCT", node_id=c.node_id, name=c.name, label=c.label) for c in cands]
    else:
        refs = [Ref(type=entity.type, node_id=c.node_id, name=c.name, label=c.label) for c in cands]
    return clarify_choice(intent, confidence, entity, refs, others, "products.by_skus",
                          more=len(entity.candidates) > len(refs) and not exact)


def clarify_choice(intent: str, confidence: float, entity: Entity, refs: list[Ref], others: list[Entity],
                   query_name: str | None, *, more: bool = False) -> Outcome:
    pending = PendingClarification(
        kind="entity", intent=intent, confidence=confidence, entity_type=entity.type, mention=entity.text,
        candidates=refs, more=more, resolved=[entity_ref(e) for e in others if e.node_id and e is not entity])
    reported = [e for e in others if e is not entity] + [entity.model_copy(update={"node_id": None})]
    return Outcome(
        Retrieval(intent=intent, status="clarify", facts=candidate_facts(refs), query_name=query_name,
                  prompt=WhichOne(entity_type=entity.type, mention=entity.text, options=[r.name for r in refs],
                                  more=more)),
        reported, listed=refs, clarification=pending)


def ask_for(intent: str, confidence: float, entity_type: str, entities: list[Entity], question: AskQuestion
            ) -> Outcome:
    """A question for a missing slot (which product, compare with what, what kind)."""
    pending = PendingClarification(kind="entity", intent=intent, confidence=confidence, entity_type=entity_type,
                                   resolved=[entity_ref(e) for e in entities if e.node_id])
    return Outcome(Retrieval(intent=intent, status="clarify", prompt=AskFor(question=question, entity_type=entity_type)),
                   entities, clarification=pending)


# -- entities --------------------------------------------------------------------------------------
def entity_of(ents: list[Entity], type_: str) -> Entity | None:
    return next((e for e in ents if e.type == type_), None)


def entity_value(e: Entity | None) -> str | None:
    if e is None:
        return None
    return e.node_id or e.text


def strip_orders(entities: list[Entity]) -> list[Entity]:
    """Order mentions as typed, with no node, score or candidates (nothing to tell 'not yours' apart)."""
    return [e.model_copy(update={"node_id": None, "score": None, "candidates": [], "ambiguous": False})
            if e.type == "ORDER_ID" else e for e in entities]


def normalise_order_id(text: str) -> str:
    """The linker's reading of an order mention ("#10452", "order 10 452"); text without an id is
    looked up as typed (it will simply not be found)."""
    return linking_text.normalise_order_id(text) or (text or "").strip().lstrip("#").strip()


def parse_budget(text: str) -> float | None:
    """The amount of a MONEY mention ("under $150", "20k"); the currency is the store's."""
    money = linking_text.parse_money(text)
    return float(money.amount) if money is not None else None


# -- orders --------------------------------------------------------------------------------------
def order_ref(row: dict[str, Any]) -> Ref:
    values = [str(row.get("status") or ""), str(row.get("placed_at") or "")[:10]]
    if row.get("first_item"):
        values.append(str(row["first_item"]).lower())
    return Ref(type="ORDER_ID", node_id=str(row["order_id"]), name=str(row["order_id"]), label="Order",
               price=round_money(row.get("total")), currency=row.get("currency"), status=row.get("status"),
               values=[v.lower() for v in values if v])


ORDER_FIELDS = ("order_id", "status", "placed_at", "shipped_at", "delivered_at", "eta", "carrier",
                "tracking_number", "shipping_method", "payment_method", "ship_to", "total", "currency")


def _order_data(row: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    data = {k: row.get(k) for k in fields}
    if "total" in data:
        data["total"] = round_money(data["total"])
    data["order_id"] = str(row["order_id"])
    return {k: v for k, v in data.items() if v not in (None, "")}


def order_fact(row: dict[str, Any], fields: Sequence[str] = ORDER_FIELDS) -> OrderFact:
    """An order row as a fact: `fields` that have a value."""
    return OrderFact(**_order_data(row, fields))


def invoice_fact(row: dict[str, Any]) -> InvoiceFact:
    return InvoiceFact(**_order_data(row, ("order_id", "status", "placed_at", "total", "currency",
                                           "payment_method")))


def order_not_found(intent: str, entities: list[Entity], oid: str) -> Outcome:
    """The one reply for 'no such order' and 'not your order': no node, no fact, no hint."""
    return Outcome(Retrieval(intent=intent, status="not_found", query_name="orders.by_id_for_customer",
                             prompt=OrderNotFound(order_id=oid)), strip_orders(entities))


def pick_recent(ctx: Context, spec: IntentSpec, entities: list[Entity], customer_id: str, *,
                any_status: bool = False) -> dict[str, Any] | Outcome:
    """The order a question without an order number is about: the one recent order in a plausible
    status (`spec.order_statuses`; with `any_status`, any recent order when none is), or a
    question listing them."""
    intent = spec.name
    statuses = list(spec.order_statuses)
    rows = ctx.run("orders.recent_for_customer", customer_id=customer_id, statuses=statuses, limit=MAX_LIST)
    if not rows and statuses and any_status:
        rows = ctx.run("orders.recent_for_customer", customer_id=customer_id, statuses=[], limit=MAX_LIST)
    if not rows:
        return Outcome(Retrieval(intent=intent, status="not_found", query_name="orders.recent_for_customer",
                                 prompt=NoOrders(statuses=statuses)), entities)
    if len(rows) == 1:
        return rows[0]
    refs = [order_ref(r) for r in rows]
    pending = PendingClarification(kind="order", intent=intent, entity_type="ORDER_ID", candidates=refs,
                                   resolved=[entity_ref(e) for e in entities if e.node_id])
    facts: list[Fact] = []
    for r in rows:
        option = OrderOptionFact(**_order_data(r, ("order_id", "status", "placed_at", "total", "currency")))
        if r.get("first_item"):
            option.first_item = r["first_item"]
            option.item_count = r.get("item_count")
        facts.append(option)
    return Outcome(Retrieval(intent=intent, status="clarify", facts=facts, query_name="orders.recent_for_customer",
                             prompt=WhichOrder(options=[r.name for r in refs])),
                   entities, listed=refs, clarification=pending)


def sign_in_first(ask: Ask) -> Outcome | None:
    """Without a signed-in customer nothing about any order is looked up, and order mentions are
    reported without a node: the shopper is asked to sign in."""
    if ask.customer_id:
        return None
    return Outcome(Retrieval(intent=ask.intent, status="need_sign_in"), strip_orders(ask.entities))


def find_order(ask: Ask, ctx: Context, spec: IntentSpec, customer_id: str, *, any_status: bool = False
               ) -> tuple[dict[str, Any], list[Entity]] | Outcome:
    """The order an order question is about, read through the signed-in customer: the one named
    (or "not found", the same for someone else's), or a recent one in a plausible status. Returns
    the order row and the entities as they should be reported, or an Outcome to reply with."""
    entities = ask.entities
    oid_e = entity_of(entities, "ORDER_ID")
    if oid_e is None:
        picked = pick_recent(ctx, spec, entities, customer_id, any_status=any_status)
        if isinstance(picked, Outcome):
            return picked
        entities = entities + [Entity(type="ORDER_ID", text=str(picked["order_id"]),
                                      node_id=str(picked["order_id"]), score=1.0, source="context")]
        return picked, entities
    oid = normalise_order_id(oid_e.node_id or oid_e.text)
    found = ctx.run("orders.by_id_for_customer", customer_id=customer_id, order_id=oid)
    if not found:
        return order_not_found(ask.intent, entities, oid)
    entities = [e.model_copy(update={"node_id": oid, "score": 1.0, "candidates": [], "ambiguous": False})
                if e is oid_e else e for e in entities]
    return found[0], entities


def owned(facts: list[Fact], customer_id: str) -> list[Fact]:
    """Marks personal facts as the signed-in customer's: they were reached through that customer,
    and saying so lets the safety filter show the shopper their own address instead of masking it."""
    for f in facts:
        if isinstance(f, OwnedFact) and "customer_id" not in f.model_fields_set:
            f.customer_id = customer_id
    return facts


# -- policies ------------------------------------------------------------------------------------
def policy_fact(row: dict[str, Any], currency: str, *, for_: str | None = None, sku: str | None = None
                ) -> PolicyFact:
    """A policy row as a fact, with what the question was about (`for_`, `sku`) when given."""
    data: dict[str, Any] = {k: row.get(k) for k in ("policy_id", "type", "title", "text", "days", "fee", "scope")}
    data["fee"] = round_money(data.get("fee"))
    if data["fee"] is not None:
        data["currency"] = currency
    data["applies_to"] = row.get("target") or "store"
    data["for_"] = for_
    data["sku"] = sku
    return PolicyFact(**{k: v for k, v in data.items() if v is not None})


def best_by_type(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The most specific policy of each type (lowest rank; policy id breaks ties): a sku policy
    beats a brand one, which beats a category one (nearest first), which beats the store-wide one."""
    best: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["rank"], r.get("policy_id") or "")):
        best.setdefault(r["type"], r)
    return best


def item_policies(ctx: Context, customer_id: str, order_id: str, type_: str,
                  items: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any] | None]:
    """The most specific policy of a type for each item of an order (the store-wide one for an
    order without items, under the key "")."""
    if items is None:
        items = ctx.run("orders.items_for_customer", customer_id=customer_id, order_id=order_id)
    out: dict[str, dict[str, Any] | None] = {}
    for it in items:
        out[it["sku"]] = best_by_type(ctx.run("policies.for_product", sku=it["sku"], types=[type_])).get(type_)
    if not items:
        store = ctx.run("policies.store_wide", types=[type_])
        if store:
            out[""] = store[0]
    return out


def return_window_facts(windows: list[dict[str, Any]]) -> list[Fact]:
    """qa/actions.return_windows as facts."""
    return [ReturnWindowFact(**{k: v for k, v in w.items() if v is not None}) for w in windows]


# -- procedures ------------------------------------------------------------------------------------
def hit_fact(h: Hit) -> Fact:
    if h.kind == "faq":
        return FaqFact(question=h.title, answer=h.text, topic=h.topic, score=h.score)
    return PolicyTextFact(policy_id=h.id, title=h.title, text=h.text, type=h.topic, score=h.score)


def procedure_facts(ctx: Context, text: str, topics: Sequence[str], limit: int = 1) -> list[Fact]:
    """The best FAQ or policy texts for a question, above the search's threshold."""
    if ctx.procedures is None:
        return []
    hits = [h for h in ctx.procedures.search(text, topics=topics, k=3) if h.score >= ctx.procedures.threshold]
    return [hit_fact(h) for h in hits[:limit]]


def procedure_answer(ctx: Context, intent: str, entities: list[Entity], message: str,
                     topics: Sequence[str]) -> Outcome:
    """A how-to question answered from the best FAQ or policy text, or a person offered."""
    if ctx.procedures is None:
        return Outcome(Retrieval(intent=intent, status="no_answer", prompt=OfferHuman()), entities)
    hits = ctx.procedures.search(message, topics=topics, k=3)
    good = [h for h in hits if h.score >= ctx.procedures.threshold]
    if not good:
        return Outcome(Retrieval(intent=intent, status="no_answer", query_name="procedures.corpus",
                                 prompt=OfferHuman(best_score=hits[0].score if hits else None)), entities)
    return Outcome(Retrieval(intent=intent, status="procedure", facts=[hit_fact(good[0])],
                             query_name="procedures.corpus", prompt=ProcedureMatch(score=good[0].score)), entities)
