"""Account and service questions: creating, deleting, editing and switching accounts, passwords,
registration problems, the newsletter, complaints, reviews, and reaching customer service
(DESIGN section 4, "Account" and "Service").

They are answered from the store's FAQ and policy texts by semantic search, with a person offered
below the confidence threshold. A complaint, or a request for a person, hands the conversation to
a colleague before anything is retrieved (`handoff`).
"""

from __future__ import annotations

from qa.handlers.base import Ask, Context, Handler, IntentSpec, Outcome
from qa.handlers.shared import procedure_answer

CREATE_ACCOUNT = IntentSpec(
    "create_account",
    suggestions=("I didn't get the confirmation email", "How do I subscribe to the newsletter?"),
    topics=("account", "registration"),
    action_words=frozenset({"create"}))
DELETE_ACCOUNT = IntentSpec(
    "delete_account",
    suggestions=("What happens to my data?", "Talk to a person"),
    topics=("account", "privacy"),
    action_words=frozenset({"delete", "remove", "process"}))
EDIT_ACCOUNT = IntentSpec(
    "edit_account",
    suggestions=("How do I change my shipping address?",),
    topics=("account",),
    action_words=frozenset({"change", "update", "modify"}))
SWITCH_ACCOUNT = IntentSpec(
    "switch_account",
    suggestions=("How do I get an invoice with my company name?",),
    topics=("account",))
RECOVER_PASSWORD = IntentSpec(
    "recover_password",
    suggestions=("My reset link does not work", "Talk to a person"),
    topics=("password", "account"),
    action_words=frozenset({"send", "email", "reset"}))
REGISTRATION_PROBLEMS = IntentSpec(
    "registration_problems",
    suggestions=("I forgot my password", "Talk to a person"),
    topics=("registration", "account"))
NEWSLETTER = IntentSpec(
    "newsletter_subscription",
    suggestions=("Are there any promotions right now?",),
    topics=("newsletter",),
    action_words=frozenset({"subscribe", "unsubscribe", "update", "remove", "add"}))
COMPLAINT = IntentSpec(
    "complaint",
    handoff="complaint",
    action_words=frozenset({"submit", "escalate", "process"}))
REVIEW = IntentSpec(
    "review",
    suggestions=("Where is my order?",),
    topics=("reviews", "review"),
    action_words=frozenset({"submit", "process", "add"}))
CONTACT_SERVICE = IntentSpec(
    "contact_customer_service",
    suggestions=("Talk to a person",),
    topics=("contact", "service"))
HUMAN_AGENT = IntentSpec(
    "contact_human_agent",
    handoff="asked_for_agent")


class AccountAndService(Handler):
    family = "account_and_service"
    intents = (CREATE_ACCOUNT, DELETE_ACCOUNT, EDIT_ACCOUNT, SWITCH_ACCOUNT, RECOVER_PASSWORD, REGISTRATION_PROBLEMS,
               NEWSLETTER, COMPLAINT, REVIEW, CONTACT_SERVICE, HUMAN_AGENT)
    queries = frozenset({"procedures.corpus"})

    def retrieve(self, ask: Ask, ctx: Context) -> Outcome:
        spec = self.spec(ask.intent)
        return procedure_answer(ctx, ask.intent, ask.entities, ask.message, spec.topics)
