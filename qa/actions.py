"""Actions with confirmation: cancel an order, change its shipping address, request a return.

Two steps, two turns. `propose_*` checks the rules against the order as the graph has it and
returns either a `PendingAction` (the reply states exactly what will happen, fee included, and
asks) or a `Refusal` with the reason. Only an `affirm` on the next turn calls `execute`, which
runs a named write query (`idempotent=False`) that re-checks the rule in the same statement: a
status that changed in between writes nothing and turns into a refusal.

Rules:
- cancel: only while the order is `placed` or `paid`. The fee is the most specific cancellation
  policy's of each item (sku > brand > category > store): a policy with `days` is free within that
  many days of placing and costs `fee` after; a policy without `days` describes what happens
  after shipping (which cancelling cannot reach), so it costs nothing here. The highest item fee
  is the order's.
- change address: only before shipping (`placed`/`paid`); the new address comes from the message.
- return: only for a `delivered` order, inside the return window of the most specific return
  policy of at least one item (counted from `delivered_at`), once per order; a policy `fee`
  (collection fee) is stated.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from kg.queries import get
from kg.store import GraphStore
from qa.facts import ActionFact, ActionKind, ActionRefusedFact
from qa.prompts import ActionRefusal, ActionTaken
from qa.state import PendingAction
from qa.types import Retrieval

CANCELLABLE = ("placed", "paid")
# Intents that propose an action: a new request, never an answer to a pending question.
ACTION_INTENTS = frozenset({"cancel_order", "change_shipping_address", "get_refund", "change_order"})


@dataclass
class Refusal:
    reason: str  # already_shipped | already_delivered | already_cancelled | already_returned | not_delivered
    #              | window_closed | not_returnable | already_requested | state_changed | no_items
    details: dict[str, Any] = field(default_factory=dict)


def new_request_id() -> str:
    return "REQ-" + uuid.uuid4().hex[:12].upper()


def parse_when(value: Any) -> datetime | None:
    """ISO 8601 date or timestamp (stored as text, kg/schema.py) to an aware datetime."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        dt = datetime.fromisoformat(text)
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    except ValueError:
        return None


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_refusal(status: str | None, *, for_return: bool = False) -> Refusal:
    if for_return:
        if status in ("placed", "paid", "shipped"):
            return Refusal("not_delivered", {"status": status})
        if status == "returned":
            return Refusal("already_returned", {"status": status})
        return Refusal("already_cancelled" if status == "cancelled" else "not_delivered", {"status": status})
    reason = {"shipped": "already_shipped", "delivered": "already_delivered", "cancelled": "already_cancelled",
              "returned": "already_returned"}.get(status or "", "state_changed")
    return Refusal(reason, {"status": status})


# -- cancel -----------------------------------------------------------------------------------------
# What a cancellation policy's text says about an order that has already shipped: it can no longer
# be cancelled ("a shipped order can no longer be cancelled"), or it can, for the policy's fee
# ("once it has shipped, cancelling costs a fee of ..."). Neither: the structured fields decide.
_SHIPPED = r"(?:ship(?:s|ped|ping)?|dispatch(?:es|ed)?|sent|left (?:our|the) warehouse|on (?:its|the) way)"
_NO_CANCEL_AFTER_SHIPPING = re.compile(
    _SHIPPED + r"[^.;]*\b(?:can ?not|can't|can no longer|no longer|may not|cannot)\b[^.;]*\bcancel"
    r"|\b(?:can ?not|can't|can no longer|no longer|may not|cannot)\b[^.;]*\bcancel[^.;]*\b(?:after|once|when)\b[^.;]*"
    + _SHIPPED, re.IGNORECASE)
