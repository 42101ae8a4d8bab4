"""Questions about the signed-in customer's own orders: where it is, what is in it, its invoice,
changing it, and where a refund is (DESIGN section 4, "Orders").

Every order is read through the signed-in customer (shared.find_order): an order id that is not
theirs gets exactly the reply of one that does not exist. Asked without an order number, the
question is about a recent order in a plausible status, or a question lists them. The how-to side
of invoices and changes ("how do I get an invoice?") needs no order and is answered from the FAQs.
"""

from __future__ import annotations

import re
from typing import Any

from nlu.types import Entity
from qa.facts import (
    Fact,
    FaqFact,
    InvoiceFact,
    OrderFact,
    OrderItemFact,
    PolicyFact,
    RequestFact,
    facts_of,
    first_of,
)
from qa.handlers.base import Ask, Context, Handler, IntentSpec, Outcome
from qa.handlers.shared import (
    MAX_LIST,
    entity_of,
    find_order,
    invoice_fact,
    order_fact,
    order_ref,
    owned,
    policy_fact,
    procedure_answer,
    procedure_facts,
    round_money,
    sign_in_first,
    strip_orders,
)
from qa.handlers.wording import Picker, day, display, money, percent
from qa.prompts import RefundRequests
from qa.state import Ref
from qa.types import Retrieval, Status


# -- reply writers (status "ok") -----------------------------------------------------------------------
def write_track(r: Retrieval, pick: Picker) -> str:
    """Where an order is, every slot filled or left out: "shipped on <date> with <carrier>" when the
    shop recorded no delivery date, never "delivered on ."."""
    o = first_of(r.facts, OrderFact)
    if o is None:
        return _found(pick)
    oid, status = o.order_id, o.status
    via = f" with {o.carrier}" if o.carrier else ""
    tn = f" (tracking number {o.tracking_number})" if o.tracking_number else ""
    if status == "shipped":
        eta = f" It should arrive by {day(o.eta)}." if o.eta else ""
        if o.shipped_at:
            return pick("tr_s", (f"Order {oid} was shipped on {day(o.shipped_at)}{via}{tn} and is on its way; "
                                 f"it hasn't been delivered yet.{eta}",
                                 f"Your order {oid} shipped on {day(o.shipped_at)}{via}{tn} and hasn't been "
                                 f"delivered yet.{eta}"))
        return pick("tr_s0", (f"Order {oid} is on its way{via}{tn}.{eta}",
                              f"Your order {oid} has shipped{via}{tn}.{eta}")).strip()
    if status == "delivered":
        if o.delivered_at:
            return pick("tr_d", (f"Order {oid} was delivered on {day(o.delivered_at)}.",
                                 f"Your order {oid} was delivered on {day(o.delivered_at)}."))
        sent = f" (it shipped on {day(o.shipped_at)}{via})" if o.shipped_at else ""
        return f"Order {oid} has been delivered{sent}."
    if status in ("placed", "paid"):
        paid = " and paid" if status == "paid" else ""
        when = f" on {day(o.placed_at)}" if o.placed_at else ""
        return pick("tr_p", (f"Order {oid} was placed{paid}{when} and hasn't shipped yet.",
                             f"Your order {oid} is {status} and hasn't shipped yet."))
    if status == "cancelled":
        return f"Order {oid} was cancelled."
    if status == "returned":
        return f"Order {oid} was returned."
    return f"Order {oid} is {status}."


def write_order_details(r: Retrieval, pick: Picker) -> str:
    o = first_of(r.facts, OrderFact)
    if o is None:
        return _found(pick)
    oid = o.order_id
    lines = []
    for it in facts_of(r.facts, OrderItemFact):
        disc = f", {percent(it.discount)} off" if it.discount else ""
        price = f" at {money(it.unit_price, it.currency)}" if it.unit_price is not None else ""
        quantity = it.quantity if it.quantity is not None else 1
        lines.append(f"- {quantity} × {display(it.name or it.sku)}{price}{disc}")
    # the latest date the order reached, so "when was it delivered?" is answered under this intent too
    when = (f", delivered {day(o.delivered_at)}" if o.delivered_at else
            f", shipped {day(o.shipped_at)}" if o.shipped_at else "")
    placed = f", placed {day(o.placed_at)}" if o.placed_at else ""
    head = pick("od", (f"Order {oid} ({o.status}{placed}{when}) contains:",
                       f"Here's what's in order {oid}{placed}{when} ({o.status}):"))
    total = f"\nTotal: {money(o.total, o.currency)}." if o.total is not None else ""
    paid = f"\nPaid with {o.payment_method}." if o.payment_method else ""
    carrier = f"\nCarrier: {o.carrier}" + (f", tracking number {o.tracking_number}." if o.tracking_number else ".") \
        if o.carrier else ""
    return head + "\n" + "\n".join(lines) + total + paid + carrier


