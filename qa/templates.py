"""The template writer: deterministic, faithful, varied wording for every intent and status.

Every sentence is built from the typed facts and prompt of a `Retrieval` and nothing else, so a
template reply can never contradict or go beyond what the graph said; it is the fast path and the
fallback the LLM writer's grounding guard returns to. Wording varies between phrasings chosen by a
hash of the retrieval's `variant` (the engine puts a hash of session id and turn number there) and
a slot name: the same question in two sessions may read differently, a replay reads identically.

Who words what: the intent's handler first (its own prompts, qa/handlers/*), then, for an answer
(status "ok"), the intent's `write`; every other status has one shared writer here (sign in,
clarifying questions, nothing found, actions, hand-off, procedures, no answer, small talk).
Formatting helpers (money as "18.00 USD", dates as "17 March 2026") are in qa/handlers/wording.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence

from nlu.labels import FAMILY_OF
from qa.facts import (
    ActionCancelledFact,
    ActionDroppedFact,
    ActionFact,
    ActionRefusedFact,
    FaqFact,
    HandoffFact,
    InvoiceFact,
    OrderFact,
    OrderOptionFact,
    PolicyTextFact,
    QuestionDroppedFact,
    VariantsFact,
    facts_of,
    first_of,
)
from qa.handlers.wording import Picker, day, display, join, money
from qa.prompts import (
    ActionExpired,
    ActionTaken,
    AskFor,
    AwaitingAgent,
    BackToBot,
    NewAddress,
    NoOrders,
    OrderNotFound,
    ProductNotFound,
    WhichOne,
    WhichOrder,
)
from qa.registry import handler_for, spec_for
from qa.types import Reply, Retrieval, Status, Turn


def _seed(retrieval: Retrieval, turns: Sequence[Turn]) -> str:
    v = retrieval.variant
    if v:
        return str(v)
    return f"{len(turns)}|{retrieval.intent}|{retrieval.status}"


# -- suggestions ---------------------------------------------------------------------------------
_BY_STATUS: dict[str, tuple[str, ...]] = {
    "need_sign_in": ("How do I create an account?", "I forgot my password"),
    "no_answer": ("Talk to a person", "What is your return policy?"),
    "handoff": ("Never mind, I'll keep asking you",),
    "action_proposed": ("Yes, go ahead", "No, leave it"),
    # after an action the reply has said what it cost and what happened: what comes next, not that again
    "action_done": ("Show my recent orders", "Talk to a person"),
    "action_cancelled": ("Where is my order?", "Talk to a person"),
    "action_refused": ("Talk to a person", "What is your return policy?"),
    "chitchat": ("Where is my order?", "Recommend a product", "What is your return policy?"),
}


def suggestions(retrieval: Retrieval) -> list[str]:
    """Next questions for the client to offer, fitting the reply: they depend on the intent, the
    status and the prompt (what the reply was about) only, never on facts, so a 'not found' reply
    suggests the same things whoever's order was asked about."""
    if retrieval.status in _BY_STATUS:
        return list(_BY_STATUS[retrieval.status])
    if retrieval.status == "clarify":
        return []
    if retrieval.status == "not_found" and FAMILY_OF.get(retrieval.intent) == "orders":
        return ["Show my recent orders", "Talk to a person"]
    own = handler_for(retrieval.intent).suggest(retrieval)
    if own is not None:
        return own
    spec = spec_for(retrieval.intent)
    return list(spec.suggestions) if spec is not None else ["Talk to a person"]


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
    pick = Picker(_seed(r, turns))
    text = handler_for(r.intent).write(r, pick)
    if text is None:
        writer = _STATUS_WRITERS.get(r.status)
        text = writer(r, pick) if writer else _ok(r, pick)
    variants = first_of(r.facts, VariantsFact)
    if variants is not None and r.status == "ok" and len(variants.names) > 1:
        text += " " + _variants_note(variants, pick)
    dropped = first_of(r.facts, ActionDroppedFact)
    if dropped is not None and r.status != "action_cancelled":
        text = _dropped_note(dropped, pick) + " " + text
    elif first_of(r.facts, QuestionDroppedFact) is not None:
        text = pick("qdropped", ("OK, leaving my earlier question aside.", "Sure, let's do that instead.")) + " " + text
    return re.sub(r"[ \t]+\n", "\n", text).strip()


