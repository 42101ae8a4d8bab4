"""Dialogue state in Redis (the embedded FalkorDB server): survives re-creating the engine,
belongs to whoever created it, expires, refuses lost updates, fails loudly when Redis is down;
streaming; deterministic but varied wording."""

from __future__ import annotations

import itertools

import pytest

from kg.backends.embedded import free_port
from qa.engine import InvalidMessage, TurnResult
from qa.facts import make_fact
from qa.state import SessionConflict, SessionNotFound, SessionStore, SessionStoreUnavailable
from qa.templates import TemplateVerbalizer, render, variant_seed
from qa.types import Retrieval
from tests import test_dialogue_support as support
from tests.test_dialogue_support import Chat

# Fixtures shared by the dialogue test modules.
shop, encoder, engine_factory, chat_factory = support.shop, support.encoder, support.engine_factory, support.chat_factory

PREFIX = "persist:"


def test_state_survives_recreating_the_engine(engine_factory, shop):
    _, store = shop
    engine, nlu = engine_factory(prefix=PREFIX)
    chat = Chat(engine, nlu, "C00001")
    chat.say("how much is the NA-700X?", "product_price", ("NA-700X", "PRODUCT", "NA-HP-000004"))
    chat.say("cancel order 10003", "cancel_order", ("10003", "ORDER_ID", "10003"))
    sid = chat.session_id
    del engine, chat

    engine2, nlu2 = engine_factory(prefix=PREFIX)  # a new engine (another worker, or after a restart)
    chat2 = Chat(engine2, nlu2, "C00001")
    chat2.session_id = sid
    r = chat2.say("yes", "affirm")  # the pending action survived
    assert r.status == "action_done" and support.order_props(store, "10003")["status"] == "cancelled"
    r = chat2.say("is it in stock?", "product_availability")  # and so did the context
    assert [e.node_id for e in r.entities if e.source == "context"] == ["NA-HP-000004"]
    turns = engine2.session_turns(sid, "C00001")
    assert [t.role for t in turns] == ["user", "assistant"] * 4
    assert turns[0].text == "how much is the NA-700X?" and turns[0].intent == "product_price"
    raw = store.redis.get(PREFIX + sid)
    assert '"customer_id":"C00001"' in raw and 0 < store.redis.ttl(PREFIX + sid) <= 86_400


def test_a_session_belongs_to_its_creator(engine_factory):
    engine, nlu = engine_factory()
    mine = Chat(engine, nlu, "C00001")
    mine.say("hi", "greeting")
    for other in ("C00002", None, "C000011", "c00001"):
        with pytest.raises(SessionNotFound):
            engine.handle(mine.session_id, "hi", other)
        with pytest.raises(SessionNotFound):
            engine.session_turns(mine.session_id, other)
    anon = Chat(engine, nlu, None)
    anon.say("hi", "greeting")
    with pytest.raises(SessionNotFound):
        engine.handle(anon.session_id, "hi", None, caller="another-api-key")
    with pytest.raises(SessionNotFound):  # signing in adopts only the caller's own anonymous session
        engine.handle(anon.session_id, "hi", "C00001", caller="another-api-key")
    with pytest.raises(SessionNotFound):  # and only by continuing it, never by reading it
        engine.session_turns(anon.session_id, "C00001")
    with pytest.raises(SessionNotFound):
        engine.handle("no-such-session", "hi", "C00001")
    # a customer id with non-ASCII characters (any import may carry one) keeps its session too
    umlaut = Chat(engine, nlu, "KUNDE-Müller")
    umlaut.say("hi", "greeting")
    assert umlaut.say("thanks", "thanks").session_id == umlaut.session_id
    with pytest.raises(SessionNotFound):
        engine.handle(umlaut.session_id, "hi", "KUNDE-Muller")
    assert engine.handle(anon.session_id, "hi", None).session_id == anon.session_id


def test_session_ids_are_random_and_new_sessions_are_saved(engine_factory, shop):
    _, store = shop
    engine, nlu = engine_factory(prefix="ids:")
    nlu.expect("hello", "greeting")
    ids = {engine.handle(None, "hello", None).session_id for _ in range(5)}
    assert len(ids) == 5 and all(len(i) >= 20 for i in ids)
    assert all(store.redis.exists("ids:" + i) for i in ids)


