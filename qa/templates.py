"""The template writer: deterministic, faithful, varied wording for every intent and status.

Every sentence is built from the facts of a `Retrieval` and nothing else, so a template reply can
never contradict or go beyond what the graph said; it is the fast path and the fallback the LLM
writer's grounding guard returns to. Wording varies between phrasings chosen by a hash of the
retrieval's `variant` (the engine puts a hash of session id and turn number there) and a
slot name: the same question in two sessions may read differently, a replay reads identically.

Money is shown with two decimals and the currency ("18.00 USD", "1,199.00 USD"); dates as
"17 March 2026".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from nlu.labels import FAMILY_OF
from qa.types import Reply, Retrieval, Turn

# -- formatting ------------------------------------------------------------------------------------


def money(value: Any, currency: str | None) -> str:
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{amount:,.2f} {currency or ''}".strip()


def day(value: Any) -> str:
    """'2026-03-17' or '2026-03-17T10:00:00Z' -> '17 March 2026' (the text itself when unparsable)."""
    if not value:
        return ""
    text = str(value)
    try:
        d = date.fromisoformat(text[:10])
    except ValueError:
        return text
    return f"{d.day} {d.strftime('%B')} {d.year}"


def display(name: Any) -> str:
    """A product name as a sentence reads it: "Aurora X2 Headphones, Black" -> "Aurora X2 Headphones (Black)"."""
    text = str(name or "")
    head, sep, variant = text.partition(", ")
    return f"{head} ({variant})" if sep and variant else text


def _percent(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if 0 < f < 1:
        f *= 100
    return f"{f:g}%"


def _join(items: Sequence[str], conj: str = "and") -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


_UNITS = (("_hours", " h"), ("_mah", " mAh"), ("_mp", " MP"), ("_mm", " mm"), ("_cm", " cm"), ("_kg", " kg"),
          ("_g", " g"), ("_in", "-inch"), ("_w", " W"), ("_k", " K"), ("_l", " l"), ("_m", " m"))


def _attr_text(key: str, value: Any) -> str:
    """'battery_life_hours', 30 -> 'battery life: 30 h'."""
    v = f"{value:g}" if isinstance(value, float) else ("yes" if value is True else "no" if value is False
                                                      else str(value))
    for suffix, unit in _UNITS:
        if key.endswith(suffix) and not isinstance(value, bool):
            return f"{key[: -len(suffix)].replace('_', ' ')}: {v}{unit}"
    return f"{key.replace('_', ' ')}: {v}"


# -- variation -----------------------------------------------------------------------------------
class _Picker:
    def __init__(self, seed: str) -> None:
        self.seed = seed

    def __call__(self, slot: str, options: Sequence[str]) -> str:
        h = int(hashlib.sha1(f"{self.seed}|{slot}".encode()).hexdigest()[:8], 16)
        return options[h % len(options)]


def _seed(retrieval: Retrieval, turns: Sequence[Turn]) -> str:
    v = retrieval.variant
    if v:
        return str(v)
    return f"{len(turns)}|{retrieval.intent}|{retrieval.status}"


def _facts(r: Retrieval, kind: str) -> list[dict[str, Any]]:
    return [f.data for f in r.facts if f.kind == kind]


# -- suggestions ---------------------------------------------------------------------------------
_SUGGEST: dict[str, tuple[str, ...]] = {
    "product_price": ("Is it in stock?", "Are there any promotions on it?", "Show me similar products"),
    "product_availability": ("How much is it?", "What's the warranty?", "Show me cheaper alternatives"),
    "product_details": ("How much is it?", "Is it in stock?", "Which accessories fit it?"),
    "product_compare": ("Which one is in stock?", "What's the warranty on the cheaper one?"),
    "product_recommend": ("Tell me more about the first one", "Is the first one in stock?"),
    "product_warranty": ("Can I return it?", "How much is it?"),
    "product_promotions": ("How much is it?", "Is it in stock?"),
    "track_order": ("What's in this order?", "Can I still return it?", "Where is my invoice?"),
    "order_details": ("Where is my order?", "Can I get the invoice?"),
    "cancel_order": ("Where is my order?", "What does cancelling cost?"),
    "change_shipping_address": ("Where is my order?",),
    "get_refund": ("What is your return policy?", "Where is my refund?"),
    "track_refund": ("What is your refund policy?",),
    "check_invoice": ("Can you send me a copy of the invoice?",),
    "get_invoice": ("Where is my order?",),
    "check_refund_policy": ("How do I start a return?", "When will I get my refund?"),
    "check_cancellation_fee": ("Cancel my order",),
    "delivery_options": ("How long does delivery take?", "Which payment methods do you accept?"),
    "delivery_period": ("Which delivery options do you have?",),
    "check_payment_methods": ("My payment was declined", "Which delivery options do you have?"),
    "greeting": ("Where is my order?", "Recommend some headphones", "What is your return policy?"),
    "create_account": ("I didn't get the confirmation email", "How do I subscribe to the newsletter?"),
    "delete_account": ("What happens to my data?", "Talk to a person"),
    "edit_account": ("How do I change my shipping address?",),
    "switch_account": ("How do I get an invoice with my company name?",),
    "recover_password": ("My reset link does not work", "Talk to a person"),
    "registration_problems": ("I forgot my password", "Talk to a person"),
    "newsletter_subscription": ("Are there any promotions right now?",),
    "payment_issue": ("Which payment methods do you accept?", "Talk to a person"),
    "place_order": ("Which payment methods do you accept?", "What delivery options do you have?"),
    "set_up_shipping_address": ("What delivery options do you have?",),
    "change_order": ("Cancel my order", "Where is my order?"),
    "contact_customer_service": ("Talk to a person",),
    "review": ("Where is my order?",),
}
_BY_STATUS: dict[str, tuple[str, ...]] = {
    "need_sign_in": ("How do I create an account?", "I forgot my password"),
    "no_answer": ("Talk to a person", "What is your return policy?"),
    "handoff": (),
    "action_proposed": ("Yes, go ahead", "No, leave it"),
    "chitchat": ("Where is my order?", "Recommend a product", "What is your return policy?"),
}


def suggestions(retrieval: Retrieval) -> list[str]:
    """Next questions for the client to offer; they depend on the intent and status only (never on
    facts), so a 'not found' reply suggests the same things whoever's order was asked about."""
    if retrieval.status in _BY_STATUS:
        return list(_BY_STATUS[retrieval.status])
    if retrieval.status == "clarify":
        return []
    if retrieval.status == "not_found" and FAMILY_OF.get(retrieval.intent) == "orders":
        return ["Show my recent orders", "Talk to a person"]
    return list(_SUGGEST.get(retrieval.intent, ("Talk to a person",)))