def _ok(r: Retrieval, pick: Picker) -> str:
    spec = spec_for(r.intent)
    answers_empty = spec is not None and spec.answers_without_facts
    if not [f for f in r.facts if not isinstance(f, ActionDroppedFact | QuestionDroppedFact)] and not answers_empty:
        return pick("ok_none", ("Sorry, I found nothing for that.", "I couldn't find anything on that."))
    if spec is not None and spec.write is not None:
        return spec.write(r, pick)
    return pick("ok_any", ("Here's what I found.", "This is what I found."))


def _variants_note(v: VariantsFact, pick: Picker) -> str:
    """An answer given at once for a mention that fits several products: which ones it holds for."""
    others = [display(n) for n in v.names[1:]]
    everyone = "both" if len(v.names) == 2 else f"all {len(v.names)}"
    return pick("variants", (f"The same goes for {join(others)}.",
                             f"That is the same for {everyone} matching \"{v.mention}\": {join([display(n) for n in v.names])}."))


# -- actions -------------------------------------------------------------------------------------
_ACTION_NOUN = {"cancel_order": "the cancellation", "change_shipping_address": "the address change",
                "return_request": "the return"}


def _dropped_note(d: ActionDroppedFact, pick: Picker) -> str:
    what = _ACTION_NOUN.get(d.action, "the change")
    return pick("dropped", (f"I've left order {d.order_id} as it was ({what} not done).",
                            f"I didn't go ahead with {what} for order {d.order_id}."))


def _proposed(r: Retrieval, pick: Picker) -> str:
    a = first_of(r.facts, ActionFact)
    if a is None:
        return "I need a few more details before I can do that. Which order is it about?"
    oid = a.order_id
    ask = pick("confirm", ("Shall I go ahead?", "Do you want me to do that?", "Should I proceed?"))
    if a.action == "cancel_order":
        fee = a.fee or 0.0
        cost = ("This is free of charge." if not fee else
                f"Cancelling now costs {money(fee, a.currency)}" + (f" ({a.policy})." if a.policy else "."))
        return f"I can cancel order {oid} for you. {cost} {ask}"
    if a.action == "change_shipping_address":
        old = f" from \"{a.old_address}\"" if a.old_address else ""
        return f"I'll change the delivery address of order {oid}{old} to \"{a.new_address}\". {ask}"
    items = [display(i) for i in a.items or []]
    fee = a.fee or 0.0
    fee_text = f" A fee of {money(fee, a.currency)} is deducted from the refund." if fee else ""
    until = f" The return window is open until {day(a.deadline)}." if a.deadline else ""
    return (f"I can open a return and refund request for order {oid} ({join(items)}).{until}{fee_text} "
            + pick("confirm_ret", ("Shall I open it?", "Do you want me to start the return?")))


def _done(r: Retrieval, pick: Picker) -> str:
    a = first_of(r.facts, ActionFact)
    if a is None:
        return "Done."
    oid, ref = a.order_id, a.request_id
    if isinstance(r.prompt, ActionTaken) and r.prompt.already:  # a second "yes"
        what = {"cancel_order": f"order {oid} is cancelled",
                "change_shipping_address": f"order {oid} will be delivered to \"{a.new_address}\"",
                }.get(a.action, f"the return request for order {oid} is open")
        return pick("done_again", (f"That's already done: {what} (reference {ref}).",
                                   f"You have already confirmed this: {what}. Your reference is {ref}."))
    if a.action == "cancel_order":
        return pick("done_cancel", (f"Done: order {oid} is cancelled (reference {ref}).",
                                    f"Order {oid} has been cancelled. Your reference is {ref}."))
    if a.action == "change_shipping_address":
        return pick("done_addr", (f"Done: order {oid} will now be delivered to \"{a.new_address}\" "
                                  f"(reference {ref}).",
                                  f"The delivery address of order {oid} is now \"{a.new_address}\". "
                                  f"Reference: {ref}."))
    return pick("done_ret", (f"Your return request for order {oid} is open (reference {ref}).",
                             f"I've opened a return and refund request for order {oid}; the reference is {ref}."))


