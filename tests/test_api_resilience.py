"""When the graph server goes away the API answers 503 quickly (with Retry-After and the JSON error
shape), /readyz says not ready, and once the server is back the same app serves again: no restart,
and nothing acknowledged before the crash is lost."""

from __future__ import annotations

import time

from tests.api_support import build_api, drop_api, error_shape, owned_session


def test_graph_away_is_503_then_recovers_without_a_restart(make_server):
    server = make_server(appendfsync="always")
    info = server.ensure_running()
    url = f"falkordb://:{info.password}@127.0.0.1:{info.port}"
    a = build_api(server.data_dir, graph_url=url, graph_retries=1)
    try:
        h = a.h()
        assert a.client.put("/api/v1/catalog/products/R-1", headers=h, json={"name": "Before the crash"}).status_code == 201
        sid = owned_session(a, "C00001")
        server.kill()
        for method, path, body in [("get", "/api/v1/catalog/products/R-1", None),
                                   ("put", "/api/v1/catalog/products/R-2", {"name": "During"}),
                                   ("post", "/api/v1/graph/query", {"cypher": "RETURN 1"}),
                                   ("get", f"/api/v1/chat/sessions/{sid}", None),
                                   ("get", "/api/v1/analytics/intents", None),
                                   ("get", "/api/v1/graph/schema", None)]:
            started = time.monotonic()
            kwargs = {"headers": a.h(customer="C00001")}
            if body is not None:
                kwargs["json"] = body
            r = getattr(a.client, method)(path, **kwargs)
            elapsed = time.monotonic() - started
            error_shape(r, 503)
            assert r.headers["Retry-After"] == "1" and elapsed < 5, (path, elapsed)
            assert "Connection" not in r.get_json()["error"]["message"]
        ready = a.client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["graph"]["ok"] is False
        assert a.client.get("/healthz").status_code == 200  # alive, just not ready

        server.ensure_running()  # the server comes back (same port and password)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = a.client.get("/api/v1/catalog/products/R-1", headers=h)
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200 and r.get_json()["name"] == "Before the crash"
        assert a.client.get(f"/api/v1/chat/sessions/{sid}", headers=a.h(customer="C00001")).status_code == 200
        assert a.client.put("/api/v1/catalog/products/R-2", headers=h, json={"name": "After"}).status_code == 201
        assert a.client.get("/readyz").get_json()["checks"]["graph"]["ok"] is True
    finally:
        drop_api(a)


def test_sessions_keys_and_rate_limits_live_in_a_separate_server(make_server):
    """With the embedded graph, state has a Redis process of its own: the graph server going down
    (an overload, a kill for its memory) does not take keys, sessions and rate limits with it."""
    from kg.backends.state_server import EmbeddedRedis, state_dir

    server = make_server(appendfsync="always")
    graph = server.ensure_running()
    a = build_api(server.data_dir, api_rate_limit_per_minute=1000)
    try:
        key = a.key("chat")
        sid = owned_session(a, "C00001")
        state = EmbeddedRedis(state_dir(server.data_dir)).current()
        assert state is not None and state.pid != graph.pid and state.port != graph.port
        stored = a.services.redis()
        assert stored.config_get("appendonly") == {"appendonly": "yes"}
        assert "falkordb" not in str(stored.module_list()).lower()  # a plain Redis
        server.kill()  # the graph is gone; nothing here needs it
        h = a.h(key, customer="C00001")
        for _ in range(3):
            r = a.client.get(f"/api/v1/chat/sessions/{sid}", headers=h)
            assert r.status_code == 200, r.get_json()
            assert int(r.headers["X-RateLimit-Remaining"]) < 1000  # the key's rate limit was counted
    finally:
        drop_api(a)


def test_a_killed_state_server_comes_back_with_its_data(make_server):
    from kg.backends.state_server import EmbeddedRedis, state_dir

    server = make_server(appendfsync="always")
    a = build_api(server.data_dir)
    try:
        key = a.key("chat")
        sid = owned_session(a, "C00002")
        state = EmbeddedRedis(state_dir(server.data_dir))
        first = state.current()
        assert first is not None
        state.kill()
        h = a.h(key, customer="C00002")
        statuses = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = a.client.get(f"/api/v1/chat/sessions/{sid}", headers=h)
            statuses.append(r.status_code)
            if r.status_code == 200:
                break
            error_shape(r, 503)
            assert r.headers["Retry-After"] == "1"
        assert statuses[-1] == 200, statuses  # the API restarted it; the key and session survived
        again = state.current()
        assert again is not None and again.pid != first.pid and again.port == first.port
    finally:
        drop_api(a)
