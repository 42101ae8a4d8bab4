"""Order questions and actions through the engine on a real graph: sign-in, another customer's
order answered exactly like a missing one, choosing among recent orders, and each action
(cancel, change address, return) with affirm, with deny, refused by the rules, and dropped by a
change of topic."""

from __future__ import annotations

import itertools

from qa.types import Retrieval
from tests import test_dialogue_support as support
from tests.test_dialogue_support import Chat, order_props, requests_of, set_order_status

# Fixtures shared by the dialogue test modules.
shop, encoder, engine_factory, chat_factory = support.shop, support.encoder, support.engine_factory, support.chat_factory


def test_anonymous_order_question_asks_to_sign_in(chat_factory):
    chat = chat_factory(None)
    r = chat.say("where is my order 10002?", "track_order", ("10002", "ORDER_ID", "10002"))
    assert r.status == "need_sign_in" and r.facts == [] and "sign in" in r.answer.lower()
    assert [(e.type, e.text, e.node_id) for e in r.entities] == [("ORDER_ID", "10002", None)]
    assert "SwiftPost" not in r.json()


def test_after_signing_in_it_is_the_order_asked_about_before(chat_factory):
    """An order named before signing in is the one "where is it?" and "how much did I pay?" mean
    afterwards, though the customer has several orders; signed in as someone else, that order is
    answered like a missing one."""
    chat = chat_factory(None)
    assert chat.say("hi, where is my order 10002?", "track_order", ("10002", "ORDER_ID", "10002")).status == \
        "need_sign_in"
    chat.customer_id = "C00001"
    where = chat.say("ok I've signed in now. where is it?", "track_order")
    assert where.status == "ok" and "SwiftPost" in where.answer and "SP123456789" in where.answer
    assert [(e.type, e.node_id, e.source) for e in where.entities] == [("ORDER_ID", "10002", "context")]
    paid = chat.say("how much did I pay?", "order_details")
    assert paid.status == "ok" and "329.00 USD" in paid.answer

    other = chat_factory(None)
    other.say("where is my order 10002?", "track_order", ("10002", "ORDER_ID", "10002"))
    other.customer_id = "C00003"
    not_theirs = other.say("signed in, where is it now?", "track_order")
    assert not_theirs.status == "not_found" and "SwiftPost" not in not_theirs.json()


def test_track_order_with_carrier_tracking_and_eta(chat_factory):
    chat = chat_factory("C00001")
    r = chat.say("where is my order #10002?", "track_order", ("10002", "ORDER_ID", None))
    assert r.status == "ok" and r.query_name == "orders.by_id_for_customer"
    assert "SwiftPost" in r.answer and "SP123456789" in r.answer and "17 March 2026" in r.answer
    assert r.entities[0].node_id == "10002"
    items = chat.say("what's in it?", "order_details")
    assert "Bose QuietComfort 45 Headphones (Black)" in items.answer and "329.00 USD" in items.answer
    assert "shipped 13 March 2026" in items.answer
    # "when was it delivered?" read as order_details still gets the date
    delivered = chat.say("when was order 10001 delivered?", "order_details", ("10001", "ORDER_ID", None))
    assert delivered.status == "ok" and "delivered 5 March 2026" in delivered.answer


def _two_engines(engine_factory):
    """Two engines on separate key prefixes whose session ids come out in the same order, so the
    wording (which varies with session id and turn) is comparable between them."""
    a, nlu_a = engine_factory(prefix="cmp:a:", new_id=map("sess-{}".format, itertools.count()).__next__)
    b, nlu_b = engine_factory(prefix="cmp:b:", new_id=map("sess-{}".format, itertools.count()).__next__)
    return Chat(a, nlu_a, "C00001"), Chat(b, nlu_b, "C00001")


def test_another_customers_order_is_answered_exactly_like_a_missing_one(engine_factory, shop):
    _, store = shop
    mine_not, missing = _two_engines(engine_factory)
    for intent, template in [("track_order", "where is order {}?"), ("order_details", "what is in order {}"),
                             ("cancel_order", "cancel order {}"), ("get_refund", "I want a refund for order {}"),
                             ("change_shipping_address", "send order {} to 5 New Street, Leeds LS1 4AP"),
                             ("check_invoice", "invoice for order {}"), ("track_refund", "refund status of {}"),
                             ("check_refund_policy", "can I return order {}?")]:
        a = mine_not.say(template.format("10005"), intent, ("10005", "ORDER_ID", "10005"))  # C00002's order
        b = missing.say(template.format("99999"), intent, ("99999", "ORDER_ID", None))  # no such order
        assert a.status == "not_found", intent
        da = a.model_dump()
        db = b.model_dump()
        da["session_id"] = db["session_id"] = "-"
        text_a = a.model_dump_json().replace("10005", "#ID#").replace(a.session_id, "-")
        text_b = b.model_dump_json().replace("99999", "#ID#").replace(b.session_id, "-")
        assert text_a == text_b, intent
        assert "349.99" not in text_a and "NA-HP-000004" not in text_a
    # nothing was written for the other customer's order
    assert order_props(store, "10005")["status"] == "delivered"
    assert requests_of(store, "C00001") == [] and requests_of(store, "C00002") == []