# -- the writer ----------------------------------------------------------------------------------
class TemplateVerbalizer:
    """Implements the Verbalizer protocol (qa/verbalizer.py) with templates only."""

    name = "template"

    def verbalize(self, retrieval: Retrieval, turns: Sequence[Turn], *, customer_id: str | None) -> Reply:
        return Reply(text=render(retrieval, turns), verbalizer="template")

    def stream(self, retrieval: Retrieval, turns: Sequence[Turn], *, customer_id: str | None
               ) -> Iterator[str | Reply]:
        reply = self.verbalize(retrieval, turns, customer_id=customer_id)
        yield from re.findall(r"\S+\s*", reply.text)
        yield reply


def render(r: Retrieval, turns: Sequence[Turn] = ()) -> str:
    pick = _Picker(_seed(r, turns))
    writer = _STATUS_WRITERS.get(r.status)
    text = writer(r, pick) if writer else _ok(r, pick)
    dropped = _facts(r, "action_dropped")
    if dropped and r.status != "action_cancelled":
        text = _dropped_note(dropped[0], pick) + " " + text
    return re.sub(r"[ \t]+\n", "\n", text).strip()


def _dropped_note(d: dict, pick: _Picker) -> str:
    what = _ACTION_NOUN.get(d.get("action", ""), "the change")
    return pick("dropped", (f"I've left order {d.get('order_id')} as it was ({what} not done).",
                            f"I didn't go ahead with {what} for order {d.get('order_id')}."))


_ACTION_NOUN = {"cancel_order": "the cancellation", "change_shipping_address": "the address change",
                "return_request": "the return"}


# -- status writers ------------------------------------------------------------------------------
def _need_sign_in(r: Retrieval, pick: _Picker) -> str:
    return pick("signin", (
        "Please sign in first, then I can look up your orders.",
        "I can help with that once you sign in: orders are only shown to the customer who placed them.",
        "To look at orders I need you to sign in to your account first.",
    ))


def _not_found(r: Retrieval, pick: _Picker) -> str:
    p = r.prompt
    if "order_id" in p:
        oid = p["order_id"]
        return pick("nf_order", (
            f"I couldn't find an order {oid} on your account. Please check the number in your confirmation email.",
            f"There's no order {oid} on your account. Could you double-check the order number?",
            f"I can't find order {oid} among your orders. The number is in your order confirmation email.",
        ))
    if p.get("no_orders"):
        statuses = p.get("statuses") or []
        which = f" that are {_join(list(statuses), 'or')}" if statuses else ""
        return pick("nf_none", (f"I can't see any orders{which} on your account.",
                                f"There are no orders{which} on your account right now."))
    if "missing_attribute" in p:
        names = [display(f["name"]) for f in _facts(r, "product")]
        return pick("nf_attr", (
            f"The {p['line']} doesn't come in {p['missing_attribute']}. It's available as: {_join(names, 'or')}.",
            f"Sorry, there's no {p['missing_attribute']} version of the {p['line']}. "
            f"You can choose from: {_join(names, 'or')}.",
        ))
    if "product" in p:
        return pick("nf_product", (
            f"I couldn't find a product called \"{p['product']}\". Could you check the name, or give me the "
            "product number?",
            f"Sorry, nothing in our catalog matches \"{p['product']}\". Could you spell it differently?",
        ))
    if p.get("brand") or p.get("category"):
        what = " ".join(x for x in (p.get("attribute"), p.get("brand"), p.get("category")) if x)
        return pick("nf_group", (f"I couldn't find any {what} products in our catalog.",
                                 f"We don't seem to have any {what} products at the moment."))
    if r.intent == "product_recommend":
        mode = p.get("mode")
        src = _facts(r, "product")
        about = f" for the {display(src[0]['name'])}" if src else ""
        what = {"compatible": "compatible accessories", "also_bought": "products often bought together",
                "cheaper": "cheaper alternatives", "personal": "personal recommendations"}.get(mode or "",
                                                                                             "recommendations")
        return f"I couldn't find {what}{about} right now."
    if r.intent == "track_refund":
        orders = _facts(r, "order")
        oid = orders[0]["order_id"] if orders else ""
        return pick("nf_refund", (f"I don't see a return or refund request for order {oid}.",
                                  f"There's no refund request on order {oid} yet."))
    return pick("nf_any", ("I couldn't find anything matching that.", "Sorry, I found nothing for that."))


