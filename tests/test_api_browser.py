"""The chat page end to end in headless Chromium (Debian's package, driven by playwright): it
loads, signs in as a sample customer in development mode, holds a streamed conversation with the
understanding panel and feedback buttons, and shows answers as text, never as HTML."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import pytest

import tests.api_support as support
from tests.api_support import Api, build_api, drop_api, free_port, load_sample, needs_engine

sample_store_dir = support.sample_store_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="needs Debian's chromium (scripts/setup-env.sh installs it)")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test requirement")


class _Server:
    def __init__(self, app) -> None:
        from werkzeug.serving import make_server

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._srv = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._srv.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def site(falkordb_server, sample_store_dir) -> Iterator[tuple[Api, _Server]]:
    a = build_api(falkordb_server.data_dir)
    load_sample(a, sample_store_dir)
    srv = _Server(a.app)
    yield a, srv
    srv.stop()
    drop_api(a)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context()
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    ctx.close()


def test_page_loads_and_signs_in_as_a_sample_customer(site, page):
    a, srv = site
    page.goto(srv.url + "/")
    page.wait_for_selector("body[data-ready='true']")
    assert page.text_content("[data-testid=who]") == "Not signed in"
    # greets with example questions; only Sign in is offered before signing in
    assert "For example" in page.text_content("[data-testid=greeting]")
    assert page.eval_on_selector_all("[data-testid=greeting] button", "els => els.length") >= 3
    assert page.is_visible("[data-testid=sign-in]") and not page.is_visible("[data-testid=sign-out]")
    options = page.eval_on_selector_all("[data-testid=customer] option", "els => els.map(e => e.value)")
    assert options and options[0].startswith("C")
    page.select_option("[data-testid=customer]", options[1])
    page.click("[data-testid=sign-in]")
    page.wait_for_selector(f"[data-testid=who]:has-text('Signed in as {options[1]}')")
    assert page.is_visible("[data-testid=sign-out]") and not page.is_visible("[data-testid=sign-in]")
    page.click("[data-testid=sign-out]")
    assert page.text_content("[data-testid=who]") == "Not signed in"
    assert page.is_visible("[data-testid=sign-in]") and not page.is_visible("[data-testid=sign-out]")
    assert page.errors == []


def test_api_docs_page_renders_swagger_ui_from_this_server_only(site, browser):
    """Swagger UI (the flask-swagger-ui package's files) renders every operation of the document
    under the page's Content-Security-Policy, and the browser asks nothing of any other host."""
    a, srv = site
    ctx = browser.new_context()
    pg = ctx.new_page()
    problems: list[str] = []
    requested: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(str(exc)))
    pg.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    pg.on("request", lambda req: requested.append(req.url))
    pg.goto(srv.url + "/api/v1/docs")
    pg.wait_for_selector(".opblock-summary-path", timeout=30_000)
    doc = a.client.get("/api/v1/openapi.json").get_json()
    n_ops = sum(len(item) for item in doc["paths"].values())
    assert pg.eval_on_selector_all(".opblock", "els => els.length") == n_ops
    assert pg.text_content(".info .title").startswith(doc["info"]["title"])
    assert pg.is_visible("button.authorize")
    # an operation opens with its examples and its error replies
    pg.click("#operations-chat-chat_chat_post .opblock-summary-control")
    pg.wait_for_selector("#operations-chat-chat_chat_post .responses-table")
    codes = pg.eval_on_selector_all("#operations-chat-chat_chat_post .responses-table .response-col_status",
                                    "els => els.map(e => e.textContent.trim())")
    assert {"200", "401", "404", "422", "429", "503"} <= set(codes)
    assert problems == []  # a CSP violation or a script error would show here
    assert requested and all(url.startswith(srv.url + "/") for url in requested), requested
    ctx.close()


def test_page_without_dev_mode_asks_for_a_key(falkordb_server, browser):
    a = build_api(falkordb_server.data_dir, api_dev_mode=False)
    srv = _Server(a.app)
    try:
        ctx = browser.new_context()
        pg = ctx.new_page()
        pg.goto(srv.url + "/chat")
        pg.wait_for_selector("body[data-ready='true']")
        assert pg.is_visible("#api-key") and not pg.is_visible("[data-testid=sign-in]")
        ctx.close()
    finally:
        srv.stop()
        drop_api(a)


