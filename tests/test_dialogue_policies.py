"""Store policies (specificity: sku > brand > category through the hierarchy > store-wide),
shipping and payment methods, procedure questions answered by semantic search over FAQ texts,
and hand-off to a person."""

from __future__ import annotations

import pytest

from tests import test_dialogue_support as support

# Fixtures shared by the dialogue test modules.
shop, encoder, engine_factory, chat_factory = support.shop, support.encoder, support.engine_factory, support.chat_factory


@pytest.mark.parametrize(
    ("sku", "policy", "days", "why"),
    [
        ("NA-HP-000001", "POL-RETURN-AURORA", 60, "sku policy beats the brand one"),
        ("NA-HP-000002", "POL-RETURN-NORDIC", 45, "brand policy beats the category one"),
        ("BO-HP-000005", "POL-RETURN-ELEC", 21, "category policy found by walking Headphones -> Electronics"),
        ("SH-HC-000008", "POL-RETURN-STD", 30, "no specific policy: store-wide"),
        ("OA-FU-000009", "POL-RETURN-FURN", 30, "category policy with a fee"),
    ],
)
def test_return_policy_most_specific_wins(chat_factory, sku, policy, days, why):
    chat = chat_factory()
    r = chat.say("can I return the thing?", "check_refund_policy", ("thing", "PRODUCT", sku))
    ret = next(f.data for f in r.facts if f.kind == "policy" and f.data["type"] == "return")
    assert (ret["policy_id"], ret["days"]) == (policy, days), why
    assert f"{days} days" in r.answer and r.query_name == "policies.for_product"
    # the rule that applies leads, alone; the others come on request
    assert [f.data["policy_id"] for f in r.facts if f.kind == "policy"] == [policy]
    if sku == "OA-FU-000009":
        assert "49.00 USD" in r.answer
    more = chat.say("are there other rules?", "check_refund_policy")
    others = {f.data["policy_id"]: f.data for f in more.facts if f.kind == "policy"}
    assert policy not in others and others["POL-REFUND-STD"]["type"] == "refund" and "POL-REFUND-STD" in str(
        [f.data for f in more.facts]) and "How refunds are paid" in more.answer
    if policy != "POL-RETURN-STD":  # the store-wide return rule is listed as overridden by the one that applies
        assert others["POL-RETURN-STD"]["overridden_by"] == ret["title"]


def test_policy_for_a_brand_a_category_and_the_store(chat_factory):
    chat = chat_factory()
    r = chat.say("what is the return policy for Nordic Audio?", "check_refund_policy",
                 ("Nordic Audio", "BRAND", "Nordic Audio"))
    assert r.facts[0].data["policy_id"] == "POL-RETURN-NORDIC"
    r = chat.say("and for headphones?", "check_refund_policy", ("headphones", "CATEGORY", "Headphones"))
    assert r.facts[0].data["policy_id"] == "POL-RETURN-ELEC" and r.facts[0].data["applies_to"] == "Electronics"
    r = chat_factory().say("what's your return policy?", "check_refund_policy")
    assert r.facts[0].data["policy_id"] == "POL-RETURN-STD" and "30 days" in r.answer


def test_can_i_still_return_it_after_an_order_question(chat_factory):
    chat = chat_factory("C00001")
    chat.say("where is order 10001", "track_order", ("10001", "ORDER_ID", "10001"))
    r = chat.say("and can I still return it?", "check_refund_policy")
    assert [e.node_id for e in r.entities if e.source == "context"] == ["10001"]
    assert "4 May 2026" in r.answer and "4 April 2026" in r.answer


def test_cancellation_fee_delivery_and_payment_methods(chat_factory):
    chat = chat_factory()
    r = chat.say("is there a fee to cancel?", "check_cancellation_fee")
    assert r.facts[0].data["policy_id"] == "POL-CANCEL-STD" and "9.95 USD" in r.answer
    r = chat.say("what does it cost to cancel a sofa?", "check_cancellation_fee",
                 ("sofa", "PRODUCT", "OA-FU-000009"))
    assert r.facts[0].data["policy_id"] == "POL-CANCEL-FURN" and "50.00 USD" in r.answer
    r = chat.say("what delivery options do you have?", "delivery_options")
    assert "Standard: 3 to 5 business days, 4.99 USD, free over 50.00 USD" in r.answer
    assert "Express: 1 to 2 business days, 12.99 USD" in r.answer
    r = chat.say("how long does delivery take?", "delivery_period")
    assert "Standard: 3 to 5 business days" in r.answer
    r = chat.say("can I pay with paypal?", "check_payment_methods")
    assert {f.data["name"] for f in r.facts} == {"Card", "PayPal"} and "PayPal" in r.answer


