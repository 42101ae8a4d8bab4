"""Hand-off follow-through over HTTP (issue 11 item 5): the session stays with a person until the
shopper, an agent (`POST /api/v1/admin/handoffs/<id>/release`) or the timeout returns it; the
hand-off record (real session id, masked messages) is in `GET /api/v1/admin/handoffs` for the
`admin` role only; the optional webhook posts it to a help desk from a background thread,
retrying, never blocking a turn. The webhook's help desk is a tiny HTTP server on 127.0.0.1 that
the test starts; the app, the graph and the models are real."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import tests.api_support as support
from tests.api_support import (
    Api,
    build_api,
    drop_api,
    error_shape,
    free_port,
    load_sample,
    needs_engine,
    owned_session,
)

api, sample_store_dir = support.api, support.sample_store_dir
WEBHOOK_SECRET = "help-desk-webhook-secret"


class HelpDesk:
    """A local HTTP server that records each POST and answers with the scripted statuses (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.statuses = list(statuses or [])
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = desk.statuses.pop(0) if desk.statuses else 200
                desk.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/handoff"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict]:
        return [json.loads(body) for _, body, status in self.received if status == 200]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture(scope="module")
def desk() -> Iterator[HelpDesk]:
    d = HelpDesk()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ho_api(falkordb_server, sample_store_dir, desk) -> Iterator[Api]:
    a = build_api(falkordb_server.data_dir, handoff_webhook_url=desk.url, handoff_webhook_retries=3,
                  handoff_webhook_secret=WEBHOOK_SECRET)
    a.services.handoffs.webhook.backoff_s = 0.05  # retries come quickly in a test
    load_sample(a, sample_store_dir)
    a.services.engine()
    yield a
    drop_api(a)


def _say(a: Api, message: str, sid: str | None = None, **h) -> dict:
    body = {"message": message} | ({"session_id": sid} if sid else {})
    r = a.client.post("/api/v1/chat", json=body, headers=a.h(**h))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


# -- no models needed -------------------------------------------------------------------------------------
def test_hand_off_routes_are_for_the_admin_role_only(api):
    sid = owned_session(api, None)
    for method, path in (("get", "/api/v1/admin/handoffs"), ("post", f"/api/v1/admin/handoffs/{sid}/release")):
        error_shape(getattr(api.client, method)(path, headers=api.h(api.key("chat"))), 403, "forbidden")
        error_shape(getattr(api.client, method)(path, headers=api.h(api.key("analyst", "catalog"))), 403)
        error_shape(getattr(api.client, method)(path, headers={}), 401)
    assert api.client.post(f"/api/v1/admin/handoffs/{sid}/release", headers=api.h(api.key("admin"))).status_code == 200


def test_release_hands_a_session_back_and_is_logged(api):
    from qa.state import SessionStore

    sessions = SessionStore(api.services.redis, ttl_s=600, graph_name=api.settings.graph_name)  # the state store
    sid = owned_session(api, "C00001")
    state = sessions.load(sid, "C00001")
    state.handed_off, state.handed_off_at = True, "2026-11-23T09:31:12Z"
    sessions.save(state)
    r = api.client.post(f"/api/v1/admin/handoffs/{sid}/release", headers=api.h())
    assert r.status_code == 200 and r.get_json() == {"session_id": sid, "released": True}
    assert sessions.load(sid, "C00001").handed_off is False
    again = api.client.post(f"/api/v1/admin/handoffs/{sid}/release", headers=api.h())
    assert again.get_json() == {"session_id": sid, "released": False}
    error_shape(api.client.post("/api/v1/admin/handoffs/AAAAAAAAAAAAAAAAAAAAAA/release", headers=api.h()), 404,
                "session_not_found")
    error_shape(api.client.post("/api/v1/admin/handoffs/bad!id/release", headers=api.h()), 404)
    records = api.client.get("/api/v1/admin/handoffs", headers=api.h()).get_json()["handoffs"]
    assert [(r["event"], r["session_id"], r["by"]) for r in records] == [("released", sid, "dev")]
    error_shape(api.client.get("/api/v1/admin/handoffs?limit=0", headers=api.h()), 400)


# -- the real engine -----------------------------------------------------------------------------------
@needs_engine
def test_a_hand_off_stays_with_a_person_until_an_agent_releases_it(ho_api, desk):
    a = ho_api
    before = len(a.client.get("/api/v1/analytics/handoffs?limit=500", headers=a.h()).get_json()["rows"])
    first = _say(a, "my email is jane.doe@example.com and my phone 0151 496 0730", customer="C00001")
    sid = first["session_id"]
    opened = _say(a, "I want to complain about the terrible service", sid, customer="C00001")
    assert opened["status"] == "handoff" and opened["handoff"] is True
    assert opened["suggestions"] == ["Never mind, I'll keep asking you"]
    waiting = _say(a, "how much are the Aurora X2 headphones?", sid, customer="C00001")
    assert waiting["status"] == "handoff" and waiting["facts"] == []
    assert "colleague" in waiting["answer"] or "team" in waiting["answer"]
    assert "USD" not in waiting["answer"]  # not answered by the bot as if nothing had happened

    # the agents' report: the real session id, the messages masked; only the opening counts as a hand-off
    records = a.client.get("/api/v1/admin/handoffs", headers=a.h()).get_json()["handoffs"]
    mine = [r for r in records if r["session_id"] == sid]
    assert [r["event"] for r in mine] == ["opened"]
    rec = mine[0]
    assert rec["reason"] == "complaint" and rec["intent"] == "complaint" and rec["signed_in"] is True
    assert rec["customer"] and "C00001" not in rec["customer"]
    text = json.dumps(rec)
    assert "jane.doe@example.com" not in text and "496 0730" not in text and "[email]" in text
    assert "terrible service" in rec["messages"][-1] and "complaint" in rec["summary"]
    after = a.client.get("/api/v1/analytics/handoffs?limit=500", headers=a.h()).get_json()["rows"]
    assert len(after) == before + 1

    # the help desk got the same record, signed
    assert wait_for(lambda: any(d["session_id"] == sid for d in desk.delivered()))
    headers, body, _ = next((h, b, s) for h, b, s in desk.received if s == 200 and sid.encode() in b)
    assert json.loads(body) == rec
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-kgqa-signature"] == expected and headers["content-type"] == "application/json"

    released = a.client.post(f"/api/v1/admin/handoffs/{sid}/release", headers=a.h())
    assert released.get_json() == {"session_id": sid, "released": True}
    back = _say(a, "how much are the Aurora X2 headphones?", sid, customer="C00001")
    assert back["status"] != "handoff" and not back["handoff"]
    assert wait_for(lambda: any(d["session_id"] == sid and d["event"] == "released" for d in desk.delivered()))


@needs_engine
def test_the_shopper_can_go_back_to_the_bot(ho_api):
    a = ho_api
    sid = _say(a, "I want to talk to a real person")["session_id"]
    assert _say(a, "where is my order?", sid)["status"] == "handoff"
    back = _say(a, "never mind, I'll keep asking you", sid)
    assert back["status"] == "chitchat" and not back["handoff"]
    assert _say(a, "where is my order?", sid)["status"] == "need_sign_in"
    events = [r["event"] for r in a.client.get("/api/v1/admin/handoffs", headers=a.h()).get_json()["handoffs"]
              if r["session_id"] == sid]
    assert events == ["returned", "opened"]  # newest first


@needs_engine
def test_the_webhook_retries_and_a_dead_help_desk_never_blocks_a_turn(falkordb_server, sample_store_dir, caplog):
    flaky = HelpDesk(statuses=[500, 503])
    dead_url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    apps = [build_api(falkordb_server.data_dir, handoff_webhook_url=url, handoff_webhook_retries=2)
            for url in (flaky.url, dead_url)]
    try:
        for a in apps:
            a.services.handoffs.webhook.backoff_s = 0.01
        flaky_api, dead_api = apps
        caplog.set_level(logging.WARNING, logger="kgqa.api")
        for a in apps:
            r = _say(a, "I want to talk to a real person")
            assert r["status"] == "handoff"  # answered whatever the help desk does
        assert flaky_api.services.handoffs.webhook.wait_idle(60) and dead_api.services.handoffs.webhook.wait_idle(60)
        # the flaky desk: two failures, then delivered on the third attempt
        assert [s for _, _, s in flaky.received] == [500, 503, 200]
        assert flaky_api.services.handoffs.webhook.delivered == 1
        # the dead one: three attempts (one and two retries), then given up and logged
        assert dead_api.services.handoffs.webhook.failed == 1 and dead_api.services.handoffs.webhook.delivered == 0
        assert any("not delivered" in rec.getMessage() for rec in caplog.records)
        # the record stays in the agents' report all the same
        assert dead_api.client.get("/api/v1/admin/handoffs", headers=dead_api.h()).get_json()["handoffs"]
    finally:
        flaky.stop()
        for a in apps:
            drop_api(a)