_FEE_AFTER_SHIPPING = re.compile(
    r"\b(?:after|once|when|if)\b[^.;]*" + _SHIPPED + r"[^.;]*\b(?:fee|costs?|charge[sd]?|pay)\b"
    r"|\bshipped orders?\b[^.;]*\b(?:fee|costs?|charge[sd]?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class CancelTerms:
    """A cancellation policy read as rules: free for `free_days` after placing (None: until it
    ships), `fee` after that; whether a shipped order can still be cancelled (for the fee)."""

    fee: float
    free_days: float | None
    after_shipping: bool
    title: str | None = None
    not_after_shipping: bool = False  # the text says a shipped order can no longer be cancelled


def cancel_terms(policy: dict[str, Any] | None) -> CancelTerms | None:
    if policy is None:
        return None
    fee = float(policy.get("fee") or 0.0)
    days = policy.get("days")
    text = str(policy.get("text") or "")
    refused = bool(_NO_CANCEL_AFTER_SHIPPING.search(text))
    after = bool(fee) and days is None and bool(_FEE_AFTER_SHIPPING.search(text)) and not refused
    return CancelTerms(fee=round(fee, 2), free_days=float(days) if days is not None else None, after_shipping=after,
                       title=policy.get("title"), not_after_shipping=refused)


def cancellable_statuses(policies: Sequence[dict[str, Any] | None]) -> tuple[str, ...]:
    """The statuses an order can be cancelled in under its items' policies: placed and paid, and
    shipped too when every policy that speaks of it allows it (for a fee)."""
    terms = [t for t in (cancel_terms(p) for p in policies) if t is not None]
    if terms and all(t.after_shipping for t in terms):
        return (*CANCELLABLE, "shipped")
    return CANCELLABLE


def cancellation_fee(order: dict[str, Any], policies: Sequence[dict[str, Any] | None], now: datetime
                     ) -> tuple[float, dict[str, Any] | None]:
    """The order's fee now under the most specific cancellation policy of each item (the highest
    wins; an item without one costs nothing): a policy with `days` is free for that many days after
    placing and costs its fee after; one without `days` is free until the order ships, and costs
    its fee after shipping when its text allows cancelling a shipped order."""
    placed = parse_when(order.get("placed_at")) or now
    age_days = (now - placed).total_seconds() / 86400
    shipped = order.get("status") == "shipped"
    fee, which = 0.0, None
    for pol in policies:
        terms = cancel_terms(pol)
        if terms is None or not terms.fee:
            continue
        due = (age_days > terms.free_days) if terms.free_days is not None else (shipped and terms.after_shipping)
        if due and terms.fee > fee:
            fee, which = terms.fee, pol
    return round(fee, 2), which


def propose_cancel(order: dict[str, Any], policies: Sequence[dict[str, Any] | None], now: datetime,
                   currency: str) -> PendingAction | Refusal:
    if order.get("status") not in cancellable_statuses(policies):
        return status_refusal(order.get("status"))
    fee, policy = cancellation_fee(order, policies, now)
    return PendingAction(kind="cancel_order", intent="cancel_order", order_id=str(order["order_id"]),
                         request_id=new_request_id(), fee=fee, currency=order.get("currency") or currency,
                         reason=(policy or {}).get("title") or "", proposed_at=iso(now),
                         order_status=order.get("status"))


# -- change address --------------------------------------------------------------------------------
def propose_address_change(order: dict[str, Any], new_address: str, now: datetime) -> PendingAction | Refusal:
    if order.get("status") not in CANCELLABLE:
        return status_refusal(order.get("status"))
    return PendingAction(kind="change_shipping_address", intent="change_shipping_address",
                         order_id=str(order["order_id"]), request_id=new_request_id(),
                         new_address=new_address, old_address=order.get("ship_to"), proposed_at=iso(now))


# -- returns ---------------------------------------------------------------------------------------
def window_start(order: dict[str, Any]) -> tuple[datetime | None, str | None]:
    """The day a delivered order's return window counts from: its delivery date, or, when the shop
    recorded none, the day it shipped. None for an order that has not been delivered."""
    if order.get("status") not in ("delivered", "returned"):
        return None, None
    delivered = parse_when(order.get("delivered_at"))
    if delivered is not None:
        return delivered, "delivery"
    shipped = parse_when(order.get("shipped_at"))
    return (shipped, "shipping") if shipped is not None else (None, None)


def return_windows(order: dict[str, Any], items: list[dict[str, Any]], policy_by_sku: dict[str, dict[str, Any] | None],
                   today: date) -> list[dict[str, Any]]:
    """Per item: the return policy that applies, its deadline (delivered_at + days, or shipped_at +
    days when no delivery date was recorded) and whether it is open (a window of 0 days: no returns)."""
    start, basis = window_start(order)
    out = []
    for it in items:
        pol = policy_by_sku.get(it["sku"])
        days = pol.get("days") if pol else None
        deadline = (start.date() + timedelta(days=int(days))) if start and days is not None else None
        out.append({
            "order_id": str(order["order_id"]), "sku": it["sku"], "name": it.get("name"),
            "policy_id": pol.get("policy_id") if pol else None, "policy_title": pol.get("title") if pol else None,
            "days": int(days) if days is not None else None, "fee": pol.get("fee") if pol else None,
            "delivered_at": order.get("delivered_at"),
            "counted_from": basis, "since": start.date().isoformat() if start else None,
            "deadline": deadline.isoformat() if deadline else None,
            "open": bool(deadline and days and today <= deadline),
        })
    return out


def propose_return(order: dict[str, Any], windows: list[dict[str, Any]], existing: list[dict[str, Any]],
                   now: datetime, currency: str, reason: str = "") -> PendingAction | Refusal:
    if order.get("status") != "delivered":
        return status_refusal(order.get("status"), for_return=True)
    if any(r.get("kind") == "return" for r in existing):
        return Refusal("already_requested", {"request_id": existing[0].get("request_id"),
                                             "status": existing[0].get("status")})
    if not windows:
        return Refusal("no_items")
    open_ = [w for w in windows if w["open"]]
    if all(w["days"] == 0 for w in windows):
        return Refusal("not_returnable", {"status": order.get("status")})
    if not open_:
        last = max((w["deadline"] for w in windows if w["deadline"]), default=None)
        return Refusal("window_closed", {"deadline": last, "days": max((w["days"] or 0) for w in windows)})
    fees = [float(w["fee"]) for w in open_ if w.get("fee")]
    return PendingAction(kind="return_request", intent="get_refund", order_id=str(order["order_id"]),
                         request_id=new_request_id(), fee=max(fees) if fees else 0.0,
                         currency=order.get("currency") or currency, reason=reason,
                         deadline=min(w["deadline"] for w in open_), items=[w["name"] or w["sku"] for w in open_],
                         proposed_at=iso(now))


# -- facts ---------------------------------------------------------------------------------------
def action_fact(action: PendingAction) -> ActionFact:
    fact = ActionFact(action=action.kind, order_id=action.order_id)
    if action.kind == "cancel_order":
        fact.fee = action.fee or 0.0
        fact.currency = action.currency
        if action.reason:
            fact.policy = action.reason
    elif action.kind == "change_shipping_address":
        fact.new_address = action.new_address
        fact.old_address = action.old_address
    else:
        fact.items = action.items
        fact.deadline = action.deadline
        fact.fee = action.fee or 0.0
        fact.currency = action.currency
        if action.reason:
            fact.reason = action.reason
    return fact


def refusal_fact(kind: ActionKind, order_id: str | None, refusal: Refusal) -> ActionRefusedFact:
    return ActionRefusedFact(action=kind, order_id=order_id, reason=refusal.reason, **refusal.details)


# -- execution -----------------------------------------------------------------------------------
def execute(store: GraphStore, action: PendingAction, customer_id: str, now: datetime) -> Retrieval:
    common = {"customer_id": customer_id, "order_id": action.order_id, "request_id": action.request_id,
              "now": iso(now), "created_by": f"chat:{customer_id}"}
    if action.kind == "cancel_order":
        query = get("orders.cancel")
        # the status the fee was quoted for: an order that shipped in between is not cancelled at the old price
        statuses = [action.order_status] if action.order_status == "shipped" else list(CANCELLABLE)
        params = {**common, "reason": "cancelled by the customer in chat", "statuses": statuses}
    elif action.kind == "change_shipping_address":
        query = get("orders.change_address")
        params = {**common, "ship_to": action.new_address or "", "reason": "address changed by the customer in chat"}
    else:
        query = get("orders.request_return")
        params = {**common, "reason": action.reason or "return requested by the customer in chat"}
    rows = store.run(query, params)
    if not rows:
        refusal = Refusal("state_changed")
        return Retrieval(intent=action.intent, status="action_refused", query_name=query.name,
                         facts=[refusal_fact(action.kind, action.order_id, refusal)],
                         prompt=ActionRefusal(refusal=refusal.reason, action=action.kind))
    fact = action_fact(action)
    fact.request_id = rows[0]["request_id"]
    fact.done = True
    return Retrieval(intent=action.intent, status="action_done", query_name=query.name, facts=[fact],
                     prompt=ActionTaken(action=action.kind))
