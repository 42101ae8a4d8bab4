"""Rate limits per API key, per shopper (the customer of the token, else the session) and per client
address (the socket's, or behind N trusted proxies the Nth X-Forwarded-For entry from the right).

Outcomes are counted, never timed: the app's rate-limit clock is held still, so every request of a
test falls in one window however slow the machine."""

from __future__ import annotations

import pytest

from tests.api_support import build_api, drop_api, error_shape, owned_session

FIXED = 1_900_000_040.0  # 20 s into a one-minute window


@pytest.fixture
def limited(falkordb_server):
    made = []

    def _build(**over):
        a = build_api(falkordb_server.data_dir, **over)
        a.services.clock = lambda: FIXED
        made.append(a)
        return a

    yield _build
    for a in made:
        drop_api(a)


def test_one_shopper_over_their_budget_does_not_block_another_on_the_same_key(limited):
    a = limited(api_rate_limit_per_minute=100, api_rate_limit_shopper_per_minute=3)
    key = a.key("chat")  # the web chat's one key, shared by every shopper
    sid_a, sid_b = owned_session(a, "C00001"), owned_session(a, "C00002")
    as_a, as_b = a.h(key, customer="C00001"), a.h(key, customer="C00002")
    codes_a = [a.client.get(f"/api/v1/chat/sessions/{sid_a}", headers=as_a).status_code for _ in range(5)]
    assert codes_a == [200, 200, 200, 429, 429]
    r = a.client.get(f"/api/v1/chat/sessions/{sid_a}", headers=as_a)
    err = error_shape(r, 429, "rate_limited")
    assert err["details"] == {"limit_per_minute": 3, "bucket": "shopper"} and r.headers["Retry-After"] == "41"
    codes_b = [a.client.get(f"/api/v1/chat/sessions/{sid_b}", headers=as_b).status_code for _ in range(3)]
    assert codes_b == [200, 200, 200]
    # A's refused requests were not charged to the key: 3 of A's and 3 of B's were
    last = a.client.get(f"/api/v1/chat/sessions/{sid_b}", headers=as_b)
    assert last.status_code == 429 and "X-RateLimit-Remaining" not in last.headers
    probe = a.client.get(f"/api/v1/chat/sessions/{sid_b}", headers=a.h(key, customer="C00003"))
    assert probe.status_code == 404 and probe.headers["X-RateLimit-Remaining"] == str(100 - 7)


def test_anonymous_shoppers_are_limited_per_session(limited):
    a = limited(api_rate_limit_per_minute=100, api_rate_limit_shopper_per_minute=3)
    key = a.key("chat")
    first, second = owned_session(a, None, caller=key.split("_")[1]), owned_session(a, None, caller=key.split("_")[1])
    h = a.h(key)

    def feedback(sid: str) -> int:  # the session is named in the JSON body
        return a.client.post("/api/v1/chat/feedback", headers=h,
                             json={"session_id": sid, "turn": 1, "rating": 4}).status_code

    assert [feedback(first) for _ in range(4)] == [200, 200, 200, 429]
    assert [feedback(second) for _ in range(3)] == [200, 200, 200]
    assert a.client.get(f"/api/v1/chat/sessions/{first}", headers=h).status_code == 429  # the path names it too
    # other routes have no shopper: only the key's limit applies there
    assert a.client.get("/api/v1/graph/schema", headers=a.h()).status_code == 200


@pytest.mark.parametrize("proxies,forwarded,limited_after", [
    (0, ["1.1.1.1", "2.2.2.2", "3.3.3.3"], 2),  # no proxy trusted: X-Forwarded-For is ignored, one socket
    (1, ["1.1.1.1", "1.1.1.1", "1.1.1.1"], 2),  # behind one proxy: its entry is the client
    (1, ["1.1.1.1", "2.2.2.2", "3.3.3.3"], None),
    (1, ["1.1.1.1", "9.9.9.9, 1.1.1.1", "8.8.8.8, 1.1.1.1"], 2),  # what a client prepends is not trusted
    (2, ["7.7.7.7, 10.0.0.2", "7.7.7.7, 10.0.0.3", "7.7.7.7, 10.0.0.4"], 2),  # two proxies
    (2, ["1.1.1.1", "2.2.2.2", "3.3.3.3"], 2),  # fewer entries than proxies: only the socket is known
])
def test_per_address_limit_behind_trusted_proxies(limited, proxies, forwarded, limited_after):
    a = limited(api_rate_limit_address_per_minute=2, api_trusted_proxies=proxies)
    codes = [a.client.get("/api/v1/graph/schema", headers=a.h(**{"X-Forwarded-For": xff}),
                          environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code for xff in forwarded]
    expected = [200] * len(forwarded) if limited_after is None else [200] * limited_after + [429] * (
        len(forwarded) - limited_after)
    assert codes == expected
    if limited_after is not None:
        r = a.client.get("/api/v1/graph/schema", headers=a.h(**{"X-Forwarded-For": forwarded[-1]}),
                         environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert error_shape(r, 429, "rate_limited")["details"]["bucket"] == "address"


def test_shopper_limit_off_by_default_in_these_tests_and_on_by_default_in_production():
    from common.settings import Settings

    s = Settings(_env_file=None)
    assert s.api_rate_limit_shopper_per_minute == 60 and s.api_trusted_proxies == 0
    assert s.api_rate_limit_address_per_minute == 0
