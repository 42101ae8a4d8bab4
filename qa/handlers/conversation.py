"""The conversation itself: greeting, goodbye, thanks, yes, no, and what is out of scope
(DESIGN section 4, "Conversation").

"Yes" and "no" answer what the bot asked (a pending action or clarification: the engine handles
those first); on their own they get a short acknowledgement. Out-of-scope questions get an offer of
a person, and two such turns in a row hand the conversation off (`failed`).
"""

from __future__ import annotations

from qa.handlers.base import Ask, Context, Handler, IntentSpec, Outcome
from qa.handlers.wording import Picker
from qa.prompts import OfferHuman, SmallTalk
from qa.types import Retrieval

GREETING = IntentSpec(
    "greeting",
    suggestions=("Where is my order?", "Recommend some headphones", "What is your return policy?"),
    small_talk=True)
GOODBYE = IntentSpec("goodbye", small_talk=True)
THANKS = IntentSpec("thanks", small_talk=True)
AFFIRM = IntentSpec("affirm")
DENY = IntentSpec("deny")
OUT_OF_SCOPE = IntentSpec("out_of_scope", failed=True)


class Conversation(Handler):
    family = "conversation"
    intents = (GREETING, GOODBYE, THANKS, AFFIRM, DENY, OUT_OF_SCOPE)
    queries = frozenset()

    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        if ask.intent == OUT_OF_SCOPE.name:
            return Outcome(Retrieval(intent=ask.intent, status="no_answer", prompt=OfferHuman()), ask.entities)
        return Outcome(Retrieval(intent=ask.intent, status="chitchat",
                                 prompt=SmallTalk(returning=ask.state.turn_index > 0)), ask.entities)

    def write(self, r: Retrieval, pick: Picker) -> str | None:
        if r.status == "no_answer" and r.intent == OUT_OF_SCOPE.name:
            return pick("oos", ("Sorry, that's outside what I can help with. I can answer questions about products, "
                                "orders and our policies, or connect you with a colleague.",
                                "I'm afraid I can't help with that one. Ask me about products, orders or our policies, "
                                "or I can pass you to a person."))
        if r.status != "chitchat":
            return None
        if r.intent == GREETING.name:
            return pick("hi", ("Hello! How can I help you today?", "Hi there! What can I do for you?",
                               "Hello! Ask me about products, your orders or our policies."))
        if r.intent == THANKS.name:
            return pick("thx", ("You're welcome!", "Happy to help!", "My pleasure. Anything else?"))
        if r.intent == GOODBYE.name:
            return pick("bye", ("Goodbye, and thanks for stopping by!", "Bye! Have a great day.",
                                "Thanks for chatting. Goodbye!"))
        return None