def write_invoice(r: Retrieval, pick: Picker) -> str:
    inv = first_of(r.facts, InvoiceFact)
    if inv is None:
        return _found(pick)
    bits = [f"total {money(inv.total, inv.currency)}" if inv.total is not None else "",
            f"paid by {inv.payment_method}" if inv.payment_method else "",
            f"placed {day(inv.placed_at)}" if inv.placed_at else ""]
    text = f"The invoice for order {inv.order_id}: " + ", ".join(b for b in bits if b) + "."
    faq = first_of(r.facts, FaqFact)
    if faq is not None:
        text += " " + faq.answer
    return text


def _found(pick: Picker) -> str:
    return pick("ok_any", ("Here's what I found.", "This is what I found."))


def write_track_refund(r: Retrieval, pick: Picker) -> str:
    out = []
    for q in facts_of(r.facts, RequestFact):
        kind = q.request_kind or "refund"
        out.append(pick("rq", (f"Your {kind} request {q.request_id} for order {q.order_id} "
                               f"is {q.status} (opened {day(q.created_at)}).",
                               f"Request {q.request_id} ({q.request_kind}) on order {q.order_id}: "
                               f"{q.status}, opened {day(q.created_at)}.")))
    orders = facts_of(r.facts, OrderFact)
    if not out and orders and orders[0].status == "returned":
        out.append(f"Order {orders[0].order_id} has been returned.")
    pol = facts_of(r.facts, PolicyFact)
    if pol:
        out.append(pol[0].text or "")
    return " ".join(out) or "I don't see any refund requests on your account."


# -- the intents ---------------------------------------------------------------------------------------
TRACK_ORDER = IntentSpec(
    "track_order", write=write_track,
    suggestions=("What's in this order?", "Can I still return it?", "Where is my invoice?"),
    cue=re.compile(r"\b(where is|track|tracking|arrive|when will)\b"),
    order_statuses=("placed", "paid", "shipped"))
ORDER_DETAILS = IntentSpec(
    "order_details", write=write_order_details,
    suggestions=("Where is my order?", "Can I get the invoice?"),
    cue=re.compile(r"\b(what did i order|items|contents)\b"))
CHECK_INVOICE = IntentSpec(
    "check_invoice", write=write_invoice,
    suggestions=("Can you send me a copy of the invoice?",),
    topics=("invoices",))
GET_INVOICE = IntentSpec(
    "get_invoice", write=write_invoice,
    suggestions=("Where is my order?",),
    topics=("invoices",),
    action_words=frozenset({"send", "email"}))
CHANGE_ORDER = IntentSpec(
    "change_order", write=write_track,
    suggestions=("Cancel my order", "Where is my order?"),
    topics=("orders",),
    order_statuses=("placed", "paid"),
    action_words=frozenset({"change", "update", "modify", "process", "add", "remove"}))
TRACK_REFUND = IntentSpec(
    "track_refund", write=write_track_refund,
    suggestions=("What is your refund policy?",),
    order_statuses=("returned",))

_REQUEST_KINDS = ["return", "refund"]