def _clarify(r: Retrieval, pick: _Picker) -> str:
    p = r.prompt
    q = p.get("question")
    if q == "which":
        options = p.get("options") or []
        listed = "; ".join(f"{i}) {display(o)}" for i, o in enumerate(options, 1))
        mention = p.get("mention") or "one"
        return pick("clarify_which", (
            f"Which {mention} do you mean? {listed}",
            f"There are several matches for \"{mention}\": {listed}. Which one?",
            f"I found more than one {mention}: {listed}. Which one would you like?",
        ))
    if q == "which_order":
        opts = []
        for i, o in enumerate(_facts(r, "order_option"), 1):
            bits = [f"order {o['order_id']}", o.get("status", ""), f"placed {day(o.get('placed_at'))}"]
            if o.get("first_item"):
                more = (o.get("item_count") or 1) - 1
                bits.append(display(o["first_item"]) + (f" and {more} more" if more > 0 else ""))
            if o.get("total") is not None:
                bits.append(money(o["total"], o.get("currency")))
            opts.append(f"{i}) " + ", ".join(b for b in bits if b))
        return pick("clarify_order", ("Which order do you mean? " + "; ".join(opts),
                                      "You have a few orders that could fit: " + "; ".join(opts) + ". Which one?"))
    if q == "new_address":
        orders = _facts(r, "order")
        oid = orders[0]["order_id"] if orders else ""
        return pick("clarify_addr", (f"What's the new delivery address for order {oid}?",
                                     f"Sure. Which address should order {oid} go to instead?"))
    if q == "compare_with":
        return pick("clarify_cmp", ("Which product would you like to compare it with?",
                                    "Sure, which other product should I compare it with?"))
    if q == "what_kind":
        return pick("clarify_kind", ("What kind of product are you looking for? A category, a brand or a budget "
                                     "helps me narrow it down.",
                                     "Happy to help! What are you shopping for (a category, brand or budget)?"))
    return pick("clarify_prod", ("Which product do you mean?", "Could you tell me which product you're asking about?"))


def _proposed(r: Retrieval, pick: _Picker) -> str:
    if not _facts(r, "action"):
        return "I need a few more details before I can do that. Which order is it about?"
    a = _facts(r, "action")[0]
    oid = a.get("order_id")
    ask = pick("confirm", ("Shall I go ahead?", "Do you want me to do that?", "Should I proceed?"))
    if a.get("action") == "cancel_order":
        fee = a.get("fee") or 0.0
        cost = ("This is free of charge." if not fee else
                f"Cancelling now costs {money(fee, a.get('currency'))}" +
                (f" ({a['policy']})." if a.get("policy") else "."))
        return f"I can cancel order {oid} for you. {cost} {ask}"
    if a.get("action") == "change_shipping_address":
        old = f" from \"{a['old_address']}\"" if a.get("old_address") else ""
        return f"I'll change the delivery address of order {oid}{old} to \"{a.get('new_address')}\". {ask}"
    items = [display(i) for i in a.get("items") or []]
    fee = a.get("fee") or 0.0
    fee_text = f" A fee of {money(fee, a.get('currency'))} is deducted from the refund." if fee else ""
    until = f" The return window is open until {day(a.get('deadline'))}." if a.get("deadline") else ""
    return (f"I can open a return and refund request for order {oid} ({_join(items)}).{until}{fee_text} "
            + pick("confirm_ret", ("Shall I open it?", "Do you want me to start the return?")))


