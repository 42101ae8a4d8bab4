"""Store policies: returns and refunds, cancellation fees, delivery options and times, payment
methods (DESIGN section 4, "Store policies").

A policy question is answered with the policy that applies, and that policy leads the answer: the
most specific one of the asked type (a sku policy beats a brand one, which beats a category one,
nearest first, which beats the store-wide one: shared.best_by_type) for the product asked about,
else its brand or category, else the store. The product is resolved first, even when the shopper
names it partially or misspelt ("the lumen pocket notebooks" read by the model as a brand and a
category is still that notebook, under its category's rule). The other rules that apply (the
ones it overrides, the other types) are given on request ("are there other rules?").

Asked about one of the signed-in customer's orders, the answer is that order's own: each item's
return window and its deadline (from the delivery date, or the ship date when the shop recorded
no delivery), one item's when the shopper points at one ("can I return the first item?"), what
cancelling costs now under the shop's cancellation policy (qa/actions.py reads its conditions),
when it arrives.

Delivery methods, carriers and countries are things one can ask about: "how much is express
shipping?", "do you ship to Canada?" (answered from the methods' regions, and "I don't know" when
the shop's data lists none), "how much is shipping with <carrier>?". A question the model read as
a product question but that is about shipping is taken here (`takes`).
"""

from __future__ import annotations

import re
from typing import Any

from nlu.types import Entity
from qa import actions
from qa.facts import (
    CancellationFeeFact,
    CancellationTermsFact,
    CarrierFact,
    Fact,
    OrderFact,
    PaymentMethodFact,
    PolicyFact,
    ReturnWindowFact,
    ShippingMethodFact,
    ShippingRegionFact,
    facts_of,
    first_of,
)
from qa.handlers.base import Ask, Context, Handler, IntentSpec, Outcome
from qa.handlers.shared import (
    best_by_type,
    entity_of,
    entity_value,
    item_policies,
    normalise_order_id,
    order_fact,
    order_not_found,
    order_ref,
    policy_fact,
    product_ref,
    resolve_products,
    return_window_facts,
    round_money,
    strip_orders,
)
from qa.handlers.wording import Picker, day, display, join, money
from qa.places import codes_of, country_name, places_in, regions_in
from qa.prompts import OtherRules, Subject
from qa.state import Ref
from qa.text import FILLER, has_phrase, norm, word_matches, words
from qa.types import Retrieval


# -- reply writers (status "ok") -----------------------------------------------------------------------
def _sentences(text: str | None) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", (text or "").strip()) if s.strip()]


def the(name: str) -> str:
    """A product name with "the" in front, unless it starts with an article ("A Brief History of Time")."""
    shown = display(name)
    return shown if re.match(r"(?i)(the|a|an)\s", shown) else f"the {shown}"


def _subject(target: Subject | None) -> tuple[str, str]:
    """How the answer names what was asked about: (as an object, as a sentence's subject)."""
    if target is None or not target.for_:
        return "items", "Items"
    if target.sku:
        obj = the(target.for_)
        return obj, obj[0].upper() + obj[1:]
    return f"{target.for_} items", f"{target.for_} items"


def _why(p: PolicyFact) -> str:
    """The policy's title, and which rule it is when it is not the store-wide one."""
    if p.scope == "sku":
        return f"\"{p.title}\", our rule for this product"
    if p.scope not in (None, "store") and p.applies_to:
        return f"\"{p.title}\", our rule for {display(p.applies_to)}"
    return f"\"{p.title}\""


def _return_lead(p: PolicyFact, target: Subject | None) -> str:
    obj, subj = _subject(target)
    fee = f"; a fee of {money(p.fee, p.currency)} applies" if p.fee else ""
    if p.days == 0:
        return f"{subj} can't be returned ({_why(p)})."
    if p.days is not None:
        return f"You can return {obj} within {p.days} days of delivery{fee} ({_why(p)})."
    return f"For {obj}, our return rule is {_why(p)}{fee}."


def _detail(p: PolicyFact, lead: str) -> str:
    """The policy's own words that add to the lead: its first sentence, or the one about the fee."""
    sentences = _sentences(p.text)
    if not sentences:
        return ""
    if p.fee and money(p.fee, p.currency) not in lead:
        for pattern in (re.escape(f"{p.fee:.2f}"), r"\bfees?\b", r"\b(charged?|costs?)\b"):
            about_fee = [s for s in sentences if re.search(pattern, s, re.I)]
            if about_fee:
                return about_fee[0]
    return sentences[0]


