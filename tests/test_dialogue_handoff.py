"""Hand-off follow-through (issue 11 item 5): once the bot has passed the conversation to a person,
it stays with that person. Later messages get "a colleague will reply", not a bot answer, until
the shopper asks for the bot back, an agent releases the session, or HANDOFF_TIMEOUT_S passes.
The engine runs on the real embedded graph with the scripted understander of the dialogue tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qa.state import SessionNotFound
from tests import test_dialogue_support as support
from tests.test_dialogue_support import Chat

shop, encoder, engine_factory, chat_factory = support.shop, support.encoder, support.engine_factory, support.chat_factory


def _handed_off(chat: Chat):
    r = chat.say("I want to talk to a real person", "contact_human_agent")
    assert r.status == "handoff" and r.handoff and r.handoff_event == "opened"
    assert r.facts[0].kind == "handoff" and r.suggestions == ["Never mind, I'll keep asking you"]
    return r


def test_after_a_hand_off_the_bot_says_a_colleague_will_reply(chat_factory):
    chat = chat_factory("C00001")
    _handed_off(chat)
    for text, intent, ents in (("where is my order #10002?", "track_order", [("#10002", "ORDER_ID", "10002")]),
                               ("hello?", "greeting", []), ("yes", "affirm", [])):
        r = chat.say(text, intent, *ents)
        assert r.status == "handoff" and r.handoff and r.handoff_event is None, text
        assert "colleague" in r.answer or "team" in r.answer, r.answer
        assert r.facts == [] and "SwiftPost" not in r.answer  # not answered by the bot as if nothing happened
        assert all(e.node_id is None for e in r.entities if e.type == "ORDER_ID")  # no order was read
    back = chat.say("never mind, I'll keep asking you", "deny")
    assert back.status == "chitchat" and not back.handoff and back.handoff_event == "returned"
    r = chat.say("where is my order #10002?", "track_order", ("#10002", "ORDER_ID", "10002"))
    assert r.status == "ok" and "SwiftPost" in r.answer


def test_an_agent_releases_the_session(chat_factory):
    chat = chat_factory("C00001")
    _handed_off(chat)
    sessions = chat.engine.sessions
    assert sessions.release_handoff(chat.session_id) is True
    assert sessions.release_handoff(chat.session_id) is False  # not handed off any more
    with pytest.raises(SessionNotFound):
        sessions.release_handoff("no-such-session")
    r = chat.say("where is my order #10002?", "track_order", ("#10002", "ORDER_ID", "10002"))
    assert r.status == "ok" and "SwiftPost" in r.answer and r.handoff_event is None


def test_a_hand_off_nobody_took_returns_to_the_bot_after_the_timeout(engine_factory):
    now = [support.NOW]
    engine, nlu = engine_factory(clock=lambda: now[0], handoff_timeout_s=1800)
    chat = Chat(engine, nlu, "C00001")
    _handed_off(chat)
    now[0] += timedelta(seconds=1799)
    assert chat.say("anyone there?", "contact_human_agent").status == "handoff"  # still waiting
    now[0] += timedelta(seconds=2)
    r = chat.say("where is my order #10002?", "track_order", ("#10002", "ORDER_ID", "10002"))
    assert r.status == "ok" and "SwiftPost" in r.answer and r.handoff_event == "timeout"
    assert chat.say("and what's in it?", "order_details").handoff_event is None


def test_a_new_hand_off_after_the_shopper_came_back(chat_factory):
    chat = chat_factory(None)
    _handed_off(chat)
    assert chat.say("go back to the bot please", "contact_human_agent").handoff_event == "returned"
    again = chat.say("I want to talk to a real person", "contact_human_agent")
    assert again.status == "handoff" and again.handoff_event == "opened" and again.facts[0].kind == "handoff"