def _done(r: Retrieval, pick: _Picker) -> str:
    if not _facts(r, "action"):
        return "Done."
    a = _facts(r, "action")[0]
    oid, ref = a.get("order_id"), a.get("request_id")
    if a.get("action") == "cancel_order":
        return pick("done_cancel", (f"Done: order {oid} is cancelled (reference {ref}).",
                                    f"Order {oid} has been cancelled. Your reference is {ref}."))
    if a.get("action") == "change_shipping_address":
        return pick("done_addr", (f"Done: order {oid} will now be delivered to \"{a.get('new_address')}\" "
                                  f"(reference {ref}).",
                                  f"The delivery address of order {oid} is now \"{a.get('new_address')}\". "
                                  f"Reference: {ref}."))
    return pick("done_ret", (f"Your return request for order {oid} is open (reference {ref}).",
                             f"I've opened a return and refund request for order {oid}; the reference is {ref}."))


def _cancelled(r: Retrieval, pick: _Picker) -> str:
    d = (_facts(r, "action_cancelled") or [{}])[0]
    oid = d.get("order_id")
    what = _ACTION_NOUN.get(d.get("action", ""), "the change")
    if oid:
        return pick("cancelled", (f"OK, I won't go ahead with {what}; order {oid} stays as it is.",
                                  f"No problem, nothing was changed on order {oid}."))
    return pick("cancelled0", ("OK, nothing was changed.", "Alright, I've left everything as it was."))


_REFUSALS = {
    "already_shipped": "order {oid} has already shipped, so it can't be {verb} any more",
    "already_delivered": "order {oid} has already been delivered, so it can't be {verb} any more",
    "already_cancelled": "order {oid} was cancelled",
    "already_returned": "order {oid} has already been returned",
    "not_delivered": "order {oid} hasn't been delivered yet (it is {status}); a return can start once it arrives",
    "window_closed": "the return window for order {oid} closed on {deadline}",
    "already_requested": "there is already a return request for order {oid} ({rstatus})",
    "state_changed": "order {oid} changed in the meantime, so I didn't change anything",
    "no_items": "order {oid} has no items that could be returned",
}


def _refused(r: Retrieval, pick: _Picker) -> str:
    if not _facts(r, "action_refused"):
        return "Sorry, I can't do that."
    d = _facts(r, "action_refused")[0]
    action = d.get("action")
    verb = {"cancel_order": "cancelled", "change_shipping_address": "redirected"}.get(action or "", "changed")
    text = _REFUSALS.get(d.get("reason", ""), "I can't do that for order {oid}").format(
        oid=d.get("order_id"), verb=verb, status=d.get("status", ""), deadline=day(d.get("deadline")),
        rstatus=d.get("status", "open"))
    lead = pick("refused", ("Sorry, ", "I'm afraid ", "Unfortunately "))
    tail = ""
    if d.get("reason") in ("already_shipped", "already_delivered") and action == "cancel_order":
        tail = " You can return it once it has been delivered."
    return lead + text + "." + tail


def _handoff(r: Retrieval, pick: _Picker) -> str:
    h = (_facts(r, "handoff") or [{}])[0]
    reason = h.get("reason")
    if reason == "complaint":
        first = pick("ho_c", ("I'm sorry to hear that.", "I'm sorry about this."))
    elif reason == "negative_sentiment":
        first = pick("ho_n", ("I'm sorry this has been frustrating.", "I'm sorry, that's not the experience we want "
                                                                      "you to have."))
    elif reason == "failed_turns":
        first = pick("ho_f", ("I'm not getting this right, sorry.", "Sorry, I couldn't answer that."))
    else:
        first = pick("ho_a", ("Of course.", "Sure."))
    return first + " " + pick("ho", (
        "I'm passing you to a colleague, who will see a summary of our conversation.",
        "I've handed this conversation to a member of our team; they'll pick it up with a summary of what we "
        "discussed.",
        "A person from our customer service team will take over from here, with a summary of our chat.",
    ))


def _no_answer(r: Retrieval, pick: _Picker) -> str:
    if r.intent == "out_of_scope":
        return pick("oos", ("Sorry, that's outside what I can help with. I can answer questions about products, "
                            "orders and our policies, or connect you with a colleague.",
                            "I'm afraid I can't help with that one. Ask me about products, orders or our policies, "
                            "or I can pass you to a person."))
    return pick("na", ("I'm not sure about that one. Would you like me to connect you with a colleague?",
                       "I couldn't find a reliable answer to that. Shall I pass you to a member of our team?"))


def _procedure(r: Retrieval, pick: _Picker) -> str:
    if not _facts(r, "faq") and not _facts(r, "policy_text"):
        return _no_answer(r, pick)
    parts = []
    for f in r.facts:
        if f.kind == "faq":
            parts.append(f.data["answer"])
        elif f.kind == "policy_text":
            parts.append(f"{f.data['title']}: {f.data['text']}")
    lead = pick("proc", ("", "Here's how it works: ", "Sure. ", ""))
    order = (_facts(r, "order") or _facts(r, "invoice") or [None])[0]
    pre = ""
    if order:
        pre = f"Order {order['order_id']} is {order.get('status', '')}" + (
            f", total {money(order['total'], order.get('currency'))}" if order.get("total") is not None else "") + ". "
    return pre + lead + " ".join(parts)