def test_expired_session_is_not_found(shop):
    settings, store = shop
    sessions = SessionStore(lambda: store.redis, ttl_s=60, prefix="ttl:")
    state = sessions.save(sessions.new("C00001"))
    assert sessions.load(state.session_id, "C00001").version == 1
    store.redis.pexpire("ttl:" + state.session_id, 1)
    import time

    time.sleep(0.05)
    with pytest.raises(SessionNotFound):
        sessions.load(state.session_id, "C00001")


def test_concurrent_saves_do_not_lose_an_update(shop):
    _, store = shop
    sessions = SessionStore(lambda: store.redis, ttl_s=600, prefix="cas:")
    state = sessions.save(sessions.new(None))
    a = sessions.load(state.session_id, None)
    b = sessions.load(state.session_id, None)
    a.failed_turns = 1
    sessions.save(a)
    b.failed_turns = 7
    with pytest.raises(SessionConflict):
        sessions.save(b)
    assert sessions.load(state.session_id, None).failed_turns == 1


def test_redis_down_fails_loudly(engine_factory, shop):
    import redis

    settings, _ = shop
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    engine, nlu = engine_factory()
    engine.sessions = SessionStore(lambda: dead, ttl_s=600)
    nlu.expect("hi", "greeting")
    with pytest.raises(SessionStoreUnavailable) as err:
        engine.handle(None, "hi", None)
    assert err.value.code == "session_store_unavailable"
    with pytest.raises(SessionStoreUnavailable):
        engine.handle("some-session", "hi", None)


def test_invalid_messages_are_refused(engine_factory):
    engine, _ = engine_factory()
    for bad in ("", "   ", "x" * 2001):
        with pytest.raises(InvalidMessage):
            engine.handle(None, bad, None)


def test_stream_yields_word_chunks_then_the_result(engine_factory):
    engine, nlu = engine_factory()
    nlu.expect("how much is the NA-700X?", "product_price",
               entities=[support.ent("how much is the NA-700X?", "NA-700X", "PRODUCT", "NA-HP-000004")])
    items = list(engine.stream(None, "how much is the NA-700X?", None))
    *chunks, final = items
    assert isinstance(final, TurnResult) and all(isinstance(c, str) for c in chunks) and len(chunks) > 3
    assert "".join(chunks) == final.answer and "349.99 USD" in final.answer
    assert engine.session_turns(final.session_id, None)[-1].text == final.answer


def test_wording_is_deterministic_per_session_and_turn_but_varies_across_sessions(engine_factory):
    counter = itertools.count()
    a, nlu_a = engine_factory(prefix="det:a:", new_id=lambda: f"s{next(counter) % 1000}")
    nlu_a.expect("hello", "greeting")
    first = a.handle(None, "hello", None)
    counter2 = itertools.count()
    b, nlu_b = engine_factory(prefix="det:b:", new_id=lambda: f"s{next(counter2) % 1000}")
    nlu_b.expect("hello", "greeting")
    assert b.handle(None, "hello", None).answer == first.answer  # a replay reads identically
    answers = {a.handle(None, "hello", None).answer for _ in range(12)}
    assert len(answers) >= 2  # the same question in other sessions may read differently


def test_templates_cover_every_status_and_format_money():
    v = TemplateVerbalizer()
    product = make_fact(kind="product", data={"sku": "X", "name": "Widget, Red", "price": 18, "currency": "USD",
                                         "status": "active"})
    for status in ("ok", "not_found", "need_sign_in", "clarify", "action_proposed", "action_done",
                   "action_cancelled", "action_refused", "handoff", "procedure", "no_answer", "chitchat"):
        for intent in ("product_price", "track_order", "check_refund_policy", "greeting", "recover_password"):
            facts = [product] if intent == "product_price" and status == "ok" else []
            text = v.verbalize(Retrieval(intent=intent, status=status, facts=facts,
                                         variant=variant_seed("s", 1)), [], customer_id=None).text
            assert text and "None" not in text and "{" not in text, (status, intent, text)
    text = render(Retrieval(intent="product_price", status="ok", facts=[product]))
    assert "18.00 USD" in text and "Widget (Red)" in text