def _cancelled(r: Retrieval, pick: Picker) -> str:
    d = first_of(r.facts, ActionCancelledFact)
    if isinstance(r.prompt, ActionExpired):
        what = _ACTION_NOUN.get(r.prompt.action, "the change")
        on = f" for order {d.order_id}" if d is not None and d.order_id else ""
        return (f"Sorry, that request has expired (I hold a request for {r.prompt.minutes} minutes), so I didn't go "
                f"ahead with {what}{on}. " + pick("restart", ("Shall I start again?", "Would you like me to start over?")))
    if d is not None and d.order_id:
        what = _ACTION_NOUN.get(d.action, "the change")
        return pick("cancelled", (f"OK, I won't go ahead with {what}; order {d.order_id} stays as it is.",
                                  f"No problem, nothing was changed on order {d.order_id}."))
    return pick("cancelled0", ("OK, nothing was changed.", "Alright, I've left everything as it was."))


_REFUSALS = {
    "already_shipped": "order {oid} has already shipped, so it can't be {verb} any more",
    "already_delivered": "order {oid} has already been delivered, so it can't be {verb} any more",
    "already_cancelled": "order {oid} was cancelled",
    "already_returned": "order {oid} has already been returned",
    "not_delivered": "order {oid} hasn't been delivered yet (it is {status}); a return can start once it arrives",
    "window_closed": "the return window for order {oid} closed on {deadline}",
    "not_returnable": "the items of order {oid} can't be returned under our return policy",
    "already_requested": "there is already a return request for order {oid} ({rstatus})",
    "state_changed": "order {oid} changed in the meantime, so I didn't change anything",
    "no_items": "order {oid} has no items that could be returned",
}


def _refused(r: Retrieval, pick: Picker) -> str:
    d = first_of(r.facts, ActionRefusedFact)
    if d is None:
        return "Sorry, I can't do that."
    verb = {"cancel_order": "cancelled", "change_shipping_address": "redirected"}.get(d.action, "changed")
    text = _REFUSALS.get(d.reason, "I can't do that for order {oid}").format(
        oid=d.order_id, verb=verb, status=d.status or "", deadline=day(d.deadline), rstatus=d.status or "open")
    lead = pick("refused", ("Sorry, ", "I'm afraid ", "Unfortunately "))
    tail = ""
    if d.reason == "already_shipped" and d.action == "cancel_order":
        tail = " You can return it once it has been delivered."
    elif d.reason == "already_delivered" and d.action == "cancel_order":
        tail = " You can return it instead."
    return lead + text + "." + tail


# -- other statuses --------------------------------------------------------------------------------
def _need_sign_in(r: Retrieval, pick: Picker) -> str:
    return pick("signin", (
        "Please sign in first, then I can look up your orders.",
        "I can help with that once you sign in: orders are only shown to the customer who placed them.",
        "To look at orders I need you to sign in to your account first.",
    ))


def _not_found(r: Retrieval, pick: Picker) -> str:
    """Nothing found, for the prompts every family shares (a handler words its own first)."""
    p = r.prompt
    if isinstance(p, OrderNotFound):
        oid = p.order_id
        return pick("nf_order", (
            f"I couldn't find an order {oid} on your account. Please check the number in your confirmation email.",
            f"There's no order {oid} on your account. Could you double-check the order number?",
            f"I can't find order {oid} among your orders. The number is in your order confirmation email.",
        ))
    if isinstance(p, NoOrders):
        which = f" that are {join(list(p.statuses), 'or')}" if p.statuses else ""
        return pick("nf_none", (f"I can't see any orders{which} on your account.",
                                f"There are no orders{which} on your account right now."))
    if isinstance(p, ProductNotFound):
        return pick("nf_product", (
            f"I couldn't find a product called \"{p.product}\". Could you check the name, or give me the "
            "product number?",
            f"Sorry, nothing in our catalog matches \"{p.product}\". Could you spell it differently?",
        ))
    return pick("nf_any", ("I couldn't find anything matching that.", "Sorry, I found nothing for that."))