class Orders(Handler):
    family = "orders"
    intents = (TRACK_ORDER, ORDER_DETAILS, CHECK_INVOICE, GET_INVOICE, CHANGE_ORDER, TRACK_REFUND)
    queries = frozenset({
        "orders.by_id_for_customer", "orders.recent_for_customer", "orders.items_for_customer",
        "orders.requests_for_customer", "policies.store_wide", "procedures.corpus",
    })

    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        spec = self.spec(ask.intent)
        if spec in (GET_INVOICE, CHANGE_ORDER) and entity_of(ask.entities, "ORDER_ID") is None:
            # How-to questions: answered from the FAQs, signed in or not; no order is read.
            return procedure_answer(ctx, ask.intent, strip_orders(ask.entities), ask.message, spec.topics)
        need = sign_in_first(ask)
        if need is not None:
            return need
        customer_id = str(ask.customer_id)
        if spec is TRACK_REFUND and entity_of(ask.entities, "ORDER_ID") is None:
            reqs = ctx.run("orders.requests_for_customer", customer_id=customer_id, order_id=None,
                           kinds=_REQUEST_KINDS, limit=MAX_LIST)
            if reqs:
                return self._refund_requests(ctx, reqs, ask.entities, None)
        found = find_order(ask, ctx, spec, customer_id, any_status=spec in (TRACK_ORDER, TRACK_REFUND))
        if isinstance(found, Outcome):
            return found
        order, entities = found
        ref = order_ref(order)
        oid = str(order["order_id"])

        def done(status: Status, facts: list[Fact], query: str = "orders.by_id_for_customer") -> Outcome:
            return Outcome(Retrieval(intent=ask.intent, status=status, facts=owned(facts, customer_id),
                                     query_name=query), entities, mentioned=[ref])

        if spec is TRACK_ORDER:
            return done("ok", [order_fact(order, ("order_id", "status", "placed_at", "shipped_at", "delivered_at",
                                                  "eta", "carrier", "tracking_number", "shipping_method"))])
        if spec is ORDER_DETAILS:
            items = ctx.run("orders.items_for_customer", customer_id=customer_id, order_id=oid)
            return done("ok", [order_fact(order)] + [_item_fact(i) for i in items], "orders.items_for_customer")
        if spec is CHECK_INVOICE:
            facts: list[Fact] = [invoice_fact(order)]
            facts += procedure_facts(ctx, "where can I find my invoice " + ask.message, spec.topics, limit=1)
            return done("ok", facts)
        if spec in (GET_INVOICE, CHANGE_ORDER):
            facts = [invoice_fact(order) if spec is GET_INVOICE else
                     order_fact(order, ("order_id", "status", "placed_at", "total", "currency", "payment_method"))]
            facts += procedure_facts(ctx, ask.message, spec.topics, limit=1)
            if len(facts) > 1:
                return done("procedure", facts, "procedures.corpus")
            return done("ok", facts)
        # track_refund
        reqs = ctx.run("orders.requests_for_customer", customer_id=customer_id, order_id=oid,
                       kinds=_REQUEST_KINDS, limit=MAX_LIST)
        return self._refund_requests(ctx, reqs, entities, order)

    def _refund_requests(self, ctx: Context, reqs: list[dict[str, Any]], entities: list[Entity],
                         order: dict[str, Any] | None) -> Outcome:
        facts: list[Fact] = [_request_fact(r) for r in reqs]
        mentioned: list[Ref] = []
        if order is not None:
            facts.insert(0, order_fact(order, ("order_id", "status", "delivered_at", "total", "currency")))
            mentioned = [order_ref(order)]
        status: Status = "ok"
        if order is not None and not reqs and order.get("status") != "returned":
            status = "not_found"
        refund = ctx.run("policies.store_wide", types=["refund"])
        if refund and (reqs or (order or {}).get("status") == "returned"):
            facts.append(policy_fact(refund[0], ctx.currency))
        return Outcome(Retrieval(intent=TRACK_REFUND.name, status=status, facts=facts,
                                 query_name="orders.requests_for_customer", prompt=RefundRequests(no_request=not reqs)),
                       entities, mentioned=mentioned)

    def write(self, r: Retrieval, pick: Picker) -> str | None:
        if r.status == "not_found" and r.intent == TRACK_REFUND.name and (
                r.prompt is None or isinstance(r.prompt, RefundRequests)):
            orders = facts_of(r.facts, OrderFact)
            oid = orders[0].order_id if orders else ""
            return pick("nf_refund", (f"I don't see a return or refund request for order {oid}.",
                                      f"There's no refund request on order {oid} yet."))
        return None


def _item_fact(row: dict[str, Any]) -> Fact:
    data = {"order_id": str(row["order_id"]), "sku": row["sku"], "name": row.get("name"),
            "quantity": row.get("quantity"), "unit_price": round_money(row.get("unit_price")),
            "discount": row.get("discount"), "currency": row.get("currency")}
    return OrderItemFact(**{k: v for k, v in data.items() if v not in (None, "")})


def _request_fact(row: dict[str, Any]) -> Fact:
    data = {("request_kind" if k == "kind" else k): v for k, v in row.items() if v not in (None, "")}
    return RequestFact(**data)