def test_the_composition_root_wires_the_collaborators_from_settings(shop):
    from common import bootstrap
    from nlu.linking import EntityLinker
    from qa.verbalizer import SafeVerbalizer

    settings, store = shop
    nlu = support.ScriptedUnderstander()
    app = bootstrap.build(settings.model_copy(update={"llm_backend": "none"}), store=store, understander=nlu,
                          clock=lambda: support.NOW)
    engine = app.engine.get()
    assert engine.linker is app.linker and engine.sessions is app.sessions and engine.retriever is app.retriever
    # one encoder in memory: the linker's is the one procedure search uses
    assert app.linker is not None and app.linker.encoder is app.encoder
    assert app.retriever.procedures is not None and app.retriever.procedures.threshold == settings.procedure_threshold
    assert isinstance(engine.linker, EntityLinker) and isinstance(engine.verbalizer, SafeVerbalizer)
    assert engine.sessions.ttl_s == settings.session_ttl_s
    chat = Chat(engine, nlu, "C00001")
    r = chat.say("where is order #10002?", "track_order", ("#10002", "ORDER_ID"))  # linked by the real linker
    assert r.status == "ok" and r.entities[0].node_id == "10002" and "SwiftPost" in r.answer
    assert app.redis.client().exists(engine.sessions.key(r.session_id))  # in the state Redis


def test_the_composition_root_has_the_guard_follow_the_catalogue(shop):
    """With an LLM configured, the guard knows the shop's names from the linker's index: a reply
    that brings up a real product the facts do not give is refused, one naming the product of the
    facts (by its model line, inside the full name) passes. Nothing is generated: the remote
    model is built lazily and never called here."""
    from common import bootstrap
    from qa.verbalizer import LLMVerbalizer

    settings, store = shop
    engine = bootstrap.build(settings.model_copy(update={"llm_backend": "remote",
                                                         "llm_remote_url": f"http://127.0.0.1:{free_port()}"}),
                             store=store, understander=support.ScriptedUnderstander(),
                             clock=lambda: support.NOW).engine.get()
    assert isinstance(engine.verbalizer, LLMVerbalizer)
    aurora = Retrieval(intent="product_price", status="ok", facts=[make_fact(kind="product", data={
        "sku": "NA-HP-000001", "name": "Nordic Audio Aurora X2 Wireless Headphones, Black", "price": 249.99,
        "currency": "USD"})])
    guard = engine.verbalizer.guard
    assert guard.check("The Aurora X2 by Nordic Audio costs 249.99 USD.", aurora).ok
    ok, reasons = guard.check("The Aurora X2 costs 249.99 USD; the Tide 3 is cheaper.", aurora)
    assert not ok and reasons == ["name 'Tide 3' is in the catalogue but not in the facts"]