def test_procedure_questions_use_semantic_search_over_faqs(chat_factory):
    chat = chat_factory()
    r = chat.say("I can't log in, I forgot my pw", "recover_password")
    assert r.status == "procedure" and r.query_name == "procedures.corpus"
    assert r.facts[0].data["question"] == "I forgot my password. How do I reset it?"
    assert "60 minutes" in r.answer
    r = chat.say("how do I stop getting your newsletter emails", "newsletter_subscription")
    assert r.status == "procedure" and "Unsubscribe" in r.answer
    r = chat.say("how can I get in touch with support?", "contact_customer_service")
    assert r.status == "procedure" and "555-0100" in r.answer


def test_low_confidence_procedure_offers_a_person_and_yes_hands_off(chat_factory):
    chat = chat_factory()
    r = chat.say("can I change the colour of my avatar in the mobile app", "edit_account")
    assert r.status == "no_answer" and r.facts == [] and not r.handoff
    r2 = chat.say("yes please", "affirm")
    assert r2.handoff and r2.status == "handoff"


def test_two_failed_turns_in_a_row_hand_off_with_a_summary(chat_factory):
    chat = chat_factory("C00001")
    chat.say("how much is the NA-700X?", "product_price", ("NA-700X", "PRODUCT", "NA-HP-000004"))
    r1 = chat.say("what's the weather like in Paris?", "out_of_scope")
    assert r1.status == "no_answer" and not r1.handoff
    r2 = chat.say("who won the football yesterday?", "out_of_scope")
    assert r2.handoff and r2.status == "handoff"
    summary = r2.facts[0].data
    assert summary["reason"] == "failed_turns" and summary["customer_id"] == "C00001"
    assert summary["intents"] == ["product_price", "out_of_scope"]
    assert "NA-700X" in summary["summary"] and "football" in summary["summary"]
    # a person has the conversation now: the bot says so; back with the bot, the counter starts again
    waiting = chat.say("what's the capital of Peru?", "out_of_scope")
    assert waiting.handoff and waiting.status == "handoff" and waiting.facts == []
    assert chat.say("never mind, I'll keep asking you", "deny").status == "chitchat"
    assert not chat.say("what's the capital of Peru?", "out_of_scope").handoff


def test_a_good_answer_between_failures_resets_the_counter(chat_factory):
    chat = chat_factory()
    chat.say("tell me a joke", "out_of_scope")
    chat.say("what delivery options do you have?", "delivery_options")
    assert not chat.say("sing me a song", "out_of_scope").handoff


@pytest.mark.parametrize(
    ("message", "intent", "reason"),
    [
        ("I want to make a complaint about my delivery", "complaint", "complaint"),
        ("let me talk to a human", "contact_human_agent", "asked_for_agent"),
        ("this is ridiculous, my order 10002 is useless", "track_order", "negative_sentiment"),
        ("I'm not happy, still waiting for my parcel!!", "track_order", "negative_sentiment"),
    ],
)
def test_hand_off_triggers(chat_factory, message, intent, reason):
    chat = chat_factory("C00001")
    r = chat.say(message, intent)
    assert r.handoff and r.status == "handoff" and r.facts[0].data["reason"] == reason
    assert r.suggestions == ["Never mind, I'll keep asking you"]  # the way back to the bot


def test_plain_questions_do_not_hand_off(chat_factory):
    chat = chat_factory("C00001")
    for msg in ("where is my order 10002?", "the headphones arrived broken, can I return them?", "thanks!"):
        intent = {"thanks!": "thanks"}.get(msg, "track_order")
        assert not chat.say(msg, intent).handoff, msg
