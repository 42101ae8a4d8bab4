"""Hand-off to a person: when, and the short summary the agent reads first.

A conversation is handed off on a complaint, on a request for a person, on clearly negative
sentiment (a small lexicon: strong words count alone, milder ones in pairs, and a negated
positive such as "not happy" counts as mild), or after two failed turns in a row (out of scope or
no answer). The summary names the reason, the customer (id only; no personal data), what was
asked, which products and orders came up, and the last messages, shortened.

Once handed off, the conversation stays with a person: the engine answers only that a colleague
will reply, until an agent releases it, HANDOFF_TIMEOUT_S passes, or the shopper asks to go on
with the bot (`wants_bot`: "never mind, I'll keep asking you").
"""

from __future__ import annotations

import re

from qa.facts import HandoffFact
from qa.registry import spec_for
from qa.state import DialogueState

FAILED_STATUSES = ("no_answer",)
MAX_FAILED = 2

_STRONG = (
    "terrible", "awful", "horrible", "useless", "worst", "furious", "disgusting", "unacceptable", "ridiculous",
    "scam", "rip-off", "ripoff", "rip off", "pathetic", "outrageous", "fed up", "sick of", "hate", "hopeless",
    "incompetent", "disgraceful", "appalling", "wtf", "fraud", "shameful", "never again",
)
_MILD = (
    "angry", "annoyed", "annoying", "frustrated", "frustrating", "disappointed", "disappointing", "upset",
    "rubbish", "stupid", "waste of", "still waiting", "nobody answers", "ignored", "fed-up", "joke",
)
_NEGATED_POSITIVE = re.compile(r"\b(not|never|isn't|wasn't|aren't)\s+(happy|satisfied|good|ok|okay|acceptable|helpful)\b")
_SHOUTING = re.compile(r"[A-Z]{4,}(?:\s+[A-Z]{2,}){2,}")


def _word_patterns(words: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(r"(?<![a-z])" + re.escape(w) + r"(?![a-z])") for w in words)


_STRONG_RES, _MILD_RES = _word_patterns(_STRONG), _word_patterns(_MILD)  # run on nearly every turn


def _count(text: str, patterns: tuple[re.Pattern[str], ...]) -> int:
    return sum(1 for p in patterns if p.search(text))


def negative_sentiment(message: str) -> bool:
    """Clearly negative: one strong word, or two mild signals (a negated positive, shouting, '!!')."""
    text = message.lower()
    strong = _count(text, _STRONG_RES)
    mild = _count(text, _MILD_RES) + len(_NEGATED_POSITIVE.findall(text))
    mild += 1 if _SHOUTING.search(message) else 0
    mild += 1 if "!!" in message or "??" in message else 0
    return strong >= 1 or mild >= 2


def handoff_reason(intent: str, message: str) -> str | None:
    """Why this message alone hands the conversation off, or None."""
    spec = spec_for(intent)
    if spec is not None and spec.handoff:
        return spec.handoff
    if intent != "affirm" and not (spec is not None and spec.small_talk) and negative_sentiment(message):
        return "negative_sentiment"
    return None


_BACK_TO_BOT = re.compile(
    r"\b(never ?mind|forget (it|that|about it)|(go|come|switch|get) back to (you|the (bot|assistant|chat ?bot))"
    r"|back to the (bot|assistant)|(keep|carry on|go on|continue) (asking|chatting|talking|with)( (to|with))? you"
    r"|(i'?ll|i will|let me|can i|i'd rather) (keep )?(ask|talk to|chat with|continue with|stay with) you"
    r"|(don'?t|do not|no longer) need (a|the|any)? ?(person|human|agent|colleague)"
    r"|no need for (a|the|any)? ?(person|human|agent|colleague)|cancel the (hand-?off|transfer))\b")


def wants_bot(message: str) -> bool:
    """After a hand-off: the shopper would rather go on with the bot than wait for a person."""
    return _BACK_TO_BOT.search(re.sub(r"\s+", " ", message.lower().replace("\u2019", "'"))) is not None


def is_failed(intent: str, status: str) -> bool:
    spec = spec_for(intent)
    return (spec is not None and spec.failed) or status in FAILED_STATUSES


def _short(text: str, n: int = 160) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def summary(state: DialogueState, message: str, reason: str, intent: str) -> HandoffFact:
    """The agent's view of the conversation so far, this message included."""
    asked = [t.intent for t in state.turns if t.role == "user" and t.intent] + [intent]
    seen: list[str] = []
    for i in reversed(asked):  # the most recent distinct intents, in the order they were asked
        spec = spec_for(i)
        if i not in seen and i not in ("affirm", "deny") and not (spec is not None and spec.small_talk):
            seen.insert(0, i)
    seen = seen[-6:]
    products = [r.name for t, r in state.last_entities.items() if t == "PRODUCT"]
    orders = [r.node_id for t, r in state.last_entities.items() if t == "ORDER_ID" and r.node_id]
    last_user = [t.text for t in state.turns if t.role == "user"][-2:] + [message]
    text_parts = [f"Reason: {reason.replace('_', ' ')}.",
                  f"Customer: {state.customer_id or 'not signed in'}.",
                  f"Asked about: {', '.join(seen)}."]
    if products:
        text_parts.append(f"Product: {', '.join(products)}.")
    if orders:
        text_parts.append(f"Order: {', '.join(orders)}.")
    if state.pending_action is not None:
        text_parts.append(f"Pending action: {state.pending_action.kind} on order {state.pending_action.order_id}.")
    text_parts.append("Last message: " + _short(message))
    return HandoffFact(
        reason=reason,
        customer_id=state.customer_id,
        turns=state.turn_index + 1,
        intents=seen,
        products=products,
        orders=orders,
        recent_messages=[_short(m) for m in last_user],
        summary=" ".join(text_parts),
    )