_NOT_SHIPPED_Q = re.compile(r"\b(hasn'?t|has not|haven'?t|not yet|not been|isn'?t|before (it|they)?\s*(ships?|is shipped|"
                            r"leaves?)|unshipped|not shipped|before shipping|before dispatch)\b")
_SHIPPED_Q = re.compile(r"\b(already shipped|has shipped|have shipped|after (it|they)?\s*(has|have)?\s*shipped|"
                        r"shipped orders?|once (it|they)?\s*(has|have)?\s*shipped|on (its|the) way|in transit)\b")


def _cancel_terms_text(t: CancellationTermsFact, p: PolicyFact | None, target: Subject | None) -> str:
    fee = money(t.fee, t.currency) if t.fee else None
    obj, _ = _subject(target)
    about = "" if target is None or not target.for_ else f" for {obj}"
    why = f" ({_why(p)})" if p is not None else ""
    not_shipped, shipped = t.asked == "unshipped", t.asked == "shipped"
    if t.free_days is not None:
        span = (f"{t.free_days * 24:g} hours" if t.free_days < 3 else f"{t.free_days:g} days")
        after = f"; after that it costs {fee}" if fee else ""
        return f"You can cancel an order{about} free of charge within {span} of placing it{after}{why}."
    if not_shipped:
        return f"Cancelling an order{about} that hasn't shipped yet is free of charge{why}."
    if t.after_shipping and fee:
        if shipped:
            return f"Cancelling an order{about} that has already shipped costs {fee}{why}."
        return f"You can cancel an order{about} free of charge until it ships; after that, cancelling costs {fee}{why}."
    if shipped:
        return f"An order{about} that has already shipped can no longer be cancelled{why}."
    if t.not_after_shipping:
        return f"You can cancel an order{about} free of charge until it ships; after that it can no longer be " \
               f"cancelled{why}."
    return f"You can cancel an order{about} free of charge until it ships{why}."


def write_policy(r: Retrieval, pick: Picker) -> str:
    windows = facts_of(r.facts, ReturnWindowFact)
    o = first_of(r.facts, OrderFact)
    if windows or (o is not None and r.intent == REFUND_POLICY.name):
        return _write_windows(o, windows, r.prompt if isinstance(r.prompt, Subject) else None)
    f = first_of(r.facts, CancellationFeeFact)
    if f is not None:
        return _write_order_cancellation(f, pick)
    target = r.prompt if isinstance(r.prompt, Subject) else None
    if isinstance(r.prompt, OtherRules):
        return _write_other_rules(r)
    pols = facts_of(r.facts, PolicyFact)
    terms = first_of(r.facts, CancellationTermsFact)
    if terms is not None:
        lead = _cancel_terms_text(terms, pols[0] if pols else None, target)
        detail = _detail(pols[0], lead) if pols and terms.asked != "unshipped" and \
            terms.fee and money(terms.fee, terms.currency) not in lead else ""
        return f"{lead} {detail}".strip()
    if not pols:
        return "I couldn't find a policy for that."
    p = pols[0]
    if p.type == "return":
        lead = _return_lead(p, target)
    else:
        obj, _ = _subject(target)
        about = "" if target is None or not target.for_ else f" for {obj}"
        lead = pick("pol_" + p.type, (f"Our {p.type} policy{about} is {_why(p)}.",
                                      f"The {p.type} rule{about} is {_why(p)}."))
    return f"{lead} {_detail(p, lead)}".strip()


def _write_other_rules(r: Retrieval) -> str:
    p = r.prompt if isinstance(r.prompt, OtherRules) else None
    about = f" to {the(p.for_)}" if p is not None and p.for_ and p.sku else \
        f" to {p.for_}" if p is not None and p.for_ else ""
    pols = facts_of(r.facts, PolicyFact)
    if not pols:
        return f"No other rules apply{about}."
    lines = []
    for x in pols:
        where = "store-wide" if x.scope in (None, "store") else f"for {display(x.applies_to)}"
        over = f"; here \"{x.overridden_by}\" applies instead" if x.overridden_by else ""
        first = _sentences(x.text)[:1]
        lines.append(f"- \"{x.title}\" ({x.type}, {where}{over})" + (f": {first[0]}" if first else ""))
    return f"Other rules that apply{about}:\n" + "\n".join(lines)