def _chitchat(r: Retrieval, pick: _Picker) -> str:
    if r.intent == "greeting":
        return pick("hi", ("Hello! How can I help you today?", "Hi there! What can I do for you?",
                           "Hello! Ask me about products, your orders or our policies."))
    if r.intent == "thanks":
        return pick("thx", ("You're welcome!", "Happy to help!", "My pleasure. Anything else?"))
    if r.intent == "goodbye":
        return pick("bye", ("Goodbye, and thanks for stopping by!", "Bye! Have a great day.",
                            "Thanks for chatting. Goodbye!"))
    return pick("ok", ("Okay. What else can I help you with?", "Alright. Anything else?"))


# -- ok answers by intent ------------------------------------------------------------------------
def _ok(r: Retrieval, pick: _Picker) -> str:
    if not [f for f in r.facts if f.kind != "action_dropped"] and r.intent != "product_promotions":
        return pick("ok_none", ("Sorry, I found nothing for that.", "I couldn't find anything on that."))
    fn = _OK_WRITERS.get(r.intent)
    if fn is not None:
        return fn(r, pick)
    orders = _facts(r, "order")
    if orders:
        return _track(r, pick)
    return pick("ok_any", ("Here's what I found.", "This is what I found."))


def _product_line(p: dict, *, price: bool = True, stock: bool = False, rating: bool = False) -> str:
    bits = []
    if price and p.get("price") is not None:
        bits.append(money(p["price"], p.get("currency")))
    if stock:
        bits.append("in stock" if p.get("in_stock") else "out of stock")
    if rating and p.get("rating") is not None:
        bits.append(f"rated {p['rating']}/5")
    return f"{display(p['name'])}" + (f" ({', '.join(bits)})" if bits else "")


def _group_intro(r: Retrieval, pick: _Picker) -> str | None:
    groups = _facts(r, "product_group")
    if not groups:
        return None
    g = groups[0]
    what = " ".join(x for x in (g.get("attribute"), g.get("brand"), g.get("category")) if x) or "matching"
    ranges = [f"{money(x['min_price'], x['currency'])} to {money(x['max_price'], x['currency'])}" for x in groups]
    count = sum(x["count"] for x in groups)
    in_stock = sum(x["in_stock"] for x in groups)
    if r.intent == "product_availability":
        head = pick("grp_av", (f"{in_stock} of our {count} {what} products are in stock.",
                               f"We have {in_stock} {what} products in stock (out of {count})."))
        listing = "; ".join(_product_line(p, price=False) for p in _facts(r, "product"))
        return head + (f" For example: {listing}." if listing else "")
    head = pick("grp", (f"We have {count} {what} products, priced from {_join(ranges)}.",
                        f"Our {count} {what} products range from {_join(ranges)}."))
    listing = "; ".join(_product_line(p, rating=True) for p in _facts(r, "product"))
    return head + (f" Top rated: {listing}." if listing else "")


def _price(r: Retrieval, pick: _Picker) -> str:
    group = _group_intro(r, pick)
    if group:
        return group
    ps = _facts(r, "product")
    if len(ps) == 1:
        p = ps[0]
        m = money(p["price"], p.get("currency"))
        text = pick("price", (f"The {display(p['name'])} costs {m}.", f"The {display(p['name'])} is {m}.",
                              f"It's {m} for the {display(p['name'])}."))
        if p.get("status") == "discontinued":
            text += " Note that it has been discontinued."
        return text
    return "Here are the prices: " + "; ".join(f"{display(p['name'])}: {money(p['price'], p.get('currency'))}"
                                               for p in ps) + "."


def _availability(r: Retrieval, pick: _Picker) -> str:
    group = _group_intro(r, pick)
    if group:
        return group
    out = []
    for p in _facts(r, "product"):
        stock = p.get("stock") or 0
        if p.get("status") == "discontinued":
            out.append(f"The {display(p['name'])} has been discontinued" + (f"; {stock} are left." if stock else
                                                                   " and is no longer in stock."))
        elif stock <= 0:
            out.append(pick("oos_p", (f"Sorry, the {display(p['name'])} is out of stock right now.",
                                      f"The {display(p['name'])} is currently out of stock.")))
        elif stock <= 5:
            out.append(pick("low", (f"Yes, the {display(p['name'])} is in stock, but only {stock} are left.",
                                    f"Hurry: only {stock} of the {display(p['name'])} are left in stock.")))
        else:
            out.append(pick("in", (f"Yes, the {display(p['name'])} is in stock ({stock} available).",
                                   f"Good news: we have {stock} of the {display(p['name'])} in stock.",
                                   f"The {display(p['name'])} is available; {stock} are in stock.")))
    return " ".join(out)


