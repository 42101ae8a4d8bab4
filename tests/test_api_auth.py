"""API keys and customer tokens: 401 for a missing, malformed, unknown or revoked key, 403 for a
key without the route's role, `admin` implying every role, keys managed by the CLI and stored
hashed; customer tokens that are expired, forged, unsigned, of another algorithm, without `exp`,
or signed with a short secret make the shopper anonymous (a customer's session is then a 404)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from click.testing import CliRunner

import tests.api_support as support
from api.auth import decode_customer_token, digest
from tests.api_support import DEV_KEY, SECRET, error_shape, owned_session, token

api = support.api

ROUTES = [  # (method, path, role, body)
    ("post", "/api/v1/chat", "chat", {"message": "hi"}),
    ("post", "/api/v1/chat/stream", "chat", {"message": "hi"}),
    ("get", "/api/v1/chat/sessions/abcdefgh12345678", "chat", None),
    ("post", "/api/v1/chat/feedback", "chat", {"session_id": "abcdefgh12345678", "turn": 1, "rating": 5}),
    ("post", "/api/v1/catalog/import", "catalog", None),
    ("get", "/api/v1/catalog/import/abcdefgh12345678", "catalog", None),
    ("get", "/api/v1/catalog/products/SKU-1", "catalog", None),
    ("put", "/api/v1/catalog/products/SKU-1", "catalog", {"name": "x"}),
    ("patch", "/api/v1/catalog/products/SKU-1", "catalog", {"name": "x"}),
    ("delete", "/api/v1/catalog/products/SKU-1", "catalog", None),
    ("post", "/api/v1/graph/query", "analyst", {"cypher": "RETURN 1"}),
    ("get", "/api/v1/graph/schema", "analyst", None),
    ("get", "/api/v1/analytics/intents", "analyst", None),
]


def _call(api, method, path, headers, body):
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    resp = getattr(api.client, method)(path, **kwargs)
    resp.get_data()  # read a streamed reply to its end, inside this request's context
    resp.close()
    return resp


@pytest.mark.parametrize("method,path,role,body", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_every_protected_route_needs_a_valid_key(api, method, path, role, body):
    error_shape(_call(api, method, path, {}, body), 401, "unauthorized")
    error_shape(_call(api, method, path, {"Authorization": "Basic abc"}, body), 401)
    error_shape(_call(api, method, path, {"Authorization": "Bearer"}, body), 401)
    error_shape(_call(api, method, path, api.h("kgqa_deadbeef_" + "x" * 43), body), 401)
    error_shape(_call(api, method, path, api.h("not-a-key"), body), 401)
    error_shape(_call(api, method, path, api.h(DEV_KEY + "x"), body), 401)


@pytest.mark.parametrize("method,path,role,body", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_a_key_without_the_role_is_403_and_admin_implies_every_role(api, method, path, role, body):
    others = [r for r in ("chat", "catalog", "analyst") if r != role]
    err = error_shape(_call(api, method, path, api.h(api.key(*others)), body), 403, "forbidden")
    assert role in err["message"]
    for key in (api.key(role), api.key("admin"), DEV_KEY):
        r = _call(api, method, path, api.h(key), body)
        assert r.status_code not in (401, 403), (key, r.get_json())


def test_revoked_key_is_401_at_once(api):
    key = api.key("analyst")
    assert api.client.get("/api/v1/graph/schema", headers=api.h(key)).status_code == 200
    key_id = key.split("_")[1]
    assert api.services.keys.revoke(key_id)
    error_shape(api.client.get("/api/v1/graph/schema", headers=api.h(key)), 401)
    # a key with the right id but another secret never matches
    rec = api.services.keys.get(key_id)
    assert rec is not None and rec.revoked_at is not None


def test_keys_are_stored_hashed(api):
    key = api.key("chat")
    key_id = key.split("_")[1]
    raw = api.services.redis().get(f"kgqa:{api.settings.graph_name}:apikey:{key_id}")
    assert key not in raw and key.split("_", 2)[2] not in raw
    assert json.loads(raw)["digest"] == digest(key)
    forged = f"kgqa_{key_id}_" + "A" * 43
    error_shape(api.client.get("/api/v1/chat/sessions/abcdefgh12345678", headers=api.h(forged)), 401)


def test_keys_cli_create_list_revoke(api, monkeypatch):
    from api.cli import keys_command

    for k, v in {"GRAPH_URL": "falkordb://embedded", "DATA_DIR": str(api.settings.data_dir),
                 "GRAPH_NAME": api.settings.graph_name}.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    res = runner.invoke(keys_command, ["create", "--name", "shop web", "--role", "chat", "--role", "catalog"])
    assert res.exit_code == 0, res.output
    key = next(line for line in res.output.splitlines() if line.startswith("kgqa_"))
    assert api.client.get("/api/v1/catalog/products/NOPE", headers=api.h(key)).status_code == 404
    error_shape(api.client.get("/api/v1/graph/schema", headers=api.h(key)), 403)
    listed = runner.invoke(keys_command, ["list", "--json"])
    assert listed.exit_code == 0
    records = json.loads(listed.output)
    assert [r["name"] for r in records] == ["shop web"] and key not in listed.output
    assert records[0]["roles"] == ["catalog", "chat"]
    res = runner.invoke(keys_command, ["revoke", records[0]["key_id"]])
    assert res.exit_code == 0
    error_shape(api.client.get("/api/v1/catalog/products/NOPE", headers=api.h(key)), 401)
    assert runner.invoke(keys_command, ["revoke", "00000000"]).exit_code != 0
    bad = runner.invoke(keys_command, ["create", "--name", "x", "--role", "root"])
    assert bad.exit_code != 0


# -- customer tokens ------------------------------------------------------------------------------------------
def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def bad_tokens() -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": token("C00001", exp_in=-3600),
        "forged": token("C00001", secret="another-secret-that-is-long-enough-0123456789"),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'C00001', 'exp': now + 600})}.",
        "hs512": token("C00001", alg="HS512"),
        "no_exp": token("C00001", exp_in=None),
        "no_sub": jwt.encode({"exp": now + 600}, SECRET, algorithm="HS256"),
        "garbage": "not.a.token",
        "tampered": token("C00001")[:-2] + "xx",
        "sub_case": token("c00001"),
        "sub_space": token("C00001 "),
    }


def test_customer_token_rules_unit():
    from common.settings import Settings

    settings = Settings(_env_file=None, customer_token_secret=SECRET)
    assert decode_customer_token(token("C00001"), settings) == "C00001"
    assert decode_customer_token(token("C00001", exp_in=-10), settings) == "C00001"  # within the leeway
    assert sorted(bad_tokens()) == sorted(BAD_TOKEN_NAMES)
    for name, tok in bad_tokens().items():
        assert decode_customer_token(tok, settings) in (None, "c00001", "C00001 "), name
        if name not in ("sub_case", "sub_space"):
            assert decode_customer_token(tok, settings) is None, name
    short = Settings(_env_file=None, customer_token_secret="short-secret")
    assert decode_customer_token(token("C00001", secret="short-secret"), short) is None
    assert decode_customer_token(token("C00001"), Settings(_env_file=None)) is None


def test_customer_token_lifetime_audience_issuer_and_status():
    from api.auth import check_customer_token
    from common.settings import Settings

    settings = Settings(_env_file=None, customer_token_secret=SECRET, customer_token_max_lifetime_s=3600)
    assert check_customer_token(None, settings).status is None
    assert check_customer_token(token("C00001", exp_in=3000), settings).status == "valid"
    far = token("C00001", exp_in=253402300799 - int(__import__("time").time()))  # exp in the year 9999
    assert check_customer_token(far, settings) == check_customer_token(token("C00001", exp_in=7200), settings)
    assert check_customer_token(far, settings).status == "invalid" and decode_customer_token(far, settings) is None
    assert check_customer_token(token("C00001", exp_in=-600), settings).status == "expired"
    assert check_customer_token("not.a.token", settings).status == "invalid"
    strict = Settings(_env_file=None, customer_token_secret=SECRET, customer_token_audience="shop-web",
                      customer_token_issuer="https://shop.example")
    good = token("C00001", aud=["shop-web", "app"], iss="https://shop.example")
    assert check_customer_token(good, strict).customer_id == "C00001"
    assert check_customer_token(token("C00001", aud="other", iss="https://shop.example"), strict).status == "invalid"
    assert check_customer_token(token("C00001", aud="shop-web", iss="https://evil.example"), strict).status == "invalid"
    assert check_customer_token(token("C00001"), strict).status == "invalid"  # aud and iss required once set
    # without a secret nothing is checked, and nothing is called invalid
    assert check_customer_token(token("C00001"), Settings(_env_file=None)).status is None


BAD_TOKEN_NAMES = ("alg_none", "expired", "forged", "garbage", "hs512", "no_exp", "no_sub", "sub_case",
                   "sub_space", "tampered")


@pytest.mark.parametrize("name", BAD_TOKEN_NAMES)
def test_an_invalid_customer_token_is_anonymous(api, name):
    sid = owned_session(api, "C00001")
    ok = api.client.get(f"/api/v1/chat/sessions/{sid}", headers=api.h(customer="C00001"))
    assert ok.status_code == 200 and ok.get_json()["signed_in"] is True
    bad = api.client.get(f"/api/v1/chat/sessions/{sid}", headers=api.h(tok=bad_tokens()[name]))
    error_shape(bad, 404, "session_not_found")
    anon = owned_session(api, None, caller="dev")
    r = api.client.get(f"/api/v1/chat/sessions/{anon}", headers=api.h(tok=bad_tokens()[name]))
    if name in ("sub_case", "sub_space"):
        # a valid token for another id ("c00001", "C00001 "): `sub` is compared exactly, so it is
        # someone else, who can read neither C00001's session nor an anonymous one
        error_shape(r, 404)
    else:
        # anonymous, not an error: the key's own anonymous session is readable with the bad token
        assert r.status_code == 200, r.get_json()


def test_a_short_secret_makes_every_shopper_anonymous(falkordb_server):
    from tests.api_support import build_api, drop_api

    a = build_api(falkordb_server.data_dir, customer_token_secret="too-short-secret")
    try:
        sid = owned_session(a, "C00001")
        r = a.client.get(f"/api/v1/chat/sessions/{sid}", headers=a.h(tok=token("C00001", secret="too-short-secret")))
        error_shape(r, 404)
    finally:
        drop_api(a)


def test_identity_comes_only_from_the_token_header(api):
    sid = owned_session(api, "C00001")
    for headers, query in [({"Cookie": "customer_id=C00001"}, ""), ({}, "?customer_id=C00001"),
                           ({"X-Customer-Id": "C00001"}, "")]:
        r = api.client.get(f"/api/v1/chat/sessions/{sid}{query}", headers=api.h(**headers))
        error_shape(r, 404)


def test_dev_key_only_when_set(falkordb_server):
    from tests.api_support import build_api, drop_api

    a = build_api(falkordb_server.data_dir, dev_api_key=None)
    try:
        error_shape(a.client.get("/api/v1/graph/schema", headers=a.h(DEV_KEY)), 401)
        error_shape(a.client.get("/api/v1/graph/schema", headers=a.h("")), 401)
    finally:
        drop_api(a)