def _write_windows(o: OrderFact | None, windows: list[ReturnWindowFact], item: Subject | None = None) -> str:
    """An order's return windows: the order's deadline when its items share one, else each item's;
    `item`: the one item the shopper asked about."""
    oid = o.order_id if o is not None else ""
    status = o.status if o is not None else None
    if status == "returned":
        return f"Order {oid} has already been returned."
    if status == "cancelled":
        return f"Order {oid} was cancelled, so there is nothing to return."
    if not windows:
        return f"Order {oid} has no items that could be returned."
    one = len(windows) == 1

    def what(w: ReturnWindowFact) -> str:
        return the(w.name or w.sku)

    never = [w for w in windows if w.days == 0]
    unknown = [w for w in windows if w.days is None]
    timed = [w for w in windows if w.days]
    out: list[str] = []
    if status not in ("delivered",):
        spans = sorted({w.days for w in timed if w.days})
        if spans:
            per = join([f"{d} days" for d in spans], "or")
            out.append(f"Order {oid} hasn't been delivered yet (it is {status}). Once it arrives, you'll have "
                       f"{per} from delivery to return " + ("it." if one or len(spans) == 1 else "the items."))
        elif not never:
            out.append(f"Order {oid} hasn't been delivered yet (it is {status}); returns open once it arrives.")
    else:
        groups: dict[tuple[bool, str | None, int | None], list[ReturnWindowFact]] = {}
        for w in timed:
            groups.setdefault((w.open, w.deadline, w.days), []).append(w)
        for (is_open, deadline, days), ws in groups.items():
            since = ws[0]
            basis = ("" if since.counted_from != "shipping" else
                     f" counted from {day(since.since)}, the day it shipped: no delivery date was recorded")
            items = (f"{what(ws[0])} from order {oid}" if item is not None else f"order {oid}") \
                if len(ws) == len(windows) else join([what(w) for w in ws])
            if is_open:
                out.append(f"Yes, you can still return {items} until {day(deadline)} ({days}-day window{basis}).")
            else:
                out.append(f"The return window for {items} closed on {day(deadline)} ({days} days{basis}).")
    if never:
        titles = sorted({w.policy_title for w in never if w.policy_title})
        why = f" ({join([chr(34) + t + chr(34) for t in titles])})" if titles else ""
        items = f"the items of order {oid}" if len(never) == len(windows) else join([what(w) for w in never])
        out.append(f"{items[0].upper() + items[1:]} can't be returned{why}.")
    if unknown:
        out.append(f"I couldn't find a return policy for {join([what(w) for w in unknown])}.")
    return " ".join(out)


def _write_order_cancellation(f: CancellationFeeFact, pick: Picker) -> str:
    oid = f.order_id
    if not f.cancellable:
        if f.status == "delivered":
            return f"Order {oid} has already been delivered, so it can't be cancelled; you can return it instead."
        if f.status == "shipped":
            return f"Order {oid} has already shipped, so it can no longer be cancelled."
        if f.status in ("cancelled", "returned"):
            return f"Order {oid} is already {f.status}."
        return f"Order {oid} is {f.status}, so it can no longer be cancelled."
    why = f" (\"{f.policy}\")" if f.policy else ""
    if f.fee:
        because = " because it has already shipped" if f.status == "shipped" else ""
        return f"Cancelling order {oid} now costs {money(f.fee, f.currency)}{because}{why}."
    yet = " (it hasn't shipped yet)" if f.status in actions.CANCELLABLE else ""
    return pick("cf0", (f"Cancelling order {oid} is free of charge right now{yet}.",
                        f"You can cancel order {oid} at no cost right now{yet}."))


def _method_line(m: ShippingMethodFact, *, with_cost: bool = True) -> str:
    if m.min_days is None and m.max_days is None:
        days = ""
    elif m.min_days == m.max_days == 1:
        days = f"{m.min_days} business day"
    elif m.min_days == m.max_days:
        days = f"{m.min_days} business days"
    else:
        days = f"{m.min_days} to {m.max_days} business days"
    bits = [days] if days else []
    if with_cost:
        bits.append("free" if not m.cost else money(m.cost, m.currency))
        if m.free_over:
            bits.append(f"free over {money(m.free_over, m.currency)}")
    return f"{m.name}: " + ", ".join(bits)