def test_without_an_order_id_the_plausible_recent_orders_are_offered(chat_factory):
    chat = chat_factory("C00001")
    r = chat.say("where is my order?", "track_order")
    assert r.status == "clarify" and r.intent.name == "track_order"
    assert [f.data["order_id"] for f in r.facts] == ["10003", "10002", "10004"]  # not delivered, newest first
    r2 = chat.say("the second one", "out_of_scope", confidence=0.2)
    assert r2.intent.name == "track_order" and "SwiftPost" in r2.answer
    # Only one order fits a return: it is used without asking.
    r3 = chat_factory("C00002").say("I want to return my order", "get_refund")
    assert r3.status == "action_proposed" and r3.facts[0].data["order_id"] == "10005"


def test_order_clarification_answered_with_the_id(chat_factory):
    chat = chat_factory("C00001")
    chat.say("cancel my order", "cancel_order")
    r = chat.say("10004", "out_of_scope", ("10004", "ORDER_ID", "10004"), confidence=0.3)
    assert r.status == "action_proposed" and r.intent.name == "cancel_order"


def test_cancel_with_affirm_writes_status_and_request(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    r1 = chat.say("please cancel order 10003", "cancel_order", ("10003", "ORDER_ID", "10003"))
    assert r1.status == "action_proposed" and "free of charge" in r1.answer and "10003" in r1.answer
    assert order_props(store, "10003")["status"] == "placed" and requests_of(store, "C00001") == []
    r2 = chat.say("yes please", "affirm")
    assert r2.status == "action_done" and r2.intent.name == "affirm"
    assert order_props(store, "10003")["status"] == "cancelled"
    [req] = requests_of(store, "C00001")
    assert req["kind"] == "cancel" and req["status"] == "done" and req["order_id"] == "10003"
    assert req["created_by"] == "chat:C00001" and req["request_id"] in r2.answer
    # a second "yes" does nothing more, and says the same request is done (issue 12 item 7)
    r3 = chat.say("yes", "affirm")
    assert r3.status == "action_done" and "already" in r3.answer and req["request_id"] in r3.answer
    assert len(requests_of(store, "C00001")) == 1
    assert chat.say("how much is the NA-700X?", "product_price", ("NA-700X", "PRODUCT", "NA-HP-000004")).status == "ok"
    assert chat.say("yes", "affirm").status == "chitchat"  # once the conversation moved on, "yes" is just "yes"


def test_cancel_with_deny_changes_nothing(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    chat.say("cancel order 10003", "cancel_order", ("10003", "ORDER_ID", "10003"))
    r = chat.say("no, keep it", "deny")
    assert r.status == "action_cancelled" and "10003" in r.answer
    assert order_props(store, "10003")["status"] == "placed" and requests_of(store, "C00001") == []


def test_cancel_fee_from_the_most_specific_policy(chat_factory):
    chat = chat_factory("C00001")
    # The sofa order was placed 5 days ago; furniture is free to cancel only within 2 days.
    r = chat.say("cancel order 10004", "cancel_order", ("10004", "ORDER_ID", "10004"))
    assert r.status == "action_proposed" and "50.00 USD" in r.answer
    action = next(f for f in r.facts if f.kind == "action").data
    assert action["fee"] == 50.0 and action["policy"] == "Cancelling made-to-order furniture"
    fee = chat.say("what would cancelling it cost?", "check_cancellation_fee")
    assert "50.00 USD" in fee.answer and fee.facts[0].data["order_id"] == "10004"
    assert "left order 10004 as it was" in fee.answer or "didn't go ahead" in fee.answer  # dropped action noted


def test_cancel_refused_once_shipped(chat_factory, shop):
    _, store = shop
    r = chat_factory("C00001").say("cancel order 10002", "cancel_order", ("10002", "ORDER_ID", "10002"))
    assert r.status == "action_refused" and "already shipped" in r.answer
    assert r.facts[0].data["reason"] == "already_shipped" and order_props(store, "10002")["status"] == "shipped"


def test_action_refused_when_the_order_changed_before_the_affirm(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    chat.say("cancel order 10003", "cancel_order", ("10003", "ORDER_ID", "10003"))
    set_order_status(store, "10003", "shipped")  # the warehouse was faster
    r = chat.say("yes", "affirm")
    assert r.status == "action_refused" and r.facts[0].data["reason"] == "state_changed"
    assert order_props(store, "10003")["status"] == "shipped" and requests_of(store, "C00001") == []


def test_change_address_with_affirm(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    r1 = chat.say("change the shipping address of order 10003 to 12 Baker Street, London NW1 6XE",
                  "change_shipping_address", ("10003", "ORDER_ID", "10003"))
    assert r1.status == "action_proposed" and "12 Baker Street, London NW1 6XE" in r1.answer
    assert "1 Old Road, Portland 97201" in r1.answer
    r2 = chat.say("yes, go ahead", "affirm")
    assert r2.status == "action_done"
    assert order_props(store, "10003")["ship_to"] == "12 Baker Street, London NW1 6XE"
    assert [r["kind"] for r in requests_of(store, "C00001")] == ["change_address"]


def test_change_address_asks_for_the_address_then_deny(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    r1 = chat.say("I need to change the delivery address for order 10004", "change_shipping_address",
                  ("10004", "ORDER_ID", "10004"))
    assert r1.status == "clarify" and "address" in r1.answer
    r2 = chat.say("25 Elm Street, Boston 02108", "out_of_scope", confidence=0.2)
    assert r2.status == "action_proposed" and r2.intent.name == "change_shipping_address"
    assert "25 Elm Street, Boston 02108" in r2.answer
    r3 = chat.say("no", "deny")
    assert r3.status == "action_cancelled"
    assert order_props(store, "10004")["ship_to"] == "1 Old Road, Portland 97201" and requests_of(store, "C00001") == []


def test_change_address_refused_after_shipping(chat_factory):
    r = chat_factory("C00001").say("change the address of order 10002 to 3 Main St, Austin 73301",
                                   "change_shipping_address", ("10002", "ORDER_ID", "10002"))
    assert r.status == "action_refused" and r.facts[0].data["reason"] == "already_shipped"


def test_return_with_affirm_inside_the_window(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    r1 = chat.say("I want a refund for order 10001 because it is too big", "get_refund",
                  ("10001", "ORDER_ID", "10001"))
    assert r1.status == "action_proposed"
    windows = {f.data["sku"]: f.data for f in r1.facts if f.kind == "return_window"}
    assert windows["NA-HP-000001"]["deadline"] == "2026-05-04"  # sku policy: 60 days from 5 March
    assert windows["SH-HC-000008"]["deadline"] == "2026-04-04"  # store-wide: 30 days
    r2 = chat.say("yes", "affirm")
    assert r2.status == "action_done"
    [req] = requests_of(store, "C00001")
    assert req["kind"] == "return" and req["status"] == "open" and req["reason"] == "it is too big"
    again = chat.say("I want to return order 10001", "get_refund", ("10001", "ORDER_ID", "10001"))
    assert again.status == "action_refused" and again.facts[1].data["reason"] == "already_requested"
    track = chat.say("where is my refund?", "track_refund")
    assert req["request_id"] in track.answer and "10 business days" in track.answer


def test_return_with_deny_and_outside_the_window(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    chat.say("return order 10001", "get_refund", ("10001", "ORDER_ID", "10001"))
    assert chat.say("no thanks", "deny").status == "action_cancelled"
    r = chat.say("and order 10006?", "get_refund", ("10006", "ORDER_ID", "10006"))
    assert r.status == "action_refused" and "26 November 2025" in r.answer  # 21-day electronics window
    r = chat.say("can I return order 10002", "get_refund", ("10002", "ORDER_ID", "10002"))
    assert r.status == "action_refused" and r.facts[1].data["reason"] == "not_delivered"
    assert requests_of(store, "C00001") == []


def test_topic_change_drops_the_pending_action(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    chat.say("cancel order 10003", "cancel_order", ("10003", "ORDER_ID", "10003"))
    r = chat.say("how much is the NA-700X?", "product_price", ("NA-700X", "PRODUCT", "NA-HP-000004"))
    assert r.status == "ok" and "349.99 USD" in r.answer and "10003" in r.answer
    assert r.facts[0].kind == "action_dropped"
    r2 = chat.say("yes", "affirm")
    assert r2.status == "chitchat"
    assert order_props(store, "10003")["status"] == "placed" and requests_of(store, "C00001") == []


def test_a_dropped_stream_after_affirm_cannot_replay_the_action(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    chat.say("change the shipping address of order 10003 to 7 Harbour Street, Leeds LS1 4AP",
             "change_shipping_address", ("10003", "ORDER_ID", "10003"))
    chat.nlu.expect("yes", "affirm")
    stream = chat.engine.stream(chat.session_id, "yes", "C00001")
    next(stream)  # the client reads one chunk and disconnects
    stream.close()
    assert order_props(store, "10003")["ship_to"] == "7 Harbour Street, Leeds LS1 4AP"
    again = chat.say("yes", "affirm")  # the action was taken before the graph was written: not replayed
    [req] = requests_of(store, "C00001")
    assert req["kind"] == "change_address"
    assert again.status == "action_done" and "already" in again.answer and req["request_id"] in again.answer


def test_an_invoice_is_the_shoppers_own_data(chat_factory):
    """Invoice facts are reached through the signed-in customer like order facts, so the safety
    filter shows the shopper their own order number instead of masking it (an id shaped like
    "2026-000123" reads as a phone number when it is not known to be theirs)."""
    from qa.safety import SafetyFilter

    chat = chat_factory("C00001")
    r = chat.say("invoice for order 10001", "check_invoice", ("10001", "ORDER_ID", None))
    assert r.status == "ok" and r.facts[0].kind == "invoice" and r.facts[0].data["customer_id"] == "C00001"
    invoice = r.facts[0].model_copy(update={"order_id": "2026-000123"})
    retrieval = Retrieval(intent="check_invoice", status="ok", facts=[invoice])
    text = "The invoice for order 2026-000123: total 279.98 USD."
    assert SafetyFilter().apply(text, retrieval, customer_id="C00001").text == text
    assert "2026-000123" not in SafetyFilter().apply(text, retrieval, customer_id="C00002").text


# -- confirmations: taken atomically, expiring; a new request while one is pending (issues 11, 12) ------
def test_six_concurrent_yes_change_the_address_once_and_all_report_the_same_request(chat_factory, shop):
    """Six "yes" at once (a double-clicking shopper, a retrying client): the action is taken
    atomically before the graph is written, so exactly one writes, and every reply, the five that
    lost the race included, reports the same request as done; none is lost to a conflict."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    _, store = shop
    chat = chat_factory("C00001")
    chat.say("change the shipping address of order 10003 to 9 Quay Street, Bristol BS1 4DJ",
             "change_shipping_address", ("10003", "ORDER_ID", "10003"))
    chat.nlu.expect("yes", "affirm")
    barrier = Barrier(6)

    def confirm(_: int):
        barrier.wait()
        return chat.engine.handle(chat.session_id, "yes", "C00001")

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(confirm, range(6)))
    [req] = requests_of(store, "C00001")
    assert req["kind"] == "change_address" and order_props(store, "10003")["ship_to"] == "9 Quay Street, Bristol BS1 4DJ"
    assert [r.status for r in results] == ["action_done"] * 6
    assert {f.data["request_id"] for r in results for f in r.facts if f.kind == "action"} == {req["request_id"]}
    assert all(req["request_id"] in r.answer for r in results)
    assert sum("already" in r.answer for r in results) == 5  # the ones that lost say it was done already
    turns = chat.engine.session_turns(chat.session_id, "C00001")
    assert len(turns) == 2 + 12 and sorted(r.turn for r in results) == [2, 3, 4, 5, 6, 7]  # every turn kept


def test_a_yes_after_the_request_expired_offers_to_start_again(engine_factory, shop):
    from datetime import timedelta

    _, store = shop
    now = [support.NOW]
    engine, nlu = engine_factory(clock=lambda: now[0], pending_ttl_s=300)
    chat = Chat(engine, nlu, "C00001")
    chat.say("cancel order 10003", "cancel_order", ("10003", "ORDER_ID", "10003"))
    now[0] += timedelta(seconds=301)
    late = chat.say("yes", "affirm")
    assert late.status == "action_cancelled" and "expired" in late.answer and "10003" in late.answer
    assert "start" in late.answer  # "Shall I start again?" / "start over?"
    assert order_props(store, "10003")["status"] == "placed" and requests_of(store, "C00001") == []
    again = chat.say("yes", "affirm")  # yes, start again: proposed afresh, with the rules checked again
    assert again.status == "action_proposed" and "10003" in again.answer
    done = chat.say("yes", "affirm")
    assert done.status == "action_done" and order_props(store, "10003")["status"] == "cancelled"
    assert len(requests_of(store, "C00001")) == 1


def test_an_expired_request_is_not_carried_out_by_a_later_yes(engine_factory, shop):
    """An expired pending action is gone: a new topic does not note it, and a "yes" after that is
    just "yes"."""
    from datetime import timedelta

    _, store = shop
    now = [support.NOW]
    engine, nlu = engine_factory(clock=lambda: now[0], pending_ttl_s=60)
    chat = Chat(engine, nlu, "C00001")
    chat.say("change the shipping address of order 10004 to 3 Mill Lane, York YO1 7HP", "change_shipping_address",
             ("10004", "ORDER_ID", "10004"))
    now[0] += timedelta(seconds=61)
    r = chat.say("how much is the NA-700X?", "product_price", ("NA-700X", "PRODUCT", "NA-HP-000004"))
    assert r.status == "ok" and not any(f.kind == "action_dropped" for f in r.facts)
    assert chat.say("yes", "affirm").status == "chitchat"
    assert order_props(store, "10004")["ship_to"] == "1 Old Road, Portland 97201" and requests_of(store, "C00001") == []


def test_a_pending_question_expires(engine_factory):
    from datetime import timedelta

    now = [support.NOW]
    engine, nlu = engine_factory(clock=lambda: now[0], pending_ttl_s=300)
    chat = Chat(engine, nlu, "C00001")
    assert chat.say("where is my order?", "track_order").status == "clarify"
    now[0] += timedelta(seconds=301)
    r = chat.say("the second one", "out_of_scope", confidence=0.2)
    assert r.status != "ok" and "SwiftPost" not in r.answer  # not taken as the answer to a stale question


def test_a_new_request_in_reply_to_which_order_is_the_new_request(chat_factory, shop):
    """Issue 11 item 3: "I want to cancel order N" in reply to "which order?" is not tracked: it
    is the new request, the question is dropped (the reply says so), and "yes" confirms it."""
    _, store = shop
    chat = chat_factory("C00001")
    asked = chat.say("where is my order?", "track_order")
    assert asked.status == "clarify" and "10003" in [f.data["order_id"] for f in asked.facts]
    r = chat.say("I want to cancel order 10003", "cancel_order", ("10003", "ORDER_ID", "10003"))
    assert r.status == "action_proposed" and r.intent.name == "cancel_order" and "SwiftPost" not in r.answer
    assert [f.data for f in r.facts if f.kind == "question_dropped"] == [{"intent": "track_order"}]
    assert "earlier question" in r.answer or "instead" in r.answer
    done = chat.say("yes", "affirm")
    assert done.status == "action_done" and order_props(store, "10003")["status"] == "cancelled"


def test_a_new_request_while_an_address_change_is_pending_replaces_it(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    chat.say("change the shipping address of order 10004 to 3 Mill Lane, York YO1 7HP", "change_shipping_address",
             ("10004", "ORDER_ID", "10004"))
    r = chat.say("I want to cancel order 10003", "cancel_order", ("10003", "ORDER_ID", "10003"))
    assert r.status == "action_proposed" and r.facts[0].kind == "action_dropped" and "10004" in r.answer
    done = chat.say("yes", "affirm")
    assert done.status == "action_done" and order_props(store, "10003")["status"] == "cancelled"
    assert order_props(store, "10004")["ship_to"] == "1 Old Road, Portland 97201"
    assert [q["kind"] for q in requests_of(store, "C00001")] == ["cancel"]


def test_a_new_request_in_reply_to_what_address_is_the_new_request(chat_factory, shop):
    _, store = shop
    chat = chat_factory("C00001")
    assert chat.say("I need to change the delivery address for order 10004", "change_shipping_address",
                    ("10004", "ORDER_ID", "10004")).status == "clarify"
    r = chat.say("actually, cancel order 10003 please", "cancel_order", ("10003", "ORDER_ID", "10003"))
    assert r.status == "action_proposed" and r.intent.name == "cancel_order"
    assert any(f.kind == "question_dropped" for f in r.facts)
    done = chat.say("yes", "affirm")
    assert done.status == "action_done" and order_props(store, "10003")["status"] == "cancelled"
    assert order_props(store, "10004")["ship_to"] == "1 Old Road, Portland 97201"
