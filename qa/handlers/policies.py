"""Store policies: returns and refunds, cancellation fees, delivery options and times, payment
methods (DESIGN section 4, "Store policies").

A policy question is answered with the most specific policy of each type that applies (a sku
policy beats a brand one, which beats a category one, which beats the store-wide one: see
shared.best_by_type) for the product, brand or category asked about, or store-wide. Asked about one
of the signed-in customer's orders, the answer is that order's own: the return window of each
item, what cancelling costs now, when it arrives.
"""

from __future__ import annotations

import re
from typing import Any

from nlu.types import Entity
from qa import actions
from qa.facts import (
    CancellationFeeFact,
    Fact,
    OrderFact,
    PaymentMethodFact,
    PolicyFact,
    ReturnWindowFact,
    ShippingMethodFact,
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
from qa.handlers.wording import Picker, day, display, money, named
from qa.prompts import Subject
from qa.state import Ref
from qa.types import Retrieval


# -- reply writers (status "ok") -----------------------------------------------------------------------
def write_policy(r: Retrieval, pick: Picker) -> str:
    windows = facts_of(r.facts, ReturnWindowFact)
    if windows:
        o = first_of(r.facts, OrderFact)
        status = o.status if o is not None else None
        oid = o.order_id if o is not None else None
        lines = []
        for w in windows:
            name = display(w.name or w.sku)
            if status != "delivered" and not w.deadline:
                continue
            if w.open:
                lines.append(f"You can return the {name} until {day(w.deadline)} ({w.days}-day window).")
            elif w.deadline:
                lines.append(f"The return window for the {name} closed on {day(w.deadline)}.")
        if not lines:
            return (f"Order {oid} is {status}; returns open once it has been delivered."
                    if status in ("placed", "paid", "shipped") else f"Order {oid} is {status}, "
                    "so there is nothing to return.")
        return " ".join(lines)
    f = first_of(r.facts, CancellationFeeFact)
    if f is not None:
        if not f.cancellable:
            return f"Order {f.order_id} is {f.status}, so it can no longer be cancelled."
        if f.fee:
            return f"Cancelling order {f.order_id} now costs {money(f.fee, f.currency)}" + (
                f" ({f.policy})." if f.policy else ".")
        return pick("cf0", (f"Cancelling order {f.order_id} is free of charge.",
                            f"You can cancel order {f.order_id} at no cost."))
    pols = facts_of(r.facts, PolicyFact)
    if not pols:
        return "I couldn't find a policy for that."
    target = r.prompt if isinstance(r.prompt, Subject) else None
    about = target.for_ if target is not None else None
    subject = (named(about) if target is not None and target.sku else about) if about else ""
    out = []
    for p in pols:
        kind = p.type
        title = p.title
        if subject:
            head = pick("pol_" + kind, (f"Our {kind} policy for {subject} is \"{title}\".",
                                        f"For {subject}, the {kind} rule is \"{title}\"."))
        else:
            head = pick("pol_" + kind, (f"Our {kind} policy is \"{title}\".",
                                        f"The store-wide {kind} rule is \"{title}\"."))
        if p.scope not in (None, "store") and p.applies_to:
            head += f" It applies to {p.applies_to} and takes precedence over the store-wide rule."
        nums = []
        if p.days is not None and kind in ("return", "cancellation"):
            label = "Return window" if kind == "return" else "Free cancellation window"
            nums.append(f"{label}: {p.days} days.")
        if p.fee:
            nums.append(f"Fee: {money(p.fee, p.currency)}.")
        out.append(" ".join([head, *nums, p.text or ""]))
    return " ".join(s.strip() for s in out)


def write_shipping(r: Retrieval, pick: Picker) -> str:
    out = []
    o = first_of(r.facts, OrderFact)
    if o is not None:
        if o.status == "shipped" and o.eta:
            out.append(f"Order {o.order_id} should arrive by {day(o.eta)}.")
        elif o.status == "delivered":
            out.append(f"Order {o.order_id} was delivered on {day(o.delivered_at)}.")
        else:
            out.append(f"Order {o.order_id} is {o.status}.")
        return " ".join(out)
    for p in facts_of(r.facts, PolicyFact):
        out.append(f"{p.title}: {p.text}")
    lines = []
    for m in facts_of(r.facts, ShippingMethodFact):
        days = (f"{m.min_days} business day" if m.min_days == m.max_days == 1 else
                f"{m.min_days} to {m.max_days} business days")
        cost = "free" if not m.cost else money(m.cost, m.currency)
        free = f", free over {money(m.free_over, m.currency)}" if m.free_over else ""
        if r.intent == DELIVERY_PERIOD.name:
            lines.append(f"- {m.name}: {days}")
        else:
            lines.append(f"- {m.name}: {days}, {cost}{free}")
    if lines:
        head = (pick("dp", ("Delivery times:", "How long delivery takes:")) if r.intent == DELIVERY_PERIOD.name
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
    suggestions=("How do I start a return?", "When will I get my refund?"),
    cue=re.compile(r"\b(return|returns|refund policy|send it back)\b"),
    order_context=True)
CANCELLATION_FEE = IntentSpec(
    "check_cancellation_fee", write=write_policy,
    suggestions=("Cancel my order",),
    cue=re.compile(r"\b(cancellation fee|cost to cancel|fee)\b"),
    order_context=True)
DELIVERY_OPTIONS = IntentSpec(
    "delivery_options", write=write_shipping,
    suggestions=("How long does delivery take?", "Which payment methods do you accept?"),
    cue=re.compile(r"\b(shipping options|delivery options|express|shipping methods?)\b"))
DELIVERY_PERIOD = IntentSpec(
    "delivery_period", write=write_shipping,
    suggestions=("Which delivery options do you have?",),
    cue=re.compile(r"\b(how long|delivery time|days)\b"),
    order_context=True)
PAYMENT_METHODS = IntentSpec(
    "check_payment_methods", write=write_payment_methods,
    suggestions=("My payment was declined", "Which delivery options do you have?"))

# The policy types each policy question reads.
_POLICY_TYPES: dict[str, list[str]] = {
    REFUND_POLICY.name: ["return", "refund"],
    CANCELLATION_FEE.name: ["cancellation"],
    DELIVERY_PERIOD.name: ["shipping"],
}


class Policies(Handler):
    family = "policies"
    intents = (REFUND_POLICY, CANCELLATION_FEE, DELIVERY_OPTIONS, DELIVERY_PERIOD, PAYMENT_METHODS)
    queries = frozenset({
        "policies.payment_methods", "policies.shipping_methods", "policies.for_product", "policies.for_brand",
        "policies.for_category", "policies.store_wide", "orders.by_id_for_customer", "orders.items_for_customer",
        "products.by_skus",
    })

    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        intent, entities = ask.intent, ask.entities
        if intent == PAYMENT_METHODS.name:
            rows = ctx.run("policies.payment_methods")
            facts: list[Fact] = [PaymentMethodFact(**{k: v for k, v in r.items() if v is not None}) for r in rows]
            return Outcome(Retrieval(intent=intent, status="ok" if rows else "not_found", facts=facts,
                                     query_name="policies.payment_methods"), entities)
        if intent == DELIVERY_OPTIONS.name:
            return self._shipping(ctx, intent, entities, None)

        types = _POLICY_TYPES[intent]
        oid_e = entity_of(entities, "ORDER_ID")
        if oid_e is not None:
            if not ask.customer_id:
                return Outcome(Retrieval(intent=intent, status="need_sign_in"), strip_orders(entities))
            oid = normalise_order_id(oid_e.node_id or oid_e.text)
            found = ctx.run("orders.by_id_for_customer", customer_id=ask.customer_id, order_id=oid)
            if not found:
                return order_not_found(intent, entities, oid)
            entities = [e.model_copy(update={"node_id": oid, "score": 1.0}) if e is oid_e else e for e in entities]
            return self._order_policy(ctx, intent, found[0], entities, ask.customer_id)

        rows, entities, early = resolve_products(ctx, intent, entities)
        if early is not None:
            return early
        brand = entity_value(entity_of(entities, "BRAND"))
        category = entity_value(entity_of(entities, "CATEGORY"))
        mentioned: list[Ref] = []
        target: Subject | None = None
        if rows:
            found = ctx.run("policies.for_product", sku=rows[0]["sku"], types=types)
            query = "policies.for_product"
            mentioned = [product_ref(rows[0])]
            target = Subject(for_=rows[0].get("name"), sku=rows[0]["sku"])
        elif brand:
            found, query = ctx.run("policies.for_brand", brand=brand, types=types), "policies.for_brand"
            target = Subject(for_=brand)
            mentioned = [Ref(type="BRAND", node_id=brand, name=brand, label="Brand")]
        elif category:
            found, query = ctx.run("policies.for_category", category=category, types=types), "policies.for_category"
            target = Subject(for_=category)
            mentioned = [Ref(type="CATEGORY", node_id=category, name=category, label="Category")]
        else:
            found, query = ctx.run("policies.store_wide", types=types), "policies.store_wide"
        best = best_by_type(found)
        about = {"for_": target.for_, "sku": target.sku} if target is not None else {}
        policies = [policy_fact(best[t], ctx.currency, **about) for t in types if t in best]
        if intent == DELIVERY_PERIOD.name:
            specific: list[Fact] = [f for f in policies if f.scope != "store"]
            out = self._shipping(ctx, intent, entities, specific or None)
            out.mentioned = mentioned
            return out
        return Outcome(Retrieval(intent=intent, status="ok" if policies else "not_found", facts=list(policies),
                                 query_name=query, prompt=target), entities, mentioned=mentioned)

    def _shipping(self, ctx: Context, intent: str, entities: list[Entity], extra: list[Fact] | None) -> Outcome:
        rows = ctx.run("policies.shipping_methods")
        facts = list(extra or [])
        for r in rows:
            data = {k: v for k, v in r.items() if v not in (None, "")}
            for k in ("cost", "free_over"):
                if k in data:
                    data[k] = round_money(data[k])
            data["currency"] = ctx.currency
            facts.append(ShippingMethodFact(**data))
        return Outcome(Retrieval(intent=intent, status="ok" if facts else "not_found", facts=facts,
                                 query_name="policies.shipping_methods"), entities)

    def _order_policy(self, ctx: Context, intent: str, order: dict[str, Any], entities: list[Entity],
                      customer_id: str) -> Outcome:
        oid = str(order["order_id"])
        ref = order_ref(order)
        base = order_fact(order, ("order_id", "status", "placed_at", "delivered_at", "eta", "total", "currency"))
        if intent == REFUND_POLICY.name:
            items = ctx.run("orders.items_for_customer", customer_id=customer_id, order_id=oid)
            policies = item_policies(ctx, customer_id, oid, "return", items=items)
            windows = actions.return_windows(order, items, policies, ctx.clock().date())
            facts: list[Fact] = [base, *return_window_facts(windows)]
            return Outcome(Retrieval(intent=intent, status="ok", facts=facts, query_name="policies.for_product"),
                           entities, mentioned=[ref])
        if intent == CANCELLATION_FEE.name:
            policies = item_policies(ctx, customer_id, oid, "cancellation")
            fee, pol = actions.cancellation_fee(order, [p for p in policies.values() if p], ctx.clock())
            fact = CancellationFeeFact(order_id=oid, status=order.get("status"),
                                       cancellable=order.get("status") in actions.CANCELLABLE,
                                       fee=fee, currency=order.get("currency") or ctx.currency)
            if pol:
                fact.policy = pol.get("title")
            return Outcome(Retrieval(intent=intent, status="ok", facts=[base, fact], query_name="policies.for_product"),
                           entities, mentioned=[ref])
        # delivery_period for an order: its own dates
        out = self._shipping(ctx, intent, entities, [base])
        out.mentioned = [ref]
        return out