def write_shipping(r: Retrieval, pick: Picker) -> str:
    out = []
    o = first_of(r.facts, OrderFact)
    if o is not None:
        via = f" with {o.carrier}" if o.carrier else ""
        if o.status == "shipped":
            sent = f" It shipped on {day(o.shipped_at)}{via}." if o.shipped_at else ""
            out.append(f"Order {o.order_id} should arrive by {day(o.eta)}.{sent}" if o.eta else
                       f"Order {o.order_id} is on its way.{sent}")
        elif o.status == "delivered":
            out.append(f"Order {o.order_id} was delivered on {day(o.delivered_at)}." if o.delivered_at else
                       f"Order {o.order_id} has been delivered.")
        else:
            out.append(f"Order {o.order_id} is {o.status}.")
        return " ".join(out)
    period = r.intent == DELIVERY_PERIOD.name
    methods = facts_of(r.facts, ShippingMethodFact)
    region = first_of(r.facts, ShippingRegionFact)
    carrier = first_of(r.facts, CarrierFact)
    if region is not None:
        place = region.place
        if region.served is None:
            out.append(f"I don't know whether we ship to {place}: our delivery options don't say which countries "
                       "they cover.")
        elif not region.served:
            where = f" We deliver to {join(region.regions)}." if region.regions else ""
            return pick("reg_no", (f"Sorry, we don't ship to {place}.{where}",
                                   f"Unfortunately we don't deliver to {place}.{where}"))
        else:
            lines = [_method_line(m, with_cost=not period) for m in methods]
            if len(lines) == 1:
                return f"Yes, we ship to {place} with {lines[0]}."
            return f"Yes, we ship to {place}:\n" + "\n".join(f"- {x}" for x in lines)
    if carrier is not None:
        used = f" (for {join(carrier.methods)} delivery)" if carrier.methods else ""
        out.append(f"We ship with {carrier.name}{used}.")
    for p in facts_of(r.facts, PolicyFact):
        out.append(f"{p.title}: {p.text}")
    lines = [f"- {_method_line(m, with_cost=not period)}" for m in methods]
    if len(methods) == 1 and region is None:
        out.append(_method_line(methods[0], with_cost=not period) + ".")
    elif lines:
        head = (pick("dp", ("Delivery times:", "How long delivery takes:")) if period
                else pick("do", ("We offer these delivery options:", "You can choose from:")))
        out.append(head + "\n" + "\n".join(lines))
    return "\n".join(out)


def write_payment_methods(r: Retrieval, pick: Picker) -> str:
    head = pick("pm", ("We accept:", "You can pay with:"))
    return head + "\n" + "\n".join(f"- {m.name}" + (f": {m.description}" if m.description else "")
                                   for m in facts_of(r.facts, PaymentMethodFact))


# -- the intents ---------------------------------------------------------------------------------------
REFUND_POLICY = IntentSpec(
    "check_refund_policy", write=write_policy,
    suggestions=("Are there other rules?", "How do I start a return?", "When will I get my refund?"),
    cue=re.compile(r"\b(return|returns|refund policy|send it back)\b"),
    order_context=True)
CANCELLATION_FEE = IntentSpec(
    "check_cancellation_fee", write=write_policy,
    suggestions=("Cancel my order", "Are there other rules?"),
    cue=re.compile(r"\b(cancellation fee|cost to cancel|fee)\b"),
    order_context=True)
DELIVERY_OPTIONS = IntentSpec(
    "delivery_options", write=write_shipping,
    suggestions=("How long does delivery take?", "Which payment methods do you accept?"),
    cue=re.compile(r"\b(shipping options|delivery options|express|shipping methods?|ship to|deliver to)\b"))
DELIVERY_PERIOD = IntentSpec(
    "delivery_period", write=write_shipping,
    suggestions=("Which delivery options do you have?",),
    cue=re.compile(r"\b(how long|delivery time|days)\b"),
    order_context=True)
PAYMENT_METHODS = IntentSpec(
    "check_payment_methods", write=write_payment_methods,
    suggestions=("My payment was declined", "Which delivery options do you have?"))

# The policy types each policy question reads; the first leads the answer.
_POLICY_TYPES: dict[str, list[str]] = {
    REFUND_POLICY.name: ["return", "refund"],
    CANCELLATION_FEE.name: ["cancellation"],
    DELIVERY_PERIOD.name: ["shipping"],
}
_REFUND_WORDS = re.compile(r"\b(refunds?|refunded|money|reimburse\w*|paid back|pay (me )?back)\b")
_RETURN_ASKED = re.compile(r"\b(can (i|we|you) (still )?return|return (window|policy|period|rules?)|to return|returnable|"
                           r"send (it|them) back|exchange)\b")