@needs_engine
def test_a_streamed_conversation_with_panel_and_feedback(site, page):
    a, srv = site
    a.services.engine()
    page.goto(srv.url + "/")
    page.wait_for_selector("body[data-ready='true']")
    page.fill("[data-testid=message]", "what payment methods do you accept?")
    page.click("[data-testid=send]")
    page.wait_for_selector("[data-testid=bot][data-turn='1']", timeout=60_000)
    answer = page.text_content("[data-testid=bot] .text")
    assert answer and len(answer) > 5
    assert page.text_content("[data-testid=p-intent]") not in ("", "-")
    assert page.text_content("[data-testid=p-query]")
    assert page.text_content("[data-testid=thumbs-up]") == "Helpful"  # words: no emoji font needed
    page.click("[data-testid=thumbs-up]")
    page.wait_for_selector("[data-testid=thumbs-up][aria-pressed='true']")
    keys = list(a.services.redis().scan_iter(match=f"kgqa:{a.settings.graph_name}:feedback:*"))
    assert keys and a.services.redis().hget(keys[0], "1")
    assert page.errors == []


@needs_engine
def test_answers_are_inserted_as_text_never_html(site, page):
    a, srv = site
    a.services.engine()
    name = 'Zap Lamp <img src=x onerror="window.__pwned=1"> <b>bold</b>'
    assert a.client.put("/api/v1/catalog/products/XSS-1", headers=a.h(),
                        json={"name": name, "price": 12, "brand": "Zap", "stock": 3}).status_code in (200, 201)
    page.goto(srv.url + "/")
    page.wait_for_selector("body[data-ready='true']")
    page.fill("[data-testid=message]", "how much is the Zap Lamp?")
    page.click("[data-testid=send]")
    page.wait_for_selector("[data-testid=bot][data-turn='1']", timeout=60_000)
    assert page.eval_on_selector_all("[data-testid=log] img, [data-testid=log] b, #panel img", "els => els.length") == 0
    assert page.evaluate("window.__pwned") is None
    text = page.text_content("[data-testid=log]") + page.text_content("[data-testid=p-facts]")
    assert "<img" in text or "Zap Lamp" in text


@needs_engine
def test_signing_in_keeps_the_transcript_and_the_conversation(site, page):
    """DESIGN section 6: a shopper who signs in mid-conversation keeps it. The page keeps the
    transcript and the session, and the order question asked before signing in is answered on
    "and now?"; signing out starts a new conversation."""
    a, srv = site
    a.services.engine()
    page.goto(srv.url + "/")
    page.wait_for_selector("body[data-ready='true']")
    page.fill("[data-testid=message]", "where is my order?")
    page.click("[data-testid=send]")
    page.wait_for_selector("[data-testid=bot][data-turn='1']", timeout=60_000)
    assert page.text_content("#p-status") == "need_sign_in"
    asked = page.text_content("[data-testid=bot][data-turn='1'] .text")
    customer = page.eval_on_selector_all("[data-testid=customer] option", "els => els.map(e => e.value)")[0]
    page.select_option("[data-testid=customer]", customer)
    page.click("[data-testid=sign-in]")
    page.wait_for_selector(f"[data-testid=who]:has-text('Signed in as {customer}')")
    # the transcript is still there
    assert page.text_content("[data-testid=bot][data-turn='1'] .text") == asked
    assert page.eval_on_selector_all("[data-testid=log] li.user", "els => els.map(e => e.textContent)") == [
        "where is my order?"]
    page.fill("[data-testid=message]", "and now?")
    page.click("[data-testid=send]")
    page.wait_for_selector("[data-testid=bot][data-turn='2']", timeout=60_000)  # turn 2 of the same session
    assert page.text_content("#p-status") in ("ok", "clarify")
    assert page.text_content("[data-testid=p-intent]").startswith("track_order")
    assert page.text_content("[data-testid=error]") == ""
    page.click("[data-testid=sign-out]")
    assert page.eval_on_selector_all("[data-testid=log] [data-testid=bot], [data-testid=log] li.user",
                                     "els => els.length") == 0  # a new conversation
    assert page.errors == []