def _clarify(r: Retrieval, pick: Picker) -> str:
    p = r.prompt
    if isinstance(p, WhichOne):
        listed = "; ".join(f"{i}) {display(o)}" for i, o in enumerate(p.options, 1))
        mention = p.mention or "one"
        if p.more:  # the list is a start: the shopper may name one it leaves out
            return pick("clarify_which_more", (
                f"We have more than {len(p.options)} matches for \"{mention}\", among them: {listed}. "
                "Which one? If yours is not listed, tell me more of its name.",
                f"Quite a few products match \"{mention}\", for example {listed}. Which one do you mean? "
                "More of the name will narrow it down.",
            ))
        return pick("clarify_which", (
            f"Which {mention} do you mean? {listed}",
            f"There are several matches for \"{mention}\": {listed}. Which one?",
            f"I found more than one {mention}: {listed}. Which one would you like?",
        ))
    if isinstance(p, WhichOrder):
        opts = []
        for i, o in enumerate(facts_of(r.facts, OrderOptionFact), 1):
            # "order 10452, placed 6 December", never "placed, placed 6 December"
            status = o.status if o.status and o.status != "placed" else ""
            bits = [f"order {o.order_id}", status, f"placed {day(o.placed_at)}" if o.placed_at else ""]
            if o.first_item:
                more = (o.item_count or 1) - 1
                bits.append(display(o.first_item) + (f" and {more} more" if more > 0 else ""))
            if o.total is not None:
                bits.append(money(o.total, o.currency))
            opts.append(f"{i}) " + ", ".join(b for b in bits if b))
        return pick("clarify_order", ("Which order do you mean? " + "; ".join(opts),
                                      "You have a few orders that could fit: " + "; ".join(opts) + ". Which one?"))
    if isinstance(p, NewAddress):
        orders = facts_of(r.facts, OrderFact)
        oid = orders[0].order_id if orders else ""
        return pick("clarify_addr", (f"What's the new delivery address for order {oid}?",
                                     f"Sure. Which address should order {oid} go to instead?"))
    if isinstance(p, AskFor) and p.question == "compare_with":
        return pick("clarify_cmp", ("Which product would you like to compare it with?",
                                    "Sure, which other product should I compare it with?"))
    if isinstance(p, AskFor) and p.question == "what_kind":
        return pick("clarify_kind", ("What kind of product are you looking for? A category, a brand or a budget "
                                     "helps me narrow it down.",
                                     "Happy to help! What are you shopping for (a category, brand or budget)?"))
    return pick("clarify_prod", ("Which product do you mean?", "Could you tell me which product you're asking about?"))


def _handoff(r: Retrieval, pick: Picker) -> str:
    if isinstance(r.prompt, AwaitingAgent):  # a message while a person has the conversation
        return pick("ho_wait", (
            "A colleague has your conversation and will reply here; I've added your message for them. "
            "If you'd rather keep asking me, just say so.",
            "A member of our team will answer you here shortly, and they'll see this message too. "
            "If you'd like to carry on with me instead, just tell me.",
        ))
    h = first_of(r.facts, HandoffFact)
    reason = h.reason if h is not None else None
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


def _no_answer(r: Retrieval, pick: Picker) -> str:
    return pick("na", ("I'm not sure about that one. Would you like me to connect you with a colleague?",
                       "I couldn't find a reliable answer to that. Shall I pass you to a member of our team?"))


def _procedure(r: Retrieval, pick: Picker) -> str:
    if first_of(r.facts, FaqFact) is None and first_of(r.facts, PolicyTextFact) is None:
        return _no_answer(r, pick)
    parts = []
    for f in r.facts:
        if isinstance(f, FaqFact):
            parts.append(f.answer)
        elif isinstance(f, PolicyTextFact):
            parts.append(f"{f.title}: {f.text}")
    lead = pick("proc", ("", "Here's how it works: ", "Sure. ", ""))
    order = first_of(r.facts, OrderFact) or first_of(r.facts, InvoiceFact)
    pre = ""
    if order is not None:
        pre = f"Order {order.order_id} is {order.status or ''}" + (
            f", total {money(order.total, order.currency)}" if order.total is not None else "") + ". "
    return pre + lead + " ".join(parts)


def _chitchat(r: Retrieval, pick: Picker) -> str:
    if isinstance(r.prompt, BackToBot):
        return pick("back", ("Of course, I'm back. What can I help you with?",
                             "Sure, let's carry on. What would you like to know?"))
    return pick("ok", ("Okay. What else can I help you with?", "Alright. Anything else?"))


_STATUS_WRITERS: dict[Status, Callable[[Retrieval, Picker], str]] = {
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