_OTHER_RULES = re.compile(
    r"\b(other|more|any other|else|additional|further|all the|all your|remaining)\b[\w\s']{0,20}"
    r"\b(rules?|polic(y|ies)|conditions?|terms|restrictions?)\b"
    r"|\b(rules?|polic(y|ies)|conditions?)\b[\w\s']{0,20}\b(else|too|as well|also apply|besides)\b")
_SHIPPING_WORDS = re.compile(r"\b(ship|ships|shipping|shipped|delivery|deliver|delivers|postage|carriers?|"
                             r"couriers?|parcel|dispatch)\b")
_HOW_LONG = re.compile(r"\b(how long|how many (business |working )?days|how fast|how quick(ly)?|when will .* arrive|"
                       r"delivery time)\b")
_FOLLOW_UP = re.compile(r"\b(that|it|this|there|them)\b|^\s*(and|what about|how about)\b")
_ITEM_ORDINAL = re.compile(r"\bthe (first|second|third|fourth|fifth|last|1st|2nd|3rd|4th|5th)\b"
                           r"(?! (?:week|day|days|month|months|year|time|few|two|three|order))"
                           r"|\bitem (?:no\.? ?|number |#)?([1-9])\b")
_ORDINAL_INDEX = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
                  "fifth": 4, "5th": 4, "last": -1}
_ITEM_STOP = frozenset({"return", "returns", "returned", "refund", "order", "orders", "item", "items", "still",
                        "send", "back", "window", "days", "can", "could", "cancel", "cost", "much", "how", "long",
                        "have", "policy", "from", "there", "get", "do", "does", "all", "any"})
# product questions a shipping question is mistaken for
_REROUTABLE = ("product_price", "product_details", "product_availability", "out_of_scope")


def _asked_about(message: str) -> str | None:
    """Which orders a cancellation question is about: "unshipped", "shipped" or None (any)."""
    text = norm(message)
    if _NOT_SHIPPED_Q.search(text):
        return "unshipped"
    return "shipped" if _SHIPPED_Q.search(text) else None