def _details(r: Retrieval, pick: _Picker) -> str:
    group = _group_intro(r, pick)
    if group:
        return group
    out = []
    for p in _facts(r, "product"):
        s = f"The {display(p['name'])}" + (f", from our {p['category']} range," if p.get("category") else "")
        if p.get("price") is not None:
            s += f" costs {money(p['price'], p.get('currency'))}."
        else:
            s = s.rstrip(",") + "."
        if p.get("description"):
            s += f" {p['description']}"
        attrs = p.get("attributes") or {}
        if attrs:
            s += " " + pick("specs", ("Specs: ", "Key details: ")) + "; ".join(
                _attr_text(k, v) for k, v in attrs.items() if k != "compatible_with") + "."
            if attrs.get("compatible_with"):
                s += f" It fits the {attrs['compatible_with']}."
        if p.get("rating") is not None:
            s += f" Customers rate it {p['rating']}/5."
        if p.get("warranty_months"):
            s += f" Warranty: {p['warranty_months']} months."
        if p.get("status") == "discontinued":
            s += " It has been discontinued."
        out.append(s)
    return " ".join(out)


def _compare(r: Retrieval, pick: _Picker) -> str:
    ps = _facts(r, "product")
    lines = []
    for p in ps:
        bits = [money(p["price"], p.get("currency")) if p.get("price") is not None else "",
                "in stock" if p.get("in_stock") else "out of stock",
                f"rated {p['rating']}/5" if p.get("rating") is not None else "",
                f"{p['warranty_months']}-month warranty" if p.get("warranty_months") else ""]
        attrs = p.get("attributes") or {}
        shared = [k for k in attrs if all(k in (q.get("attributes") or {}) for q in ps) and k != "compatible_with"]
        bits += [_attr_text(k, attrs[k]) for k in shared[:3]]
        lines.append(f"- {display(p['name'])}: " + ", ".join(b for b in bits if b))
    head = pick("cmp", ("Here's how they compare:", "Side by side:", "A quick comparison:"))
    text = head + "\n" + "\n".join(lines)
    c = (_facts(r, "comparison") or [{}])[0]
    if c.get("cheaper_name") and c.get("price_difference"):
        text += f"\nThe {display(c['cheaper_name'])} is {money(c['price_difference'], c.get('currency'))} cheaper."
    if c.get("better_rated_name"):
        text += f" The {display(c['better_rated_name'])} has the better rating."
    return text


def _warranty(r: Retrieval, pick: _Picker) -> str:
    out = []
    for w in _facts(r, "warranty"):
        if w.get("source") == "product":
            out.append(pick("w_p", (f"The {display(w['name'])} comes with a {w['months']}-month warranty.",
                                    f"The {display(w['name'])} has its own {w['months']}-month warranty.")))
        elif w.get("source") == "policy":
            span = f"{w['months']} months" if w.get("months") is not None else "the period described"
            where = {"sku": "which applies to this product", "brand": f"which applies to {w.get('applies_to')} products",
                     "category": f"which applies to {w.get('applies_to')}",
                     "store": "which applies store-wide"}.get(w.get("scope") or "", "")
            out.append(pick("w_pol", (
                f"The {display(w['name'])} is covered for {span} under our \"{w.get('title')}\" policy, {where}.",
                f"The {display(w['name'])} has a warranty of {span} (\"{w.get('title')}\", {where}).")))
            if w.get("text"):
                out.append(w["text"])
        else:
            out.append(f"I couldn't find a warranty for the {display(w['name'])}.")
    return " ".join(out)


def _promos(r: Retrieval, pick: _Picker) -> str:
    promos = _facts(r, "promotion")
    ps = _facts(r, "product")
    about = f" on the {display(ps[0]['name'])}" if ps else ""
    if not promos:
        return pick("np", (f"There are no promotions{about} right now.",
                           f"I'm afraid there's no promotion running{about} at the moment."))
    lines = []
    for p in promos:
        until = f", until {day(p['ends'])}" if p.get("ends") else ""
        lines.append(f"- {p['code']}: {p.get('description', '')} ({_percent(p.get('discount_percent'))} off{until})")
    head = pick("pr", (f"These promotions apply{about} right now:", f"Current deals{about}:"))
    return head + "\n" + "\n".join(lines)


def _recommend(r: Retrieval, pick: _Picker) -> str:
    recs = _facts(r, "recommendation")
    src = _facts(r, "product")
    name = display(src[0]["name"]) if src else ""
    mode = r.prompt.get("mode")
    if mode == "compatible":
        head = pick("rc_c", (f"These accessories are made for the {name}:", f"Accessories that fit the {name}:"))
    elif mode == "also_bought":
        head = pick("rc_a", (f"Customers who bought the {name} also bought:",
                             f"Often bought together with the {name}:"))
    elif mode == "cheaper":
        head = pick("rc_ch", (f"Cheaper alternatives to the {name}:", f"If the {name} is over budget, consider:"))
    elif mode == "personal":
        head = pick("rc_p", ("Based on your past orders, you might like:", "Picked for you from your order history:"))
    elif mode == "similar":
        head = pick("rc_s", (f"Products similar to the {name}:", f"If you like the {name}, have a look at:"))
    else:
        budget = r.prompt.get("budget")
        head = pick("rc_f", ("Here are some good options:", "You might like these:"))
        if budget:
            head = pick("rc_b", (f"Good options up to {budget:,.2f}:", f"Within a budget of {budget:,.2f}:"))
    lines = [f"- {_product_line(p, stock=True, rating=True)}" for p in recs]
    return head + "\n" + "\n".join(lines)