# -- signing in mid-conversation, key namespaces (DESIGN section 6; issues 11 and 12) ---------------------------
def test_signing_in_mid_conversation_keeps_the_session_one_way_only(engine_factory, shop):
    """An anonymous session continued by its caller with a signed-in customer becomes that
    customer's; the order question asked before signing in is answered on "and now?"; from then
    on anonymous, another customer, or the same customer through another API key get the same
    "not found" as an unknown session."""
    _, store = shop
    engine, nlu = engine_factory()
    nlu.expect("where is my order #10002?", "track_order",
               entities=[support.ent("where is my order #10002?", "#10002", "ORDER_ID", "10002")])
    asked = engine.handle(None, "where is my order #10002?", None, caller="web")
    assert asked.status == "need_sign_in" and "SwiftPost" not in asked.answer
    sid = asked.session_id
    with pytest.raises(SessionNotFound):  # another API key cannot take it over by signing in
        engine.handle(sid, "hi", "C00001", caller="another-key")
    # the model reads "and now?" as a product question (0.7): what counts is that nothing new is asked
    nlu.expect("and now?", "product_availability", 0.7)
    now = engine.handle(sid, "and now?", "C00001", caller="web")
    assert now.session_id == sid and now.status == "ok" and now.intent.name == "track_order"
    assert "SwiftPost" in now.answer and now.entities[0].node_id == "10002"
    assert (now.entities[0].source, now.entities[0].start) == ("context", None)  # not a span of "and now?"
    raw = store.redis.get(engine.sessions.key(sid))
    assert '"owner":"customer:C00001"' in raw and '"customer_id":"C00001"' in raw
    turns = engine.session_turns(sid, "C00001", caller="web")
    assert [t.text for t in turns if t.role == "user"] == ["where is my order #10002?", "and now?"]
    # one way only: never back to anonymous, never on to another customer, still bound to its key
    with pytest.raises(SessionNotFound) as unknown:
        engine.handle("no-such-session-id", "and now?", None, caller="web")
    for customer, caller in ((None, "web"), ("C00002", "web"), ("C00001", "another-key")):
        with pytest.raises(SessionNotFound) as err:
            engine.handle(sid, "and now?", customer, caller=caller)
        assert (err.value.code, err.value.message) == (unknown.value.code, unknown.value.message)
        with pytest.raises(SessionNotFound):
            engine.session_turns(sid, customer, caller=caller)
    # asking again works as well ("my order" is the one just talked about)
    nlu.expect("where is my order?", "track_order")
    again = engine.handle(sid, "where is my order?", "C00001", caller="web")
    assert again.status == "ok" and "SwiftPost" in again.answer

def test_after_signing_in_a_new_question_is_answered_not_the_old_one(engine_factory):
    engine, nlu = engine_factory()
    nlu.expect("where is my order?", "track_order")
    sid = engine.handle(None, "where is my order?", None, caller="web").session_id
    nlu.expect("how much is the NA-700X?", "product_price",
               entities=[support.ent("how much is the NA-700X?", "NA-700X", "PRODUCT", "NA-HP-000004")])
    r = engine.handle(sid, "how much is the NA-700X?", "C00001", caller="web")
    assert r.status == "ok" and "349.99 USD" in r.answer
    nlu.expect("ok I'm logged in now", "goodbye", 0.72)  # the question was answered: nothing is re-asked
    assert engine.handle(sid, "ok I'm logged in now", "C00001", caller="web").intent.name == "goodbye"


def test_sign_in_words_re_ask_the_question(engine_factory):
    engine, nlu = engine_factory()
    nlu.expect("where is my order?", "track_order")
    sid = engine.handle(None, "where is my order?", None, caller="web").session_id
    nlu.expect("ok I'm logged in now", "goodbye", 0.72)
    r = engine.handle(sid, "ok I'm logged in now", "C00001", caller="web")
    assert r.status == "clarify" and r.intent.name == "track_order"  # "which of your orders?"
    assert [f.data["order_id"] for f in r.facts] == ["10003", "10002", "10004"]


def test_session_keys_are_namespaced_by_graph(shop):
    """Two instances with different GRAPH_NAMEs sharing one Redis never see each other's sessions."""
    from common import bootstrap

    settings, store = shop
    engines = {}
    for name in ("shop_a", "shop_b"):
        nlu = support.ScriptedUnderstander()
        nlu.expect("hi", "greeting")
        engines[name] = bootstrap.build(settings.model_copy(update={"graph_name": name, "llm_backend": "none"}),
                                        store=store, understander=nlu, linker=None,
                                        clock=lambda: support.NOW).engine.get()
    a, b = engines["shop_a"], engines["shop_b"]
    state = a.sessions._client()  # the state Redis both instances share
    where = [{k: c.connection_pool.connection_kwargs.get(k) for k in ("host", "port")}
             for c in (state, b.sessions._client())]
    assert where[0] == where[1]
    sid = a.handle(None, "hi", "C00001").session_id
    assert a.sessions.key(sid) == f"kgqa:shop_a:session:{sid}" and state.exists(a.sessions.key(sid))
    assert not state.exists(b.sessions.key(sid))
    for call in (lambda: b.handle(sid, "hi", "C00001"), lambda: b.session_turns(sid, "C00001")):
        with pytest.raises(SessionNotFound):
            call()
    assert a.handle(sid, "hi", "C00001").session_id == sid