class Policies(Handler):
    family = "policies"
    names_products = True
    intents = (REFUND_POLICY, CANCELLATION_FEE, DELIVERY_OPTIONS, DELIVERY_PERIOD, PAYMENT_METHODS)
    queries = frozenset({
        "policies.payment_methods", "policies.shipping_methods", "policies.for_product", "policies.for_brand",
        "policies.for_category", "policies.store_wide", "policies.carriers",
        "orders.by_id_for_customer", "orders.items_for_customer",
        "products.by_skus",
    })

    # -- shipping questions the model read as something else -----------------------------------------
    def takes(self, ask: Ask, ctx: Context) -> str | None:
        """A product (or unclear) question that is really about delivery: it speaks of shipping and
        names no product of its own ("how much is shipping with DHL?", "what does shipping to the
        UK cost?"), names a delivery method or a country the shop ships to ("how much is express?"),
        or follows a delivery answer ("how much does that cost?"); or one that asks for the other
        rules right after a policy answer."""
        if ask.intent not in _REROUTABLE:
            return None
        text = norm(ask.message)
        last = ask.state.last_intent
        if last in (REFUND_POLICY.name, CANCELLATION_FEE.name) and _OTHER_RULES.search(text):
            return last  # "any other conditions?" after a policy answer: the others, on request
        said_product = any(e.type == "PRODUCT" and e.source == "message" for e in ask.entities)
        any_product = any(e.type in ("PRODUCT", "BRAND", "CATEGORY") for e in ask.entities)
        if said_product:
            return None
        shipping = bool(_SHIPPING_WORDS.search(text))
        follows = last in (DELIVERY_OPTIONS.name, DELIVERY_PERIOD.name) and bool(_FOLLOW_UP.search(text)) and \
            not any_product
        named = not (shipping or follows or any_product) and (
            (ask.intent != "out_of_scope" and bool(places_in(ask.message))) or bool(self._named_methods(ctx, ask)))
        if not (shipping or follows or named):
            return None
        return DELIVERY_PERIOD.name if _HOW_LONG.search(text) else DELIVERY_OPTIONS.name

    # -- retrieval -----------------------------------------------------------------------------------
    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        intent, entities = ask.intent, ask.entities
        if intent == PAYMENT_METHODS.name:
            rows = ctx.run("policies.payment_methods")
            facts: list[Fact] = [PaymentMethodFact(**{k: v for k, v in r.items() if v is not None}) for r in rows]
            return Outcome(Retrieval(intent=intent, status="ok" if rows else "not_found", facts=facts,
                                     query_name="policies.payment_methods"), entities)
        if intent == DELIVERY_OPTIONS.name:
            return self._shipping(ctx, ask, entities, None)

        types = _POLICY_TYPES[intent]
        if intent == REFUND_POLICY.name and _REFUND_WORDS.search(norm(ask.message)) and \
                not _RETURN_ASKED.search(norm(ask.message)):
            types = ["refund", "return"]  # "when do I get my money back?": the refund rule leads
        oid_e = entity_of(entities, "ORDER_ID")
        if oid_e is None and ask.customer_id and intent != DELIVERY_PERIOD.name and \
                not any(e.type in ("PRODUCT", "BRAND", "CATEGORY") for e in entities) and \
                _ITEM_ORDINAL.search(norm(ask.message)) and ask.state.last_entities.get("ORDER_ID") is not None:
            # "can I return the first item?" after an order: that order's item
            last = ask.state.last_entities["ORDER_ID"]
            oid_e = Entity(type="ORDER_ID", text=last.name, node_id=last.node_id, score=1.0, source="context")
            entities = entities + [oid_e]
        if oid_e is not None:
            if not ask.customer_id:
                return Outcome(Retrieval(intent=intent, status="need_sign_in"), strip_orders(entities))
            oid = normalise_order_id(oid_e.node_id or oid_e.text)
            found = ctx.run("orders.by_id_for_customer", customer_id=ask.customer_id, order_id=oid)
            if not found:
                return order_not_found(intent, entities, oid)
            entities = [e.model_copy(update={"node_id": oid, "score": 1.0}) if e is oid_e else e for e in entities]
            return self._order_policy(ctx, ask, intent, found[0], entities, ask.customer_id)

        if _OTHER_RULES.search(norm(ask.message)) and intent != DELIVERY_PERIOD.name:
            return self._other_rules(ctx, ask, intent, entities)

        rows, entities, clarify = resolve_products(ctx, intent, entities)
        if clarify is not None:
            return clarify
        found, query, target, mentioned = self._applicable(ctx, types, rows, entities)
        best = best_by_type(found)
        about = {"for_": target.for_, "sku": target.sku} if target is not None else {}
        currency = ctx.currency
        policies: list[Fact] = [policy_fact(best[t], currency, **about) for t in types[:1] if t in best]
        if intent == DELIVERY_PERIOD.name:
            specific: list[Fact] = [f for f in policies if isinstance(f, PolicyFact) and f.scope != "store"]
            out = self._shipping(ctx, ask, entities, specific or None)
            out.mentioned = mentioned
            return out
        if intent == CANCELLATION_FEE.name and "cancellation" in best:
            terms = actions.cancel_terms(best["cancellation"])
            if terms is not None:
                policies.append(CancellationTermsFact(
                    policy_id=best["cancellation"].get("policy_id"), title=terms.title, fee=terms.fee or None,
                    currency=currency, free_days=terms.free_days, after_shipping=terms.after_shipping,
                    not_after_shipping=terms.not_after_shipping or None,
                    scope=best["cancellation"].get("scope"), applies_to=best["cancellation"].get("target") or "store",
                    for_=target.for_ if target is not None else None, asked=_asked_about(ask.message)))
        return Outcome(Retrieval(intent=intent, status="ok" if policies else "not_found", facts=list(policies),
                                 query_name=query, prompt=target), entities, mentioned=mentioned)

    def _applicable(self, ctx: Context, types: list[str], rows: list[dict[str, Any]], entities: list[Entity]
                    ) -> tuple[list[dict[str, Any]], str, Subject | None, list[Ref]]:
        """Every policy of the types that applies to the product asked about, else its brand or
        category, else the store, with the query, the subject and what to remember."""
        brand = entity_value(entity_of(entities, "BRAND"))
        category = entity_value(entity_of(entities, "CATEGORY"))
        if rows:
            return (ctx.run("policies.for_product", sku=rows[0]["sku"], types=types), "policies.for_product",
                    Subject(for_=rows[0].get("name"), sku=rows[0]["sku"]), [product_ref(rows[0])])
        if brand:
            return (ctx.run("policies.for_brand", brand=brand, types=types), "policies.for_brand", Subject(for_=brand),
                    [Ref(type="BRAND", node_id=brand, name=brand, label="Brand")])
        if category:
            return (ctx.run("policies.for_category", category=category, types=types), "policies.for_category",
                    Subject(for_=category), [Ref(type="CATEGORY", node_id=category, name=category, label="Category")])
        return ctx.run("policies.store_wide", types=types), "policies.store_wide", None, []

    def _other_rules(self, ctx: Context, ask: Ask, intent: str, entities: list[Entity]) -> Outcome:
        """"Are there other rules?": every policy that applies to what the conversation is about
        (the product, brand or category last discussed, else the store) except the one that led."""
        last = ask.state.last_entities
        subject_ents = [e for e in entities if e.type in ("PRODUCT", "BRAND", "CATEGORY")]
        if not subject_ents:
            for t in ("PRODUCT", "BRAND", "CATEGORY"):
                ref = last.get(t)
                if ref is not None and ref.node_id:
                    subject_ents = [Entity(type=t, text=ref.name, node_id=ref.node_id, score=1.0, source="context")]
                    break
        rows, subject_ents, clarify = resolve_products(ctx, intent, subject_ents)
        if clarify is not None:
            return clarify
        types = ["return", "refund", "cancellation", "warranty", "shipping"]
        found, query, target, mentioned = self._applicable(ctx, types, rows, subject_ents)
        lead_type = _POLICY_TYPES.get(intent, ["return"])[0]
        best = best_by_type(found)
        lead = best.get(lead_type)
        currency = ctx.currency
        about = {"for_": target.for_, "sku": target.sku} if target is not None else {}
        others: list[Fact] = []
        seen: set[str] = set()
        for r in sorted(found, key=lambda r: (r["type"] != lead_type, r["type"], r["rank"], r.get("policy_id") or "")):
            pid = r.get("policy_id") or ""
            if (lead is not None and pid == lead.get("policy_id")) or pid in seen:
                continue
            seen.add(pid)
            fact = policy_fact(r, currency, **about)
            winner = best.get(r["type"])
            if winner is not None and winner.get("policy_id") != pid:
                fact.overridden_by = winner.get("title")
            others.append(fact)
        prompt = OtherRules(for_=target.for_ if target is not None else None, sku=target.sku if target else None)
        return Outcome(Retrieval(intent=intent, status="ok", facts=others, query_name=query, prompt=prompt),
                       entities + [e for e in subject_ents if e not in entities], mentioned=mentioned)

    # -- delivery ----------------------------------------------------------------------------------------
    def _named_methods(self, ctx: Context, ask: Ask, rows: list[dict[str, Any]] | None = None
                       ) -> list[dict[str, Any]]:
        """Delivery methods a message names (of `rows`, by default the shop's), product names in it
        blanked ("murder on the orient express" names no method)."""
        text = ask.message
        for e in sorted((e for e in ask.entities if e.start is not None and e.end is not None and
                         e.type == "PRODUCT"), key=lambda e: -(e.start or 0)):
            text = text[: e.start] + " " + text[e.end:]
        low = norm(text)
        rows = ctx.run("policies.shipping_methods") if rows is None else rows
        return [m for m in rows if m.get("name") and has_phrase(low, norm(m["name"]))]

    def _shipping(self, ctx: Context, ask: Ask, entities: list[Entity], extra: list[Fact] | None) -> Outcome:
        intent = ask.intent
        currency = ctx.currency
        rows = ctx.run("policies.shipping_methods")
        methods = []
        for r in rows:
            data = {k: v for k, v in r.items() if v not in (None, "")}
            for k in ("cost", "free_over"):
                if k in data:
                    data[k] = round_money(data[k])
            data["currency"] = currency
            methods.append(ShippingMethodFact(**data))
        facts = list(extra or [])
        mentioned: list[Ref] = []
        named = {m["name"] for m in self._named_methods(ctx, ask, rows)}
        shown = [m for m in methods if m.name in named] or methods
        text = norm(ask.message)
        all_regions = list(dict.fromkeys(r for m in methods for r in (m.regions or [])))
        places = places_in(ask.message)
        region_names = regions_in(ask.message, all_regions)
        place: tuple[str, frozenset[str] | None] | None = None
        if places:
            place = (country_name(places[0]), frozenset({places[0]}))
        elif region_names:
            place = (region_names[0], codes_of(region_names[0]))
        elif not named and ask.state.last_entities.get("PLACE") is not None and _FOLLOW_UP.search(text) and \
                ask.state.last_intent in (DELIVERY_OPTIONS.name, DELIVERY_PERIOD.name):
            ref = ask.state.last_entities["PLACE"]
            place = (ref.name, frozenset(ref.values) or codes_of(ref.name))
        if place is not None:
            name, codes = place
            listed = [m for m in methods if m.regions]
            serving = [m for m in listed if any(r.lower() == name.lower() or (codes and (codes_of(r) or set()) & codes)
                                                for r in (m.regions or []))]
            if named:  # "how much is express to Austria?": the methods named, if they go there
                serving = [m for m in serving if m.name in named] or serving
            served = None if not listed else bool(serving)
            facts.append(ShippingRegionFact(place=name, served=served, methods=[m.name for m in serving],
                                            regions=all_regions))
            shown = serving if served else ([] if served is False else shown)
            mentioned.append(Ref(type="PLACE", node_id=name, name=name, label="Place", values=sorted(codes or [])))
        else:
            carriers = [c for c in ctx.run("policies.carriers") if c.get("carrier") and has_phrase(text, norm(c["carrier"]))]
            if carriers:
                best = max(carriers, key=lambda c: len(c["carrier"]))
                used = [x for x in (best.get("methods") or []) if x]
                facts.append(CarrierFact(name=best["carrier"], methods=used))
                shown = [m for m in methods if m.name in used] or shown
        facts += shown
        if not methods and not facts:
            return Outcome(Retrieval(intent=intent, status="not_found", query_name="policies.shipping_methods"),
                           entities)
        return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="policies.shipping_methods"),
                       entities, mentioned=mentioned)

    # -- one order ---------------------------------------------------------------------------------------
    def _order_policy(self, ctx: Context, ask: Ask, intent: str, order: dict[str, Any], entities: list[Entity],
                      customer_id: str) -> Outcome:
        oid = str(order["order_id"])
        ref = order_ref(order)
        base = order_fact(order, ("order_id", "status", "placed_at", "shipped_at", "delivered_at", "eta", "carrier",
                                  "total", "currency"))
        if intent == REFUND_POLICY.name:
            items = ctx.run("orders.items_for_customer", customer_id=customer_id, order_id=oid)
            pointed = _designated(ask.message, entities, items)
            policies = item_policies(ctx, customer_id, oid, "return", items=pointed or items)
            windows = actions.return_windows(order, pointed or items, policies, ctx.clock().date())
            facts: list[Fact] = [base, *return_window_facts(windows)]
            item = Subject(for_=pointed[0].get("name"), sku=pointed[0]["sku"]) if len(pointed) == 1 else None
            return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="policies.for_product",
                                     prompt=item), entities, mentioned=[ref])
        if intent == CANCELLATION_FEE.name:
            policies = item_policies(ctx, customer_id, oid, "cancellation")
            pols = [p for p in policies.values() if p]
            fee, pol = actions.cancellation_fee(order, pols, ctx.clock())
            terms = [t for t in (actions.cancel_terms(p) for p in pols) if t is not None]
            fact = CancellationFeeFact(order_id=oid, status=order.get("status"),
                                       cancellable=order.get("status") in actions.cancellable_statuses(pols),
                                       fee=fee, currency=order.get("currency") or ctx.currency)
            if pol:
                fact.policy = pol.get("title")
            elif terms and terms[0].title:
                fact.policy = terms[0].title
            return Outcome(Retrieval(intent=intent, status="ok", facts=[base, fact], query_name="policies.for_product"),
                           entities, mentioned=[ref])
        # delivery_period for an order: its own dates
        out = self._shipping(ctx, ask, entities, [base])
        out.retrieval.facts = [base]
        out.mentioned = [ref]
        return out


def _designated(message: str, entities: list[Entity], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The item of an order a question points at: a product it names, "the first item", "item 2",
    or a word of one item's name ("can I return the notebook from that order?")."""
    if not items:
        return []
    ids = {e.node_id for e in entities if e.type == "PRODUCT" and e.node_id}
    hit = [it for it in items if it["sku"] in ids]
    if hit:
        return hit
    text = norm(message)
    m = _ITEM_ORDINAL.search(text)
    if m:
        idx = _ORDINAL_INDEX[m.group(1)] if m.group(1) else int(m.group(2)) - 1
        if -len(items) <= idx < len(items):
            return [items[idx]]
    said = [w for w in words(text) if w not in FILLER and w not in _ITEM_STOP and len(w) >= 4]
    if len(items) > 1 and said:
        named = [it for it in items if any(word_matches(w, n) for w in said for n in words(it.get("name") or ""))]
        if len(named) == 1:
            return named
    return []