def _track(r: Retrieval, pick: _Picker) -> str:
    o = (_facts(r, "order") or [{}])[0]
    oid, status = o.get("order_id"), o.get("status")
    if status == "shipped":
        via = f" with {o['carrier']}" if o.get("carrier") else ""
        tn = f" (tracking number {o['tracking_number']})" if o.get("tracking_number") else ""
        eta = f" It should arrive by {day(o['eta'])}." if o.get("eta") else ""
        return pick("tr_s", (f"Order {oid} is on its way{via}{tn}.{eta}",
                             f"Your order {oid} has shipped{via}{tn}.{eta}")).strip()
    if status == "delivered":
        return pick("tr_d", (f"Order {oid} was delivered on {day(o.get('delivered_at'))}.",
                             f"Your order {oid} arrived on {day(o.get('delivered_at'))}."))
    if status in ("placed", "paid"):
        paid = " and paid" if status == "paid" else ""
        return pick("tr_p", (f"Order {oid} was placed{paid} on {day(o.get('placed_at'))} and hasn't shipped yet.",
                             f"Your order {oid} (placed {day(o.get('placed_at'))}) is {status} and will ship soon."))
    if status == "cancelled":
        return f"Order {oid} was cancelled."
    if status == "returned":
        return f"Order {oid} was returned."
    return f"Order {oid} is {status}."


def _order_details(r: Retrieval, pick: _Picker) -> str:
    o = (_facts(r, "order") or [{}])[0]
    items = _facts(r, "order_item")
    lines = []
    for it in items:
        disc = f", {_percent(it['discount'])} off" if it.get("discount") else ""
        price = f" at {money(it['unit_price'], it.get('currency'))}" if it.get("unit_price") is not None else ""
        lines.append(f"- {it.get('quantity', 1)} × {display(it.get('name') or it['sku'])}{price}{disc}")
    # the latest date the order reached, so "when was it delivered?" is answered under this intent too
    when = (f", delivered {day(o['delivered_at'])}" if o.get("delivered_at") else
            f", shipped {day(o['shipped_at'])}" if o.get("shipped_at") else "")
    head = pick("od", (f"Order {o.get('order_id')} ({o.get('status')}, placed {day(o.get('placed_at'))}{when}) "
                       "contains:",
                       f"Here's what's in order {o.get('order_id')}, placed {day(o.get('placed_at'))}{when} "
                       f"({o.get('status')}):"))
    total = f"\nTotal: {money(o['total'], o.get('currency'))}." if o.get("total") is not None else ""
    return head + "\n" + "\n".join(lines) + total


def _invoice(r: Retrieval, pick: _Picker) -> str:
    inv = (_facts(r, "invoice") or [{}])[0]
    bits = [f"total {money(inv['total'], inv.get('currency'))}" if inv.get("total") is not None else "",
            f"paid by {inv['payment_method']}" if inv.get("payment_method") else "",
            f"placed {day(inv.get('placed_at'))}" if inv.get("placed_at") else ""]
    text = f"The invoice for order {inv.get('order_id')}: " + ", ".join(b for b in bits if b) + "."
    faq = _facts(r, "faq")
    if faq:
        text += " " + faq[0]["answer"]
    return text


def _track_refund(r: Retrieval, pick: _Picker) -> str:
    out = []
    for q in _facts(r, "request"):
        out.append(pick("rq", (f"Your {q.get('kind', 'refund')} request {q['request_id']} for order {q.get('order_id')} "
                               f"is {q.get('status')} (opened {day(q.get('created_at'))}).",
                               f"Request {q['request_id']} ({q.get('kind')}) on order {q.get('order_id')}: "
                               f"{q.get('status')}, opened {day(q.get('created_at'))}.")))
    orders = _facts(r, "order")
    if not out and orders and orders[0].get("status") == "returned":
        out.append(f"Order {orders[0]['order_id']} has been returned.")
    pol = _facts(r, "policy")
    if pol:
        out.append(pol[0]["text"])
    return " ".join(out) or "I don't see any refund requests on your account."


def _policy(r: Retrieval, pick: _Picker) -> str:
    windows = _facts(r, "return_window")
    if windows:
        o = (_facts(r, "order") or [{}])[0]
        lines = []
        for w in windows:
            name = display(w.get("name") or w.get("sku"))
            if o.get("status") != "delivered" and not w.get("deadline"):
                continue
            if w.get("open"):
                lines.append(f"You can return the {name} until {day(w['deadline'])} ({w.get('days')}-day window).")
            elif w.get("deadline"):
                lines.append(f"The return window for the {name} closed on {day(w['deadline'])}.")
        if not lines:
            status = o.get("status")
            return (f"Order {o.get('order_id')} is {status}; returns open once it has been delivered."
                    if status in ("placed", "paid", "shipped") else f"Order {o.get('order_id')} is {status}, "
                    "so there is nothing to return.")
        return " ".join(lines)
    fee = _facts(r, "cancellation_fee")
    if fee:
        f = fee[0]
        if not f.get("cancellable"):
            return f"Order {f['order_id']} is {f.get('status')}, so it can no longer be cancelled."
        if f.get("fee"):
            return f"Cancelling order {f['order_id']} now costs {money(f['fee'], f.get('currency'))}" + (
                f" ({f['policy']})." if f.get("policy") else ".")
        return pick("cf0", (f"Cancelling order {f['order_id']} is free of charge.",
                            f"You can cancel order {f['order_id']} at no cost."))
    pols = _facts(r, "policy")
    if not pols:
        return "I couldn't find a policy for that."
    about = r.prompt.get("for")
    subject = (f"the {display(about)}" if r.prompt.get("sku") else about) if about else ""
    out = []
    for p in pols:
        kind = p.get("type", "")
        title = p.get("title")
        if subject:
            head = pick("pol_" + kind, (f"Our {kind} policy for {subject} is \"{title}\".",
                                        f"For {subject}, the {kind} rule is \"{title}\"."))
        else:
            head = pick("pol_" + kind, (f"Our {kind} policy is \"{title}\".",
                                        f"The store-wide {kind} rule is \"{title}\"."))
        if p.get("scope") not in (None, "store") and p.get("applies_to"):
            head += f" It applies to {p['applies_to']} and takes precedence over the store-wide rule."
        nums = []
        if p.get("days") is not None and kind in ("return", "cancellation"):
            label = "Return window" if kind == "return" else "Free cancellation window"
            nums.append(f"{label}: {p['days']} days.")
        if p.get("fee"):
            nums.append(f"Fee: {money(p['fee'], p.get('currency'))}.")
        out.append(" ".join([head, *nums, p.get("text") or ""]))
    return " ".join(s.strip() for s in out)


def _shipping(r: Retrieval, pick: _Picker) -> str:
    out = []
    o = _facts(r, "order")
    if o:
        o0 = o[0]
        if o0.get("status") == "shipped" and o0.get("eta"):
            out.append(f"Order {o0['order_id']} should arrive by {day(o0['eta'])}.")
        elif o0.get("status") == "delivered":
            out.append(f"Order {o0['order_id']} was delivered on {day(o0.get('delivered_at'))}.")
        else:
            out.append(f"Order {o0['order_id']} is {o0.get('status')}.")
        return " ".join(out)
    for p in _facts(r, "policy"):
        out.append(f"{p.get('title')}: {p.get('text')}")
    methods = _facts(r, "shipping_method")
    lines = []
    for m in methods:
        days = (f"{m['min_days']} business day" if m.get("min_days") == m.get("max_days") == 1 else
                f"{m.get('min_days')} to {m.get('max_days')} business days")
        cost = "free" if not m.get("cost") else money(m["cost"], m.get("currency"))
        free = f", free over {money(m['free_over'], m.get('currency'))}" if m.get("free_over") else ""
        if r.intent == "delivery_period":
            lines.append(f"- {m['name']}: {days}")
        else:
            lines.append(f"- {m['name']}: {days}, {cost}{free}")
    if lines:
        head = (pick("dp", ("Delivery times:", "How long delivery takes:")) if r.intent == "delivery_period"
                else pick("do", ("We offer these delivery options:", "You can choose from:")))
        out.append(head + "\n" + "\n".join(lines))
    return "\n".join(out)


def _payments(r: Retrieval, pick: _Picker) -> str:
    ms = _facts(r, "payment_method")
    head = pick("pm", ("We accept:", "You can pay with:"))
    return head + "\n" + "\n".join(f"- {m['name']}" + (f": {m['description']}" if m.get("description") else "")
                                   for m in ms)


_OK_WRITERS = {
    "product_price": _price,
    "product_availability": _availability,
    "product_details": _details,
    "product_compare": _compare,
    "product_recommend": _recommend,
    "product_warranty": _warranty,
    "product_promotions": _promos,
    "track_order": _track,
    "order_details": _order_details,
    "check_invoice": _invoice,
    "get_invoice": _invoice,
    "change_order": _track,
    "track_refund": _track_refund,
    "check_refund_policy": _policy,
    "check_cancellation_fee": _policy,
    "delivery_options": _shipping,
    "delivery_period": _shipping,
    "check_payment_methods": _payments,
}

_STATUS_WRITERS = {
    "need_sign_in": _need_sign_in,
    "not_found": _not_found,
    "clarify": _clarify,
    "action_proposed": _proposed,
    "action_done": _done,
    "action_cancelled": _cancelled,
    "action_refused": _refused,
    "handoff": _handoff,
    "procedure": _procedure,
    "no_answer": _no_answer,
    "chitchat": _chitchat,
}


def variant_seed(session_id: str, turn: int) -> str:
    """The value the engine puts in `Retrieval.variant`: a hash, so no session id leaks."""
    return hashlib.sha1(f"{session_id}:{turn}".encode()).hexdigest()[:16]

